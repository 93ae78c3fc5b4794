"""The lab cluster: a real control plane does what end-to-end tests rely on.

One cluster for the module (start-up costs seconds); each test works in its own namespace.
The fault tests (kill -9, compaction) run against the same cluster and leave it healthy.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from hack.cluster import build
from hack.cluster.cluster import (
    ADMIN,
    NEVER_READY_ANNOTATION,
    Cluster,
    iter_audit_events,
)
from hack.cluster.pki import WEBHOOK_CLIENT_CN

pytestmark = pytest.mark.cluster

REPO_ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent to reap it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def eventually(check: Callable[[], T | None], *, timeout: float = 30.0, what: str = "") -> T:
    """Polls ``check`` until it returns something truthy; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what or check} (last: {last!r})")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.api("POST", "/api/v1/namespaces", body={"metadata": {"name": name}})
    yield name
    cluster.api("DELETE", f"/api/v1/namespaces/{name}", missing_ok=True)


def get_json(cluster: Cluster, *args: str, user: str = ADMIN) -> dict[str, Any]:
    proc = cluster.kubectl("get", *args, "-o", "json", user=user, check=True)
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def condition(obj: dict[str, Any], kind: str) -> str | None:
    for cond in obj.get("status", {}).get("conditions", []):
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return None


def deployment(name: str, replicas: int, annotations: dict[str, str] | None = None) -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "progressDeadlineSeconds": 5,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}, "annotations": annotations or {}},
                    "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]},
                },
            },
        }
    )


# --------------------------------------------------------------------------- the basics


def test_kubectl_and_server_report_the_pinned_release(cluster: Cluster) -> None:
    versions = json.loads(cluster.kubectl("version", "-o", "json", check=True).stdout)
    pinned = build.pinned_versions().kubernetes
    major, minor = pinned.removeprefix("v").split(".")[:2]
    for side in ("serverVersion", "clientVersion"):
        assert versions[side]["gitVersion"] == pinned
        assert (versions[side]["major"], versions[side]["minor"]) == (major, minor)
        assert versions[side]["gitTreeState"] == "clean"
    nodes = get_json(cluster, "nodes")["items"]
    assert {n["status"]["nodeInfo"]["kubeletVersion"] for n in nodes} == {pinned}


def test_rbac_is_enforced_for_identities_and_their_groups(cluster: Cluster, namespace: str) -> None:
    denied = cluster.kubectl("get", "configmaps", "-n", namespace, user="alice")
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr
    assert 'User "alice"' in denied.stderr

    cluster.kubectl(
        "create", "rolebinding", "alice-views", "--clusterrole=view", "--user=alice",
        "-n", namespace, check=True,
    )  # fmt: skip
    eventually(
        lambda: cluster.kubectl("get", "configmaps", "-n", namespace, user="alice").returncode == 0,
        what="alice may list configmaps once bound to view",
    )
    # Groups from the token file count: pm (carol) is bound, cto (dave) is not.
    cluster.kubectl(
        "create", "rolebinding", "pm-views", "--clusterrole=view", "--group=pm",
        "-n", namespace, check=True,
    )  # fmt: skip
    eventually(
        lambda: cluster.kubectl("get", "pods", "-n", namespace, user="carol").returncode == 0,
        what="carol, in group pm, may list pods",
    )
    assert cluster.kubectl("get", "pods", "-n", namespace, user="dave").returncode != 0
    allowed = cluster.kubectl(
        "auth", "can-i", "create", "configmaps", "-n", namespace, user="alice"
    )
    assert allowed.stdout.strip() == "no"


def test_server_side_apply_keeps_managed_fields(cluster: Cluster, namespace: str) -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "applied", "namespace": namespace},
        "data": {"owner": "first"},
    }
    cluster.kubectl(
        "apply", "--server-side", "--field-manager=first", "-f", "-",
        input=json.dumps(manifest), check=True,
    )  # fmt: skip
    managed = get_json(cluster, "configmap", "applied", "-n", namespace, "--show-managed-fields")
    entries = managed["metadata"]["managedFields"]
    assert [(e["manager"], e["operation"]) for e in entries] == [("first", "Apply")]
    assert "f:owner" in entries[0]["fieldsV1"]["f:data"]

    manifest["data"] = {"owner": "second"}
    conflict = cluster.kubectl(
        "apply", "--server-side", "--field-manager=second", "-f", "-", input=json.dumps(manifest)
    )
    assert conflict.returncode != 0
    assert "conflict" in conflict.stderr.lower()
    cluster.kubectl(
        "apply", "--server-side", "--field-manager=second", "--force-conflicts", "-f", "-",
        input=json.dumps(manifest), check=True,
    )  # fmt: skip
    managed = get_json(cluster, "configmap", "applied", "-n", namespace, "--show-managed-fields")
    assert {e["manager"] for e in managed["metadata"]["managedFields"]} == {"second"}


# --------------------------------------------------------------------------- workloads


def test_deployment_pods_become_running_and_ready(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=deployment("web", 3), check=True)

    def ready() -> dict[str, Any] | None:
        status = get_json(cluster, "deployment", "web", "-n", namespace).get("status", {})
        return status if status.get("readyReplicas") == 3 else None

    status = eventually(ready, what="deployment web has 3 ready replicas")
    assert status["availableReplicas"] == 3
    assert status["updatedReplicas"] == 3
    replica_sets = get_json(cluster, "replicasets", "-n", namespace, "-l", "app=web")["items"]
    assert len(replica_sets) == 1
    assert replica_sets[0]["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    pods = get_json(cluster, "pods", "-n", namespace, "-l", "app=web")["items"]
    assert len(pods) == 3
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        assert condition(pod, "Ready") == "True"
        assert pod["spec"]["nodeName"] in cluster.node_names
        assert pod["status"]["podIP"]
        assert pod["metadata"]["ownerReferences"][0]["name"] == replica_sets[0]["metadata"]["name"]

    # Scaling down deletes pods, and deletion completes (kwok removes them).
    cluster.kubectl("scale", "deployment/web", "--replicas=1", "-n", namespace, check=True)
    eventually(
        lambda: len(get_json(cluster, "pods", "-n", namespace, "-l", "app=web")["items"]) == 1,
        what="two pods deleted",
    )
    cluster.kubectl("delete", "pod", "--all", "-n", namespace, "--wait=true", check=True)


def test_never_ready_pods_run_but_stay_unready(cluster: Cluster, namespace: str) -> None:
    manifest = deployment("stuck", 2, annotations={NEVER_READY_ANNOTATION: "true"})
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest, check=True)

    def progress_deadline_exceeded() -> dict[str, Any] | None:
        found = get_json(cluster, "deployment", "stuck", "-n", namespace)
        for cond in found.get("status", {}).get("conditions", []):
            if cond["type"] == "Progressing" and cond["reason"] == "ProgressDeadlineExceeded":
                return found
        return None

    found = eventually(progress_deadline_exceeded, what="the deployment misses its deadline")
    assert found["status"].get("readyReplicas", 0) == 0
    pods = get_json(cluster, "pods", "-n", namespace, "-l", "app=stuck")["items"]
    assert len(pods) == 2
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        assert condition(pod, "Ready") == "False"
        assert all(c["ready"] is False for c in pod["status"]["containerStatuses"])

    # Without the annotation a pod passes its readiness at last, keeping its address.
    name, address = pods[0]["metadata"]["name"], pods[0]["status"]["podIP"]
    cluster.kubectl(
        "annotate", "pod", name, f"{NEVER_READY_ANNOTATION}-", "-n", namespace, check=True
    )

    def ready() -> dict[str, Any] | None:
        pod = get_json(cluster, "pod", name, "-n", namespace)
        return pod if condition(pod, "Ready") == "True" else None

    assert eventually(ready, what="the pod becomes Ready")["status"]["podIP"] == address


# --------------------------------------------------------------------------- audit, identity


def test_audit_log_records_user_verb_resource_and_subresource(
    cluster: Cluster, namespace: str
) -> None:
    cluster.kubectl("get", "secrets", "-n", namespace, user="bob")  # forbidden, still audited
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=deployment("audited", 1), check=True)
    cluster.kubectl("scale", "deployment/audited", "--replicas=2", "-n", namespace, check=True)

    def seen() -> list[tuple[str, str, str, str, int]] | None:
        events = [
            (
                e["user"]["username"],
                e["verb"],
                e.get("objectRef", {}).get("resource", ""),
                e.get("objectRef", {}).get("subresource", ""),
                e.get("responseStatus", {}).get("code", 0),
            )
            for e in iter_audit_events(cluster.audit_log)
            if e.get("objectRef", {}).get("namespace") == namespace
        ]
        wanted = {
            ("bob", "list", "secrets", "", 403),
            (ADMIN, "patch", "deployments", "scale", 200),
        }
        return events if wanted <= set(events) else None

    events = eventually(seen, what="bob's refusal and the admin's scale in the audit log")
    assert any(e[0] == ADMIN and e[1] == "create" and e[2] == "deployments" for e in events)

    # Controllers act as their own ServiceAccounts (the ReplicaSet's pods come when the
    # controller gets to them: waited for, not assumed).
    def pods_by_the_controller() -> bool:
        return any(
            e[0] == "system:serviceaccount:kube-system:replicaset-controller" and e[2] == "pods"
            for e in eventually(seen)
        )

    eventually(pods_by_the_controller, what="the replicaset-controller creating the pods")


def test_service_account_tokens_authenticate(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    eventually(
        lambda: cluster.api(
            "GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/default", missing_ok=True
        ),
        what="the namespace's default ServiceAccount",
    )
    kubeconfig = cluster.write_service_account_kubeconfig(
        namespace, "default", tmp_path / "sa.kubeconfig"
    )
    proc = subprocess.run(
        [
            str(cluster.kubectl_path),
            "--kubeconfig",
            str(kubeconfig),
            "auth",
            "whoami",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    who = json.loads(proc.stdout)["status"]["userInfo"]
    assert who["username"] == f"system:serviceaccount:{namespace}:default"
    token = cluster.kubectl("create", "token", "default", "-n", namespace, check=True).stdout
    assert token.count(".") == 2  # a JWT


def test_webhooks_receive_the_api_servers_client_certificate(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    pair = cluster.serving_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pair.cert, pair.key)
    context.verify_mode = ssl.CERT_REQUIRED  # no certificate from the webhook CA, no handshake
    context.load_verify_locations(cluster.webhook_client_ca)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            peer = self.connection.getpeercert()
            subject = dict(item for rdn in peer["subject"] for item in rdn)
            body = json.dumps(
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "response": {
                        "uid": review["request"]["uid"],
                        "allowed": False,
                        "status": {"message": f"client certificate CN={subject['commonName']}"},
                    },
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    name = f"{namespace}.cluster.lab.rollwise.dev"
    try:
        cluster.api(
            "POST",
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
            body={
                "metadata": {"name": name},
                "webhooks": [
                    {
                        "name": name,
                        "clientConfig": {
                            "url": f"https://127.0.0.1:{server.server_address[1]}/check",
                            "caBundle": base64.b64encode(cluster.ca_cert.read_bytes()).decode(),
                        },
                        "rules": [
                            {
                                "operations": ["CREATE"],
                                "apiGroups": [""],
                                "apiVersions": ["v1"],
                                "resources": ["configmaps"],
                            }
                        ],
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": namespace}
                        },
                        "sideEffects": "None",
                        "admissionReviewVersions": ["v1"],
                        "failurePolicy": "Fail",
                    }
                ],
            },
        )

        def refused() -> str | None:
            proc = cluster.kubectl("create", "configmap", "probe", "-n", namespace)
            return proc.stderr if "denied the request" in proc.stderr else None

        message = eventually(refused, what="the webhook is called")
        assert f"client certificate CN={WEBHOOK_CLIENT_CN}" in message
    finally:
        cluster.api(
            "DELETE",
            f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{name}",
            missing_ok=True,
        )
        server.shutdown()
        server.server_close()


def test_throttling_a_user_gives_real_429s(cluster: Cluster) -> None:
    url = f"{cluster.server}/api/v1/configmaps"

    def burst(user: str) -> list[requests.Response]:
        """Twenty requests at once by ``user``."""
        with requests.Session() as session:
            session.trust_env = False
            session.verify = str(cluster.ca_cert)
            session.headers["Authorization"] = f"Bearer {cluster.token_of(user)}"
            session.mount("https://", requests.adapters.HTTPAdapter(pool_maxsize=20))
            with ThreadPoolExecutor(20) as pool:
                return list(pool.map(lambda _: session.get(url, timeout=10), range(40)))

    def throttled(user: str) -> list[requests.Response]:
        return [r for r in burst(user) if r.status_code == 429]

    assert not throttled("dave")
    cluster.throttle(user="dave")
    try:
        refused = eventually(lambda: throttled("dave"), what="some of dave's requests get 429")
        assert refused[0].headers.get("Retry-After")
        assert not throttled("bob")  # others are not throttled
    finally:
        cluster.unthrottle(user="dave")
    assert (
        cluster.api(
            "GET",
            "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas/lab-throttle-dave",
            missing_ok=True,
        )
        == {}
    )


# --------------------------------------------------------------------------- faults


def test_apiserver_kill_and_restart_keeps_the_data(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl(
        "create", "configmap", "kept", "--from-literal=a=1", "-n", namespace, check=True
    )
    cluster.kill_apiserver()
    assert not cluster.process_status()[1].running
    assert cluster.kubectl("get", "configmap", "kept", "-n", namespace, timeout=20).returncode != 0
    cluster.start_apiserver()
    assert get_json(cluster, "configmap", "kept", "-n", namespace)["data"] == {"a": "1"}


def test_etcd_kill_and_restart_keeps_the_data(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl(
        "create", "configmap", "kept", "--from-literal=b=2", "-n", namespace, check=True
    )
    cluster.kill_etcd()
    assert not cluster.process_status()[0].running
    cluster.start_etcd()
    assert get_json(cluster, "configmap", "kept", "-n", namespace)["data"] == {"b": "2"}
    # The rest of the control plane carries on: a new deployment still gets ready pods.
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=deployment("after", 1), check=True)
    eventually(
        lambda: (
            get_json(cluster, "deployment", "after", "-n", namespace)
            .get("status", {})
            .get("readyReplicas")
            == 1
        ),
        what="a deployment made after etcd's restart becomes ready",
    )


def first_watch_event(cluster: Cluster, path: str, resource_version: str) -> dict[str, Any]:
    with (
        cluster.admin_session() as session,
        session.get(
            cluster.server + path,
            params={"watch": "true", "resourceVersion": resource_version, "timeoutSeconds": "5"},
            stream=True,
            timeout=15,
        ) as response,
    ):
        if response.status_code != 200:
            return {"type": "HTTP", "object": response.json()}
        for line in response.iter_lines():
            if line:
                event: dict[str, Any] = json.loads(line)
                return event
    return {}


def test_compaction_makes_watches_from_old_versions_gone(cluster: Cluster, namespace: str) -> None:
    def event(name: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name},
            "involvedObject": {"kind": "ConfigMap", "namespace": namespace, "name": "probe"},
            "reason": "LabProbe",
            "message": name,
            "type": "Normal",
        }

    events = f"/api/v1/namespaces/{namespace}/events"
    old = cluster.api("POST", events, body=event("first"))["metadata"]["resourceVersion"]
    cluster.api("POST", events, body=event("second"))
    before = first_watch_event(cluster, events, old)
    assert before["type"] == "ADDED"
    assert before["object"]["metadata"]["name"] == "second"

    cluster.compact_etcd()
    # Events are not in kube-apiserver's watch cache: the watch reaches etcd at once.
    gone = first_watch_event(cluster, events, old)
    assert gone["type"] in ("ERROR", "HTTP")
    assert gone["object"]["code"] == 410

    # Cached resources answer 410 once their cache starts past the compaction (a restart).
    configmaps = f"/api/v1/namespaces/{namespace}/configmaps"
    first = cluster.api("POST", configmaps, body={"metadata": {"name": "first"}})
    cluster.api("POST", configmaps, body={"metadata": {"name": "second"}})
    cluster.compact_etcd()
    cluster.restart_apiserver()
    gone = first_watch_event(cluster, configmaps, first["metadata"]["resourceVersion"])
    assert gone["type"] in ("ERROR", "HTTP")
    assert gone["object"]["code"] == 410


# --------------------------------------------------------------------------- from a shell


def test_command_line_runs_a_second_cluster_and_down_leaves_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    directory = tmp_path / "second"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hack.cluster", *args, "--dir", str(directory)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    up = run("up", "--nodes", "1", "--no-default-users", "--user", "erin=reviewers")
    assert up.returncode == 0, up.stdout + up.stderr
    second = Cluster.attach(directory)
    try:
        assert second.server != cluster.server
        assert run("status").returncode == 0
        who = second.kubectl("auth", "whoami", "-o", "json", user="erin", check=True)
        assert json.loads(who.stdout)["status"]["userInfo"]["groups"] == [
            "reviewers",
            "system:authenticated",
        ]
        pids = [record.pid for record in second.state.processes.values()]
        data_dir = Path(second.state.data_dir)
        assert data_dir.is_dir()
    finally:
        down = run("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not any(alive(pid) for pid in pids)
    assert not data_dir.exists()
    assert not (directory / "state.json").exists()
    assert run("status").returncode == 1
    # The module's cluster is untouched.
    assert all(s.running for s in cluster.process_status())
