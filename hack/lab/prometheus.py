"""A real Prometheus server (Debian's ``/usr/bin/prometheus``) for the lab and its tests.

``PrometheusServer`` runs one Prometheus process on a free loopback port with its own config,
data directory and log file. Targets come from a ``file_sd`` targets file that Prometheus
re-reads as soon as it changes (and at least every second), so targets are added without a
reload. ``stop()``/``restart()`` keep the port and the data directory, so a test can take
Prometheus away and bring it back (an outage) at the same address with the same history.

This module only runs and queries Prometheus; what it scrapes is the caller's business.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
import yaml

from hack.lab.processes import stop_process, wait_serving

PROMETHEUS_BINARY = os.environ.get("LAB_PROMETHEUS", "/usr/bin/prometheus")
_JOB = "lab"


class PrometheusError(RuntimeError):
    """Prometheus did not start, or a query failed."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class PrometheusServer:
    """One Prometheus process scraping ``targets`` (``host:port`` strings) under job ``lab``."""

    def __init__(
        self,
        targets: list[str] | None = None,
        *,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        data_dir: str | Path | None = None,
        port: int = 0,
        start_timeout: float = 20.0,
        binary: str = PROMETHEUS_BINARY,
    ) -> None:
        self.targets: list[str] = list(targets or [])
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self._own_dir = data_dir is None
        # Absolute: Prometheus resolves the config's relative paths (the targets file) from the
        # config's own folder, not from its working directory.
        self.dir = (
            Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="lab-prom-"))
        ).resolve()
        self.port = port
        self.start_timeout = start_timeout
        self.binary = binary
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_handle: Any = None

    # -- files ---------------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.dir / "prometheus.yml"

    @property
    def targets_path(self) -> Path:
        return self.dir / "targets.json"

    @property
    def log_path(self) -> Path:
        return self.dir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self) -> None:
        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                # Prometheus refuses a timeout longer than the interval.
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "scrape_configs": [
                {
                    "job_name": _JOB,
                    "file_sd_configs": [
                        {"files": [str(self.targets_path)], "refresh_interval": "1s"}
                    ],
                }
            ],
        }
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def _write_targets(self) -> None:
        # Written to a temporary file and renamed, so Prometheus never reads half a file.
        body = json.dumps([{"targets": sorted(set(self.targets)), "labels": {}}])
        tmp = self.targets_path.with_suffix(".tmp")
        tmp.write_text(body)
        tmp.replace(self.targets_path)

    def set_targets(self, targets: list[str]) -> None:
        self.targets = list(targets)
        self._write_targets()

    def add_target(self, target: str) -> None:
        if target not in self.targets:
            self.targets.append(target)
            self._write_targets()

    def remove_target(self, target: str) -> None:
        if target in self.targets:
            self.targets.remove(target)
            self._write_targets()

    # -- process -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> PrometheusServer:
        if self.running:
            return self
        if not Path(self.binary).exists() and shutil.which(self.binary) is None:
            raise PrometheusError(f"Prometheus binary not found: {self.binary}")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self._write_targets()
        pinned = self.port != 0
        attempts = 1 if pinned else 3
        for attempt in range(attempts):
            if not pinned:
                self.port = free_port()
            self._spawn()
            try:
                self._wait_ready()
                return self
            except PrometheusError:
                port_taken = "address already in use" in self.log_tail().lower()
                self._terminate()
                if not port_taken or attempt == attempts - 1:
                    raise
        return self

    def _spawn(self) -> None:
        self._log_handle = self.log_path.open("ab")
        args = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ]
        self._proc = subprocess.Popen(
            args,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _wait_ready(self) -> None:
        wait_serving(
            self._proc,
            f"{self.url}/-/ready",
            what="Prometheus",
            timeout=self.start_timeout,
            every=0.05,
            log_tail=self.log_tail,
            error=PrometheusError,
        )

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc, timeout=10)
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def stop(self) -> None:
        """Stops the process; the port and data directory stay for ``restart()``."""
        self._terminate()

    def restart(self) -> PrometheusServer:
        """Stops and starts again on the same port with the same data directory."""
        self._terminate()
        return self.start()

    def close(self) -> None:
        """Stops the process and removes the directory when this object created it."""
        self._terminate()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- queries -------------------------------------------------------------------------------

    def _api(self, path: str, params: dict[str, str]) -> Any:
        try:
            resp = requests.get(f"{self.url}{path}", params=params, timeout=5)
        except requests.RequestException as err:
            raise PrometheusError(f"Prometheus unreachable: {err}") from err
        body = resp.json()
        if body.get("status") != "success":
            raise PrometheusError(f"query failed: {body.get('error', body)}")
        return body["data"]

    def query_vector(
        self, promql: str, at: float | None = None
    ) -> list[tuple[dict[str, str], float]]:
        """An instant query: (labels, value) per series (scalars come back unlabelled)."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._api("/api/v1/query", params)
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def query(self, promql: str, at: float | None = None) -> float | None:
        """The single value of an instant query (at ``at``, a Unix time; now without one);
        None when it returns no series or NaN."""
        result = self.query_vector(promql, at)
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusError(f"{promql!r} returned {len(result)} series, expected one")
        value = result[0][1]
        return None if math.isnan(value) else value

    def query_range(
        self, promql: str, start: float, end: float, step: float
    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        data = self._api(
            "/api/v1/query_range",
            {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step}"},
        )
        return [
            (item["metric"], [(float(t), float(v)) for t, v in item["values"]])
            for item in data["result"]
        ]

    def samples(
        self, selector: str, window: str = "1m"
    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        """The raw scraped samples of ``selector`` over the last ``window`` (a range vector)."""
        data = self._api("/api/v1/query", {"query": f"{selector}[{window}]"})
        return [
            (item["metric"], [(float(t), float(v)) for t, v in item["values"]])
            for item in data["result"]
        ]

    def active_targets(self) -> list[dict[str, Any]]:
        data = self._api("/api/v1/targets", {"state": "active"})
        targets: list[dict[str, Any]] = data["activeTargets"]
        return targets

    def wait_for_targets_up(self, targets: list[str], timeout: float = 10.0) -> None:
        """Waits (bounded) until every ``host:port`` in ``targets`` was scraped successfully."""
        deadline = time.monotonic() + timeout
        wanted = set(targets)
        while time.monotonic() < deadline:
            up = {
                t["labels"].get("instance")
                for t in self.active_targets()
                if t.get("health") == "up"
            }
            if wanted <= up:
                return
            time.sleep(0.1)
        raise PrometheusError(f"targets {sorted(wanted)} not up within {timeout} s")
