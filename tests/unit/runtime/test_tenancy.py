"""Tenants kept apart: one namespace's slow or hostile endpoints cannot take the passes or the
query threads the others need, a spec names only the Prometheus the operator allows, a query
waits at most the operator's bound, and a spec is validated off the event loop."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from rollwise.adapters.errors import QueryError
from rollwise.core.observations import revision_of
from rollwise.runtime.loops import PassSlots
from rollwise.runtime.measuring import query_metric
from rollwise.runtime.passes import validated
from rollwise.runtime.query_budget import MAX_MEASUREMENT_ERROR, NamespaceShares, QueryBudget
from tests.unit.runtime.fakes import rollout_body, world


class _Log:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, message: str, **_: Any) -> None:
        self.errors.append(message)


def test_a_namespace_holding_its_pass_slots_leaves_the_others_theirs() -> None:
    async def scenario() -> list[str]:
        slots = PassSlots(4, per_namespace=2)
        release = asyncio.Event()
        order: list[str] = []

        async def stuck(i: int) -> None:
            async with slots.slot("noisy"):
                order.append(f"noisy-{i}")
                await release.wait()

        async def normal() -> None:
            async with slots.slot("quiet"):
                order.append("quiet")

        noisy = [asyncio.create_task(stuck(i)) for i in range(6)]
        await asyncio.sleep(0.05)
        await asyncio.wait_for(normal(), timeout=5)
        running_noisy = sum(1 for entry in order if entry.startswith("noisy"))
        release.set()
        await asyncio.gather(*noisy)
        return [*order[: running_noisy + 1], f"noisy-at-once={running_noisy}"]

    result = asyncio.run(scenario())
    assert result[-1] == "noisy-at-once=2"
    assert "quiet" in result


def test_without_a_namespace_bound_one_namespace_can_take_every_slot() -> None:
    """The case the bound exists for (``per_namespace`` None: the old behaviour)."""

    async def scenario() -> bool:
        slots = PassSlots(4)
        release = asyncio.Event()

        async def stuck() -> None:
            async with slots.slot("noisy"):
                await release.wait()

        noisy = [asyncio.create_task(stuck()) for _ in range(6)]
        await asyncio.sleep(0.05)

        async def normal() -> None:
            async with slots.slot("quiet"):
                pass

        try:
            await asyncio.wait_for(normal(), timeout=0.3)
            got_in = True
        except TimeoutError:
            got_in = False
        release.set()
        await asyncio.gather(*noisy)
        return got_in

    assert asyncio.run(scenario()) is False


def test_a_namespace_whose_queries_hang_leaves_the_other_namespaces_their_threads() -> None:
    budget = QueryBudget(4, per_namespace=2, max_timeout=30.0)
    hang = threading.Event()
    started: list[str] = []

    def black_hole() -> float:
        started.append("noisy")
        hang.wait(10)
        return 0.0

    def answer() -> float:
        return 1.0

    async def scenario() -> float:
        noisy = [asyncio.create_task(budget.run("noisy", black_hole)) for _ in range(8)]
        await asyncio.sleep(0.05)
        value = await asyncio.wait_for(budget.run("quiet", answer), timeout=5)
        hang.set()
        await asyncio.gather(*noisy)
        return value

    try:
        assert asyncio.run(scenario()) == 1.0
        assert len(started) == 8
    finally:
        hang.set()
        budget.close()


def test_a_spec_is_validated_off_the_event_loop_with_a_time_bound() -> None:
    calls: list[int] = []

    def slow(raw: dict[str, Any]) -> tuple[object | None, list[str]]:
        calls.append(1)
        time.sleep(1.0)
        return object(), []

    class Memory:
        validated: tuple[str, int, Any, list[str]] | None = None

    async def scenario() -> tuple[tuple[object | None, list[str]], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        log = _Log()
        memory = Memory()
        got = await validated(memory, "uid", 3, {}, slow, log=log, timeout=0.2)
        again = await validated(memory, "uid", 3, {}, slow, log=log, timeout=0.2)
        assert again == got, "one validation per generation"
        task.cancel()
        return got, ticks

    (spec, errors), ticks = asyncio.run(scenario())
    assert spec is None
    assert errors == ["spec: validation did not finish within 0.2s"]
    assert ticks > 3, "the event loop kept running while the spec was validated"
    assert calls == [1]


def test_a_spec_naming_a_prometheus_the_operator_does_not_allow_is_invalid() -> None:
    body = rollout_body()
    metric = body["spec"]["strategy"]["canary"]["analysis"]["metrics"][0]
    metric["provider"]["prometheus"]["address"] = "http://169.254.169.254:80"
    w = world(body)
    w.ports.allowed_prometheus = frozenset({"http://prometheus:9090"})
    w.run()
    conditions = {c["type"]: c["status"] for c in w.status["conditions"]}
    assert conditions["InvalidSpec"] == "True"
    assert "is not a Prometheus this operator may query" in w.status["message"]
    assert w.workloads.deployments == {}
    assert "http://169.254.169.254:80" not in w.providers, "nothing is sent to that host"


def test_an_allowed_address_is_queried() -> None:
    body = rollout_body()
    metric = body["spec"]["strategy"]["canary"]["analysis"]["metrics"][0]
    metric["provider"]["prometheus"]["address"] = "http://other:9090/"
    w = world(body)
    w.ports.allowed_prometheus = frozenset({"http://prometheus:9090", "http://other:9090"})
    w.settle(lambda r: w.status.get("phase") == "Healthy")
    assert w.provider("http://other:9090/").parsed


@pytest.mark.parametrize(
    ("timeout", "sent"),
    [
        pytest.param("5s", 5.0, id="within-the-bound"),
        pytest.param("1h", 30.0, id="capped"),
    ],
)
def test_a_query_waits_at_most_the_operators_bound(timeout: str, sent: float) -> None:
    body = rollout_body()
    metric = body["spec"]["strategy"]["canary"]["analysis"]["metrics"][0]
    metric["provider"]["prometheus"]["timeout"] = timeout
    w = world(body)
    seen: list[float] = []
    provider = w.provider()
    original = provider.query

    def query(text: str, timeout_s: float) -> float | None:
        seen.append(timeout_s)
        return original(text, timeout_s)

    provider.query = query  # type: ignore[method-assign]
    w.settle(lambda r: w.status.get("phase") == "Healthy")
    w.cluster.edit_image("demo:2")
    w.settle(lambda r: "AnalysisPassed" in w.cluster.reasons)
    assert seen
    assert set(seen) == {sent}


def web_body() -> dict[str, Any]:
    body = rollout_body()
    body["spec"]["strategy"]["canary"]["analysis"]["metrics"][0]["provider"] = {
        "web": {
            "name": "slo",
            "path": "/errors?revision={{canaryRevision}}",
            "jsonPath": "$.data.value",
        }
    }
    return body


def test_a_web_metric_is_asked_of_the_named_provider_with_its_path_rendered() -> None:
    w = world(web_body())
    w.ports.web_providers = frozenset({"slo"})
    w.settle(lambda r: w.status.get("phase") == "Healthy")
    w.cluster.edit_image("demo:2")
    w.settle(lambda r: "AnalysisPassed" in w.cluster.reasons)
    asked = [json.loads(q) for q in w.provider("web:slo").queries]
    new = revision_of(rollout_body("demo:2")["spec"]["template"])
    assert asked[0] == {
        "method": "GET",
        "path": f"/errors?revision={new}",
        "body": None,
        "jsonPath": "$.data.value",
    }
    assert w.provider("web:slo").parsed == [], "only Prometheus parses queries"


def test_a_web_provider_the_operator_does_not_offer_is_an_invalid_spec() -> None:
    w = world(web_body())
    w.ports.web_providers = frozenset({"datadog"})
    w.run()
    assert "is not a web provider of this operator" in w.status["message"]
    assert w.workloads.deployments == {}
    assert "web:slo" not in w.providers


@pytest.mark.parametrize(
    ("limit", "refusal"),
    [
        pytest.param(None, None, id="no-bound"),
        pytest.param(1, None, id="share-of-1-allowed"),
        pytest.param(0, "a namespace's share must be at least 1, not 0", id="share-of-0-refused"),
    ],
)
def test_a_namespace_share_is_at_least_one(limit: int | None, refusal: str | None) -> None:
    if refusal is None:
        assert NamespaceShares(limit).limit == limit
    else:
        with pytest.raises(ValueError, match=f"^{refusal}$"):
            NamespaceShares(limit)


@pytest.mark.parametrize(
    ("threads", "refusal"),
    [
        pytest.param(1, None, id="one-thread-allowed"),
        pytest.param(0, "queries need at least one thread, not 0", id="no-thread-refused"),
    ],
)
def test_queries_need_at_least_one_thread(threads: int, refusal: str | None) -> None:
    if refusal is None:
        QueryBudget(threads).close()
    else:
        with pytest.raises(ValueError, match=f"^{refusal}$"):
            QueryBudget(threads)


def test_a_providers_long_error_is_clipped_before_it_reaches_the_status() -> None:
    """However long a provider's error, a measurement carries at most
    ``MAX_MEASUREMENT_ERROR`` characters of it."""
    body = rollout_body()
    w = world(body)
    provider = w.provider()

    def query(text: str, timeout_s: float) -> float | None:
        raise QueryError("x" * 20_000)

    w.settle(lambda r: w.status.get("phase") == "Healthy")
    provider.query = query  # type: ignore[method-assign]
    w.cluster.edit_image("demo:2")
    w.settle(
        lambda r: any(m["measurements"] for m in w.status.get("analysis", {}).get("metrics", []))
    )
    [metric] = w.status["analysis"]["metrics"]
    errors = [m["message"] for m in metric["measurements"] if m.get("error")]
    assert errors, metric
    assert all(e.count("x") <= MAX_MEASUREMENT_ERROR for e in errors), [len(e) for e in errors]
    assert all(len(e) < MAX_MEASUREMENT_ERROR + 100 for e in errors)
    assert "..." in errors[0]
    assert "x" * (MAX_MEASUREMENT_ERROR + 1) not in json.dumps(w.status)


class Said:
    """A logger that keeps what it was told."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))


def test_a_providers_long_error_is_clipped_in_the_log_line_too() -> None:
    class Failing:
        def query(self, text: str, timeout: float) -> float | None:
            raise QueryError("x" * 20_000)

    said = Said()
    measured = asyncio.run(
        query_metric(
            Failing(),  # type: ignore[arg-type]
            "up",
            timeout=1.0,
            now=datetime.now(UTC),
            metrics=None,
            log=said,
            name="error-ratio",
        )
    )
    assert measured.error is not None
    assert len(measured.error) <= MAX_MEASUREMENT_ERROR
    [(event, fields)] = said.lines
    assert event == "metric query failed"
    assert len(fields["error"]) <= MAX_MEASUREMENT_ERROR
