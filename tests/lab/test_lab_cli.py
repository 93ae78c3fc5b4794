"""``python -m hack.lab``: up (a real cluster and the lab on it), status, control, operator
(helm install, then the operator as the chart's ServiceAccount) and down, as a user runs them."""

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
from hack.lab.testing.cluster_fixtures import kubectl_binary

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


def test_up_status_control_operator_down(tmp_path: Path) -> None:
    workdir = tmp_path / "lab"
    out, operator_out = tmp_path / "up.log", tmp_path / "operator.log"
    proc = _background(out, "up", "--dir", str(workdir))
    operator: subprocess.Popen[bytes] | None = None
    try:
        # A cluster starts in 4-6 s on an idle machine; the bound allows for a loaded one.
        seconds = float(_wait_for_line(out, r"lab up in ([0-9.]+) s", proc, timeout=90))
        assert seconds < 60.0

        info = json.loads((workdir / "lab.json").read_text())
        assert info["pid"] == proc.pid
        assert Path(info["kubeconfig"]) == workdir / "cluster" / "kubeconfig"
        kubectl = [str(kubectl_binary()), "--kubeconfig", info["kubeconfig"]]
        crds = subprocess.run(
            [*kubectl, "get", "crd", "-o", "name"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        assert (
            "customresourcedefinition.apiextensions.k8s.io/httproutes.gateway.networking.k8s.io"
            in crds
        )
        assert "customresourcedefinition.apiextensions.k8s.io/rollouts.rollwise.dev" in crds
        assert requests.get(info["prometheus"] + "/-/ready", timeout=5).status_code == 200

        status = _cli("status", "--dir", str(workdir))
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"lab running (pid {proc.pid})" in status.stdout
        assert "kube-apiserver readyz ok" in status.stdout
        assert "Prometheus:" in status.stdout
        assert "up, 1/1 targets up" in status.stdout, status.stdout

        control = _cli("control", "checkout", "--error-ratio", "0.4", "--dir", str(workdir))
        assert control.returncode == 0, control.stdout + control.stderr
        assert json.loads(control.stdout)["errorRatio"] == 0.4

        again = _cli("up", "--dir", str(workdir))
        assert again.returncode == 1
        assert "already runs" in again.stderr

        # The operator of namespace "shop": the chart installed, the process its user.
        operator = _background(
            operator_out, "operator", "--dir", str(workdir), "--namespace", "shop"
        )
        user = _wait_for_line(operator_out, r"operator user (\S+)", operator, timeout=60)
        assert user == "system:serviceaccount:shop:rollwise-shop"
        _wait_for_line(operator_out, r"(admission webhook on)", operator, timeout=60)
        account = subprocess.run(
            [*kubectl, "get", "serviceaccount", "rollwise-shop", "-n", "shop", "-o", "name"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        assert account.strip() == "serviceaccount/rollwise-shop"
        assert stop_process(operator, timeout=20) == 0

        down = _cli("down", "--dir", str(workdir))
        assert down.returncode == 0, down.stdout + down.stderr
        assert proc.wait(timeout=30) == 0
    finally:
        for running in (operator, proc):
            if running is not None:
                stop_process(running, timeout=20, kill_after=10)
    assert not (workdir / "lab.pid").exists()
    assert not (workdir / "cluster" / "state.json").exists(), "down stops the cluster too"
    after = _cli("status", "--dir", str(workdir))
    assert after.returncode == 3
    assert "no lab running" in after.stdout
    assert _cli("down", "--dir", str(workdir)).returncode == 0


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
