"""The whole lab in one object: a real control plane (the lab cluster), the CRDs, the lab
controller, demo services, Prometheus and (optionally) traffic, wired together on loopback.

``Lab.start()`` brings it up in this order: the cluster (``hack.cluster``: etcd,
kube-apiserver, kube-controller-manager, kube-scheduler, kwok; or an already running one passed
in), the third-party CRDs of ``hack/lab/crds``, Rollwise's from ``crds/`` and kopf's peering
CRDs as the chart renders them (``kubectl apply --server-side``, so the real API server
compiles and cost-checks every CEL rule), an asyncio loop thread with the demo services' metrics
hub and the lab controller, Prometheus scraping the hub, and a traffic generator when a target
is given.

What is real and what is simulated: the control plane is Kubernetes' own (Deployments become
ReplicaSets and Pods, the scheduler binds them, RBAC, admission and the audit log are the API
server's); kwok plays the kubelet of fake Nodes, so Pods become Running and Ready without
containers. The data plane is simulated: every revision Deployment (label
``rollwise.dev/revision``) gets one ``DemoService`` (``service`` = the pods' ``app`` label,
``revision`` = the revision hash) whose pod template annotations ``lab.rollwise.dev/error-ratio``,
``lab.rollwise.dev/latency-ms`` and ``lab.rollwise.dev/jitter-ms`` set its initial behaviour, so
a manifest alone can describe a bad canary. A Rollout's baseline (``rollwise.dev/baseline-of``)
is a revision of its own that starts with its stable revision's current behaviour. The traffic
generator splits requests by the
weights the operator wrote; KServe's InferenceService status is written by the lab controller.

The lab's own parts act as the cluster's administrator (``lab-admin``, group
``system:masters``); ``Lab.kubeconfig_of(name)`` is the kubeconfig of one of the people the API
server authenticates (``hack.cluster.DEFAULT_IDENTITIES`` unless ``users`` says otherwise).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from hack.cluster import Cluster, ClusterError, wait_established
from hack.lab._support import BackgroundLoop, KubeEndpoint
from hack.lab.controller import LabController, RevisionEvent
from hack.lab.operator import peering_crds
from hack.lab.prometheus import PrometheusServer
from hack.lab.service import Behaviour, DemoService, ServiceRegistry
from hack.lab.traffic import RouteTarget, TrafficGenerator

REPO_ROOT = Path(__file__).resolve().parents[2]
LAB_CRDS = Path(__file__).resolve().parent / "crds"
ROLLWISE_CRDS = REPO_ROOT / "crds"

BEHAVIOUR_ANNOTATIONS = {
    "lab.rollwise.dev/error-ratio": "errorRatio",
    "lab.rollwise.dev/latency-ms": "latencyMs",
    "lab.rollwise.dev/jitter-ms": "jitterMs",
}


def load_crds(*dirs: Path) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition document in the YAML files of ``dirs``."""
    found: list[dict[str, Any]] = []
    for directory in dirs:
        if not directory.is_dir():
            continue
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            for doc in yaml.safe_load_all(path.read_text()):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    found.append(doc)
    return found


def install_crds(cluster: Cluster, crds: list[dict[str, Any]], timeout: float = 60.0) -> None:
    """``kubectl apply --server-side`` of ``crds``, then waits until each is Established (the
    API server serves it). A CRD the API server refuses (a CEL rule over its cost budget, an
    invalid schema) fails with kube-apiserver's message."""
    if not crds:
        return
    cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=rollwise-lab",
        "-f",
        "-",
        input=yaml.safe_dump_all(crds, sort_keys=False),
        timeout=timeout,
        check=True,
    )
    wait_established(cluster.kubectl, *(crd["metadata"]["name"] for crd in crds), timeout=timeout)
    # Established is not served yet: until its watch cache is filled the API server answers
    # a new resource's lists 429 "storage is (re)initializing". The lab is ready once every
    # resource lists.
    deadline = time.monotonic() + timeout
    for crd in crds:
        spec = crd["spec"]
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            path = f"/apis/{spec['group']}/{version['name']}/{spec['names']['plural']}"
            while True:
                try:
                    cluster.api("GET", path, params={"limit": "1"})
                    break
                except ClusterError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)


def template_behaviour(annotations: Mapping[str, str]) -> Behaviour | None:
    body = {
        key: float(annotations[ann])
        for ann, key in BEHAVIOUR_ANNOTATIONS.items()
        if ann in annotations
    }
    return Behaviour().updated(body) if body else None


@dataclass
class LabInfo:
    """Where the parts of a running lab listen (written to ``lab.json`` by the CLI)."""

    api: str
    kubeconfig: str
    cluster_dir: str
    prometheus: str | None
    metrics_hub: str
    started_in_seconds: float
    traffic: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Lab:
    """The lab; a context manager (sync) that stops everything it started."""

    def __init__(
        self,
        workdir: str | Path,
        *,
        cluster: Cluster | None = None,
        prometheus: bool = True,
        scrape_interval: str = "1s",
        traffic: str | RouteTarget | None = None,
        rate: float = 50.0,
        traffic_duration: float = 3600.0,
        seed: int | None = None,
        crd_dirs: tuple[Path, ...] = (LAB_CRDS, ROLLWISE_CRDS),
        controller: bool = True,
        loop: BackgroundLoop | None = None,
        registry: ServiceRegistry | None = None,
        users: Mapping[str, Sequence[str]] | None = None,
        nodes: int = 2,
        log: Any = print,
    ) -> None:
        """``cluster``: a running cluster to use (the lab then leaves it running when it
        stops); otherwise the lab starts one in ``workdir/cluster`` with ``users`` (name ->
        groups; default ``hack.cluster.DEFAULT_IDENTITIES``) and ``nodes`` fake Nodes.
        ``loop`` and ``registry`` may be shared with other parts (tests share one per session);
        the lab then stops only the demo services it started. ``controller=False`` leaves the
        lab controller out (no demo services, no InferenceService status)."""
        # Absolute, so what the lab writes (configs, lab.json) names the same files from anywhere.
        self.workdir = Path(workdir).resolve()
        self._given_cluster = cluster
        self.cluster: Cluster | None = cluster
        self.users = None if users is None else dict(users)
        self.nodes = nodes
        self.with_prometheus = prometheus
        self.scrape_interval = scrape_interval
        self.traffic_target = traffic
        self.rate = rate
        self.traffic_duration = traffic_duration
        self.crd_dirs = crd_dirs
        self.with_controller = controller
        self._own_loop = loop is None
        self.loop = loop or BackgroundLoop("lab")
        self._own_registry = registry is None
        self.registry = registry or ServiceRegistry(seed=seed)
        self._started_revisions: set[str] = set()
        self.prometheus: PrometheusServer | None = None
        self.controller: LabController | None = None
        self.traffic: TrafficGenerator | None = None
        self.endpoint: KubeEndpoint | None = None
        self._log = log
        self.started_in = 0.0

    @property
    def running_cluster(self) -> Cluster:
        if self.cluster is None:
            raise RuntimeError("the lab is not running")
        return self.cluster

    @property
    def kubeconfig(self) -> Path:
        """The administrator's kubeconfig (``lab-admin``, group ``system:masters``)."""
        return self.running_cluster.kubeconfig

    def kubeconfig_of(self, user: str) -> Path:
        """The kubeconfig of one of the people the API server authenticates."""
        return self.running_cluster.kubeconfig_of(user)

    @property
    def api_url(self) -> str:
        return self.running_cluster.server

    @property
    def prometheus_url(self) -> str | None:
        return self.prometheus.url if self.prometheus is not None else None

    @property
    def hub_url(self) -> str:
        return f"http://{self.registry.hub_address}"

    def start(self) -> Lab:
        began = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            if self.cluster is None:
                cluster = Cluster(
                    self.workdir / "cluster", identities=self.users, nodes=self.nodes, log=self._log
                )
                self.cluster = cluster
                cluster.up()
            cluster = self.running_cluster
            install_crds(cluster, [*load_crds(*self.crd_dirs), *peering_crds(cluster)])
            # The lab's own parts find the API server the way any client does: the kubeconfig.
            self.endpoint = KubeEndpoint.from_kubeconfig(self.kubeconfig)
            self.loop.start()
            self.loop.run(self._start_async())
            if self.with_prometheus:
                self.prometheus = PrometheusServer(
                    [self.registry.hub_address],
                    scrape_interval=self.scrape_interval,
                    data_dir=self.workdir / "prometheus",
                ).start()
            if self.traffic_target is not None:
                self.start_traffic(self.traffic_target, rate=self.rate)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began
        return self

    async def _start_async(self) -> None:
        assert self.endpoint is not None
        if self._own_registry:
            await self.registry.start_hub()
        if not self.with_controller:
            return
        self.controller = LabController(self.endpoint, on_revision=self._on_revision)
        await self.controller.start()

    async def _on_revision(self, event: RevisionEvent) -> None:
        if not event.present:
            self._started_revisions.discard(event.revision)
            await self.registry.remove(event.revision)
            return
        try:
            behaviour = template_behaviour(event.annotations)
        except ValueError:
            behaviour = None
        like = self.registry.get(event.behaves_like) if event.behaves_like else None
        if like is not None:
            # A baseline answers as its stable does now (set at run time or by annotation).
            behaviour = like.behaviour
        self._started_revisions.add(event.revision)
        await self.registry.ensure(event.app, event.revision, behaviour, namespace=event.namespace)

    def start_traffic(
        self,
        target: str | RouteTarget,
        *,
        rate: float = 50.0,
        duration: float | None = None,
        count: int | None = None,
        tag: tuple[str, str] | None = None,
        tagged_share: float = 0.0,
    ) -> TrafficGenerator:
        """Starts a traffic generator on the lab's loop (replacing a running one); with
        ``tag`` (a header name and value), ``tagged_share`` of the requests carry it."""
        assert self.endpoint is not None
        self.stop_traffic()
        generator = TrafficGenerator(
            self.endpoint,
            self.registry,
            target,
            rate=rate,
            duration=duration
            if duration is not None or count is not None
            else self.traffic_duration,
            count=count,
            tag=tag,
            tagged_share=tagged_share,
        )
        self.traffic = generator
        self.loop.run(generator.start())
        return generator

    def stop_traffic(self) -> None:
        """Stops the running traffic generator, if any."""
        if self.traffic is not None:
            generator, self.traffic = self.traffic, None
            with contextlib.suppress(RuntimeError, TimeoutError):
                self.loop.run(generator.stop())

    def api_client(self, user: str | None = None) -> Any:
        """A ``kubernetes.client.ApiClient`` for the cluster, as the administrator or ``user``."""
        from kubernetes import config  # noqa: PLC0415 - only tests and demos need the client

        path = self.kubeconfig if user is None else self.kubeconfig_of(user)
        return config.new_client_from_config(config_file=str(path))  # type: ignore[no-untyped-call]

    def demo(self, revision: str, timeout: float = 10.0) -> DemoService:
        """The DemoService of ``revision``, waiting (bounded) until the controller started it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            demo = self.loop.call(lambda: self.registry.get(revision))
            if demo is not None:
                return demo
            time.sleep(0.05)
        raise TimeoutError(f"no demo service for revision {revision} within {timeout} s")

    def info(self) -> LabInfo:
        return LabInfo(
            api=self.api_url,
            kubeconfig=str(self.kubeconfig),
            cluster_dir=str(self.running_cluster.directory),
            prometheus=self.prometheus_url,
            metrics_hub=self.hub_url,
            started_in_seconds=round(self.started_in, 3),
            traffic=str(self.traffic.target) if self.traffic is not None else None,
        )

    async def _stop_async(self) -> None:
        if self.traffic is not None:
            await self.traffic.stop()
            self.traffic = None
        if self.controller is not None:
            await self.controller.stop()
            self.controller = None
        if self._own_registry:
            await self.registry.stop()
        else:
            for revision in list(self._started_revisions):
                await self.registry.remove(revision)

    def stop(self) -> None:
        if self.prometheus is not None:
            self.prometheus.stop()
            self.prometheus = None
        with contextlib.suppress(RuntimeError, TimeoutError):
            if self.loop.loop.is_running():
                self.loop.run(self._stop_async())
        if self._own_loop:
            self.loop.stop()
        if self.cluster is not None and self._given_cluster is None:
            with contextlib.suppress(ClusterError):
                self.cluster.down()
            self.cluster = None

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
