"""``kubectl rollwise`` on ModelReleases as users run it: the real kubectl finding the
``kubectl-rollwise`` console script on PATH, against the lab cluster (the Rollwise CRDs
installed) with ``examples/modelrelease-template/`` applied. No operator runs: the test writes a
realistic status through the ``/status`` subresource (built with the core's own status
models) and reads back what the plugin wrote with ``kubectl get -o json``.

Without an admission webhook (most tests here), ``revoke`` is pending for the operator and
``approve``/``waive`` warn that nothing was recorded. With a webhook (an HTTPS server that
kube-apiserver calls with AdmissionReviews, answering with the operator's own admission
decision) and the people the cluster authenticates by token, the other paths: the record read
back with the user the API server authenticated, and a refusal printed as the server's one
sentence.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kopf
import pytest
from aiohttp import web

from hack.cluster import Cluster, wait_established
from hack.lab.testing.cluster_fixtures import (
    Kubectl,
    delete_namespace,
    grant_namespace,
    kubectl_binary,
    make_kubectl,
    manifest,
    new_namespace,
)
from rollwise.core.conditions import ConditionStatus
from rollwise.core.modelrelease.status import (
    AliasStatus,
    GateRecord,
    GateStatus,
    HistoryEntry,
    ModelReleaseStatus,
    ReleaseCondition,
    ReleaseConditionType,
    ReleasePhase,
    ServingStatus,
    Stage,
)
from rollwise.core.status_model import format_time
from rollwise.runtime.admission import AdmissionConfig, decide

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
EXAMPLE = ROOT / "examples" / "modelrelease-template" / "modelrelease.yaml"
NAME = "fraud-detector-7"

Plugin = Callable[..., subprocess.CompletedProcess[str]]


def plugin_env(kubeconfig: Path) -> dict[str, str]:
    """The environment of a user who installed the package: its scripts first on PATH."""
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "KUBECONFIG": str(kubeconfig),
    }


def make_plugin(kubeconfig: Path) -> Plugin:
    def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(kubectl_binary()), "rollwise", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=plugin_env(kubeconfig),
            check=False,
        )

    return run


def one_line(text: str) -> str:
    assert text.endswith("\n")
    assert text.count("\n") == 1, text
    return text.rstrip("\n")


@pytest.fixture
def plugin(kubeconfig: Path) -> Plugin:
    return make_plugin(kubeconfig)


@pytest.fixture
def release(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    """The template-served example ModelRelease applied in the test's namespace."""
    kubectl("apply", "-f", str(EXAMPLE), namespace=namespace, check=True)
    return get_release(kubectl, namespace)


def get_release(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    out = kubectl("get", "modelrelease", NAME, "-o", "json", namespace=namespace, check=True)
    obj: dict[str, Any] = json.loads(out.stdout)
    return obj


def set_status(kubectl: Kubectl, namespace: str, status: ModelReleaseStatus) -> None:
    kubectl(
        "patch",
        "modelrelease",
        NAME,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status.to_wire()}),
        namespace=namespace,
        check=True,
    )


def staging_status(now: datetime) -> ModelReleaseStatus:
    """What the operator writes while the example's canary is at step 3/5 (setWeight 50%)
    with the sbom gate failing and waived."""
    message = "canary step 3/5 (setWeight 50%): analysis running"
    since = now - timedelta(minutes=15)

    def gate(name: str, status: GateStatus, text: str, **extra: Any) -> GateRecord:
        return GateRecord(
            name=name,
            status=status,
            reason=status.value,
            message=text,
            checked_at=now - timedelta(seconds=30),
            last_transition_time=since,
            **extra,
        )

    return ModelReleaseStatus(
        stage=Stage.STAGING,
        phase=ReleasePhase.PROGRESSING,
        message=message,
        observed_generation=1,
        gates=[
            gate("artifact-digest", GateStatus.PASSED, "sha256 matches spec"),
            gate(
                "sbom",
                GateStatus.WAIVED,
                "waived by carol: CVE triaged",
                waiver_expires_at=now + timedelta(hours=23, minutes=30),
            ),
            gate("approvals", GateStatus.PENDING, "waiting for security, product"),
        ],
        history=[
            HistoryEntry(
                stage=Stage.CANDIDATE,
                reason="ReleaseCreated",
                time=now - timedelta(hours=1),
                message="model fraud-detector version 7 is a Candidate",
            ),
            HistoryEntry.model_validate(
                {
                    "from": "Candidate",
                    "stage": "Staging",
                    "time": format_time(since),
                    "reason": "Staged",
                    "message": "version 7 moved to Staging: gates passed",
                }
            ),
        ],
        alias=AliasStatus(name="production", current_version="6"),
        serving=ServingStatus(
            backend="template",
            name="fraud-detector-production",
            revision="7c1d9e0a2b",
            step_index=2,
            weight=50,
        ),
        conditions=[
            ReleaseCondition(
                type=ReleaseConditionType.READY,
                status=ConditionStatus.FALSE,
                reason="Staging",
                message=message,
                last_transition_time=since,
            )
        ],
    )


def release_event(namespace: str, obj: dict[str, Any], now: datetime) -> dict[str, Any]:
    at = (now - timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{NAME}.staged", "namespace": namespace},
        "involvedObject": {
            "apiVersion": "rollwise.dev/v1alpha1",
            "kind": "ModelRelease",
            "name": NAME,
            "namespace": namespace,
            "uid": obj["metadata"]["uid"],
        },
        "reason": "Staged",
        "message": "version 7 moved to Staging: gates passed [CHG-1042]",
        "type": "Normal",
        "count": 1,
        "firstTimestamp": at,
        "lastTimestamp": at,
        "source": {"component": "rollwise-operator"},
    }


def added_annotations(before: dict[str, Any], after: dict[str, Any]) -> dict[str, str]:
    old = before["metadata"].get("annotations", {})
    return {k: v for k, v in after["metadata"].get("annotations", {}).items() if old.get(k) != v}


def request_id(stdout_line: str, prefix: str) -> str:
    assert stdout_line.startswith(prefix), stdout_line
    assert stdout_line.endswith(")")
    return stdout_line[len(prefix) : -1]


# --------------------------------------------------------------------------------------------
# get and list


def test_get_and_list_show_a_release(
    release: dict[str, Any], kubectl: Kubectl, namespace: str, plugin: Plugin, kubeconfig: Path
) -> None:
    now = datetime.now(UTC)
    set_status(kubectl, namespace, staging_status(now))
    kubectl("apply", "-f", "-", input=manifest(release_event(namespace, release, now)), check=True)
    result = plugin("get", "modelrelease", NAME, "-n", namespace)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[:11] == [
        f"Name:        {NAME}",
        f"Namespace:   {namespace}",
        "Stage:       Staging",
        "Phase:       Progressing",
        "Message:     canary step 3/5 (setWeight 50%): analysis running",
        "Model:       fraud-detector, version 7",
        "Artifact:    s3://models/fraud-detector/7 (sha256:9e99d0f91dbc)",
        "Change:      normal, ticket CHG-1042",
        "Serving:     child Rollout fraud-detector-production "
        "(kubectl rollwise get rollout fraud-detector-production)",
        "Canary:      step 3/5 (setWeight 50%), 50% of traffic to version 7",
        "Alias:       production (ConfigMap model-aliases): points at version 6 "
        "(not flipped to 7 yet)",
    ]
    [sbom] = [line.split() for line in lines if line.startswith("  sbom ")]
    # Checked 30s before the status was written: a little more by now.
    assert sbom[:2] == ["sbom", "Waived"]
    assert sbom[2] in {f"{n}s" for n in range(30, 90)}
    assert sbom[3:] == ["expires", "in", "23h", "waived", "by", "carol:", "CVE", "triaged"]
    assert [line.split() for line in lines if line.startswith("  freeze-window ")] == [
        ["freeze-window", "Pending", "-", "not", "evaluated", "yet"]
    ]
    assert "Approvals (required: security, product; waiting for security, product):  <none>" in (
        lines
    )
    assert [line.split()[:4] for line in lines if "Candidate → Staging" in line] == [
        ["15m", "Candidate", "→", "Staging"]
    ]
    staged = [line.split(None, 3) for line in lines if "[CHG-1042]" in line]
    assert staged == [
        ["15m", "Normal", "Staged", "version 7 moved to Staging: gates passed [CHG-1042]"]
    ]

    # The short names work as kubectl's do; a non-UTF-8 terminal gets ASCII arrows.
    short = subprocess.run(
        [str(kubectl_binary()), "rollwise", "get", "mr", NAME, "-n", namespace],
        capture_output=True,
        env={**plugin_env(kubeconfig), "PYTHONIOENCODING": "ascii"},
        check=False,
    )
    assert short.returncode == 0, short.stderr
    assert b"Candidate -> Staging" in short.stdout

    listing = plugin("list", "-n", namespace)
    assert listing.returncode == 0, listing.stderr
    rows = [line.split() for line in listing.stdout.splitlines()]
    assert rows[0] == ["No", "rollouts", "found", "in", "namespace", f'"{namespace}".']
    assert rows[2:] == [
        ["NAME", "STAGE", "PHASE", "MODEL", "VERSION", "ALIAS", "AGE"],
        [NAME, "Staging", "Progressing", "fraud-detector", "7", "production", rows[3][-1]],
    ]


def test_get_release_without_status(
    release: dict[str, Any], namespace: str, plugin: Plugin
) -> None:
    result = plugin("get", "modelreleases", NAME, "-n", namespace)
    assert result.returncode == 0, result.stderr
    assert "Stage:       <no status yet> (is the Rollwise operator running?)" in result.stdout
    assert "Canary:      not started (gates first)" in result.stdout
    assert result.stdout.endswith("Events:  <none>\n")


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["get", "modelrelease", "nope"], id="get"),
        pytest.param(["revoke", "nope", "--reason", "x"], id="revoke"),
        pytest.param(["approve", "modelrelease/nope", "--role", "security"], id="approve"),
        pytest.param(
            ["waive", "nope", "--gate", "sbom", "--reason", "x", "--for", "1h"], id="waive"
        ),
        pytest.param(["get", "mr", "nope", "--watch", "--timeout", "5s"], id="watch"),
    ],
)
def test_unknown_release_is_one_line(namespace: str, plugin: Plugin, argv: list[str]) -> None:
    result = plugin(*argv, "-n", namespace)
    assert result.returncode == 1
    assert result.stdout == ""
    assert one_line(result.stderr) == (
        f'error: modelrelease "nope" not found in namespace "{namespace}"'
    )


def test_release_crd_missing_is_one_line(bare_cluster: Cluster, tmp_path: Path) -> None:
    config = bare_cluster.kubeconfig
    kubectl = make_kubectl(config, tmp_path / "cache")
    crd = str(ROOT / "crds" / "rollouts.rollwise.dev.yaml")
    kubectl("apply", "--server-side", "-f", crd, check=True)
    try:
        wait_established(kubectl, "rollouts.rollwise.dev")
        for argv in (["get", "mr", NAME], ["revoke", NAME, "--reason", "x"]):
            result = make_plugin(config)(*argv)
            assert result.returncode == 1
            assert one_line(result.stderr) == (
                "error: modelreleases.rollwise.dev is not installed in this cluster "
                "(kubectl apply -f crds/)"
            )
    finally:
        kubectl("delete", "-f", crd, "--wait=true", check=True)


#: Runs a command with SIGINT at its default: a test run started in the background (``cmd &``
#: without job control, as CI runners may start it) inherits SIGINT ignored, and a program
#: started with it ignored cannot be interrupted (coreutils env).
INTERRUPTIBLE = ("env", "--default-signal=INT")


def test_watch_prints_a_new_frame_after_a_status_change(
    release: dict[str, Any], kubectl: Kubectl, namespace: str, kubeconfig: Path, tmp_path: Path
) -> None:
    output = tmp_path / "watch.out"
    argv = [
        *INTERRUPTIBLE,
        *(
            str(kubectl_binary()),
            "rollwise",
            "get",
            "mr",
            NAME,
            "-n",
            namespace,
            "-w",
            "--timeout",
            "60s",
        ),
    ]

    def wait_for(text: str) -> bool:
        deadline = time.monotonic() + 20
        while text not in output.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        return text in output.read_text()

    with output.open("w") as sink:
        proc = subprocess.Popen(
            argv,
            stdout=sink,
            stderr=subprocess.PIPE,
            text=True,
            env=plugin_env(kubeconfig),
        )
        try:
            assert wait_for("Events:")
            assert "Stage:       <no status yet>" in output.read_text()
            set_status(kubectl, namespace, staging_status(datetime.now(UTC)))
            assert wait_for("Stage:       Staging")
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    frames = output.read_text().split(f"\nName:        {NAME}\n")
    # Ages tick every second but, written to a file, only a change makes a new frame.
    assert len(frames) == 2, output.read_text()
    assert "Stage:       <no status yet>" in frames[0]
    assert "Stage:       Staging" in frames[1]


# --------------------------------------------------------------------------------------------
# Requests without a webhook: exactly the annotation, pending or warned


def test_revoke_writes_the_request_and_is_pending_without_webhook(
    release: dict[str, Any], kubectl: Kubectl, namespace: str, plugin: Plugin
) -> None:
    result = plugin(
        "revoke", f"modelrelease/{NAME}", "--reason", "wrong training data", "-n", namespace
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    first, second = result.stdout.splitlines()
    request = request_id(first, f"modelrelease.rollwise.dev/{NAME} revoke requested (id ")
    assert second == (
        "pending: no admission webhook recorded the request (is the operator's webhook "
        "installed?); the operator honours the unsigned request, with the user unknown"
    )
    after = get_release(kubectl, namespace)
    assert added_annotations(release, after) == {
        "rollwise.dev/revoke": f'{{"id": "{request}", "reason": "wrong training data"}}'
    }
    assert after["spec"] == release["spec"]
    assert after["metadata"]["generation"] == release["metadata"]["generation"]
    shown = plugin("get", "mr", NAME, "-n", namespace)
    assert "Revoke:      requested (unsigned: user unknown), not acted on yet" in shown.stdout


def test_approve_without_webhook_warns_and_fails(
    release: dict[str, Any], kubectl: Kubectl, namespace: str, plugin: Plugin
) -> None:
    result = plugin("approve", NAME, "--role", "security", "-n", namespace)
    assert result.returncode == 1
    request = request_id(
        one_line(result.stdout), f"modelrelease.rollwise.dev/{NAME} approve requested (id "
    )
    assert one_line(result.stderr) == (
        "warning: no approval recorded: no admission webhook recorded the request (is the "
        "operator's webhook installed?); approvals count only when the operator's webhook "
        "records them, so this one does not count"
    )
    after = get_release(kubectl, namespace)
    # The version defaults to the release's own spec.version.
    assert added_annotations(release, after) == {
        "rollwise.dev/approve": f'{{"id": "{request}", "role": "security", "version": "7"}}'
    }
    explicit = plugin("approve", NAME, "--role", "product", "--version", "6", "-n", namespace)
    assert explicit.returncode == 1
    value = json.loads(
        get_release(kubectl, namespace)["metadata"]["annotations"]["rollwise.dev/approve"]
    )
    assert {k: v for k, v in value.items() if k != "id"} == {"role": "product", "version": "6"}
    assert value["id"] != request


def test_waive_without_webhook_warns_and_fails(
    release: dict[str, Any], kubectl: Kubectl, namespace: str, plugin: Plugin
) -> None:
    result = plugin(
        "waive", f"mr/{NAME}", "--gate", "sbom", "--reason", "CVE triaged", "--for", "24h",
        "-n", namespace,
    )  # fmt: skip
    assert result.returncode == 1
    request = request_id(
        one_line(result.stdout), f"modelrelease.rollwise.dev/{NAME} waive requested (id "
    )
    assert one_line(result.stderr).startswith("warning: no waiver recorded: ")
    after = get_release(kubectl, namespace)
    assert added_annotations(release, after) == {
        "rollwise.dev/waive": (
            f'{{"id": "{request}", "gate": "sbom", "reason": "CVE triaged", "for": "24h"}}'
        )
    }


# --------------------------------------------------------------------------------------------
# With the operator's admission decision behind a webhook: records read back, refusals as one
# line

HOOK = "records.rollwise.dev"
ROLE_GROUPS = {"security": ("sec-team",), "product": ("pm",)}


class RecordsWebhook:
    """A mutating webhook on 127.0.0.1, over HTTPS with a certificate the cluster CA signed,
    answering with the operator's own decision (:func:`rollwise.runtime.admission.decide`,
    what its kopf handler calls): kube-apiserver's AdmissionReview in, a JSON patch of the
    annotations or the refusal out."""

    def __init__(self, cluster: Cluster, directory: Path) -> None:
        self.url = ""
        pair = cluster.serving_certificate(directory)
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._tls.load_cert_chain(str(pair.cert), str(pair.key))
        self.config = AdmissionConfig(key=b"k" * 32, role_map=ROLE_GROUPS)
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def review(self, body: dict[str, Any]) -> dict[str, Any]:
        request = body["request"]
        new = request["object"]
        response: dict[str, Any] = {"uid": request["uid"], "allowed": True}
        try:
            changes = decide(
                self.config,
                operation=request["operation"],
                old=request.get("oldObject"),
                new=new,
                userinfo=request["userInfo"],
                now=datetime.now(UTC).replace(microsecond=0),
            )
        except kopf.AdmissionError as refused:
            response.update(allowed=False, status={"code": refused.code, "message": str(refused)})
        else:
            annotations = dict(new["metadata"].get("annotations") or {})
            annotations.update({k: v for k, v in changes.items() if v is not None})
            for gone in [k for k, v in changes.items() if v is None]:
                annotations.pop(gone, None)
            ops = [{"op": "add", "path": "/metadata/annotations", "value": annotations}]
            response.update(
                patchType="JSONPatch", patch=base64.b64encode(json.dumps(ops).encode()).decode()
            )
        return {"apiVersion": body["apiVersion"], "kind": "AdmissionReview", "response": response}

    async def _handle(self, request: web.Request) -> web.Response:
        return web.json_response(self.review(await request.json()))

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._tls)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"https://127.0.0.1:{port}/"

    def __enter__(self) -> RecordsWebhook:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


#: The people of these tests, among those the lab cluster authenticates: alice (groups ml,
#: sec-team) creates the release, so she set its version; bob (sec-team) may approve as
#: security; carol (pm, sec-team) as product.
CREATOR, SECURITY, PRODUCT = "alice", "bob", "carol"


@pytest.fixture(scope="module")
def governed(
    lab_cluster: Cluster, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, Path]]]:
    """A namespace of the module's own where the people may work, the webhook on CREATE and
    UPDATE of its ModelReleases (a namespaceSelector keeps it to that namespace), and the
    example release created by the creator (who thereby set version 7); returns the namespace
    and each person's kubeconfig."""
    tmp = tmp_path_factory.mktemp("governed")
    people = (CREATOR, SECURITY, PRODUCT)
    namespace = new_namespace(lab_cluster, "gov")
    grant_namespace(lab_cluster, namespace, list(people))
    with RecordsWebhook(lab_cluster, tmp / "tls") as hook:
        rule = {
            "operations": ["CREATE", "UPDATE"],
            "apiGroups": ["rollwise.dev"],
            "apiVersions": ["v1alpha1"],
            "resources": ["modelreleases"],
        }
        config = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": f"rollwise-records-{namespace}"},
            "webhooks": [
                {
                    "name": HOOK,
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "failurePolicy": "Fail",
                    "timeoutSeconds": 5,
                    "rules": [rule],
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": namespace}
                    },
                    "clientConfig": {
                        "url": hook.url,
                        "caBundle": base64.b64encode(lab_cluster.ca_cert.read_bytes()).decode(),
                    },
                }
            ],
        }
        kubectl("apply", "-f", "-", input=manifest(config), check=True)
        try:
            creator = make_kubectl(lab_cluster.kubeconfig_of(CREATOR), tmp / "cache")
            creator("apply", "-n", namespace, "-f", str(EXAMPLE), check=True)
            yield namespace, {user: lab_cluster.kubeconfig_of(user) for user in people}
        finally:
            kubectl("delete", "mutatingwebhookconfiguration", config["metadata"]["name"])
            delete_namespace(lab_cluster, namespace)


def test_approval_is_recorded_with_the_authenticated_user(
    governed: tuple[str, dict[str, Path]],
) -> None:
    namespace, people = governed
    carol = make_plugin(people[PRODUCT])
    result = carol("approve", NAME, "--role", "product", "-n", namespace)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    first, second = result.stdout.splitlines()
    request_id(first, f"modelrelease.rollwise.dev/{NAME} approve requested (id ")
    assert second == f"approval recorded: role product for version 7 by {PRODUCT}"
    again = carol("approve", f"mr/{NAME}", "--role", "product", "-n", namespace)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[1].startswith(
        f"approval already recorded: role product for version 7 by {PRODUCT} at "
    )
    shown = make_plugin(people[CREATOR])("get", "mr", NAME, "-n", namespace)
    rows = [line.split() for line in shown.stdout.splitlines() if line.startswith("  product ")]
    assert len(rows) == 1
    assert rows[0][:3] == ["product", PRODUCT, "7"]
    assert rows[0][-1] == "recorded"
    assert "waiting for security)" in shown.stdout


@pytest.mark.parametrize(
    ("user", "argv", "words"),
    [
        pytest.param(CREATOR, ["--role", "security"], [CREATOR, "set version 7"], id="four-eyes"),
        pytest.param(SECURITY, ["--role", "product"], [SECURITY, "product"], id="role-not-held"),
        pytest.param(
            SECURITY, ["--role", "security", "--version", "6"], ["version 6"], id="other-version"
        ),
    ],
)
def test_refusal_is_the_server_sentence_on_one_line(
    governed: tuple[str, dict[str, Path]], user: str, argv: list[str], words: list[str]
) -> None:
    namespace, people = governed
    result = make_plugin(people[user])("approve", NAME, *argv, "-n", namespace)
    assert result.returncode == 1
    assert result.stdout == ""
    line = one_line(result.stderr)
    prefix = f'error: admission webhook "{HOOK}" denied the request: '
    assert line.startswith(prefix), line
    assert all(word in line[len(prefix) :] for word in words), line


def test_waive_and_revoke_are_recorded(governed: tuple[str, dict[str, Path]]) -> None:
    namespace, people = governed
    waive = make_plugin(people[SECURITY])(
        "waive", NAME, "--gate", "sbom", "--reason", "CVE triaged", "--for", "24h", "-n", namespace
    )
    assert waive.returncode == 0, waive.stderr
    line = waive.stdout.splitlines()[1]
    prefix = f"waiver recorded: gate sbom by {SECURITY}, expires "
    assert line.startswith(prefix), line
    expires = datetime.fromisoformat(line[len(prefix) :].replace("Z", "+00:00"))
    left = expires - datetime.now(UTC)
    assert timedelta(hours=23) < left <= timedelta(hours=24)
    revoke = make_plugin(people[PRODUCT])("revoke", NAME, "--reason", "bad data", "-n", namespace)
    assert revoke.returncode == 0, revoke.stderr
    assert revoke.stdout.splitlines()[1] == f"revocation recorded: by {PRODUCT}, reason: bad data"
    shown = make_plugin(people[CREATOR])("get", "mr", NAME, "-n", namespace)
    [pending] = [line for line in shown.stdout.splitlines() if line.startswith("Revoke:")]
    assert pending.startswith(f"Revoke:      requested by {PRODUCT} ")
    assert pending.endswith(" ago, not acted on yet: bad data")
