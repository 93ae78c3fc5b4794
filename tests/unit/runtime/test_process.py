"""The process-level pieces: log lines, the metrics registry, the loop's wake-up rules."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import logging.handlers
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any

import pytest

from rollwise.runtime import logging as rlog
from rollwise.runtime.loops import (
    EssenceFreeDiffBaseStorage,
    PassSlots,
    diffbase_storage,
    operator_settings,
    pass_loop,
    sleep_until_woken,
)
from rollwise.runtime.metrics import OperatorMetrics
from rollwise.runtime.passes import log_event
from rollwise.runtime.rollout.handlers import deployment_fingerprint, rollout_fingerprint
from rollwise.runtime.settings import LogFormat


@pytest.fixture
def restore_logging() -> Any:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_json_lines_carry_the_rollout_and_kopf_goes_through_the_same_renderer(
    restore_logging: None,
) -> None:
    stream = io.StringIO()
    rlog.configure(LogFormat.JSON, stream=stream)
    rlog.rollout_logger("shop", "demo", "abc123").info("weight set", weight=5)
    logging.getLogger("kopf.activities.startup").warning("kopf says %s", "hi")
    logging.getLogger("kopf.objects").info("handler chatter")  # below kopf.objects' level
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2
    mine, kopfs = lines
    assert mine["event"] == "weight set"
    assert mine["weight"] == 5
    assert (mine["namespace"], mine["rollout"], mine["revision"]) == ("shop", "demo", "abc123")
    assert mine["level"] == "info"
    assert mine["timestamp"].endswith("Z")
    assert kopfs["event"] == "kopf says hi"
    assert kopfs["level"] == "warning"


def test_background_logging_writes_every_line_in_order_from_another_thread(
    restore_logging: None,
) -> None:
    stream = io.StringIO()
    rlog.configure(LogFormat.JSON, stream=stream, background=True)
    root = logging.getLogger()
    (handoff,) = root.handlers
    assert isinstance(handoff, logging.handlers.QueueHandler)  # the caller only queues
    log = rlog.rollout_logger("shop", "demo", "abc123")
    for index in range(200):
        log.info("step", index=index)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    rlog.configure(LogFormat.JSON, stream=io.StringIO())  # stops the writer, flushing it
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["index"] for line in lines[:200]] == list(range(200))
    assert lines[200]["event"] == "failed"
    assert "ValueError: boom" in lines[200]["exception"]
    assert len(lines) == 201


def test_console_format_is_readable(restore_logging: None) -> None:
    stream = io.StringIO()
    rlog.configure(LogFormat.CONSOLE, stream=stream)
    rlog.rollout_logger("shop", "demo", "r1").info("hello")
    text = stream.getvalue()
    assert "hello" in text
    assert "rollout=demo" in text
    assert not text.startswith("{")


def test_rollouts_gauge_counts_phases_and_forget_drops_series() -> None:
    m = OperatorMetrics()
    m.observe_status("a", "one", "Healthy", 0)
    m.observe_status("a", "two", "Progressing", 25)
    m.observe_status("a", "one", "Progressing", 5)
    assert m.sample("rollwise_rollouts", {"phase": "Progressing"}) == 2
    assert m.sample("rollwise_rollouts", {"phase": "Healthy"}) == 0
    m.measured("a", "two", "error-ratio", "Pass")
    m.rolled_back("a", "two")
    m.forget("a", "two")
    assert m.sample("rollwise_rollouts", {"phase": "Progressing"}) == 1
    names = set(m.series())
    labels = {"namespace": "a", "rollout": "two"}
    assert m.sample("rollwise_rollout_canary_weight", labels) is None
    assert m.sample("rollwise_rollbacks_total", {**labels, "reason": "RolledBack"}) is None
    assert (
        m.sample(
            "rollwise_analysis_measurements_total",
            {**labels, "metric": "error-ratio", "verdict": "Pass"},
        )
        is None
    )
    assert "rollwise_reconcile_duration_seconds_count" in names


def test_info_gauges_keep_one_series_per_object_and_rollbacks_split_by_reason() -> None:
    m = OperatorMetrics()
    m.observe_status("a", "one", "Progressing", 5, "gatewayAPI")
    m.observe_status("a", "one", "Degraded", 0, "gatewayAPI")
    info = {"namespace": "a", "rollout": "one", "router": "gatewayAPI"}
    assert m.sample("rollwise_rollout_info", {**info, "phase": "Degraded"}) == 1
    assert m.sample("rollwise_rollout_info", {**info, "phase": "Progressing"}) is None
    m.rolled_back("a", "one", "RolledBack")
    m.rolled_back("a", "one", "Aborted")
    m.rolled_back("a", "one", "Aborted")
    base = {"namespace": "a", "rollout": "one"}
    assert m.sample("rollwise_rollbacks_total", {**base, "reason": "RolledBack"}) == 1
    assert m.sample("rollwise_rollbacks_total", {**base, "reason": "Aborted"}) == 2
    m.forget("a", "one")
    assert m.sample("rollwise_rollout_info", {**info, "phase": "Degraded"}) is None
    assert m.sample("rollwise_rollbacks_total", {**base, "reason": "Aborted"}) is None

    m.observe_release("ml", "fraud-7", "Staging", model="fraud", version="7")
    m.observe_release("ml", "fraud-7", "Production", model="fraud", version="7")
    rel = {"namespace": "ml", "release": "fraud-7", "model": "fraud", "version": "7"}
    assert m.sample("rollwise_model_release_info", {**rel, "stage": "Production"}) == 1
    assert m.sample("rollwise_model_release_info", {**rel, "stage": "Staging"}) is None
    m.observe_release("ml", "fraud-7", None)
    assert m.sample("rollwise_model_release_info", {**rel, "stage": "Production"}) is None


def test_warning_events_are_logged_at_warning_level() -> None:
    stream = io.StringIO()
    rlog.configure(LogFormat.JSON, stream=stream)
    log = rlog.rollout_logger("shop", "demo", "r1")
    log_event(log, "Warning", "rolled back", reason="RolledBack")
    log_event(log, "Normal", "step advanced", reason="StepAdvanced")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["event"], line["level"]) for line in lines] == [
        ("rolled back", "warning"),
        ("step advanced", "info"),
    ]


def test_status_writes_do_not_change_the_rollout_fingerprint() -> None:
    body: dict[str, Any] = {
        "metadata": {"generation": 3, "annotations": {"other": "x"}, "resourceVersion": "10"},
        "status": {"phase": "Progressing"},
    }
    before = rollout_fingerprint(body)
    body["status"] = {"phase": "Healthy"}
    body["metadata"]["resourceVersion"] = "11"
    body["metadata"]["annotations"]["other"] = "y"
    assert rollout_fingerprint(body) == before
    body["metadata"]["annotations"]["rollwise.dev/promote"] = "p1"
    assert rollout_fingerprint(body) != before
    promoted = rollout_fingerprint(body)
    # A recorded approval wakes the pass too: the approval step may go on.
    body["metadata"]["annotations"]["rollwise.dev/approvals"] = "[]"
    assert rollout_fingerprint(body) != promoted
    moved = {"metadata": {"generation": 4, "annotations": {}}}
    assert rollout_fingerprint(moved) != before


def test_deployment_fingerprint_follows_replicas_and_readiness() -> None:
    dep: dict[str, Any] = {"metadata": {"generation": 1}, "spec": {"replicas": 1}, "status": {}}
    before = deployment_fingerprint(dep)
    dep["metadata"]["annotations"] = {"x": "y"}
    assert deployment_fingerprint(dep) == before
    dep["status"]["availableReplicas"] = 1
    assert deployment_fingerprint(dep) != before


class _NeverStopped:
    async def wait(self) -> None:
        await asyncio.sleep(3600)


def test_sleep_returns_on_wake_or_timeout() -> None:
    async def scenario() -> tuple[float, float]:
        wake = asyncio.Event()
        began = time.monotonic()
        await sleep_until_woken(wake, _NeverStopped(), 0.05)  # type: ignore[arg-type]
        timed = time.monotonic() - began
        asyncio.get_running_loop().call_later(0.05, wake.set)
        began = time.monotonic()
        await sleep_until_woken(wake, _NeverStopped(), 30)  # type: ignore[arg-type]
        return timed, time.monotonic() - began

    timed, woken = asyncio.run(scenario())
    assert 0.04 <= timed < 1
    assert woken < 1


def test_kopf_settings_keep_kopf_off_the_status() -> None:
    s = operator_settings("rollwise-0")
    assert s.persistence.finalizer == "rollwise.dev/finalizer"
    assert type(s.persistence.progress_storage).__name__ == "AnnotationsProgressStorage"
    assert type(s.persistence.diffbase_storage).__name__ == "AnnotationsDiffBaseStorage"
    assert s.posting.level == logging.WARNING
    assert s.watching.server_timeout == 60


def test_diffbase_storage_builds_no_essence_only_without_change_handlers() -> None:
    import kopf  # noqa: PLC0415

    registry = kopf.OperatorRegistry()

    @kopf.on.event("rollwise.dev", "v1alpha1", "rollouts", registry=registry)
    def seen(**_: Any) -> None: ...

    storage = diffbase_storage(registry)
    assert isinstance(storage, EssenceFreeDiffBaseStorage)
    body = kopf.Body({"metadata": {"name": "a"}, "spec": {"replicas": 3}})
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None

    @kopf.on.update("rollwise.dev", "v1alpha1", "rollouts", registry=registry)
    def updated(**_: Any) -> None: ...

    storage = diffbase_storage(registry)
    assert not isinstance(storage, EssenceFreeDiffBaseStorage)
    assert storage.build(body=body) == {"spec": {"replicas": 3}}


def test_served_metrics_endpoint_answers() -> None:
    m = OperatorMetrics()
    m.status_written()
    assert m.serve(0) == 0  # ROLLWISE_METRICS_PORT=0 turns the endpoint off

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    bound = m.serve(port, address="127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{bound}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    finally:
        m.stop()
    assert "rollwise_status_writes_total 1.0" in text
    assert 'rollwise_rollouts{phase="Healthy"} 0.0' in text


class _StopAfter:
    """A daemon-stopped flag that turns true after ``passes`` passes of one loop."""

    def __init__(self, passes: int) -> None:
        self.left = passes

    def __bool__(self) -> bool:
        return self.left <= 0

    async def wait(self) -> None:
        await asyncio.sleep(3600)


class _Result:
    gone = False
    requeue_after = 0.0


class _Memory:
    failures = 0


def test_pass_slots_bound_the_passes_in_flight_and_every_loop_gets_its_turn() -> None:
    async def scenario() -> tuple[int, list[str]]:
        slots = PassSlots(2)
        running, peak, done = 0, 0, []

        async def loop(name: str) -> None:
            stopped = _StopAfter(2)

            async def run_pass() -> _Result:
                nonlocal running, peak
                running += 1
                peak = max(peak, running)
                await asyncio.sleep(0.01)
                running -= 1
                stopped.left -= 1
                done.append(name)
                return _Result()

            await pass_loop(
                run_pass,
                _Memory(),
                asyncio.Event(),
                stopped,  # type: ignore[arg-type]
                resync_seconds=1.0,
                log=None,
                slots=slots,
            )

        await asyncio.gather(*(loop(f"r{i}") for i in range(7)))
        return peak, done

    peak, done = asyncio.run(scenario())
    assert peak == 2
    assert sorted(done) == sorted([f"r{i}" for i in range(7)] * 2)


def test_pass_slots_refuse_a_limit_below_one() -> None:
    with pytest.raises(ValueError, match="at least one pass"):
        PassSlots(0)


def test_tune_gc_freezes_what_start_up_made_and_raises_the_young_threshold() -> None:
    """In a process of its own: a frozen object stays for the process's life."""
    script = """
import gc
from rollwise.runtime.main import GC_YOUNG_THRESHOLD, tune_gc
middle, old = gc.get_threshold()[1:]
assert gc.get_freeze_count() == 0
tune_gc()
assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()
assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, middle, old), gc.get_threshold()
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
