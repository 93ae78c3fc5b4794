"""A user's view of ModelReleases, end to end: the real operator process in the lab, driven with
kubectl and the manifests of ``examples/modelrelease-template`` and
``examples/modelrelease-kserve`` (test-sized timings, no approvals: governance has its own
tests), a real MLflow registry read over its REST API, the ConfigMap alias store read with
kubectl, and Prometheus for the data plane.

Each release's artifact is a file the test writes under ``tmp_path``, named by a ``file://``
URI with its real sha256 digest, so the artifact-digest gate passes on evidence (the operator's
evidence policy allows ``file://`` below ``tmp_path``; its release policy requires no approval
and gives the test's namespace every model; its MLflow registry ``main`` is the one the test
starts). Model names
are unique per test (the session's MLflow and Prometheus are shared), and so are the pod
template's labels (a label of the test) and the InferenceService names, hence every revision
and series.

Scenarios: template backend with the MLflow store (Candidate → Staging → Approved →
Production); a failing canary (RolledBack, alias kept, MLflow and ConfigMap stores); a revoke
after Production; the KServe backend (5 → 25 → 100, then removed; a failing canary pinned at
0); MLflow unreachable at flip time (no false Production, Production once it is back); two
releases of one model and alias (the second Queued until the first is in Production).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from hack.lab.mlflow import MLflowServer
from hack.lab.testing.cluster_fixtures import kubectl_binary
from rollwise.adapters.registry import DEFAULT_CONFIGMAP
from tests.e2e.support import (
    INTERVAL,
    OPERATOR,
    REPO,
    Cluster,
    OperatorProcess,
    StartOperator,
    eventually,
    fast_metric,
    patient,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(300),
    pytest.mark.lab_only(
        "runs operator processes of its own, the lab's traffic generator and fault injection, "
        "and KServe's CRD"
    ),
]

TEMPLATE_EXAMPLE = REPO / "examples" / "modelrelease-template"
KSERVE_EXAMPLE = REPO / "examples" / "modelrelease-kserve"
#: The template example's ConfigMap alias store.
ALIASES = "model-aliases"
#: The template example's app label: the demo services' ``service`` label in Prometheus.
APP = "fraud-detector"
#: A Service over every revision of the template example's pods: what clients use (the
#: operator points the example's stable and canary Services at one revision each).
CLIENT_SERVICE = APP
ERROR_RATIO = "lab.rollwise.dev/error-ratio"
VENV_BIN = OPERATOR.parent

GROUP, VERSION = "rollwise.dev", "v1alpha1"
TERMINAL = {"RolledBack", "Revoked"}


# --------------------------------------------------------------------------- manifests


@dataclass(frozen=True)
class Artifact:
    uri: str
    digest: str


def write_artifact(directory: Path, model: str, version: str) -> Artifact:
    """A model file of the test's own, its ``file://`` URI and its real sha256 digest."""
    path = directory / f"{model}-{version}.bin"
    path.write_bytes(f"weights of {model} version {version}\n".encode() * 64)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Artifact(path.as_uri(), f"sha256:{digest}")


def load_docs(example: Path) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(example.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def _of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind)


def _test_sized(spec: dict[str, Any], steps: list[dict[str, Any]]) -> None:
    """Steps as given, analysis every second, two measurements per metric over 10 s windows,
    no approvals (governance is tested elsewhere), no freeze windows."""
    canary = spec.setdefault("canary", {})
    canary["steps"] = steps
    analysis = canary["analysis"]
    analysis["interval"] = f"{INTERVAL:g}s"
    for metric in analysis["metrics"]:
        fast_metric(metric)
    spec["approvals"] = {"requiredRoles": []}
    spec["gates"] = {}


FAST_STEPS: list[dict[str, Any]] = [{"setWeight": 5}, {"setWeight": 25}, {"setWeight": 100}]
#: The fast steps with an 8 s pause at 5%.
SLOW_STEPS: list[dict[str, Any]] = [FAST_STEPS[0], {"pause": {"duration": "8s"}}, *FAST_STEPS[1:]]


def template_docs(
    test_id: str,
    *,
    name: str,
    model: str,
    version: str,
    artifact: Artifact,
    store: dict[str, Any],
    error_ratio: float | None = None,
    steps: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """``examples/modelrelease-template`` for one release: its Services (plus a client Service
    over every revision), then the ModelRelease of ``model`` ``version``."""
    docs = load_docs(TEMPLATE_EXAMPLE)
    services = [d for d in docs if d["kind"] == "Service"]
    client = copy.deepcopy(services[0])
    client["metadata"]["name"] = CLIENT_SERVICE
    release = _of_kind(docs, "ModelRelease")
    release["metadata"]["name"] = name
    spec = release["spec"]
    spec["model"] = model
    spec["version"] = version
    spec["artifact"] = {"uri": artifact.uri, "digest": artifact.digest}
    spec["change"]["ticket"] = f"CHG-{test_id}-{version}"
    serving = spec["serving"]
    serving["replicas"] = 4
    template = serving["template"]
    template["metadata"]["labels"]["e2e.rollwise.dev/test"] = test_id
    if error_ratio is not None:
        template["metadata"]["annotations"] = {ERROR_RATIO: str(error_ratio)}
    spec["alias"] = {"name": "production", "store": store}
    _test_sized(spec, steps if steps is not None else FAST_STEPS)
    return [*services, client, release]


@dataclass
class TemplateModel:
    """One model of a test, served through ``examples/modelrelease-template``: its artifacts
    (written on first use) and the manifests of its releases, named ``<model>-<version>``."""

    cluster: Cluster
    directory: Path
    model: str
    store: dict[str, Any]

    def artifact(self, version: str) -> Artifact:
        return write_artifact(self.directory, self.model, version)

    def name(self, version: str) -> str:
        return f"{self.model}-{version}"

    def docs(
        self,
        version: str,
        *,
        error_ratio: float | None = None,
        steps: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        return template_docs(
            self.cluster.test_id,
            name=self.name(version),
            model=self.model,
            version=version,
            artifact=self.artifact(version),
            store=self.store,
            error_ratio=error_ratio,
            steps=steps,
        )

    def register(self, server: MLflowServer, *versions: str) -> None:
        """Registers ``versions`` in MLflow (numbered from 1, tagged with their digests)."""
        for version in versions:
            registered = server.create_version(self.model, digest=self.artifact(version).digest)
            assert registered["version"] == version


def kserve_docs(
    test_id: str, *, isvc: str, model: str, version: str, artifact: Artifact, current_uri: str
) -> list[dict[str, Any]]:
    """``examples/modelrelease-kserve``: the InferenceService ``isvc`` serving ``current_uri``,
    then the ModelRelease of ``model`` ``version`` (alias in the default ConfigMap store)."""
    docs = load_docs(KSERVE_EXAMPLE)
    service = _of_kind(docs, "InferenceService")
    service["metadata"]["name"] = isvc
    service["spec"]["predictor"]["model"]["storageUri"] = current_uri
    release = _of_kind(docs, "ModelRelease")
    release["metadata"]["name"] = f"{model}-{version}"
    spec = release["spec"]
    spec["model"] = model
    spec["version"] = version
    spec["artifact"] = {"uri": artifact.uri, "digest": artifact.digest}
    spec["change"]["ticket"] = f"INC-{test_id}-{version}"
    spec["serving"]["inferenceServiceRef"]["name"] = isvc
    for metric in spec["canary"]["analysis"]["metrics"]:
        query = metric["provider"]["prometheus"]["query"]
        # The lab names an InferenceService's demo services after it.
        metric["provider"]["prometheus"]["query"] = query.replace(
            'service="churn-predictor"', f'service="{isvc}"'
        )
    _test_sized(spec, FAST_STEPS)
    return [service, release]


def alias_record(model: str, version: str, artifact: Artifact) -> dict[str, Any]:
    """The alias store ConfigMap ``DEFAULT_CONFIGMAP`` with ``model``'s ``production`` alias
    at ``version``, as the pipeline that deployed it recorded it."""
    value = {"version": version, "uri": artifact.uri, "digest": artifact.digest}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": DEFAULT_CONFIGMAP},
        # Model names of these tests need no escaping in a ConfigMap key.
        "data": {f"{model}.production": json.dumps(value)},
    }


# --------------------------------------------------------------------------- reading


def release_of(cluster: Cluster, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = cluster.custom.get_namespaced_custom_object(
        GROUP, VERSION, cluster.namespace, "modelreleases", name
    )
    return obj


def status_of(cluster: Cluster, name: str) -> dict[str, Any]:
    return dict(release_of(cluster, name).get("status") or {})


def condition_of(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


def events_of(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    """Events about the object ``name``, in the order they happened."""
    proc = cluster.k(
        "get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json"
    )
    items: list[dict[str, Any]] = json.loads(proc.stdout)["items"]
    return sorted(
        items,
        key=lambda e: (e.get("eventTime") or e.get("firstTimestamp") or "", e["metadata"]["name"]),
    )


def in_order(seen: list[str], expected: list[str]) -> bool:
    """Whether ``expected`` is a subsequence of ``seen``."""
    it = iter(seen)
    return all(any(item == wanted for item in it) for wanted in expected)


def wait_stage(cluster: Cluster, name: str, stage: str, timeout: float) -> dict[str, Any]:
    """The release's status once its stage is ``stage``; fails at once on another terminal
    stage (or ``Production`` when a terminal one is awaited)."""

    def probe() -> dict[str, Any] | None:
        status = status_of(cluster, name)
        seen = status.get("stage")
        if seen == stage:
            return status
        unexpected = TERMINAL | ({"Production"} if stage in TERMINAL else set())
        if seen in unexpected:
            raise AssertionError(f"{name} reached {seen}, not {stage}: {status.get('message')!r}")
        return None

    try:
        found: dict[str, Any] = eventually(
            probe, timeout=timeout, what=f"{name} in stage {stage}", every=0.2
        )
    except AssertionError as exc:
        last = status_of(cluster, name)
        raise AssertionError(
            f"{exc}; last seen: stage {last.get('stage')!r}, {last.get('message')!r}"
        ) from None
    return found


def child_rollout(cluster: Cluster, model: str) -> dict[str, Any]:
    """The Rollout serving ``model`` behind ``production`` (one per model and alias)."""
    obj: dict[str, Any] = cluster.custom.get_namespaced_custom_object(
        GROUP, VERSION, cluster.namespace, "rollouts", f"{model}-production"
    )
    return obj


def inference_service(cluster: Cluster, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = cluster.custom.get_namespaced_custom_object(
        "serving.kserve.io", "v1beta1", cluster.namespace, "inferenceservices", name
    )
    return obj


def isvc_split(obj: dict[str, Any]) -> dict[str, int]:
    predictor = obj.get("status", {}).get("components", {}).get("predictor", {})
    return {
        str(t["revisionName"]): int(t.get("percent") or 0) for t in predictor.get("traffic", [])
    }


def mlflow_alias(server: MLflowServer, model: str) -> str | None:
    """The ``production`` alias's version as MLflow's REST API lists it on the model."""
    found = server.api("GET", "registered-models/get", {"name": model})["registered_model"]
    return {a["alias"]: a["version"] for a in found.get("aliases", [])}.get("production")


def configmap_alias(cluster: Cluster, configmap: str, model: str) -> str | None:
    """The ``production`` alias's version as the ConfigMap store records it (kubectl)."""
    proc = cluster.k("get", "configmap", configmap, "-o", "json", check=False)
    if proc.returncode != 0:
        return None
    raw = (json.loads(proc.stdout).get("data") or {}).get(f"{model}.production")
    return None if raw is None else str(json.loads(raw)["version"])


def share_query(service: str, revision: str, others: str, window: str = "2s") -> str:
    """PromQL: the share of ``service``'s requests that ``revision`` answered among the
    revisions ``revision|others``."""
    return (
        f'sum(rate(http_requests_total{{service="{service}",revision="{revision}"}}[{window}])) / '
        f'sum(rate(http_requests_total{{service="{service}",revision=~"{revision}|{others}"}}'
        f"[{window}]))"
    )


def revoke(cluster: Cluster, name: str, reason: str) -> str:
    """``kubectl rollwise revoke modelrelease/NAME --reason REASON``; while the plugin has no
    ``revoke`` command, the request annotation it would write (PROTOCOL: the raw request is
    honoured without the webhook). Returns which of the two was used."""
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "KUBECONFIG": str(cluster.kubeconfig),
    }
    probe = subprocess.run(
        [str(kubectl_binary()), "rollwise", "revoke", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    if probe.returncode == 0:
        proc = subprocess.run(
            [
                str(kubectl_binary()),
                "rollwise",
                "revoke",
                f"modelrelease/{name}",
                "--reason",
                reason,
                "-n",
                cluster.namespace,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=False,
        )
        assert proc.returncode == 0, f"kubectl rollwise revoke failed:\n{proc.stdout}{proc.stderr}"
        return "plugin"
    request = json.dumps({"id": uuid.uuid4().hex[:12], "reason": reason})
    cluster.k("annotate", f"modelrelease/{name}", f"rollwise.dev/revoke={request}")
    return "annotation"


# --------------------------------------------------------------------------- lab pieces


class TcpProxy:
    """A loopback TCP proxy to ``127.0.0.1:target`` that a test closes (new connections are
    refused, open ones cut) and opens again on the same port: a registry outage without
    stopping the registry."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self._stop = threading.Event()
        self._server: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open(self) -> TcpProxy:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(32)
        server.settimeout(0.1)
        self.port = int(server.getsockname()[1])
        self._stop = threading.Event()
        self._server = server
        self._spawn(self._accept, server, self._stop)
        return self

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self, server: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
                with self._lock:
                    self._sockets.discard(sock)

    def close(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()
            self._server = None
        with self._lock:
            sockets, self._sockets = set(self._sockets), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(timeout=2)
        self._threads = [t for t in self._threads if t.is_alive()]


@pytest.fixture
def mlflow_proxy(mlflow_server: MLflowServer) -> Iterator[TcpProxy]:
    proxy = TcpProxy(mlflow_server.port).open()
    yield proxy
    proxy.close()


#: The registry name releases of these tests write (``spec.alias.store.mlflow.registry``).
REGISTRY = "main"


def operator_policies(files: Path, namespace: str, registry: str | None = None) -> dict[str, str]:
    """The operator settings these tests run under: ``file://`` evidence below ``files``, no
    approval required, every model owned by the test's ``namespace``, and (with ``registry``, a
    URL) the MLflow registry ``main``."""
    env = {
        "ROLLWISE_EVIDENCE_POLICY": json.dumps({"filePathPrefixes": [str(files)]}),
        "ROLLWISE_RELEASE_POLICY": json.dumps(
            {"requiredRoles": [], "modelOwners": {"*": namespace}}
        ),
    }
    if registry is not None:
        env["ROLLWISE_MLFLOW_REGISTRIES"] = json.dumps({REGISTRY: {"url": registry}})
    return env


def release_operator(
    start_operator: StartOperator, files: Path, registry: str | None = None
) -> OperatorProcess:
    """The operator watching the test's namespace under :func:`operator_policies`; the
    chart's ModelRelease webhook fails closed, so releases are applied once it serves."""
    namespace = start_operator.cluster.namespace
    operator = start_operator(
        "--namespace", namespace, **operator_policies(files, namespace, registry)
    )
    start_operator.wait_webhook(operator)
    return operator


def set_lab_behaviour(cluster: Cluster, revision: str, error_ratio: float) -> None:
    """The lab's fault injection: ``revision``'s demo service answers ``error_ratio`` 500s
    (a default applied when it starts, or at once when it runs)."""
    answer = requests.post(
        f"{cluster.the_lab.hub_url}/control/{revision}",
        json={"errorRatio": error_ratio},
        timeout=5,
    )
    answer.raise_for_status()


def to_production(
    cluster: Cluster, docs: list[dict[str, Any]], name: str, timeout: float = 40
) -> dict[str, Any]:
    """Applies a release and waits for Production. Requests flow through the client Service:
    a model's first release has nothing to compare with, so its canary analysis measures the
    new version alone (CanaryWithoutBaseline), and needs traffic to measure."""
    lab = cluster.the_lab
    if lab.traffic is None:
        lab.start_traffic(f"service/{cluster.namespace}/{CLIENT_SERVICE}", rate=50)
    cluster.apply(docs)
    return wait_stage(cluster, name, "Production", timeout)


def assert_ticket_on_every_event(events: list[dict[str, Any]], ticket: str) -> None:
    assert events, "no events"
    for event in events:
        assert f"[change {ticket}]" in event["message"], event


# --------------------------------------------------------------------------- tests


def test_manifests_are_accepted_by_the_api_server(cluster: Cluster, tmp_path: Path) -> None:
    """Every manifest these tests apply passes the CRDs' schemas and CEL rules
    (``kubectl apply --dry-run=server``): the scenarios below fail on behaviour only."""
    model = f"fraud-{cluster.test_id}"
    art = write_artifact(tmp_path, model, "1")
    in_mlflow = TemplateModel(cluster, tmp_path, model, {"mlflow": {"registry": REGISTRY}})
    in_configmap = TemplateModel(cluster, tmp_path, model, {"configMap": {"name": ALIASES}})
    docs = [
        *in_mlflow.docs("1"),
        *in_configmap.docs("2", error_ratio=0.3, steps=SLOW_STEPS)[-1:],
        *kserve_docs(
            cluster.test_id,
            isvc=f"churn-{cluster.test_id}",
            model=f"churn-{cluster.test_id}",
            version="4",
            artifact=art,
            current_uri="s3://models/churn/3",
        ),
        alias_record(model, "1", art),
    ]
    proc = cluster.k("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(docs))
    assert proc.stdout.count("(server dry run)") == len(docs), proc.stdout
    # Nothing was created.
    listed = cluster.k("get", "modelreleases", "-o", "json")
    assert json.loads(listed.stdout)["items"] == []
    # The rules still bite: a release with both serving backends is refused.
    both = copy.deepcopy(docs[3])
    both["spec"]["serving"]["inferenceServiceRef"] = {"name": "churn"}
    refused = cluster.k(
        "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(both), check=False
    )
    assert refused.returncode != 0
    assert "serving needs exactly one of template or inferenceServiceRef" in refused.stderr


def test_template_release_goes_candidate_staging_approved_production_and_flips_mlflow(
    cluster: Cluster,
    start_operator: StartOperator,
    mlflow_server: MLflowServer,
    tmp_path: Path,
) -> None:
    model = f"fraud-{cluster.test_id}"
    fraud = TemplateModel(cluster, tmp_path, model, {"mlflow": {"registry": REGISTRY}})
    fraud.register(mlflow_server, "1", "2")
    release_operator(start_operator, tmp_path, mlflow_server.url)

    first = to_production(cluster, fraud.docs("1"), fraud.name("1"))
    assert mlflow_alias(mlflow_server, model) == "1"
    cluster.the_lab.start_traffic(f"service/{cluster.namespace}/{CLIENT_SERVICE}", rate=50)
    old = str(first["serving"]["revision"])

    name = fraud.name("2")
    cluster.apply(fraud.docs("2"))
    weights: list[int] = []
    staged_decisions: list[dict[str, Any]] = []

    def done() -> dict[str, Any] | None:
        status = status_of(cluster, name)
        weight = int((status.get("serving") or {}).get("weight", 0))
        if not weights or weights[-1] != weight:
            weights.append(weight)
        if status.get("stage") == "Staging" and status.get("decision"):
            staged_decisions.append(status["decision"])
        if status.get("stage") in TERMINAL:
            raise AssertionError(f"{name} reached {status['stage']}: {status.get('message')}")
        return status if status.get("stage") == "Production" else None

    status = eventually(done, timeout=60, what=f"{name} in Production", every=0.1)
    print(f"release weights seen: {weights}")
    cluster.k("wait", "--for=condition=Ready", f"modelrelease/{name}", "--timeout=20s")
    status = status_of(cluster, name)
    assert status["phase"] == "Healthy"
    assert [h["stage"] for h in status["history"]] == [
        "Candidate",
        "Staging",
        "Approved",
        "Production",
    ]
    assert [h.get("from") for h in status["history"]][1:] == ["Candidate", "Staging", "Approved"]
    gates = {g["name"]: g["status"] for g in status["gates"]}
    assert gates["artifact-digest"] == "Passed", status["gates"]

    # The registry: MLflow's own API shows the alias on the new version.
    assert mlflow_alias(mlflow_server, model) == "2"
    assert status["alias"]["currentVersion"] == "2"
    assert status["alias"]["previousVersion"] == "1"

    # Events tell the story, each naming the change ticket.
    ticket = f"CHG-{cluster.test_id}-2"
    events = events_of(cluster, name)
    reasons = [e["reason"] for e in events]
    assert in_order(
        reasons,
        ["ReleaseCreated", "Staged", "CanaryPassed", "ReleaseApproved", "PromotedToProduction"],
    ), reasons
    assert not [e for e in events if e["type"] == "Warning"], events
    assert_ticket_on_every_event(events, ticket)

    # The child Rollout serves the new revision, after a real canary.
    new = str(status["serving"]["revision"])
    assert new != old
    child = child_rollout(cluster, model)
    assert child["status"]["phase"] == "Healthy"
    assert child["status"]["stableRevision"] == new

    # The release's status.decision is its child Rollout's, seen while the canary ran and kept
    # once it ended; the child posted the DecisionChanged events, the release posts none.
    assert staged_decisions, "no status.decision on the release while its canary ran"
    assert {"action", "recommended", "mode", "confidence", "decidedAt"} <= set(
        staged_decisions[-1]
    ), staged_decisions[-1]
    assert status.get("decision") == child["status"].get("decision")
    assert "DecisionChanged" not in reasons, reasons
    child_events = [e["reason"] for e in events_of(cluster, f"{model}-production")]
    assert in_order(child_events, ["WeightSet", "StepAdvanced", "RolloutCompleted"]), child_events

    # The data plane agrees: Prometheus sees all the client's requests on the new revision.
    share = share_query(APP, new, old)
    eventually(
        lambda: (cluster.prometheus.query(share) or 0) > 0.99,
        timeout=20,
        what="Prometheus to see all traffic on the new revision",
        every=0.25,
    )


@pytest.mark.parametrize("store_kind", [pytest.param("mlflow"), pytest.param("configmap")])
def test_failing_canary_rolls_back_and_leaves_the_alias_on_the_previous_version(
    cluster: Cluster,
    start_operator: StartOperator,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    store_kind: str,
) -> None:
    model = f"fraud-{cluster.test_id}"
    mlflow: MLflowServer | None = None
    if store_kind == "mlflow":
        mlflow = request.getfixturevalue("mlflow_server")
        fraud = TemplateModel(cluster, tmp_path, model, {"mlflow": {"registry": REGISTRY}})
        fraud.register(mlflow, "1", "2")
    else:
        fraud = TemplateModel(cluster, tmp_path, model, {"configMap": {"name": ALIASES}})

    def alias() -> str | None:
        if mlflow is not None:
            return mlflow_alias(mlflow, model)
        return configmap_alias(cluster, ALIASES, model)

    release_operator(start_operator, tmp_path, mlflow.url if mlflow is not None else None)
    first = to_production(cluster, fraud.docs("1"), fraud.name("1"))
    assert alias() == "1"
    stable = str(first["serving"]["revision"])
    cluster.the_lab.start_traffic(f"service/{cluster.namespace}/{CLIENT_SERVICE}", rate=50)

    name = fraud.name("2")
    cluster.apply(fraud.docs("2", error_ratio=0.3))
    status = wait_stage(cluster, name, "RolledBack", timeout=60)
    assert status["phase"] == "Degraded"
    assert [h["stage"] for h in status["history"]] == ["Candidate", "Staging", "RolledBack"]
    assert condition_of(status, "Degraded").get("status") == "True"
    assert condition_of(status, "Ready").get("status") == "False"
    bad = str(status["serving"]["revision"])

    # The alias never moved: still the previous version, in the store itself.
    assert alias() == "1"
    assert status["alias"].get("currentVersion") == "1"
    assert not status["alias"].get("flipRequested")

    events = events_of(cluster, name)
    warnings = [e["reason"] for e in events if e["type"] == "Warning"]
    assert "ReleaseRolledBack" in warnings, warnings
    assert "PromotedToProduction" not in [e["reason"] for e in events]
    assert_ticket_on_every_event(events, f"CHG-{cluster.test_id}-2")

    # The child Rollout rolled the canary back: the previous version serves everything.
    child = eventually(
        lambda: (
            (c := child_rollout(cluster, model))["status"].get("stableRevision") == stable
            and c["status"].get("rolledBackRevision") == bad
            and c
        ),
        timeout=10,
        what="the child Rollout back on the previous revision",
    )
    assert child["status"].get("canaryWeight", 0) == 0
    # Nothing changes afterwards: the release stays RolledBack and the alias where it was.
    time.sleep(3)
    assert status_of(cluster, name)["stage"] == "RolledBack"
    assert alias() == "1"


def test_revoke_after_production_restores_the_alias_and_the_traffic(
    cluster: Cluster, start_operator: StartOperator, tmp_path: Path
) -> None:
    model = f"fraud-{cluster.test_id}"
    fraud = TemplateModel(cluster, tmp_path, model, {"configMap": {"name": ALIASES}})
    release_operator(start_operator, tmp_path)

    first = to_production(cluster, fraud.docs("1"), fraud.name("1"))
    old = str(first["serving"]["revision"])
    cluster.the_lab.start_traffic(f"service/{cluster.namespace}/{CLIENT_SERVICE}", rate=50)
    name = fraud.name("2")
    second = to_production(cluster, fraud.docs("2"), name, timeout=60)
    new = str(second["serving"]["revision"])
    assert configmap_alias(cluster, ALIASES, model) == "2"

    how = revoke(cluster, name, "x")
    print(f"revoked through the {how}")
    status = wait_stage(cluster, name, "Revoked", timeout=20)
    assert status["revoked"]["reason"] == "x"
    assert status["revoked"]["from"] == "Production"
    assert status["history"][-1]["stage"] == "Revoked"

    # The alias goes back to the previous version, read back by the operator.
    eventually(
        lambda: configmap_alias(cluster, ALIASES, model) == "1",
        timeout=20,
        what="the alias back on version 1",
    )
    eventually(
        lambda: (status_of(cluster, name).get("alias") or {}).get("restored"),
        timeout=20,
        what="the release to see the alias restored",
    )
    # Traffic back on the previous version's revision.
    eventually(
        lambda: child_rollout(cluster, model)["status"].get("stableRevision") == old,
        timeout=30,
        what="the child Rollout back on the previous revision",
    )
    share = share_query(APP, old, new)
    eventually(
        lambda: (cluster.prometheus.query(share) or 0) > 0.99,
        timeout=20,
        what="Prometheus to see all traffic back on the previous revision",
        every=0.25,
    )
    events = events_of(cluster, name)
    revoked = [e for e in events if e["reason"] == "ReleaseRevoked"]
    assert revoked, [e["reason"] for e in events]
    assert revoked[0]["type"] == "Warning"
    assert "x" in revoked[0]["message"]
    assert f"[change CHG-{cluster.test_id}-2]" in revoked[0]["message"]
    assert status_of(cluster, name)["phase"] == "Degraded"


def test_kserve_canary_steps_5_25_100_then_rolls_out(
    cluster: Cluster, start_operator: StartOperator, tmp_path: Path
) -> None:
    model = isvc = f"churn-{cluster.test_id}"
    current = write_artifact(tmp_path, model, "3")
    art = write_artifact(tmp_path, model, "4")
    docs = kserve_docs(
        cluster.test_id,
        isvc=isvc,
        model=model,
        version="4",
        artifact=art,
        current_uri=current.uri,
    )
    cluster.apply([alias_record(model, "3", current), docs[0]])
    first, second = f"{isvc}-predictor-00001", f"{isvc}-predictor-00002"
    eventually(
        lambda: isvc_split(inference_service(cluster, isvc)) == {first: 100},
        timeout=10,
        what="the InferenceService serving its first revision",
    )
    cluster.the_lab.start_traffic(f"inferenceservice/{cluster.namespace}/{isvc}", rate=50)
    release_operator(start_operator, tmp_path)
    name = f"{model}-4"
    cluster.apply(docs[1:])

    percents: list[int | None] = []
    splits: list[dict[str, int]] = []

    def done() -> dict[str, Any] | None:
        obj = inference_service(cluster, isvc)
        percent = obj["spec"]["predictor"].get("canaryTrafficPercent")
        if not percents or percents[-1] != percent:
            percents.append(percent)
        split = isvc_split(obj)
        if not splits or splits[-1] != split:
            splits.append(split)
        status = status_of(cluster, name)
        if status.get("stage") in TERMINAL:
            raise AssertionError(f"{name} reached {status['stage']}: {status.get('message')}")
        return status if status.get("stage") == "Production" else None

    status = eventually(done, timeout=60, what=f"{name} in Production", every=0.05)
    print(f"canaryTrafficPercent seen: {percents}; traffic splits seen: {splits}")
    assert [p for p in percents if p is not None] == [5, 25, 100], percents
    assert percents[-1] is None  # removed at the end: KServe rolled the revision out
    assert {second: 5, first: 95} in splits
    assert {second: 25, first: 75} in splits
    obj = inference_service(cluster, isvc)
    assert obj["spec"]["predictor"]["model"]["storageUri"] == art.uri
    predictor = obj["status"]["components"]["predictor"]
    assert predictor["latestRolledoutRevision"] == second
    assert predictor["previousRolledoutRevision"] == first
    assert isvc_split(obj) == {second: 100}

    assert [h["stage"] for h in status["history"]] == [
        "Candidate",
        "Staging",
        "Approved",
        "Production",
    ]
    assert configmap_alias(cluster, DEFAULT_CONFIGMAP, model) == "4"
    events = events_of(cluster, name)
    reasons = [e["reason"] for e in events]
    assert reasons.count("CanaryStep") == 3, reasons
    assert in_order(reasons, ["Staged", "CanaryStep", "CanaryPassed", "PromotedToProduction"])
    assert_ticket_on_every_event(events, f"INC-{cluster.test_id}-4")
    share = share_query(isvc, second, first)
    eventually(
        lambda: (cluster.prometheus.query(share) or 0) > 0.99,
        timeout=20,
        what="Prometheus to see all traffic on the new revision",
        every=0.25,
    )


def test_kserve_failing_canary_is_pinned_at_zero_and_rolled_back(
    cluster: Cluster, start_operator: StartOperator, tmp_path: Path
) -> None:
    model = isvc = f"churn-{cluster.test_id}"
    current = write_artifact(tmp_path, model, "3")
    art = write_artifact(tmp_path, model, "4")
    docs = kserve_docs(
        cluster.test_id,
        isvc=isvc,
        model=model,
        version="4",
        artifact=art,
        current_uri=current.uri,
    )
    first, second = f"{isvc}-predictor-00001", f"{isvc}-predictor-00002"
    # The new model answers 30% errors (its revision's demo service, when it starts).
    set_lab_behaviour(cluster, second, 0.3)
    cluster.apply([alias_record(model, "3", current), docs[0]])
    eventually(
        lambda: isvc_split(inference_service(cluster, isvc)) == {first: 100},
        timeout=10,
        what="the InferenceService serving its first revision",
    )
    cluster.the_lab.start_traffic(f"inferenceservice/{cluster.namespace}/{isvc}", rate=50)
    release_operator(start_operator, tmp_path)
    name = f"{model}-4"
    cluster.apply(docs[1:])

    percents: list[int | None] = []

    def rolled_back() -> dict[str, Any] | None:
        obj = inference_service(cluster, isvc)
        percent = obj["spec"]["predictor"].get("canaryTrafficPercent")
        if not percents or percents[-1] != percent:
            percents.append(percent)
        status = status_of(cluster, name)
        if status.get("stage") == "Production":
            raise AssertionError(f"{name} reached Production with a failing canary")
        return status if status.get("stage") == "RolledBack" else None

    status = eventually(rolled_back, timeout=60, what=f"{name} RolledBack", every=0.05)
    print(f"canaryTrafficPercent seen: {percents}")
    obj = eventually(
        lambda: (
            (o := inference_service(cluster, isvc))["spec"]["predictor"].get("canaryTrafficPercent")
            == 0
            and isvc_split(o).get(first) == 100
            and o
        ),
        timeout=10,
        what="canaryTrafficPercent 0 and all traffic on the rolled-out revision",
    )
    assert 5 in percents
    assert 100 not in percents
    assert obj["status"]["components"]["predictor"]["latestRolledoutRevision"] == first
    assert isvc_split(obj).get(second, 0) == 0
    assert status["phase"] == "Degraded"
    assert [h["stage"] for h in status["history"]] == ["Candidate", "Staging", "RolledBack"]
    assert configmap_alias(cluster, DEFAULT_CONFIGMAP, model) == "3"
    events = events_of(cluster, name)
    print("events:", *[f"{e['reason']}: {e['message']}" for e in events], sep="\n  ")
    warnings = [e["reason"] for e in events if e["type"] == "Warning"]
    assert "ReleaseRolledBack" in warnings, warnings


def test_mlflow_down_at_flip_time_holds_approved_until_it_returns(
    cluster: Cluster,
    start_operator: StartOperator,
    mlflow_server: MLflowServer,
    mlflow_proxy: TcpProxy,
    tmp_path: Path,
) -> None:
    model = f"fraud-{cluster.test_id}"
    # The operator reaches MLflow through a proxy the test can take away.
    fraud = TemplateModel(cluster, tmp_path, model, {"mlflow": {"registry": REGISTRY}})
    fraud.register(mlflow_server, "1", "2")
    release_operator(start_operator, tmp_path, mlflow_proxy.url)

    to_production(cluster, fraud.docs("1"), fraud.name("1"))
    assert mlflow_alias(mlflow_server, model) == "1"
    cluster.the_lab.start_traffic(f"service/{cluster.namespace}/{CLIENT_SERVICE}", rate=50)

    name = fraud.name("2")
    cluster.apply(fraud.docs("2"))
    wait_stage(cluster, name, "Staging", timeout=20)
    mlflow_proxy.close()  # MLflow unreachable from here on, until reopened

    status = wait_stage(cluster, name, "Approved", timeout=60)
    eventually(
        lambda: "AliasFlipPending" in [e["reason"] for e in events_of(cluster, name)],
        timeout=30,
        what="an AliasFlipPending warning",
    )
    held_until = time.monotonic() + patient(3)
    while time.monotonic() < held_until:
        status = status_of(cluster, name)
        assert status["stage"] == "Approved", status.get("message")
        assert status.get("phase") != "Healthy"
        assert condition_of(status, "Ready").get("status") != "True"
        time.sleep(0.25)
    assert mlflow_alias(mlflow_server, model) == "1"  # the registry itself never moved
    pending = next(e for e in events_of(cluster, name) if e["reason"] == "AliasFlipPending")
    assert pending["type"] == "Warning"
    assert "Production" not in [h["stage"] for h in status["history"]]

    mlflow_proxy.open()
    status = wait_stage(cluster, name, "Production", timeout=60)
    assert mlflow_alias(mlflow_server, model) == "2"
    cluster.k("wait", "--for=condition=Ready", f"modelrelease/{name}", "--timeout=20s")
    assert [h["stage"] for h in status["history"]] == [
        "Candidate",
        "Staging",
        "Approved",
        "Production",
    ]


def test_a_second_release_of_the_same_model_waits_queued_until_the_first_is_in_production(
    cluster: Cluster, start_operator: StartOperator, tmp_path: Path
) -> None:
    model = f"fraud-{cluster.test_id}"
    fraud = TemplateModel(cluster, tmp_path, model, {"configMap": {"name": ALIASES}})
    release_operator(start_operator, tmp_path)

    to_production(cluster, fraud.docs("1"), fraud.name("1"))
    cluster.the_lab.start_traffic(f"service/{cluster.namespace}/{CLIENT_SERVICE}", rate=50)
    first, second = fraud.name("2"), fraud.name("3")
    # The first release's canary pauses 8 s at 5%: long enough to queue a second one behind it.
    cluster.apply(fraud.docs("2", steps=SLOW_STEPS))
    wait_stage(cluster, first, "Staging", timeout=20)
    cluster.apply(fraud.docs("3"))

    queued = eventually(
        lambda: (s := status_of(cluster, second)).get("phase") == "Queued" and s,
        timeout=15,
        what=f"{second} Queued",
    )
    assert queued["stage"] == "Candidate"
    assert first in queued["message"]
    queued_condition = condition_of(queued, "Queued")
    assert queued_condition["status"] == "True"
    assert queued_condition["message"] == f"Queued behind {first}"
    queue_events = [e for e in events_of(cluster, second) if e["reason"] == "Queued"]
    assert queue_events
    assert first in queue_events[0]["message"]

    # It stays Candidate for as long as the first one is not in Production.
    stages: set[str] = set()

    def first_done() -> bool:
        ahead = status_of(cluster, first).get("stage")
        behind = status_of(cluster, second).get("stage")
        if ahead != "Production":
            stages.add(str(behind))
        if ahead in TERMINAL:
            raise AssertionError(f"{first} reached {ahead}")
        return ahead == "Production"

    eventually(first_done, timeout=60, what=f"{first} in Production", every=0.1)
    assert stages == {"Candidate"}, stages

    status = wait_stage(cluster, second, "Production", timeout=60)
    assert configmap_alias(cluster, ALIASES, model) == "3"
    assert status["alias"]["previousVersion"] == "2"
    assert condition_of(status, "Queued").get("status") == "False"
    reasons = [e["reason"] for e in events_of(cluster, second)]
    assert in_order(reasons, ["Queued", "Unqueued", "Staged", "PromotedToProduction"]), reasons
