"""The synthetic service: one small aiohttp server per revision of a demo application.

Each ``DemoService`` answers ``GET /`` with 200 or 500 according to its error ratio and records
a latency drawn from ``latencyMs + uniform(0, jitterMs)``. It exports, from its own
``CollectorRegistry`` at ``/metrics``:

- ``http_requests_total{namespace, service, revision, code, mirrored}`` (counter):
  ``mirrored="true"`` for the copies a mirror sent (shadow traffic, their responses discarded
  by the proxy), recognised as a real service would: the proxy appends ``-shadow`` to the
  request's Host (Envoy does so for ``mirror`` and ``RequestMirror``); ``"false"`` otherwise
- ``http_request_duration_seconds{namespace, service, revision}`` (histogram)
- ``http_segment_requests_total{namespace, service, revision, segment}`` (counter): the
  requests that carried an ``x-segment`` header, by its value (clipped to 32 characters)

``namespace`` is the namespace of the revision's pods, as a cluster's Prometheus labels the
series it scrapes from pods; ``service`` is the application's name (the ``app`` label of its
pods, e.g. ``demo``), not the name of a Kubernetes Service; ``revision`` is the revision hash
(the ``rollwise.dev/revision`` label of the revision's Deployment). The hash depends on the pod
template alone, so the same template in two namespaces has the same revision: a query selects
its workload by ``namespace`` and ``service`` too. The lab runs one DemoService per revision
hash; when a revision appears in another namespace, its requests from then on carry that
namespace. The latency is synthetic by default: it is observed in the
histogram without the handler sleeping, which keeps the lab's load light on small machines;
``sleep=True`` makes the handler really wait.

The behaviour is set at run time with ``configure()`` or over HTTP (``POST /control`` with
``{"errorRatio": 0.2, "latencyMs": 50, "jitterMs": 10}``; ``GET /control`` reads it).

``ServiceRegistry`` maps revision hashes to running DemoServices (the traffic generator looks
revisions up there) and runs a "hub" server: one combined ``/metrics`` over all revisions, so
Prometheus sees a new revision on its next scrape (Prometheus 2.42 applies service discovery
changes only every 5 s), ``GET /revisions`` (each revision's URL and behaviour) and
``POST /control/{revision or service}`` (sets a running revision's behaviour, or the default
for one that starts later).
"""

from __future__ import annotations

import asyncio
import random
import zlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

# The ``*_created`` series add nothing to the lab's queries and double every scrape.
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUESTS_METRIC = "http_requests_total"
LATENCY_METRIC = "http_request_duration_seconds"
SEGMENT_METRIC = "http_segment_requests_total"
#: The request header that tags a request with its segment (the traffic generator sets it on
#: a share of its requests; a header route of a Rollout may send those to the canary).
SEGMENT_HEADER = "x-segment"
#: What a mirroring proxy appends to the Host of the copies it sends (Envoy's convention).
SHADOW_SUFFIX = "-shadow"


def is_mirrored(host: str) -> bool:
    """Whether a request's Host marks it as a mirrored copy (``web.shop-shadow``, also with a
    port: ``web.shop-shadow:8080``)."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name.endswith(SHADOW_SUFFIX)


@dataclass(frozen=True)
class Behaviour:
    """How a revision answers: the share of 500s and the latency distribution."""

    error_ratio: float = 0.0
    latency_ms: float = 20.0
    jitter_ms: float = 10.0

    def validated(self) -> Behaviour:
        if not 0.0 <= self.error_ratio <= 1.0:
            raise ValueError(f"errorRatio must be within [0, 1], got {self.error_ratio}")
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise ValueError("latencyMs and jitterMs must not be negative")
        return self

    def to_json(self) -> dict[str, float]:
        return {
            "errorRatio": self.error_ratio,
            "latencyMs": self.latency_ms,
            "jitterMs": self.jitter_ms,
        }

    def updated(self, body: dict[str, Any]) -> Behaviour:
        names = {"errorRatio": "error_ratio", "latencyMs": "latency_ms", "jitterMs": "jitter_ms"}
        unknown = set(body) - set(names)
        if unknown:
            raise ValueError(f"unknown fields: {sorted(unknown)}")
        changes = {names[key]: float(value) for key, value in body.items()}
        return replace(self, **changes).validated()


class DemoService:
    """One revision of the demo application, listening on 127.0.0.1."""

    def __init__(
        self,
        service: str = "demo",
        revision: str = "r1",
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        behaviour: Behaviour | None = None,
        seed: int | None = None,
        sleep: bool = False,
        namespace: str = "",
    ) -> None:
        self.namespace = namespace
        self.service = service
        self.revision = revision
        self.host = host
        self.port = port
        self.behaviour = (behaviour or Behaviour()).validated()
        self.sleep = sleep
        self._rng = random.Random(seed)
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "http_requests",
            'HTTP requests served, by status code; mirrored copies apart (mirrored="true").',
            ["namespace", "service", "revision", "code", "mirrored"],
            registry=self.registry,
        )
        self._latency = Histogram(
            LATENCY_METRIC,
            "Latency of HTTP requests (synthetic unless the service sleeps).",
            ["namespace", "service", "revision"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._segments = Counter(
            "http_segment_requests",
            "HTTP requests that carried an x-segment header, by its value.",
            ["namespace", "service", "revision", "segment"],
            registry=self.registry,
        )
        self._zero_series()
        self.served: dict[str, int] = {"200": 0, "500": 0}
        #: Mirrored copies received (also counted in ``served``).
        self.mirrored = 0
        self._runner: web.AppRunner | None = None

    def _zero_series(self) -> None:
        # Series exist at 0 from the start, so rate() and increase() see the first requests.
        for code in ("200", "500"):
            self._requests.labels(self.namespace, self.service, self.revision, code, "false")
        self._latency.labels(self.namespace, self.service, self.revision)

    def move_to(self, namespace: str) -> None:
        """From now on, requests count in ``namespace`` (the revision appeared there)."""
        if namespace != self.namespace:
            self.namespace = namespace
            self._zero_series()

    # -- behaviour -----------------------------------------------------------------------------

    def configure(
        self,
        *,
        error_ratio: float | None = None,
        latency_ms: float | None = None,
        jitter_ms: float | None = None,
    ) -> Behaviour:
        changes = {
            key: value
            for key, value in asdict(self.behaviour).items()
            if key in {"error_ratio", "latency_ms", "jitter_ms"}
        }
        if error_ratio is not None:
            changes["error_ratio"] = error_ratio
        if latency_ms is not None:
            changes["latency_ms"] = latency_ms
        if jitter_ms is not None:
            changes["jitter_ms"] = jitter_ms
        self.behaviour = Behaviour(**changes).validated()
        return self.behaviour

    def draw(self) -> tuple[int, float]:
        """One request's status code and latency in seconds, drawn from the behaviour with
        this service's seeded generator (what ``GET /`` answers and records; the judge
        benchmark draws synthetic traffic with it too)."""
        behaviour = self.behaviour
        code = 500 if self._rng.random() < behaviour.error_ratio else 200
        latency_ms = behaviour.latency_ms + self._rng.uniform(0.0, behaviour.jitter_ms)
        return code, latency_ms / 1000.0

    # -- HTTP ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        """``host:port``, as a Prometheus target."""
        return f"{self.host}:{self.port}"

    async def _root(self, request: web.Request) -> web.Response:
        code, seconds = self.draw()
        if self.sleep and seconds > 0:
            await asyncio.sleep(seconds)
        mirrored = is_mirrored(request.headers.get("Host", ""))
        self._requests.labels(
            self.namespace, self.service, self.revision, str(code), str(mirrored).lower()
        ).inc()
        if mirrored:
            self.mirrored += 1
        self._latency.labels(self.namespace, self.service, self.revision).observe(seconds)
        segment = request.headers.get(SEGMENT_HEADER)
        if segment:
            self._segments.labels(self.namespace, self.service, self.revision, segment[:32]).inc()
        self.served[str(code)] = self.served.get(str(code), 0) + 1
        return web.json_response(
            {"service": self.service, "revision": self.revision, "code": code},
            status=code,
            headers={"X-Synthetic-Latency-Ms": f"{seconds * 1000:.1f}"},
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _get_control(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"service": self.service, "revision": self.revision, **self.behaviour.to_json()}
        )

    async def _post_control(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")
            self.behaviour = self.behaviour.updated(body)
        except (ValueError, TypeError) as err:
            return web.json_response({"error": str(err)}, status=400)
        return await self._get_control(request)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._root)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/control", self._get_control)
        app.router.add_post("/control", self._post_control)
        app.router.add_get("/healthz", self._healthz)
        return app

    async def start(self) -> DemoService:
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = int(runner.addresses[0][1])
        self._runner = runner
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DemoService:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class _MergedCollector(Collector):
    """Collects the metric families of many registries, merging families of the same name."""

    def __init__(self, sources: Callable[[], Iterable[CollectorRegistry]]) -> None:
        self._sources = sources

    def collect(self) -> Iterable[Metric]:
        merged: dict[str, Metric] = {}
        for registry in self._sources():
            for family in registry.collect():
                into = merged.get(family.name)
                if into is None:
                    into = Metric(family.name, family.documentation, family.type, family.unit)
                    merged[family.name] = into
                into.samples.extend(family.samples)
        return list(merged.values())


RevisionListener = Callable[[str, DemoService | None], None]


class ServiceRegistry:
    """Running DemoServices by revision hash, plus one combined metrics endpoint over them."""

    def __init__(self, *, seed: int | None = None, sleep: bool = False) -> None:
        self._services: dict[str, DemoService] = {}
        self._seed = seed
        self._sleep = sleep
        self._listeners: list[RevisionListener] = []
        self._hub_registry = CollectorRegistry(auto_describe=False)
        self._hub_registry.register(
            _MergedCollector(lambda: [s.registry for s in list(self._services.values())])
        )
        self._hub_runner: web.AppRunner | None = None
        self.hub_port = 0
        self.defaults: dict[str, Behaviour] = {}

    def on_change(self, listener: RevisionListener) -> None:
        """Calls ``listener(revision, service_or_None)`` when a revision starts or stops."""
        self._listeners.append(listener)

    def get(self, revision: str) -> DemoService | None:
        return self._services.get(revision)

    def revisions(self) -> dict[str, DemoService]:
        return dict(self._services)

    async def ensure(
        self,
        service: str,
        revision: str,
        behaviour: Behaviour | None = None,
        *,
        namespace: str = "",
    ) -> DemoService:
        """The running DemoService of ``revision``, started if needed; its requests count in
        ``namespace`` from now on."""
        existing = self._services.get(revision)
        if existing is not None:
            if namespace:
                existing.move_to(namespace)
            return existing
        seed = None if self._seed is None else zlib.crc32(f"{self._seed}/{revision}".encode())
        demo = DemoService(
            service,
            revision,
            behaviour=behaviour or self.defaults.get(revision) or self.defaults.get(service),
            seed=seed,
            sleep=self._sleep,
            namespace=namespace,
        )
        await demo.start()
        self._services[revision] = demo
        for listener in self._listeners:
            listener(revision, demo)
        return demo

    async def remove(self, revision: str) -> None:
        demo = self._services.pop(revision, None)
        if demo is not None:
            await demo.stop()
            for listener in self._listeners:
                listener(revision, None)

    # -- the combined scrape endpoint ----------------------------------------------------------

    @property
    def hub_address(self) -> str:
        return f"127.0.0.1:{self.hub_port}"

    async def _hub_metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self._hub_registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _hub_index(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                rev: {
                    "namespace": s.namespace,
                    "service": s.service,
                    "url": s.url,
                    **s.behaviour.to_json(),
                }
                for rev, s in self._services.items()
            }
        )

    async def _hub_control(self, request: web.Request) -> web.Response:
        """Sets the behaviour of a running revision, or the default of a revision or service
        not running yet (used when it starts)."""
        key = request.match_info["key"]
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")
            running = self._services.get(key)
            if running is not None:
                running.behaviour = running.behaviour.updated(body)
                return web.json_response({"revision": key, **running.behaviour.to_json()})
            behaviour = self.defaults.get(key, Behaviour()).updated(body)
        except (ValueError, TypeError) as err:
            return web.json_response({"error": str(err)}, status=400)
        self.defaults[key] = behaviour
        return web.json_response({"default": key, **behaviour.to_json()})

    async def start_hub(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_get("/metrics", self._hub_metrics)
        app.router.add_get("/revisions", self._hub_index)
        app.router.add_post("/control/{key}", self._hub_control)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        self.hub_port = int(runner.addresses[0][1])
        self._hub_runner = runner
        return self.hub_address

    async def stop(self) -> None:
        for revision in list(self._services):
            await self.remove(revision)
        if self._hub_runner is not None:
            await self._hub_runner.cleanup()
            self._hub_runner = None
