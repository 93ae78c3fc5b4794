"""Processes the lab, its tests and its benchmarks start: waiting until one serves, stopping one."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from typing import Any

import requests


def stop_process(proc: subprocess.Popen[Any], *, timeout: float, kill_after: float = 5.0) -> int:
    """Stops ``proc`` the way a supervisor does: SIGTERM, up to ``timeout`` seconds to exit,
    then SIGKILL (and up to ``kill_after`` seconds more). Returns its exit status; a process
    that already exited is left as it is."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=kill_after)
    return int(proc.returncode)


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
