"""The Prometheus metric provider against a real Prometheus (the lab's, scraping demo services),
and against canned HTTP answers only for what a real server cannot be made to send (a body
that is not the API's JSON, a proxy's 502, an answer slower than the timeout)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from aiohttp import web

from hack.lab._support import BackgroundLoop
from hack.lab.prometheus import PrometheusServer
from hack.lab.service import DemoService
from rollwise.adapters.errors import ProviderUnavailable, QueryError, QueryRefused
from rollwise.adapters.metrics import MetricProvider, PrometheusProvider
from rollwise.core.querycheck import render_for_check, sample_context

pytestmark = pytest.mark.lab


@pytest.fixture
def provider(prometheus: PrometheusServer) -> Iterator[PrometheusProvider]:
    made = PrometheusProvider(prometheus.url)
    yield made
    made.close()


def _hit(demo: DemoService, n: int) -> None:
    with requests.Session() as session:
        for _ in range(n):
            session.get(demo.url + "/", timeout=2)


def test_a_scraped_counter_is_one_float(
    provider: PrometheusProvider, demo_service: DemoService
) -> None:
    assert isinstance(provider, MetricProvider)
    _hit(demo_service, 4)
    query = f'sum(http_requests_total{{revision="{demo_service.revision}"}})'
    deadline = time.monotonic() + 10
    value = provider.query(query, timeout_s=5)
    while value != 4.0 and time.monotonic() < deadline:
        time.sleep(0.1)
        value = provider.query(query, timeout_s=5)
    assert value == 4.0
    assert provider.is_online()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("vector(1)", 1.0, id="vector-one-sample"),
        pytest.param("scalar(vector(3))", 3.0, id="scalar-function"),
        pytest.param("42", 42.0, id="scalar-literal"),
        pytest.param('http_requests_total{revision="no-such-revision"}', None, id="empty-vector"),
    ],
)
def test_result_shapes(provider: PrometheusProvider, query: str, expected: float | None) -> None:
    assert provider.query(query, timeout_s=5) == expected


@pytest.mark.parametrize(
    ("query", "check"),
    [
        pytest.param("0/0", math.isnan, id="nan"),
        pytest.param("vector(0)/0", math.isnan, id="nan-vector"),
        pytest.param("1/0", lambda v: v == math.inf, id="plus-inf"),
        pytest.param("-1/0", lambda v: v == -math.inf, id="minus-inf"),
    ],
)
def test_non_finite_values_are_returned_as_floats(
    provider: PrometheusProvider, query: str, check: Callable[[float], bool]
) -> None:
    value = provider.query(query, timeout_s=5)
    assert value is not None
    assert check(value)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        pytest.param("sum(", "parse error", id="syntax-error"),
        pytest.param(
            'vector(1) or label_replace(vector(2), "x", "y", "", "")',
            "returned 2 series",
            id="several-series",
        ),
        pytest.param("up[1m]", "range vector", id="range-vector"),
        pytest.param('"text"', "non-numeric", id="string"),
    ],
)
def test_bad_queries_are_query_errors(
    provider: PrometheusProvider, query: str, message: str
) -> None:
    with pytest.raises(QueryError, match=message) as got:
        provider.query(query, timeout_s=5)
    assert not got.value.retryable


def test_syntax_error_carries_prometheus_message(provider: PrometheusProvider) -> None:
    with pytest.raises(QueryError) as got:
        provider.query("rate(http_requests_total[5m]", timeout_s=5)
    assert "bad_data" in str(got.value)
    assert "unclosed left parenthesis" in str(got.value)


def test_stopped_server_is_unavailable(
    prometheus_factory: Callable[..., PrometheusServer],
) -> None:
    prom = prometheus_factory([])
    provider = PrometheusProvider(prom.url)
    assert provider.query("vector(1)", timeout_s=5) == 1.0
    prom.stop()
    with pytest.raises(ProviderUnavailable) as got:
        provider.query("vector(1)", timeout_s=5)
    assert got.value.retryable
    assert not provider.is_online()
    provider.close()


# --------------------------------------------------------------------------- canned answers


@dataclass
class Canned:
    """A tiny HTTP server on 127.0.0.1 answering ``/api/v1/query`` with a set response."""

    loop: BackgroundLoop
    status: int = 200
    body: str = ""
    delay: float = 0.0
    seen: list[dict[str, str]] = field(default_factory=list)
    url: str = ""
    _runner: Any = None

    async def _answer(self, request: web.Request) -> web.Response:
        self.seen.append(dict(request.query))
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(status=self.status, text=self.body, content_type="application/json")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/v1/query", self._answer)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        await self._runner.cleanup()


@pytest.fixture
def canned(lab_loop: BackgroundLoop) -> Iterator[Canned]:
    server = Canned(lab_loop)
    lab_loop.run(server.start())
    yield server
    lab_loop.run(server.stop())


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        pytest.param(200, "<html>login</html>", ProviderUnavailable, "unreadable", id="html-200"),
        pytest.param(200, '{"status": "success"}', ProviderUnavailable, "unreadable", id="no-data"),
        pytest.param(502, "bad gateway", ProviderUnavailable, "502", id="proxy-502"),
        pytest.param(
            503,
            '{"status":"error","errorType":"timeout","error":"query timed out in expression'
            ' evaluation"}',
            ProviderUnavailable,
            "timeout: query timed out",
            id="query-timeout-503",
        ),
        pytest.param(
            422,
            '{"status":"error","errorType":"execution","error":"many-to-many matching not'
            ' allowed"}',
            QueryError,
            "execution: many-to-many",
            id="execution-422",
        ),
    ],
)
def test_odd_answers(
    canned: Canned, status: int, body: str, error: type[Exception], message: str
) -> None:
    canned.status, canned.body = status, body
    provider = PrometheusProvider(canned.url)
    with pytest.raises(error, match=message):
        provider.query("up", timeout_s=2)
    provider.close()


def test_timeout_is_sent_to_prometheus_and_bounds_the_request(canned: Canned) -> None:
    canned.body = '{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}'
    provider = PrometheusProvider(canned.url)
    assert provider.query("up", timeout_s=0.5) == 2.0
    assert canned.seen[-1] == {"query": "up", "timeout": "0.5s"}

    canned.delay = 3.0
    began = time.monotonic()
    with pytest.raises(ProviderUnavailable, match=r"within 0\.5s"):
        provider.query("up", timeout_s=0.5)
    assert time.monotonic() - began < 3.0
    provider.close()


# ------------------------------------------------------------------ parse (checked before traffic)


@pytest.mark.parametrize(
    "query",
    [
        pytest.param('sum(rate(http_requests_total{service="x"}[30s]))', id="rate-sum"),
        pytest.param('http_requests_total{service="x"}', id="several-series-later"),
        pytest.param("vector(1) / on() group_left vector(1)", id="vector-matching"),
    ],
)
def test_a_query_that_parses_passes_the_check(provider: PrometheusProvider, query: str) -> None:
    provider.parse(query, timeout_s=5)


@pytest.mark.parametrize(
    ("query", "where"),
    [
        pytest.param('sum(rate(http_requests_total{service="x"[30s]))', "1:", id="unclosed-brace"),
        pytest.param("sum(rate(foo[5x]))", "1:", id="bad-duration"),
        pytest.param("sum by (a) (", "1:", id="truncated"),
    ],
)
def test_a_query_that_does_not_parse_is_refused_with_the_position(
    provider: PrometheusProvider, query: str, where: str
) -> None:
    with pytest.raises(QueryRefused) as refused:
        provider.parse(query, timeout_s=5)
    assert "bad_data" in refused.value.message
    assert where in refused.value.message
    assert "parse error" in refused.value.message


COMPARE = 'sum(rate(http_requests_total{revision="{{revision}}",code=~"5.."}[1m]))'
BURN_BAD = (
    'sum(increase(http_requests_total{revision="{{canaryRevision}}",code=~"5.."}[{{window}}]))'
)


@pytest.mark.parametrize(
    ("field", "template", "parses"),
    [
        pytest.param("compare.query", COMPARE, True, id="compare"),
        pytest.param("sloBurnRate.badQuery", BURN_BAD, True, id="burn-rate"),
        pytest.param("compare.query", COMPARE.replace("[1m]", "[1m"), False, id="compare-broken"),
        pytest.param(
            "sloBurnRate.totalQuery", BURN_BAD.replace("sum(", "sum(("), False, id="burn-broken"
        ),
    ],
)
def test_compare_and_burn_rate_queries_are_checked_as_rendered_for_the_check(
    provider: PrometheusProvider, field: str, template: str, parses: bool
) -> None:
    """The sample {{revision}} and {{window}} give PromQL that Prometheus parses, so a refusal
    is the query's own fault."""
    query = render_for_check(field, template, sample_context("shop", "web", "s", "c"))
    if parses:
        provider.parse(query, timeout_s=5)
        return
    with pytest.raises(QueryRefused) as refused:
        provider.parse(query, timeout_s=5)
    assert "parse error" in refused.value.message


def test_the_check_of_an_unreachable_prometheus_is_unavailable_not_a_refusal() -> None:
    made = PrometheusProvider("http://127.0.0.1:9")
    try:
        with pytest.raises(ProviderUnavailable):
            made.parse("vector(1)", timeout_s=1)
    finally:
        made.close()


# ---------------------------------------------------------- answers a tenant's host could send


@dataclass
class Hostile:
    """A server no real Prometheus would be: endless bodies, trickled bytes, redirects."""

    url: str = ""
    _runner: Any = None

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        answer = web.StreamResponse(headers={"Content-Type": "application/json"})
        await answer.prepare(request)
        chunk = b" " * (1 << 20)
        try:
            for _ in range(2048):  # 2 GiB unless the client stops reading
                await answer.write(chunk)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return answer

    async def _trickle(self, request: web.Request) -> web.StreamResponse:
        answer = web.StreamResponse(headers={"Content-Type": "application/json"})
        await answer.prepare(request)
        try:
            for _ in range(600):
                await answer.write(b" ")
                await asyncio.sleep(0.1)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return answer

    async def _redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    async def start(self, mode: str) -> None:
        handler = {"huge": self._huge, "trickle": self._trickle, "redirect": self._redirect}
        app = web.Application()
        app.router.add_route("*", "/api/v1/query", handler[mode])
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        await self._runner.cleanup()


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        pytest.param("huge", "larger than", id="gigabytes"),
        pytest.param("trickle", "did not arrive within", id="trickled-bytes"),
        pytest.param("redirect", "a redirect, not followed", id="redirect-not-followed"),
    ],
)
def test_a_hostile_answer_costs_bounded_memory_and_time(
    lab_loop: BackgroundLoop, mode: str, message: str
) -> None:
    server = Hostile()
    lab_loop.run(server.start(mode))
    provider = PrometheusProvider(server.url, max_bytes=1 << 20)
    try:
        began = time.monotonic()
        with pytest.raises(ProviderUnavailable, match=message):
            provider.query("up", timeout_s=2)
        assert time.monotonic() - began < 30
    finally:
        provider.close()
        lab_loop.run(server.stop())


# --------------------------------------------------------------------------------------------
# Range queries (compare metrics)


def test_a_range_query_returns_the_samples_of_one_series(provider: PrometheusProvider) -> None:
    end = datetime.now(UTC)
    start = end - timedelta(seconds=60)
    samples = provider.query_range("vector(2)", start, end, step_s=10, timeout_s=5)
    assert samples == [2.0] * 7
    empty = 'http_requests_total{revision="no-such-revision"}'
    assert provider.query_range(empty, start, end, step_s=10, timeout_s=5) == []


def test_range_query_errors_are_mapped_like_instant_ones(provider: PrometheusProvider) -> None:
    end = datetime.now(UTC)
    start = end - timedelta(seconds=60)
    with pytest.raises(QueryError, match="Prometheus refused the query"):
        provider.query_range("sum(", start, end, step_s=10, timeout_s=5)
    with pytest.raises(QueryError, match="2 series"):
        provider.query_range(
            'label_replace(vector(1), "a", "1", "", "") '
            'or label_replace(vector(1), "a", "2", "", "")',
            start,
            end,
            step_s=10,
            timeout_s=5,
        )
    with pytest.raises(QueryError, match="widen its step"):
        provider.query_range("vector(1)", start - timedelta(days=2), end, step_s=1, timeout_s=5)
