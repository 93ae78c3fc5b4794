"""Shared helpers of the benchmarks: process CPU and memory from /proc, percentiles, the
machine's description, an API client of the lab cluster, and its audit log read by user.

Boundary: measuring and process plumbing only; what a benchmark drives lives in its module.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from hack.cluster import ADMIN, Cluster
from hack.lab.processes import stop_process

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
OPERATOR = VENV_BIN / "rollwise-operator"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
BENCH_AGENT = "rollwise-bench/1"

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (its threads included, waited-for children excluded)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def memory_kib(pid: int, field: str = "VmHWM") -> int:
    """A ``/proc/<pid>/status`` memory field in KiB (VmHWM: peak resident set)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[rank]


def machine() -> str:
    """One paragraph describing where the figures came from."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return (
        f"date {datetime.now(UTC).isoformat(timespec='seconds')}, nproc {os.cpu_count()}, "
        f"memory {mem_kib / 1024 / 1024:.1f} GiB, CPU {model}, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}"
    )


@dataclass
class Process:
    """A subprocess the benchmark started (and stops: SIGTERM, then SIGKILL)."""

    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return int(self.popen.pid)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> int:
        return stop_process(self.popen, timeout=timeout)


def start_process(args: list[str], log: Path, env: dict[str, str] | None = None) -> Process:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        popen = subprocess.Popen(
            args,
            cwd=REPO,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Process(popen, log)


def wait_for(probe: object, timeout: float, every: float = 0.2) -> bool:
    """Polls the callable ``probe`` until truthy or ``timeout`` passes; whether it succeeded."""
    assert callable(probe)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(every)
    return bool(probe())


class Api:
    """A small HTTP client of the lab cluster's kube-apiserver, as its administrator (one
    session per thread)."""

    def __init__(self, cluster: Cluster) -> None:
        self.url = cluster.server
        self._token = cluster.token_of(ADMIN)
        self._ca = str(cluster.ca_cert)
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            session.verify = self._ca
            session.headers["User-Agent"] = BENCH_AGENT
            session.headers["Authorization"] = f"Bearer {self._token}"
            self._local.session = session
        return session

    def call(self, method: str, path: str, body: Any = None, ctype: str = "") -> Any:
        headers = {"Content-Type": ctype} if ctype else {}
        data = json.dumps(body) if body is not None else None
        answer = self.session.request(
            method, self.url + path, data=data, headers=headers, timeout=60
        )
        if answer.status_code >= 400 and answer.status_code != 409:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
        return answer.json()

    def create(self, doc: dict[str, Any], namespace: str) -> None:
        """Creates ``doc`` (a Service, HTTPRoute or Rollout) in ``namespace``."""
        group = doc["apiVersion"].rsplit("/", 1)[0] if "/" in doc["apiVersion"] else ""
        base = f"/apis/{doc['apiVersion']}" if group else f"/api/{doc['apiVersion']}"
        plural = doc["kind"].lower() + "s"
        self.call("POST", f"{base}/namespaces/{namespace}/{plural}", doc, "application/json")


class AuditLog:
    """kube-apiserver's audit log read from a mark on: every request, by user, verb and
    resource (written before its response, so a request answered is a request counted)."""

    def __init__(self, cluster: Cluster) -> None:
        self.path = cluster.audit_log
        self.offset = 0

    def mark(self) -> None:
        """Counts start from now."""
        self.offset = self.path.stat().st_size

    def requests(self) -> list[dict[str, Any]]:
        """One row per request since the mark: user, verb, resource (``plural`` or
        ``plural/subresource``), namespace and response code."""
        rows: list[dict[str, Any]] = []
        if self.path.stat().st_size < self.offset:
            raise RuntimeError(f"{self.path} was rotated since the mark: its counts are lost")
        with self.path.open(encoding="utf-8") as handle:
            handle.seek(self.offset)
            for line in handle:
                if not line.endswith("\n"):
                    break  # an event being written
                event = json.loads(line)
                if event.get("stage") != "ResponseComplete":
                    continue
                ref = event.get("objectRef") or {}
                resource = ref.get("resource", "")
                if ref.get("subresource"):
                    resource = f"{resource}/{ref['subresource']}"
                rows.append(
                    {
                        "user": event.get("user", {}).get("username", ""),
                        "verb": event.get("verb", ""),
                        "resource": resource,
                        "namespace": ref.get("namespace"),
                        "code": (event.get("responseStatus") or {}).get("code"),
                    }
                )
        return rows


def control_plane_cpu(cluster: Cluster) -> dict[str, float]:
    """CPU seconds of each process of the lab cluster (etcd, kube-apiserver, ...)."""
    return {name: cpu_seconds(record.pid) for name, record in cluster.state.processes.items()}
