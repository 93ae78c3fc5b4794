"""The traffic generator: sends real HTTP requests to the demo service's revisions, split by the
routing the operator wrote into the API server.

It plays the data plane of a cluster. It watches the API (list+watch, so a weight change is
followed within milliseconds) and resolves one entry point to a weight per revision:

- ``httproute/NS/NAME``: a Gateway API HTTPRoute; the backendRefs' weights of one rule
  (``rule`` index, default 0) split the traffic between Services;
- ``virtualservice/NS/NAME``: an Istio VirtualService; the weights of the destinations of one
  ``http`` route (by ``name``; by default the first route the request meets, in order, as
  Istio takes it) split it between Services (``host`` is a
  Service name, short or ``name.namespace.svc...``; subsets are not resolved);
- ``service/NS/NAME``: no router (replica ratio); one Service selects every revision and each
  gets its Deployment's ready replicas as weight;
- ``inferenceservice/NS/NAME``: the ``percent`` of each revision in a KServe InferenceService's
  ``status.components.predictor.traffic``.

Header routes: a share of the requests (``tagged_share``) can carry a tag header (``tag``, e.g.
``x-segment: beta``). A tagged request follows the routing object's header matches: for an
HTTPRoute the other rule whose match (path ``/``) has the most header conditions, all met by
the request, wins over the weighted rule (Gateway API precedence); for a VirtualService the
first http route in order whose match the request meets (Istio). Header values compare
``Exact`` / ``exact``, ``prefix`` and ``RegularExpression`` / ``regex`` (whole value); names
case-insensitively. Untagged requests follow the weighted rule or route as before.

Mirrors: the entry a request follows may mirror (an HTTPRoute rule's ``RequestMirror`` filter,
``percent`` or ``fraction``, 100% without either; a VirtualService route's ``mirror`` with
``mirrorPercentage``, 100% without). Exactly that share of the requests following it (spread
evenly, as for tags) is copied to the mirror's Service, with ``-shadow`` appended to the Host as
Envoy does; the copy's response is discarded: it is counted apart (``stats.mirrored``), never
in what the clients got (``stats.codes``, ``served()``).

A Service resolves to revisions through the Deployments it selects (their pod template labels),
weighted by ready replicas; a Service whose selector names a revision (``rollwise.dev/revision``)
and selects no Deployment resolves to that revision. A revision is reached through the
``ServiceRegistry`` (revision hash -> DemoService). Requests are scheduled at a fixed rate,
spread over the revisions by smooth weighted round robin (exact shares, no sampling noise), and
sent by a small pool of workers; the run is bounded by ``duration`` and ``count``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from hack.lab._support import (
    DEPLOYMENTS,
    HTTPROUTES,
    INFERENCESERVICES,
    SERVICES,
    VIRTUALSERVICES,
    Informer,
    KubeEndpoint,
    KubeHTTP,
    Resource,
)
from hack.lab.service import ServiceRegistry

REVISION_LABEL = "rollwise.dev/revision"

#: Counted instead of a revision when a request could not be routed anywhere.
NO_ROUTE = "<no-route>"
#: Counted when the route names a revision the registry runs no DemoService for.
NO_ENDPOINT = "<no-endpoint>"

_KINDS: dict[str, Resource] = {
    "httproute": HTTPROUTES,
    "virtualservice": VIRTUALSERVICES,
    "service": SERVICES,
    "inferenceservice": INFERENCESERVICES,
}


@dataclass(frozen=True)
class RouteTarget:
    """The entry point the generator sends traffic to (see the module docstring)."""

    kind: str
    namespace: str
    name: str
    rule: int | str | None = None

    @classmethod
    def parse(cls, text: str) -> RouteTarget:
        """``KIND/NAMESPACE/NAME`` or ``KIND/NAME`` (namespace ``default``), e.g.
        ``httproute/default/demo``."""
        parts = text.split("/")
        if len(parts) == 2:
            parts = [parts[0], "default", parts[1]]
        if len(parts) != 3 or parts[0].lower() not in _KINDS:
            raise ValueError(f"expected KIND/NAMESPACE/NAME with KIND in {sorted(_KINDS)}: {text}")
        return cls(parts[0].lower(), parts[1], parts[2])

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


def template_revision(deployment: dict[str, Any]) -> str:
    """The revision of a Deployment: the ``rollwise.dev/revision`` label of its pod template (or
    of the Deployment itself), else a short hash of the pod template (like
    ``pod-template-hash``)."""
    template = deployment.get("spec", {}).get("template", {})
    labels = template.get("metadata", {}).get("labels") or {}
    if labels.get(REVISION_LABEL):
        return str(labels[REVISION_LABEL])
    own = deployment.get("metadata", {}).get("labels") or {}
    if own.get(REVISION_LABEL):
        return str(own[REVISION_LABEL])
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    return digest[:10]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _value_ok(kind: str, expected: str, actual: str | None) -> bool:
    if actual is None:
        return False
    kind = kind.lower()
    if kind == "exact":
        return actual == expected
    if kind == "prefix":
        return actual.startswith(expected)
    if kind in ("regularexpression", "regex"):
        try:
            return re.fullmatch(expected, actual) is not None
        except re.error:
            return False
    return False


def _path_ok(match: dict[str, Any], path: str = "/") -> bool:
    rule = match.get("path") or {"type": "PathPrefix", "value": "/"}
    value = str(rule.get("value", "/"))
    if rule.get("type", "PathPrefix") == "Exact":
        return path == value
    return path.startswith(value)


def httproute_header_rule(
    rules: list[dict[str, Any]], skip: int, headers: Mapping[str, str]
) -> dict[str, Any] | None:
    """The rule (other than ``skip``) a request with ``headers`` to ``/`` takes by its header
    matches: the one with the most header conditions, all met; None when no such rule."""
    lowered = {k.lower(): v for k, v in headers.items()}
    best: tuple[int, dict[str, Any]] | None = None
    for index, rule in enumerate(rules):
        if index == skip:
            continue
        for match in rule.get("matches") or []:
            conditions = match.get("headers") or []
            if not conditions or not _path_ok(match):
                continue
            if all(
                _value_ok(c.get("type", "Exact"), str(c["value"]), lowered.get(c["name"].lower()))
                for c in conditions
            ) and (best is None or len(conditions) > best[0]):
                best = (len(conditions), rule)
    return None if best is None else best[1]


def _meets(match: dict[str, Any], lowered: Mapping[str, str]) -> bool:
    conditions = match.get("headers") or {}
    return all(
        any(_value_ok(kind, str(value), lowered.get(name.lower())) for kind, value in how.items())
        for name, how in conditions.items()
    )


def virtualservice_first_route(
    routes: list[dict[str, Any]], headers: Mapping[str, str]
) -> dict[str, Any] | None:
    """The first http route a request with ``headers`` meets (Istio's order)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for route in routes:
        if any(_meets(match, lowered) for match in route.get("match") or [{}]):
            return route
    return None


def virtualservice_header_route(
    routes: list[dict[str, Any]], headers: Mapping[str, str]
) -> dict[str, Any] | None:
    """The first http route whose match a request with ``headers`` meets by a header condition;
    None when the first route it meets has no header condition (the weighted route's case)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for route in routes:
        for match in route.get("match") or [{}]:
            if _meets(match, lowered):
                return route if match.get("headers") else None
    return None


@dataclass(frozen=True)
class Mirror:
    """A mirror in effect: ``fraction`` of the requests are copied to ``revisions`` (weights)
    of the Service ``host`` (``name.namespace``)."""

    host: str
    revisions: dict[str, float]
    fraction: float


def httproute_mirror(rule: dict[str, Any], namespace: str) -> tuple[tuple[str, str], float] | None:
    """The Service (namespace, name) an HTTPRoute rule mirrors to and the share copied."""
    for f in rule.get("filters") or []:
        if f.get("type") != "RequestMirror":
            continue
        spec = f.get("requestMirror") or {}
        ref = spec.get("backendRef") or {}
        if ref.get("kind", "Service") != "Service" or not ref.get("name"):
            continue
        if "percent" in spec:
            fraction = float(spec["percent"]) / 100
        elif "fraction" in spec:
            part = spec["fraction"] or {}
            fraction = float(part.get("numerator", 0)) / float(part.get("denominator", 100) or 100)
        else:
            fraction = 1.0
        return (ref.get("namespace") or namespace, str(ref["name"])), min(max(fraction, 0.0), 1.0)
    return None


def virtualservice_mirror(
    route: dict[str, Any], namespace: str
) -> tuple[tuple[str, str], float] | None:
    """The Service (namespace, name) a VirtualService http route mirrors to and the share."""
    mirror = route.get("mirror") or {}
    host = str(mirror.get("host", ""))
    if not host:
        return None
    parts = host.split(".")
    value = (route.get("mirrorPercentage") or {}).get("value", 100)
    fraction = min(max(float(value) / 100, 0.0), 1.0)
    return (parts[1] if len(parts) > 1 else namespace, parts[0]), fraction


def _normalized(weights: dict[str, float]) -> dict[str, float]:
    total = sum(w for w in weights.values() if w > 0)
    if total <= 0:
        return {}
    return {rev: w / total for rev, w in weights.items() if w > 0}


class RoutingView:
    """Resolves an entry point to weights per revision from the informers' caches."""

    def __init__(
        self,
        target: RouteTarget,
        services: Informer,
        deployments: Informer,
        route: Informer | None,
    ) -> None:
        self.target = target
        self.services = services
        self.deployments = deployments
        self.route = route

    def service_revisions(self, namespace: str, name: str) -> dict[str, float]:
        service = self.services.get(namespace, name)
        if service is None:
            return {}
        selector = service.get("spec", {}).get("selector") or {}
        ready: dict[str, float] = {}
        matched = False
        for deployment in self.deployments.items():
            if deployment.get("metadata", {}).get("namespace") != namespace:
                continue
            template = deployment.get("spec", {}).get("template", {})
            labels = template.get("metadata", {}).get("labels") or {}
            if not _selects(selector, labels):
                continue
            matched = True
            revision = template_revision(deployment)
            count = deployment.get("status", {}).get("readyReplicas") or 0
            ready[revision] = ready.get(revision, 0.0) + float(count)
        if not matched and selector.get(REVISION_LABEL):
            return {str(selector[REVISION_LABEL]): 1.0}
        return _normalized(ready)

    def _split(self, backends: list[tuple[str, str, float]]) -> dict[str, float]:
        share = _normalized({f"{ns}/{name}": w for ns, name, w in backends})
        weights: dict[str, float] = {}
        for key, fraction in share.items():
            ns, name = key.split("/", 1)
            revisions = self.service_revisions(ns, name)
            if not revisions:
                weights[NO_ENDPOINT] = weights.get(NO_ENDPOINT, 0.0) + fraction
            for revision, part in revisions.items():
                weights[revision] = weights.get(revision, 0.0) + fraction * part
        return weights

    def weights(self, headers: Mapping[str, str] | None = None) -> dict[str, float]:
        """Fractions of traffic per revision (summing to 1), or {} when nothing routes; with
        ``headers``, of the requests that carry them (header routes apply)."""
        t = self.target
        if t.kind == "service":
            return self.service_revisions(t.namespace, t.name)
        obj = self.route.get(t.namespace, t.name) if self.route is not None else None
        if obj is None:
            return {}
        if t.kind == "httproute":
            return self._httproute(obj, headers or {})
        if t.kind == "virtualservice":
            return self._virtualservice(obj, headers or {})
        return self._inferenceservice(obj)

    def _httproute_entry(
        self, route: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any] | None:
        rules = route.get("spec", {}).get("rules") or []
        index = self.target.rule if isinstance(self.target.rule, int) else 0
        if index >= len(rules):
            return None
        chosen: dict[str, Any] = rules[index]
        if headers:
            chosen = httproute_header_rule(rules, index, headers) or chosen
        return chosen

    def _httproute(self, route: dict[str, Any], headers: Mapping[str, str]) -> dict[str, float]:
        chosen = self._httproute_entry(route, headers)
        if chosen is None:
            return {}
        backends = []
        for ref in chosen.get("backendRefs") or []:
            if ref.get("kind", "Service") != "Service" or ref.get("group", "") != "":
                continue
            weight = float(ref.get("weight", 1))
            backends.append((ref.get("namespace") or self.target.namespace, ref["name"], weight))
        return self._split(backends)

    def _virtualservice_entry(
        self, vs: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any] | None:
        routes = vs.get("spec", {}).get("http") or []
        chosen = None
        rule = self.target.rule
        if isinstance(rule, str):
            chosen = next((r for r in routes if r.get("name") == rule), None)
        elif isinstance(rule, int):
            chosen = routes[rule] if rule < len(routes) else None
        else:
            # No route named: Istio's own choice, the first route the request meets.
            chosen = virtualservice_first_route(routes, headers)
        if headers and rule is not None:
            chosen = virtualservice_header_route(routes, headers) or chosen
        return chosen

    def _virtualservice(self, vs: dict[str, Any], headers: Mapping[str, str]) -> dict[str, float]:
        chosen = self._virtualservice_entry(vs, headers)
        if chosen is None:
            return {}
        destinations = chosen.get("route") or []
        backends = []
        for dest in destinations:
            host = str(dest.get("destination", {}).get("host", ""))
            parts = host.split(".")
            namespace = parts[1] if len(parts) > 1 else self.target.namespace
            # Istio: a lone destination without weight takes all traffic.
            default = 100 if len(destinations) == 1 else 0
            backends.append((namespace, parts[0], float(dest.get("weight", default))))
        return self._split(backends)

    def mirror(self, headers: Mapping[str, str] | None = None) -> Mirror | None:
        """The mirror of the entry the requests (carrying ``headers``) follow, if any."""
        t = self.target
        obj = self.route.get(t.namespace, t.name) if self.route is not None else None
        if obj is None or t.kind not in ("httproute", "virtualservice"):
            return None
        if t.kind == "httproute":
            entry = self._httproute_entry(obj, headers or {})
            found = httproute_mirror(entry or {}, t.namespace)
        else:
            entry = self._virtualservice_entry(obj, headers or {})
            found = virtualservice_mirror(entry or {}, t.namespace)
        if found is None:
            return None
        (namespace, name), fraction = found
        revisions = self.service_revisions(namespace, name)
        return Mirror(f"{name}.{namespace}", revisions, fraction) if fraction > 0 else None

    def _inferenceservice(self, isvc: dict[str, Any]) -> dict[str, float]:
        predictor = isvc.get("status", {}).get("components", {}).get("predictor", {})
        weights = {
            str(t["revisionName"]): float(t.get("percent") or 0)
            for t in predictor.get("traffic") or []
            if t.get("revisionName")
        }
        return _normalized(weights)


@dataclass
class TrafficStats:
    """What the generator did, for tests and the CLI."""

    sent: Counter[str] = field(default_factory=Counter)  # by revision (or NO_ROUTE...)
    tagged: Counter[str] = field(default_factory=Counter)  # tagged requests, by revision
    # Mirrored copies sent, by revision (their responses discarded), and their status codes.
    mirrored: Counter[str] = field(default_factory=Counter)
    mirrored_codes: Counter[tuple[str, int]] = field(default_factory=Counter)
    codes: Counter[tuple[str, int]] = field(default_factory=Counter)
    failed: int = 0  # transport errors
    delayed: int = 0  # requests that waited for a free worker
    weight_changes: list[tuple[float, dict[str, float]]] = field(default_factory=list)


class TrafficGenerator:
    """Sends ``rate`` requests per second to ``target``'s revisions, following its weights."""

    def __init__(
        self,
        endpoint: KubeEndpoint,
        registry: ServiceRegistry,
        target: RouteTarget | str,
        *,
        rate: float = 50.0,
        duration: float | None = 300.0,
        count: int | None = None,
        workers: int = 8,
        request_timeout: float = 2.0,
        tag: tuple[str, str] | None = None,
        tagged_share: float = 0.0,
    ) -> None:
        if rate <= 0 or rate > 2000:
            raise ValueError("rate must be within (0, 2000] requests per second")
        if not 0.0 <= tagged_share <= 1.0 or (tagged_share > 0 and tag is None):
            raise ValueError("tagged_share must be within [0, 1], and needs a tag header")
        self.tag = tag
        self.tagged_share = tagged_share
        self.tagged_weights: dict[str, float] = {}
        self._tagged_current: dict[str, float] = {}
        self._tag_credit = 0.0
        self.mirror_of: Mirror | None = None
        self.tagged_mirror: Mirror | None = None
        self._mirror_credit = 0.0
        self._mirror_current: dict[str, float] = {}
        if duration is None and count is None:
            raise ValueError("a traffic run needs a duration or a count")
        self.target = RouteTarget.parse(target) if isinstance(target, str) else target
        self.registry = registry
        self.rate = rate
        self.duration = duration
        self.count = count
        self.workers = workers
        self.request_timeout = request_timeout
        self.stats = TrafficStats()
        self.weights: dict[str, float] = {}
        self.done = asyncio.Event()
        self._api = KubeHTTP(endpoint)
        # Routing never crosses namespaces here: watch only the target's.
        namespace = self.target.namespace
        self._services = Informer(self._api, SERVICES, self._on_event, namespace=namespace)
        self._deployments = Informer(self._api, DEPLOYMENTS, self._on_event, namespace=namespace)
        route_res = _KINDS[self.target.kind]
        self._route = (
            None
            if route_res is SERVICES
            else Informer(self._api, route_res, self._on_event, namespace=namespace)
        )
        self.view = RoutingView(self.target, self._services, self._deployments, self._route)
        self._current: dict[str, float] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    # -- routing -------------------------------------------------------------------------------

    async def _on_event(self, event_type: str, obj: dict[str, Any]) -> None:
        self._refresh()

    def _refresh(self) -> None:
        weights = self.view.weights()
        if weights != self.weights:
            self.weights = weights
            self.stats.weight_changes.append((time.monotonic(), dict(weights)))
            self._current = dict.fromkeys(weights, 0.0)
        mirror = self.view.mirror()
        if mirror != self.mirror_of:
            self.mirror_of = mirror
            self._mirror_current = dict.fromkeys(mirror.revisions if mirror else {}, 0.0)
        if self.tag is not None:
            self.tagged_mirror = self.view.mirror(dict([self.tag]))
            tagged = self.view.weights(dict([self.tag]))
            if tagged != self.tagged_weights:
                self.tagged_weights = tagged
                self._tagged_current = dict.fromkeys(tagged, 0.0)

    def _next_tagged(self) -> bool:
        """Whether the next request carries the tag: exactly ``tagged_share`` of them, spread
        evenly."""
        self._tag_credit += self.tagged_share
        if self._tag_credit >= 1.0:
            self._tag_credit -= 1.0
            return True
        return False

    def _next_mirror(self, tagged: bool) -> tuple[Mirror, str] | None:
        """The mirror and revision the next request's copy goes to, if it is copied: exactly
        the mirror's fraction of the requests following it, spread evenly."""
        mirror = self.tagged_mirror if tagged else self.mirror_of
        if mirror is None:
            return None
        self._mirror_credit += mirror.fraction
        if self._mirror_credit < 1.0 - 1e-9:
            return None
        self._mirror_credit -= 1.0
        if not mirror.revisions:
            return mirror, NO_ENDPOINT
        current = self._mirror_current
        for revision, weight in mirror.revisions.items():
            current[revision] = current.get(revision, 0.0) + weight
        chosen = max(mirror.revisions, key=lambda r: current[r])
        current[chosen] -= 1.0
        return mirror, chosen

    def _pick(self, tagged: bool = False) -> str:
        # Smooth weighted round robin: every pick raises each revision by its weight and takes
        # the highest, which is then lowered by the total; shares are exact over any window.
        weights, current = (
            (self.tagged_weights, self._tagged_current) if tagged else (self.weights, self._current)
        )
        if not weights:
            return NO_ROUTE
        for revision, weight in weights.items():
            current[revision] = current.get(revision, 0.0) + weight
        chosen = max(current, key=lambda r: current[r])
        current[chosen] -= 1.0
        return chosen

    # -- run -----------------------------------------------------------------------------------

    async def start(self) -> TrafficGenerator:
        informers = [self._services, self._deployments]
        if self._route is not None:
            informers.append(self._route)
        for informer in informers:
            informer.start()
        # Wait (bounded) for the first listing, so the first request already follows the route.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(i.synced.wait() for i in informers)), timeout=5.0
            )
        self._refresh()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.workers),
            timeout=aiohttp.ClientTimeout(total=self.request_timeout),
        )
        self._tasks.append(asyncio.get_running_loop().create_task(self._schedule()))
        return self

    async def _send(self, revision: str, tagged: bool = False) -> None:
        self.stats.sent[revision] += 1
        if tagged:
            self.stats.tagged[revision] += 1
        headers = dict([self.tag]) if tagged and self.tag is not None else None
        demo = self.registry.get(revision) if revision not in (NO_ROUTE, NO_ENDPOINT) else None
        if demo is None or self._session is None:
            if revision not in (NO_ROUTE, NO_ENDPOINT):
                self.stats.codes[(NO_ENDPOINT, 503)] += 1
            return
        try:
            async with self._session.get(demo.url + "/", headers=headers) as resp:
                await resp.read()
                self.stats.codes[(revision, resp.status)] += 1
        except (aiohttp.ClientError, TimeoutError):
            self.stats.failed += 1

    async def _send_copy(self, mirror: Mirror, revision: str, tagged: bool) -> None:
        """Sends a mirrored copy, Host suffixed with ``-shadow``; its response is discarded."""
        self.stats.mirrored[revision] += 1
        demo = self.registry.get(revision) if revision != NO_ENDPOINT else None
        if demo is None or self._session is None:
            return
        headers = {"Host": f"{mirror.host}-shadow"}
        if tagged and self.tag is not None:
            headers.update(dict([self.tag]))
        try:
            async with self._session.get(demo.url + "/", headers=headers) as resp:
                await resp.read()
                self.stats.mirrored_codes[(revision, resp.status)] += 1
        except (aiohttp.ClientError, TimeoutError):
            self.stats.failed += 1

    async def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        in_flight: set[asyncio.Task[None]] = set()
        i = 0
        try:
            while True:
                if self.count is not None and i >= self.count:
                    break
                due = started + i / self.rate
                if self.duration is not None and due - started >= self.duration:
                    break
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                i += 1
                if len(in_flight) >= self.workers:
                    # Every worker is busy: wait for one instead of dropping the request, so a
                    # run of ``count`` requests sends exactly that many (the rate slips).
                    self.stats.delayed += 1
                    await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                tagged = self._next_tagged()
                task = loop.create_task(self._send(self._pick(tagged), tagged))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                copy = self._next_mirror(tagged)
                if copy is not None:
                    shadow = loop.create_task(self._send_copy(*copy, tagged))
                    in_flight.add(shadow)
                    shadow.add_done_callback(in_flight.discard)
            if in_flight:
                await asyncio.wait(in_flight, timeout=self.request_timeout + 1)
        finally:
            self.done.set()

    async def wait(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self.done.wait(), timeout)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for informer in (self._services, self._deployments, self._route):
            if informer is not None:
                await informer.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._api.close()
        self.done.set()

    def served(self) -> dict[str, int]:
        """Requests answered per revision (any HTTP status)."""
        totals: Counter[str] = Counter()
        for (revision, _code), n in self.stats.codes.items():
            totals[revision] += n
        return dict(totals)
