"""The web metric provider against a real HTTP server of the test's own, for what the contract
test over Prometheus' JSON API cannot show: the operator's headers, POST bodies, error
statuses and bodies no real backend would send."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from hack.lab._support import BackgroundLoop
from rollwise.adapters.errors import ProviderUnavailable, QueryError
from rollwise.adapters.metrics.web import WebMetricProvider

pytestmark = pytest.mark.lab


@dataclass
class Endpoint:
    """A JSON endpoint: answers ``status`` with ``body`` and remembers the requests."""

    status: int = 200
    body: Any = field(default_factory=lambda: {"data": {"value": 0.01}})
    raw: bytes | None = None
    seen: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    _runner: Any = None

    async def _answer(self, request: web.Request) -> web.Response:
        self.seen.append(
            {
                "method": request.method,
                "path": request.path_qs,
                "headers": dict(request.headers),
                "body": await request.text(),
            }
        )
        if self.raw is not None:
            return web.Response(status=self.status, body=self.raw)
        return web.json_response(self.body, status=self.status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/api"

    async def stop(self) -> None:
        await self._runner.cleanup()


@pytest.fixture
def endpoint(lab_loop: BackgroundLoop) -> Iterator[Endpoint]:
    server = Endpoint()
    lab_loop.run(server.start())
    yield server
    lab_loop.run(server.stop())


def request(path: str = "/slo?svc=demo", *, method: str = "GET", body: str | None = None) -> str:
    return json.dumps(
        {"method": method, "path": path, "body": body, "jsonPath": "$.data.value"},
        sort_keys=True,
    )


def test_the_operators_headers_and_the_specs_path_are_sent(endpoint: Endpoint) -> None:
    provider = WebMetricProvider(endpoint.url, headers={"Authorization": "Bearer secret"})
    try:
        assert provider.query(request(), 2.0) == 0.01
    finally:
        provider.close()
    seen = endpoint.seen[-1]
    assert seen["method"] == "GET"
    assert seen["path"] == "/api/slo?svc=demo"
    assert seen["headers"]["Authorization"] == "Bearer secret"


def test_a_post_sends_its_body_as_json(endpoint: Endpoint) -> None:
    provider = WebMetricProvider(endpoint.url)
    try:
        provider.query(request("/evaluate", method="POST", body='{"model": "fraud"}'), 2.0)
    finally:
        provider.close()
    seen = endpoint.seen[-1]
    assert (seen["method"], seen["body"]) == ("POST", '{"model": "fraud"}')
    assert seen["headers"]["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("status", "raw", "error", "message"),
    [
        pytest.param(404, None, QueryError, r"refused the request \(404\)", id="not-found"),
        pytest.param(429, None, ProviderUnavailable, "answered 429", id="throttled"),
        pytest.param(503, None, ProviderUnavailable, "answered 503", id="down"),
        pytest.param(200, b"<html>login</html>", ProviderUnavailable, "not JSON", id="html"),
    ],
)
def test_odd_answers(
    endpoint: Endpoint, status: int, raw: bytes | None, error: type[Exception], message: str
) -> None:
    endpoint.status, endpoint.raw = status, raw
    provider = WebMetricProvider(endpoint.url)
    try:
        with pytest.raises(error, match=message) as failed:
            provider.query(request(), 2.0)
    finally:
        provider.close()
    assert "login" not in str(failed.value), "no answer body is repeated"


def test_an_answer_larger_than_the_bound_is_not_read(endpoint: Endpoint) -> None:
    endpoint.raw = b'{"data": {"value": 1}, "pad": "' + b"x" * (2 << 20) + b'"}'
    provider = WebMetricProvider(endpoint.url, max_bytes=1 << 20)
    try:
        with pytest.raises(ProviderUnavailable, match="more than the limit"):
            provider.query(request(), 2.0)
    finally:
        provider.close()


def test_a_slow_endpoint_is_an_outage_within_the_timeout(lab_loop: BackgroundLoop) -> None:
    class Slow(Endpoint):
        async def _answer(self, request: web.Request) -> web.Response:
            await asyncio.sleep(3)
            return web.json_response({"data": {"value": 1}})

    server = Slow()
    lab_loop.run(server.start())
    provider = WebMetricProvider(server.url)
    try:
        with pytest.raises(ProviderUnavailable, match=r"within 0\.5s"):
            provider.query(request(), 0.5)
    finally:
        provider.close()
        lab_loop.run(server.stop())
