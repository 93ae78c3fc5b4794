"""Server processes the lab starts (Prometheus, MLflow): waiting until one serves."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable

import requests


def wait_serving(
    proc: subprocess.Popen[bytes] | None,
    url: str,
    *,
    what: str,
    timeout: float,
    every: float,
    log_tail: Callable[[], str],
    error: type[Exception],
) -> None:
    """Polls ``url`` until it answers 200; raises ``error`` with the log's tail when the
    process exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is None or proc.poll() is not None:
            raise error(f"{what} exited on start:\n{log_tail()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(every)
    raise error(f"{what} not ready within {timeout:.0f} s:\n{log_tail()}")
