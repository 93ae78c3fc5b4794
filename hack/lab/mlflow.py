"""A real MLflow tracking server (model registry) for the lab and its tests.

``MLflowServer`` runs ``mlflow server`` from its own virtualenv (``.venv-mlflow``, built by
``make test``; MLflow is a separate server in production too, and its dependency pins stay out
of the operator's environment) on a free loopback port, with a sqlite backend store and a local
artifact directory under ``data_dir``. ``stop()``/``restart()`` keep the port and the data, so a
test can take the registry away and bring it back (an outage at flip time) with the same
models. Telemetry is off and nothing else is reached over the network.

``register_model``/``create_version`` populate the registry through the REST API, as a
training pipeline would. A model version needs a ``source`` the server accepts: it refuses a
local path that is not inside a run's artifacts, so by default each version gets a run of its
own (in one experiment per server) and its source is ``<run artifact URI>/model``, with the
run's id. The artifact itself is never written: the registry does not look at it.

This module only runs and populates MLflow; the operator's side is
``rollwise.adapters.registry.mlflow``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from hack.lab.processes import wait_serving
from hack.lab.prometheus import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
MLFLOW_VENV = Path(os.environ.get("LAB_MLFLOW_VENV", REPO_ROOT / ".venv-mlflow"))
MLFLOW_BINARY = MLFLOW_VENV / "bin" / "mlflow"
DIGEST_TAG = "rollwise.dev/digest"
_API = "/api/2.0/mlflow"


class MLflowError(RuntimeError):
    """MLflow is not installed, did not start, or refused a request of the lab."""


def mlflow_missing_message() -> str:
    return (
        f"MLflow is not installed at {MLFLOW_VENV} (its own virtualenv): run `make test`, or "
        "`make .venv-mlflow/.installed` to build just that"
    )


class MLflowServer:
    """One MLflow tracking server with a sqlite registry under ``data_dir``."""

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        port: int = 0,
        start_timeout: float = 90.0,
        binary: str | Path = MLFLOW_BINARY,
    ) -> None:
        self._own_dir = data_dir is None
        self.dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="lab-mlflow-"))
        self.port = port
        self.start_timeout = start_timeout
        self.binary = Path(binary)
        self.start_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_handle: Any = None
        self._experiment_id: str | None = None
        self.session = requests.Session()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.dir / "mlflow.log"

    # -- process -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> MLflowServer:
        if self.running:
            return self
        if not self.binary.exists():
            raise MLflowError(mlflow_missing_message())
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "artifacts").mkdir(exist_ok=True)
        if self.port == 0:
            self.port = free_port()
        began = time.monotonic()
        self._spawn()
        try:
            self._wait_healthy()
        except MLflowError:
            self._terminate()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def _env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("MLFLOW_", "VIRTUAL_ENV", "PYTHON"))
        }
        env.update(
            {
                "MLFLOW_DISABLE_TELEMETRY": "true",
                "DO_NOT_TRACK": "true",
                # The job runner (a huey consumer process for GenAI jobs) is of no use to a
                # model registry and would double the processes and the start time.
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                "NO_PROXY": "127.0.0.1,localhost",
                "PATH": f"{self.binary.parent}:{env.get('PATH', '/usr/bin:/bin')}",
            }
        )
        return env

    def _spawn(self) -> None:
        self._log_handle = self.log_path.open("ab")
        args = [
            str(self.binary),
            "server",
            "--backend-store-uri",
            f"sqlite:///{self.dir / 'mlflow.db'}",
            "--artifacts-destination",
            str(self.dir / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        self._proc = subprocess.Popen(
            args,
            cwd=self.dir,
            env=self._env(),
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _wait_healthy(self) -> None:
        wait_serving(
            self._proc,
            f"{self.url}/health",
            what="MLflow",
            timeout=self.start_timeout,
            every=0.2,
            log_tail=self.log_tail,
            error=MLflowError,
        )

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            # The server runs workers in its process group: stop them all.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def stop(self) -> None:
        """Stops the server; port and data stay for ``restart()``."""
        self._terminate()

    def restart(self) -> MLflowServer:
        """Stops and starts again on the same port with the same data."""
        self._terminate()
        return self.start()

    def close(self) -> None:
        self._terminate()
        self.session.close()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> MLflowServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- REST helpers (what a training pipeline does) ------------------------------------------

    def api(self, method: str, endpoint: str, body: dict[str, Any] | None = None) -> Any:
        """One REST call; raises ``MLflowError`` with the server's answer unless 2xx."""
        kwargs: dict[str, Any] = {"params": body} if method == "GET" else {"json": body}
        resp = self.session.request(method, f"{self.url}{_API}/{endpoint}", timeout=10, **kwargs)
        if not resp.ok:
            raise MLflowError(f"MLflow {method} {endpoint}: {resp.status_code} {resp.text[:500]}")
        return resp.json() if resp.content else {}

    def experiment_id(self) -> str:
        """The lab's experiment (created on first use)."""
        if self._experiment_id is None:
            name = "rollwise-lab"
            try:
                found = self.api("GET", "experiments/get-by-name", {"experiment_name": name})
                self._experiment_id = str(found["experiment"]["experiment_id"])
            except MLflowError:
                created = self.api("POST", "experiments/create", {"name": name})
                self._experiment_id = str(created["experiment_id"])
        return self._experiment_id

    def register_model(self, name: str) -> None:
        self.api("POST", "registered-models/create", {"name": name})

    def create_version(
        self, model: str, *, digest: str | None = None, source: str | None = None
    ) -> dict[str, Any]:
        """A new version of ``model`` (registered first when new); returns the model version
        (``version``, ``source``, ``tags``...). Without ``source``, a run of its own provides
        one; ``digest`` becomes the ``rollwise.dev/digest`` tag."""
        with contextlib.suppress(MLflowError):
            self.register_model(model)
        body: dict[str, Any] = {"name": model}
        if source is None:
            run = self.api(
                "POST", "runs/create", {"experiment_id": self.experiment_id(), "run_name": model}
            )["run"]["info"]
            body["run_id"] = run["run_id"]
            source = f"{run['artifact_uri']}/model"
        body["source"] = source
        if digest is not None:
            body["tags"] = [{"key": DIGEST_TAG, "value": digest}]
        version: dict[str, Any] = self.api("POST", "model-versions/create", body)["model_version"]
        return version


__all__ = ["DIGEST_TAG", "MLFLOW_BINARY", "MLFLOW_VENV", "MLflowError", "MLflowServer"]
