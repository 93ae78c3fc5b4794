"""``kubectl rollwise`` as users run it: the real kubectl finding the ``kubectl-rollwise``
console script on PATH, against the lab cluster (the Rollwise CRDs installed) with the
Gateway API example applied. No operator runs: the test writes a realistic status through
the ``/status`` subresource (built with the core's own status models) and reads back what the
plugin wrote with ``kubectl get -o json``.
"""

from __future__ import annotations

import json
import os
import pty
import queue
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.cluster import Cluster, wait_established
from hack.lab.testing.cluster_fixtures import (
    Kubectl,
    kubeconfig_in,
    kubectl_binary,
    make_kubectl,
    manifest,
)
from rollwise.cli.connect import connect
from rollwise.cli.watch import _Watcher
from rollwise.core.conditions import ConditionStatus
from rollwise.core.observations import revision_of
from rollwise.core.phases import Phase
from rollwise.core.rollout.status import Condition, ConditionType, RolloutStatus
from rollwise.core.runs import AnalysisRun, MeasurementRecord, MetricRun, Verdict

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
EXAMPLE = ROOT / "examples" / "rollout-gateway-api"

Plugin = Callable[..., subprocess.CompletedProcess[str]]

#: What a terminal frame starts with: cursor home, clear screen.
CLEAR = b"\x1b[H\x1b[2J"


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


@pytest.fixture
def plugin(kubeconfig: Path) -> Plugin:
    return make_plugin(kubeconfig)


@pytest.fixture
def demo(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    """The Gateway API example applied in the test's namespace; returns the Rollout."""
    kubectl("apply", "-f", str(EXAMPLE), namespace=namespace, check=True)
    return get_rollout(kubectl, namespace)


def get_rollout(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    out = kubectl("get", "rollout", "demo", "-o", "json", namespace=namespace, check=True)
    obj: dict[str, Any] = json.loads(out.stdout)
    return obj


def set_status(kubectl: Kubectl, namespace: str, status: RolloutStatus) -> None:
    kubectl(
        "patch",
        "rollout",
        "demo",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status.to_wire()}),
        namespace=namespace,
        check=True,
    )


def one_line(text: str) -> str:
    assert text.endswith("\n")
    assert text.count("\n") == 1, text
    return text.rstrip("\n")


def canary_status(rollout: dict[str, Any], now: datetime) -> RolloutStatus:
    """What the operator writes at step 3/5 (setWeight 25%) of the example, mid-analysis."""
    canary = revision_of(rollout["spec"]["template"])
    older = json.loads(json.dumps(rollout["spec"]["template"]))
    older["spec"]["containers"][0]["image"] = "ghcr.io/rollwise/demo-service:0.9.0"
    stable = revision_of(older)
    message = (
        "step 3/5 (setWeight 25%): analysis running (error-ratio 1/2 (last 0.012), p99-latency 0/1)"
    )
    since = now - timedelta(seconds=40)

    def condition(type_: ConditionType, value: str, reason: str, text: str = "") -> Condition:
        return Condition(
            type=type_,
            status=ConditionStatus(value),
            reason=reason,
            message=text,
            last_transition_time=now - timedelta(minutes=3),
            observed_generation=rollout["metadata"]["generation"],
        )

    return RolloutStatus(
        phase=Phase.PROGRESSING,
        message=message,
        observed_generation=rollout["metadata"]["generation"],
        current_step_index=2,
        canary_weight=25,
        stable_revision=stable,
        canary_revision=canary,
        step_started_at=since,
        progress_started_at=since,
        analysis=AnalysisRun(
            step_index=2,
            revision=canary,
            started_at=since,
            metrics=[
                MetricRun(
                    name="error-ratio",
                    measurements=[
                        MeasurementRecord(
                            value=0.012,
                            verdict=Verdict.PASS,
                            at=now - timedelta(seconds=10),
                            message="metric error-ratio = 0.012 passed successCondition "
                            "'result < 0.05'",
                        )
                    ],
                    successful=1,
                ),
                MetricRun(name="p99-latency"),
            ],
        ),
        conditions=[
            condition(ConditionType.READY, "False", "Progressing", message),
            condition(
                ConditionType.AVAILABLE, "True", "MinimumReplicasAvailable", "4/3 pods available"
            ),
            condition(ConditionType.PROGRESSING, "True", "Progressing", message),
            condition(ConditionType.PAUSED, "False", "NotPaused"),
            condition(ConditionType.DEGRADED, "False", "NotDegraded"),
            condition(ConditionType.INVALID_SPEC, "False", "Valid"),
        ],
        replicas=4,
        available_replicas=4,
    )


def weight_event(namespace: str, rollout: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "demo.weightset", "namespace": namespace},
        "involvedObject": {
            "apiVersion": "rollwise.dev/v1alpha1",
            "kind": "Rollout",
            "name": "demo",
            "namespace": namespace,
            "uid": rollout["metadata"]["uid"],
        },
        "reason": "WeightSet",
        "message": "step 3/5: canary weight set to 25% (stable 75%)",
        "type": "Normal",
        "count": 1,
        "firstTimestamp": (now - timedelta(seconds=40)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lastTimestamp": (now - timedelta(seconds=40)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": {"component": "rollwise-operator"},
    }


def route_weights(kubectl: Kubectl, namespace: str, stable: int, canary: int) -> None:
    route = json.loads(
        kubectl("get", "httproute", "demo", "-o", "json", namespace=namespace, check=True).stdout
    )
    refs = route["spec"]["rules"][0]["backendRefs"]
    refs[0]["weight"], refs[1]["weight"] = stable, canary
    kubectl(
        "patch",
        "httproute",
        "demo",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"rules": route["spec"]["rules"]}}),
        namespace=namespace,
        check=True,
    )


def test_get_rollout_shows_steps_analysis_weight_and_events(
    demo: dict[str, Any],
    kubectl: Kubectl,
    namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    status = canary_status(demo, now)
    set_status(kubectl, namespace, status)
    route_weights(kubectl, namespace, 75, 25)
    kubectl("apply", "-f", "-", input=manifest(weight_event(namespace, demo, now)), check=True)
    # The context's namespace is the default, as with kubectl.
    config = kubeconfig_in(kubeconfig, tmp_path / "kubeconfig", namespace)
    result = make_plugin(config)("get", "rollout", "demo")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert "Name:        demo" in lines
    assert f"Namespace:   {namespace}" in lines
    assert "Phase:       Progressing" in lines
    assert f"Stable:      {status.stable_revision}" in lines
    assert f"Canary:      {status.canary_revision} (step 3/5)" in lines
    assert "Weight:      25% to the canary (set), 25% actual (HTTPRoute demo)" in lines
    steps = [line.split() for line in lines if "setWeight" in line or "pause " in line]
    assert steps[1:6] == [
        ["✓", "1", "setWeight", "5%", "+", "analysis", "(error-ratio,", "p99-latency)"],
        ["✓", "2", "pause", "1m"],
        [
            "▶",
            "3",
            "setWeight",
            "25%",
            "+",
            "analysis",
            "(error-ratio,",
            "p99-latency)",
            "analysis",
            "running",
        ],
        ["4", "pause", "2m"],
        ["5", "setWeight", "100%", "+", "analysis", "(error-ratio,", "p99-latency)"],
    ]
    analysis = [line.split() for line in lines if line.startswith("  error-ratio")]
    # The next measurement is due one interval (30s) after the last one, 10s ago.
    assert [row[:10] for row in analysis] == [
        ["error-ratio", "0.012", "<", "0.05;", ">=", "50", "samples", "RUNNING", "(1/2)", "in"]
    ]
    assert analysis[0][10] in {f"{s}s" for s in range(21)}
    p99 = [line.split() for line in lines if line.startswith("  p99-latency")]
    assert p99 == [["p99-latency", "-", "<=", "0.500", "RUNNING", "(0/1)", "in", "0s"]]
    weight_set = [line for line in lines if "WeightSet" in line]
    assert len(weight_set) == 1
    columns = weight_set[0].split(None, 3)
    assert columns[1:] == ["Normal", "WeightSet", "step 3/5: canary weight set to 25% (stable 75%)"]

    listing = make_plugin(config)("list")
    assert listing.returncode == 0, listing.stderr
    table = [line.split() for line in listing.stdout.splitlines()]
    assert table[0] == ["NAME", "PHASE", "STEP", "WEIGHT", "STABLE", "CANARY", "AGE"]
    assert table[1][:6] == [
        "demo",
        "Progressing",
        "3/5",
        "25%",
        status.stable_revision,
        status.canary_revision,
    ]


def test_list_all_namespaces_with_model_releases(
    demo: dict[str, Any], kubectl: Kubectl, namespace: str, plugin: Plugin
) -> None:
    release = yaml.safe_load(
        (ROOT / "examples/modelrelease-template/modelrelease.yaml").read_text()
    )
    kubectl("apply", "-f", "-", input=manifest(release), namespace=namespace, check=True)
    kubectl(
        "patch",
        "modelrelease",
        release["metadata"]["name"],
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"stage": "Staging"}}),
        namespace=namespace,
        check=True,
    )
    result = plugin("list", "-A")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["NAMESPACE", "NAME", "PHASE", "STEP", "WEIGHT", "STABLE", "CANARY", "AGE"]
    assert [namespace, "demo", "<none>", "-", "-", "-", "-"] in [r[:7] for r in rows]
    header = rows.index(["NAMESPACE", "NAME", "STAGE", "PHASE", "MODEL", "VERSION", "ALIAS", "AGE"])
    assert [r[:7] for r in rows[header + 1 :] if r[0] == namespace] == [
        [namespace, "fraud-detector-7", "Staging", "-", "fraud-detector", "7", "production"]
    ]
    mine = plugin("list", "rollouts", "-n", namespace)
    assert [line.split()[0] for line in mine.stdout.splitlines()[:2]] == ["NAME", "demo"]


@pytest.mark.parametrize(
    ("argv", "annotation", "word"),
    [
        pytest.param(["promote"], "rollwise.dev/promote", "promote", id="promote"),
        pytest.param(
            ["promote", "--full"], "rollwise.dev/promote-full", "promote-full", id="promote-full"
        ),
        pytest.param(["abort"], "rollwise.dev/abort", "abort", id="abort"),
        pytest.param(["retry"], "rollwise.dev/retry", "retry", id="retry"),
    ],
)
def test_requests_set_exactly_their_annotation(
    demo: dict[str, Any],
    kubectl: Kubectl,
    namespace: str,
    plugin: Plugin,
    *,
    argv: list[str],
    annotation: str,
    word: str,
) -> None:
    set_status(kubectl, namespace, canary_status(demo, datetime.now(UTC)))
    before = get_rollout(kubectl, namespace)
    result = plugin(argv[0], "demo", *argv[1:], "-n", namespace)
    assert result.returncode == 0, result.stderr
    line = one_line(result.stdout)
    prefix = f"rollout.rollwise.dev/demo {word} requested (id "
    assert line.startswith(prefix)
    assert line.endswith(")")
    request = line[len(prefix) : -1]
    after = get_rollout(kubectl, namespace)
    added = {
        k: v
        for k, v in after["metadata"]["annotations"].items()
        if before["metadata"].get("annotations", {}).get(k) != v
    }
    assert added == {annotation: request}
    assert after["spec"] == before["spec"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    # A second request is a new id: the operator acts on each id once.
    again = plugin(argv[0], "demo", *argv[1:], "-n", namespace)
    second = one_line(again.stdout)[len(prefix) : -1]
    assert second != request
    assert get_rollout(kubectl, namespace)["metadata"]["annotations"][annotation] == second


def test_request_without_canary_warns_but_is_filed(
    demo: dict[str, Any], kubectl: Kubectl, namespace: str, plugin: Plugin
) -> None:
    result = plugin("abort", "demo", "-n", namespace)
    assert result.returncode == 0
    assert one_line(result.stderr) == (
        "warning: the rollout has no status yet (is the Rollwise operator running?)"
    )
    annotations = get_rollout(kubectl, namespace)["metadata"]["annotations"]
    assert one_line(result.stdout).endswith(f"(id {annotations['rollwise.dev/abort']})")


def test_pause_and_resume_set_spec_paused(
    demo: dict[str, Any], kubectl: Kubectl, namespace: str, plugin: Plugin
) -> None:
    generation = demo["metadata"]["generation"]
    paused = plugin("pause", "demo", "-n", namespace)
    assert one_line(paused.stdout) == "rollout.rollwise.dev/demo paused"
    obj = get_rollout(kubectl, namespace)
    assert obj["spec"]["paused"] is True
    assert obj["metadata"]["generation"] == generation + 1
    assert "rollwise.dev/promote" not in obj["metadata"].get("annotations", {})
    again = plugin("pause", "demo", "-n", namespace)
    assert one_line(again.stdout) == "rollout.rollwise.dev/demo paused (no change)"
    shown = plugin("get", "rollout", "demo", "-n", namespace)
    assert "Phase:       <no status yet> (is the Rollwise operator running?)" in shown.stdout
    resumed = plugin("resume", "demo", "-n", namespace)
    assert one_line(resumed.stdout) == "rollout.rollwise.dev/demo resumed"
    obj = get_rollout(kubectl, namespace)
    assert obj["spec"]["paused"] is False
    assert {k: v for k, v in obj["spec"].items() if k != "paused"} == {
        k: v for k, v in demo["spec"].items() if k != "paused"
    }


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["get", "rollout", "nope"], id="get"),
        pytest.param(["promote", "nope"], id="promote"),
        pytest.param(["pause", "nope"], id="pause"),
        pytest.param(["get", "rollout", "nope", "--watch", "--timeout", "5s"], id="watch"),
    ],
)
def test_unknown_rollout_is_one_line(namespace: str, plugin: Plugin, argv: list[str]) -> None:
    result = plugin(*argv, "-n", namespace)
    assert result.returncode == 1
    assert result.stdout == ""
    assert one_line(result.stderr) == f'error: rollout "nope" not found in namespace "{namespace}"'


def test_missing_crds(bare_cluster: Cluster, tmp_path: Path) -> None:
    """No Rollout CRD: one line. No ModelRelease CRD: ``list`` shows the Rollouts alone."""
    config = bare_cluster.kubeconfig
    for argv in (["get", "rollout", "demo"], ["list"], ["abort", "demo"]):
        result = make_plugin(config)(*argv)
        assert result.returncode == 1
        assert one_line(result.stderr) == (
            "error: rollouts.rollwise.dev is not installed in this cluster (kubectl apply -f crds/)"
        )
    kubectl = make_kubectl(config, tmp_path / "cache")
    crd = str(ROOT / "crds" / "rollouts.rollwise.dev.yaml")
    kubectl("apply", "--server-side", "-f", crd, check=True)
    try:
        wait_established(kubectl, "rollouts.rollwise.dev")
        kubectl("apply", "-f", str(EXAMPLE / "rollout.yaml"), check=True)
        result = make_plugin(config)("list")
        assert result.returncode == 0, result.stderr
        assert [line.split()[:2] for line in result.stdout.splitlines()] == [
            ["NAME", "PHASE"],
            ["demo", "<none>"],
        ]
    finally:
        kubectl("delete", "-f", crd, "--wait=true", check=True)


def test_unreachable_server_is_one_line(
    tmp_path: Path, kubeconfig: Path, lab_cluster: Cluster
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port any more: connections are refused at once.
    config = tmp_path / "kubeconfig"
    config.write_text(
        kubeconfig.read_text().replace(lab_cluster.server, f"http://127.0.0.1:{port}")
    )
    for argv in (["list"], ["get", "rollout", "demo"], ["promote", "demo"]):
        result = make_plugin(config)(*argv, "--kubeconfig", str(config))
        assert result.returncode == 1
        assert one_line(result.stderr) == (
            f"error: cannot reach the API server at http://127.0.0.1:{port}: connection refused"
        )
        assert "Traceback" not in result.stderr


def test_watch_prints_a_new_frame_after_a_status_change(
    demo: dict[str, Any], kubectl: Kubectl, namespace: str, kubeconfig: Path, tmp_path: Path
) -> None:
    output = tmp_path / "watch.out"
    with output.open("w") as sink:
        proc = subprocess.Popen(
            [
                str(kubectl_binary()),
                "rollwise",
                "get",
                "rollout",
                "demo",
                "-n",
                namespace,
                "-w",
                "--timeout",
                "6s",
            ],
            stdout=sink,
            stderr=subprocess.PIPE,
            text=True,
            env=plugin_env(kubeconfig),
        )
        try:
            deadline = time.monotonic() + 30
            while "Events:" not in output.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            first = output.read_text()
            assert "Phase:       <no status yet>" in first
            set_status(kubectl, namespace, canary_status(demo, datetime.now(UTC)))
            _, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, err
    assert err == ""
    text = output.read_text()
    frames = text.split("\nName:        demo\n")
    assert text.startswith("Name:        demo\n")
    # Ages tick every second but, written to a file, only a change makes a new frame.
    assert len(frames) == 2, text
    assert "Phase:       <no status yet>" in frames[0]
    assert frames[0].endswith("Events:  <none>\n")
    assert "Phase:       Progressing" in frames[1]
    assert "analysis running" in frames[1]


#: Runs a command with SIGINT at its default: a test run started in the background (``cmd &``
#: without job control, as CI runners may start it) inherits SIGINT ignored, and a program
#: started with it ignored cannot be interrupted (coreutils env).
INTERRUPTIBLE = ("env", "--default-signal=INT")


def test_watch_on_a_terminal_redraws_in_place_and_stops_on_ctrl_c(
    demo: dict[str, Any], kubectl: Kubectl, namespace: str, kubeconfig: Path
) -> None:
    set_status(kubectl, namespace, canary_status(demo, datetime.now(UTC)))
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [
            *INTERRUPTIBLE,
            str(kubectl_binary()),
            "rollwise",
            "get",
            "rollout",
            "demo",
            "-n",
            namespace,
            "--watch",
        ],
        stdout=follower,
        stderr=subprocess.PIPE,
        env=plugin_env(kubeconfig),
    )
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 30
        # The analysis age ("started 40s ago") moves every second: so does the screen.
        while seen.count(CLEAR) < 3 and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                seen += os.read(leader, 65536)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    assert seen.count(CLEAR) >= 3
    assert seen.startswith(CLEAR + b"Name:        demo")
    assert "▶ 3".encode() in seen
    assert proc.returncode == 130
    assert b"Traceback" not in err


def test_watch_resumes_after_its_version_expired(
    kubectl: Kubectl, kubeconfig: Path, namespace: str
) -> None:
    """A version older than the API server's watch cache keeps (410 Gone, from the real
    kube-apiserver) is not an error: the watcher reads the Rollout again and watches on from
    there."""
    kubectl("apply", "-f", str(EXAMPLE / "rollout.yaml"), namespace=namespace, check=True)
    for i in range(8):
        kubectl(
            "annotate",
            "rollout",
            "demo",
            f"note=v{i}",
            "--overwrite",
            namespace=namespace,
            check=True,
        )
    cluster = connect(str(kubeconfig), None, None)
    inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
    watcher = _Watcher(cluster, namespace, "demo", "1", inbox)
    watcher.start()
    try:
        kind, obj = inbox.get(timeout=10)
        assert kind == "object"
        assert obj["metadata"]["annotations"]["note"] == "v7"
        kubectl(
            "annotate",
            "rollout",
            "demo",
            "note=after",
            "--overwrite",
            namespace=namespace,
            check=True,
        )
        kind, obj = inbox.get(timeout=10)
        assert kind == "object"
        assert obj["metadata"]["annotations"]["note"] == "after"
    finally:
        watcher.stopping.set()
