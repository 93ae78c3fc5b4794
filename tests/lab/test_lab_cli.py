"""``python -m hack.lab``: up (in under 10 s), status, control and down, as a user runs them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from hack.lab.processes import stop_process

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.lab


def _cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hack.lab", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _background(log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``python -m hack.lab ARGS`` left running, its output in ``log``."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "hack.lab", *args],
            cwd=REPO,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def _wait_for_line(path: Path, pattern: str, proc: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        match = re.search(pattern, text)
        if match:
            return match.group(1)
        assert proc.poll() is None, f"lab exited early:\n{text}"
        time.sleep(0.1)
    raise AssertionError(f"{pattern!r} not printed within {timeout} s:\n{path.read_text()}")


def test_up_status_control_down(tmp_path: Path) -> None:
    workdir = tmp_path / "lab"
    out = tmp_path / "up.log"
    proc = _background(out, "up", "--dir", str(workdir))
    try:
        seconds = float(_wait_for_line(out, r"lab up in ([0-9.]+) s", proc, timeout=30))
        assert seconds < 10.0

        info = json.loads((workdir / "lab.json").read_text())
        assert info["pid"] == proc.pid
        assert Path(info["kubeconfig"]) == workdir / "kubeconfig"
        crds = subprocess.run(
            ["kubectl", "--kubeconfig", info["kubeconfig"], "get", "crd", "-o", "name"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        assert (
            "customresourcedefinition.apiextensions.k8s.io/httproutes.gateway.networking.k8s.io"
            in crds
        )
        assert requests.get(info["prometheus"] + "/-/ready", timeout=5).status_code == 200

        status = _cli("status", "--dir", str(workdir))
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"lab running (pid {proc.pid})" in status.stdout
        assert "Prometheus:" in status.stdout

        control = _cli("control", "checkout", "--error-ratio", "0.4", "--dir", str(workdir))
        assert control.returncode == 0, control.stdout + control.stderr
        assert json.loads(control.stdout)["errorRatio"] == 0.4

        again = _cli("up", "--dir", str(workdir))
        assert again.returncode == 1
        assert "already runs" in again.stderr

        down = _cli("down", "--dir", str(workdir))
        assert down.returncode == 0, down.stdout + down.stderr
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert not (workdir / "lab.pid").exists()
    after = _cli("status", "--dir", str(workdir))
    assert after.returncode == 3
    assert "no lab running" in after.stdout
    assert _cli("down", "--dir", str(workdir)).returncode == 0


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web:1}]}
"""


def _ready_replicas(kubeconfig: str) -> str:
    return subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            kubeconfig,
            "get",
            "deployment",
            "web",
            "-n",
            "default",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout


def test_simulator_runs_in_its_own_process(tmp_path: Path) -> None:
    """``up --no-simulator`` leaves Deployments without status until ``simulate`` runs; then
    the simulator, a separate process, makes their pods ready and stops on SIGTERM."""
    workdir = tmp_path / "lab"
    refused = _cli("simulate", "--dir", str(workdir))
    assert refused.returncode == 3
    assert "no lab running" in refused.stderr

    out, sim_out = tmp_path / "up.log", tmp_path / "simulate.log"
    lab = _background(out, "up", "--no-prometheus", "--no-simulator", "--dir", str(workdir))
    simulator: subprocess.Popen[bytes] | None = None
    try:
        _wait_for_line(out, r"lab up in ([0-9.]+) s", lab, timeout=30)
        kubeconfig = str(workdir / "kubeconfig")
        subprocess.run(
            ["kubectl", "--kubeconfig", kubeconfig, "apply", "-f", "-"],
            input=DEPLOYMENT,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        # The lab's own simulator would have marked the pods ready after 0.5 s.
        time.sleep(1.5)
        assert _ready_replicas(kubeconfig) == ""

        simulator = _background(sim_out, "simulate", "--dir", str(workdir), "--ready-delay", "0.2")
        _wait_for_line(sim_out, r"workload simulator on (\S+)", simulator, timeout=30)
        deadline = time.monotonic() + 15
        while _ready_replicas(kubeconfig) != "2":
            assert time.monotonic() < deadline, "the simulator never made the pods ready"
            time.sleep(0.2)

        simulator.terminate()
        assert simulator.wait(timeout=20) == 0
        assert "workload simulator stopped" in sim_out.read_text()
        assert lab.poll() is None, "stopping the simulator must leave the lab running"
    finally:
        for proc in (simulator, lab):
            if proc is not None:
                stop_process(proc, timeout=20, kill_after=10)


def test_lab_processes_freeze_what_survives_a_full_collection() -> None:
    """In a process of its own (a frozen object stays for the process's life): after a full
    collection the survivors are frozen, so the next full collection scans none of them."""
    script = """
import gc
from hack.lab._support import freeze_after_full_collections
freeze_after_full_collections()
freeze_after_full_collections()
kept = [{"metadata": {"name": str(i)}} for i in range(50_000)]
gc.collect()
frozen = gc.get_freeze_count()
assert frozen >= 50_000, frozen
gc.collect()
assert gc.get_freeze_count() >= frozen
print(sum(1 for cb in gc.callbacks if cb.__name__ == "_freeze_survivors"))
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
