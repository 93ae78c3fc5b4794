"""The whole lab in one object: API emulator, CRDs, workload simulator, demo services,
Prometheus and (optionally) traffic, wired together on loopback.

``Lab.start()`` brings it up in this order: the API emulator (on its own thread), the
third-party CRDs from ``hack/lab/crds`` and Rollwise's from ``crds/`` (when present), an asyncio
loop thread with the demo services' metrics hub and the workload simulator, Prometheus scraping
the hub, and a traffic generator when a target is given. Every Deployment revision the simulator
sees gets one DemoService (``service`` = the pods' ``app`` label, ``revision`` = the revision
hash); the pod template annotations ``lab.rollwise.dev/error-ratio``,
``lab.rollwise.dev/latency-ms`` and ``lab.rollwise.dev/jitter-ms`` set its initial behaviour, so
a manifest alone can describe a bad canary.

The components talk to the API server over HTTP only, like they would in a cluster.

With ``users`` (name -> groups) the API server authenticates by bearer token, like
kube-apiserver with ``--token-auth-file``, and serves HTTPS: each person gets a kubeconfig
(``Lab.kubeconfig_of(name)``), so that kubectl acts as them and admission webhooks see who they
are; the lab's own parts and ``Lab.kubeconfig`` act as ``lab-admin`` (group ``system:masters``).

The API server calls admission webhooks with a client certificate of the lab's own CA, as
kube-apiserver does with an ``--admission-control-config-file`` (``Lab.admission``: the CA a
webhook trusts its caller by, and the configuration file itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from hack.lab._support import CRDS, ApiError, BackgroundLoop, KubeEndpoint, KubeHTTP
from hack.lab.kube.admission import AdmissionClientAuth, write_admission_client_auth
from hack.lab.kube.auth import Identities, write_identities
from hack.lab.kube.server import BackgroundAPIServer
from hack.lab.prometheus import PrometheusServer
from hack.lab.service import Behaviour, DemoService, ServiceRegistry
from hack.lab.traffic import RouteTarget, TrafficGenerator
from hack.lab.workloads import RevisionEvent, WorkloadSimulator

REPO_ROOT = Path(__file__).resolve().parents[2]
LAB_CRDS = Path(__file__).resolve().parent / "crds"
ROLLWISE_CRDS = REPO_ROOT / "crds"

#: The identity of the lab's own parts (and ``Lab.kubeconfig``) when the lab has ``users``.
LAB_ADMIN = "lab-admin"
LAB_ADMIN_GROUPS = ("system:masters",)

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


async def install_crds(api: KubeHTTP, crds: list[dict[str, Any]], timeout: float = 10.0) -> None:
    """Creates (or updates) ``crds`` and waits, bounded, until each group version is served."""
    for crd in crds:
        await api.apply_object(crd, CRDS)
    deadline = time.monotonic() + timeout
    pending = {
        (crd["spec"]["group"], version["name"], crd["spec"]["names"]["plural"])
        for crd in crds
        for version in crd["spec"]["versions"]
        if version.get("served", True)
    }
    while pending:
        for group, version, plural in list(pending):
            try:
                listing = await api.request("GET", f"/apis/{group}/{version}")
            except ApiError:
                continue
            names = {r.get("name") for r in (listing or {}).get("resources", [])}
            if plural in names:
                pending.discard((group, version, plural))
        if pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRDs not served within {timeout} s: {sorted(pending)}")
            await asyncio.sleep(0.05)


def template_behaviour(annotations: dict[str, str]) -> Behaviour | None:
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
        api_port: int = 0,
        prometheus: bool = True,
        scrape_interval: str = "1s",
        ready_delay: float = 0.5,
        simulator: bool = True,
        traffic: str | RouteTarget | None = None,
        rate: float = 50.0,
        traffic_duration: float = 3600.0,
        seed: int | None = None,
        crd_dirs: tuple[Path, ...] = (LAB_CRDS, ROLLWISE_CRDS),
        token: str | None = None,
        loop: BackgroundLoop | None = None,
        registry: ServiceRegistry | None = None,
        users: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """``loop`` and ``registry`` may be shared with other labs (tests share one per session);
        a lab then stops only the demo services it started. ``users`` (name -> groups): the
        people the API server authenticates by token (it then serves HTTPS); ``token`` is for
        a lab without users. ``simulator=False`` leaves the workload simulator out (run it in
        its own process with ``python -m hack.lab simulate``; revisions then get no demo
        service)."""
        if users and token is not None:
            raise ValueError("a lab with users authenticates by their tokens: pass no token")
        if users and LAB_ADMIN in users:
            raise ValueError(f"{LAB_ADMIN} is the lab's own identity, not a user")
        self.workdir = Path(workdir)
        self.api_port = api_port
        self.with_prometheus = prometheus
        self.scrape_interval = scrape_interval
        self.ready_delay = ready_delay
        self.with_simulator = simulator
        self.traffic_target = traffic
        self.rate = rate
        self.traffic_duration = traffic_duration
        self.crd_dirs = crd_dirs
        self.token = token
        self.users = dict(users or {})
        self.identities: Identities | None = None
        self.admission: AdmissionClientAuth | None = None
        self._own_loop = loop is None
        self.loop = loop or BackgroundLoop("lab")
        self._own_registry = registry is None
        self.registry = registry or ServiceRegistry(seed=seed)
        self._started_revisions: set[str] = set()
        self.apiserver: BackgroundAPIServer | None = None
        self.prometheus: PrometheusServer | None = None
        self.simulator: WorkloadSimulator | None = None
        self.traffic: TrafficGenerator | None = None
        self.endpoint: KubeEndpoint | None = None
        self.started_in = 0.0

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def admission_client_ca(self) -> Path:
        """The CA of the client certificate the API server calls webhooks with."""
        if self.admission is None:
            raise RuntimeError("the lab is not running")
        return self.admission.ca

    def kubeconfig_of(self, user: str) -> Path:
        """The kubeconfig of one of the lab's ``users`` (kubectl then acts as them)."""
        if self.identities is None:
            raise RuntimeError("the lab has no users (Lab(users=...)) or is not running")
        return self.identities[user].kubeconfig

    @property
    def api_url(self) -> str:
        if self.apiserver is None:
            raise RuntimeError("the lab is not running")
        return str(self.apiserver.url)

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
            token = self.token
            self.admission = write_admission_client_auth(self.workdir / "admission")
            if self.users:
                self.identities = write_identities(
                    self.workdir / "identities", {LAB_ADMIN: LAB_ADMIN_GROUPS, **self.users}
                )
                self.apiserver = BackgroundAPIServer(
                    port=self.api_port,
                    authenticator=self.identities.authenticator(),
                    admission_config=self.admission.config,
                )
                self.apiserver.start()
                self.identities.write_kubeconfigs(
                    self.apiserver.url, certificate_authority_data=self.apiserver.server.ca_pem
                )
                token = self.identities[LAB_ADMIN].token
            else:
                self.apiserver = BackgroundAPIServer(
                    port=self.api_port, admission_config=self.admission.config
                )
                self.apiserver.start()
            self.apiserver.write_kubeconfig(self.kubeconfig, token=token, user=LAB_ADMIN)
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
        api = KubeHTTP(self.endpoint)
        try:
            await install_crds(api, load_crds(*self.crd_dirs))
        finally:
            await api.close()
        if not self.with_simulator:
            return
        self.simulator = WorkloadSimulator(
            self.endpoint, ready_delay=self.ready_delay, on_revision=self._on_revision
        )
        await self.simulator.start()

    async def _on_revision(self, event: RevisionEvent) -> None:
        if not event.present:
            self._started_revisions.discard(event.revision)
            await self.registry.remove(event.revision)
            return
        behaviour = None
        if self.simulator is not None:
            owner = self.simulator.deployments.get(event.namespace, event.owner)
            if owner is not None:
                template_meta = owner.get("spec", {}).get("template", {}).get("metadata", {})
                try:
                    behaviour = template_behaviour(template_meta.get("annotations") or {})
                except ValueError:
                    behaviour = None
        self._started_revisions.add(event.revision)
        await self.registry.ensure(event.app, event.revision, behaviour)

    def start_traffic(
        self,
        target: str | RouteTarget,
        *,
        rate: float = 50.0,
        duration: float | None = None,
        count: int | None = None,
    ) -> TrafficGenerator:
        """Starts a traffic generator on the lab's loop (replacing a running one)."""
        assert self.endpoint is not None
        if self.traffic is not None:
            self.loop.run(self.traffic.stop())
        generator = TrafficGenerator(
            self.endpoint,
            self.registry,
            target,
            rate=rate,
            duration=duration
            if duration is not None or count is not None
            else self.traffic_duration,
            count=count,
        )
        self.traffic = generator
        self.loop.run(generator.start())
        return generator

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` for the lab's API server (through the kubeconfig)."""
        from kubernetes import config  # noqa: PLC0415 - only tests and demos need the client

        return config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]

    def demo(self, revision: str, timeout: float = 10.0) -> DemoService:
        """The DemoService of ``revision``, waiting (bounded) until the simulator started it."""
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
            prometheus=self.prometheus_url,
            metrics_hub=self.hub_url,
            started_in_seconds=round(self.started_in, 3),
            traffic=str(self.traffic.target) if self.traffic is not None else None,
        )

    async def _stop_async(self) -> None:
        if self.traffic is not None:
            await self.traffic.stop()
        if self.simulator is not None:
            await self.simulator.stop()
        if self._own_registry:
            await self.registry.stop()
        else:
            for revision in list(self._started_revisions):
                await self.registry.remove(revision)

    def stop(self) -> None:
        if self.prometheus is not None:
            self.prometheus.stop()
        with contextlib.suppress(RuntimeError, TimeoutError):
            if self.loop.loop.is_running():
                self.loop.run(self._stop_async())
        if self._own_loop:
            self.loop.stop()
        if self.apiserver is not None:
            self.apiserver.stop()
            self.apiserver = None

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
