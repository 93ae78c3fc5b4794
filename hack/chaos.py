"""Chaos for crash consistency: many Rollouts in canaries at once, the operator SIGKILLed at
random moments (and right after a route shows a completion), and a record of everything the
cluster went through, checked against what one uninterrupted run must do.

Each Rollout ``cN`` has a stable and a canary Service, an ``HTTPRoute`` and steps 5% → 25% →
an analysis step → 100%. The analysis step's query is a constant (``vector(0)`` passes,
``vector(1)`` fails), so whatever the kills, every Rollout has one right story: a passing one
goes 5 → 25 → 100 → 0 (completed: the stable Service moved to the new revision), a failing one
5 → 25 → 0 (rolled back: the stable Service never moved). Watches record every change of the
routes and Services in order (by resourceVersion); the events are read by name at the end.

:func:`check` then compares, per Rollout:

- the final phase and stable revision;
- the exact sequence of the canary's route weights and of each Service's selected revision
  (no step skipped, none redone, never backwards);
- the exact sequence of event reasons (none lost, none doubled).

The end-to-end test runs a short round (:data:`E2E_ROLLOUTS` Rollouts, a few kills);
``python -m hack.bench.chaos`` runs long ones and counts. Both print the seed, which replays
the same kill schedule.

Boundary: it drives a cluster through a kubeconfig and an :class:`OperatorControl` (start,
SIGKILL); starting clusters and operators is its callers' business.
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml
from kubernetes import client, config, watch

#: Rollouts of the end-to-end round, and how many of them fail their analysis.
E2E_ROLLOUTS = 10
E2E_FAILING = 3

GROUP, VERSION = "rollwise.dev", "v1alpha1"
ROUTES = ("gateway.networking.k8s.io", "v1", "httproutes")

PASSING_QUERY = "vector(0)"
FAILING_QUERY = "vector(1)"

#: The event reasons of one uninterrupted run, from creation to the end; ``DecisionChanged``
#: where the step's decision (``status.decision``) changes: expand with no checks at the first
#: weight, hold while the analysis measures, then what it concluded.
PROMOTED_REASONS = (
    "Initialized",
    "RevisionDetected",
    "DecisionChanged",
    "WeightSet",
    "StepAdvanced",
    "WeightSet",
    "StepAdvanced",
    "DecisionChanged",
    "AnalysisMeasured",
    "AnalysisPassed",
    "StepAdvanced",
    "DecisionChanged",
    "WeightSet",
    "StepAdvanced",
    "RolloutCompleted",
    "DecisionChanged",
    "RevisionRetired",
)
ROLLED_BACK_REASONS = (
    "Initialized",
    "RevisionDetected",
    "DecisionChanged",
    "WeightSet",
    "StepAdvanced",
    "WeightSet",
    "StepAdvanced",
    "DecisionChanged",
    "AnalysisFailed",
    "RolledBack",
    "DecisionChanged",
)
PROMOTED_WEIGHTS = (5, 25, 100, 0)
ROLLED_BACK_WEIGHTS = (5, 25, 0)


class OperatorControl(Protocol):
    """The operator under test: started, and killed with SIGKILL."""

    def start(self) -> None: ...

    def kill(self) -> None: ...


@dataclass(frozen=True)
class Plan:
    """One round: how many Rollouts, which fail, the kill schedule's seed and bounds."""

    namespace: str
    rollouts: int = E2E_ROLLOUTS
    failing: int = E2E_FAILING
    seed: int = 0
    #: Random kills during the round (besides the ones after completions).
    kills: int = 4
    #: Kill the operator the moment a route shows a completion (canary weight 100 → 0).
    kill_on_completion: bool = True
    #: Seconds a killed operator stays down before it is started again.
    down_for: float = 0.5
    timeout: float = 240.0

    def name(self, index: int) -> str:
        return f"c{index}"

    def fails(self, index: int) -> bool:
        return index < self.failing


@dataclass
class Record:
    """What the watches saw: per Rollout, the canary's route weights and the revision each
    Service selected, in the order the API server applied the changes."""

    weights: dict[str, list[int]] = field(default_factory=dict)
    selectors: dict[str, list[str | None]] = field(default_factory=dict)
    kills: list[tuple[float, str]] = field(default_factory=list)
    completions: int = 0
    #: Rollouts that had not finished when the round's time was up.
    unfinished: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, series: dict[str, list[Any]], key: str, value: Any) -> bool:
        """Appends ``value`` unless it repeats the last one; True when appended."""
        with self.lock:
            seen = series.setdefault(key, [])
            if seen and seen[-1] == value:
                return False
            seen.append(value)
            return True


# --------------------------------------------------------------------------------------------
# Manifests


def _labels(name: str) -> dict[str, str]:
    return {"app": name, "chaos.rollwise.dev/round": "true"}


def manifests(plan: Plan, index: int, image: str = "demo:1") -> list[dict[str, Any]]:
    """The Services, the HTTPRoute and the Rollout of Rollout ``index``."""
    name = plan.name(index)
    query = FAILING_QUERY if plan.fails(index) else PASSING_QUERY
    services = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"{name}-{role}", "labels": _labels(name)},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
        }
        for role in ("stable", "canary")
    ]
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "labels": _labels(name)},
        "spec": {
            "parentRefs": [{"name": "chaos-gateway"}],
            "rules": [
                {
                    "backendRefs": [
                        {"name": f"{name}-stable", "port": 80, "weight": 100},
                        {"name": f"{name}-canary", "port": 80, "weight": 0},
                    ]
                }
            ],
        },
    }
    rollout = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Rollout",
        "metadata": {"name": name, "labels": _labels(name)},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "strategy": {
                "canary": {
                    "stableService": f"{name}-stable",
                    "canaryService": f"{name}-canary",
                    "trafficRouting": {"gatewayAPI": {"httpRoute": {"name": name}}},
                    "scaleDownDelaySeconds": 0,
                    "steps": [
                        {"setWeight": 5},
                        {"setWeight": 25},
                        {
                            "analysis": {
                                "interval": "1s",
                                "metrics": [
                                    {
                                        "name": "constant",
                                        "count": 1,
                                        "successCondition": "result < 0.5",
                                        "provider": {"prometheus": {"query": query}},
                                    }
                                ],
                            }
                        },
                        {"setWeight": 100},
                    ],
                }
            },
        },
    }
    return [*services, route, rollout]


# --------------------------------------------------------------------------------------------
# The round


class Round:
    """One chaos round against the cluster of ``kubeconfig``, in ``plan.namespace``."""

    def __init__(
        self,
        kubeconfig: Path,
        plan: Plan,
        operator: OperatorControl,
        *,
        kubectl: Sequence[str] = ("kubectl",),
        log: Callable[[str], None] = print,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.plan = plan
        self.operator = operator
        self.kubectl = [*kubectl, "--kubeconfig", str(kubeconfig), "-n", plan.namespace]
        self.log = log
        self.api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self.record = Record()
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._rng = random.Random(plan.seed)

    # ---------------------------------------------------------------- helpers

    def _k(self, *args: str, stdin: str | None = None) -> str:
        proc = subprocess.run(
            [*self.kubectl, *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def rollout(self, name: str) -> dict[str, Any]:
        body = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.plan.namespace, "rollouts", name
        )
        return dict(body) if isinstance(body, dict) else {}

    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    # ---------------------------------------------------------------- watches

    def _watch(
        self, list_call: Callable[..., Any], handle: Callable[[dict[str, Any]], None]
    ) -> None:
        """Follows one kind in the namespace from the current state on, resuming after the
        API server ends the stream, until the round stops."""
        version: str | None = None
        while not self._stop.is_set():
            stream = watch.Watch()  # type: ignore[no-untyped-call]
            kwargs: dict[str, Any] = {
                "timeout_seconds": 5,
                "label_selector": "chaos.rollwise.dev/round",
            }
            if version is not None:
                kwargs["resource_version"] = version
            try:
                for event in stream.stream(list_call, **kwargs):  # type: ignore[no-untyped-call]
                    raw = event["object"]
                    body: dict[str, Any] = (
                        raw if isinstance(raw, dict) else self.api.sanitize_for_serialization(raw)
                    )
                    version = (body.get("metadata") or {}).get("resourceVersion", version)
                    if event["type"] in ("ADDED", "MODIFIED"):
                        handle(body)
                    if self._stop.is_set():
                        break
            except client.ApiException as exc:
                if exc.status == 410:
                    version = None  # history compacted: start from the current state again
                    continue
                raise
            finally:
                stream.stop()  # type: ignore[no-untyped-call]

    def _route_seen(self, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        refs = body["spec"]["rules"][0]["backendRefs"]
        weights = {r["name"]: int(r.get("weight", 1)) for r in refs}
        weight = weights.get(f"{name}-canary", 0)
        with self.record.lock:
            before = list(self.record.weights.get(name, []))
        if self.record.add(self.record.weights, name, weight):
            completed = bool(before) and before[-1] == 100 and weight == 0
            if completed:
                self.record.completions += 1
                first = 100 not in before[:-1]
                if self.plan.kill_on_completion and first:
                    self._kill(f"completion of {name}")

    def _service_seen(self, body: dict[str, Any]) -> None:
        selector = (body.get("spec") or {}).get("selector") or {}
        self.record.add(
            self.record.selectors, body["metadata"]["name"], selector.get("rollwise.dev/revision")
        )

    def _start_watches(self) -> list[threading.Thread]:
        ns = self.plan.namespace
        group, version, plural = ROUTES

        def routes(**kwargs: Any) -> Any:
            return self.custom.list_namespaced_custom_object(group, version, ns, plural, **kwargs)

        def services(**kwargs: Any) -> Any:
            return self.core.list_namespaced_service(ns, **kwargs)

        threads = [
            threading.Thread(target=self._watch, args=(routes, self._route_seen), daemon=True),
            threading.Thread(target=self._watch, args=(services, self._service_seen), daemon=True),
        ]
        for thread in threads:
            thread.start()
        return threads

    # ---------------------------------------------------------------- kills

    _kill_lock = threading.Lock()

    def _kill(self, why: str) -> None:
        with self._kill_lock:
            self.operator.kill()
            self.record.kills.append((self._elapsed(), why))
            self.log(f"[chaos] {self._elapsed():6.1f}s SIGKILL ({why})")
            time.sleep(self.plan.down_for)
            self.operator.start()

    def _random_kills(self, until: threading.Event) -> None:
        for _ in range(self.plan.kills):
            if until.wait(self._rng.uniform(0.5, 6.0)):
                return
            self._kill("random")

    # ---------------------------------------------------------------- the round

    def setup(self) -> None:
        docs = [doc for i in range(self.plan.rollouts) for doc in manifests(self.plan, i)]
        self._k("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))

    def wait(self, done: Callable[[dict[str, Any]], bool]) -> list[str]:
        """Waits until ``done`` holds for every Rollout, at most ``plan.timeout``; returns the
        ones for which it never did."""
        deadline = time.monotonic() + self.plan.timeout
        names = [self.plan.name(i) for i in range(self.plan.rollouts)]
        while True:
            pending = [n for n in names if not done(self.rollout(n))]
            if not pending or time.monotonic() > deadline:
                return pending
            time.sleep(0.5)

    def run(self) -> Record:
        """Creates the Rollouts, waits until they are Healthy, starts a canary in each, kills
        the operator on schedule until every Rollout has finished, and returns the record."""
        plan = self.plan
        self.log(f"[chaos] seed {plan.seed}: {plan.rollouts} Rollouts, {plan.failing} failing")
        self.setup()
        self.operator.start()
        unhealthy = self.wait(lambda r: (r.get("status") or {}).get("phase") == "Healthy")
        if unhealthy:
            raise TimeoutError(f"not Healthy before the round: {', '.join(unhealthy)}")
        threads = self._start_watches()
        time.sleep(1.0)  # the watches have the current state before anything moves
        patch = json.dumps(
            [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "demo:2"}]
        )
        for i in range(self.plan.rollouts):
            self._k("patch", "rollout", self.plan.name(i), "--type=json", "-p", patch)
        finished = threading.Event()
        killer = threading.Thread(target=self._random_kills, args=(finished,), daemon=True)
        killer.start()
        try:
            self.record.unfinished = self.wait(_finished)
        finally:
            finished.set()
            killer.join(timeout=30)
        # The last kill's operator has the final word: let it settle, then stop watching.
        time.sleep(3.0)
        self._stop.set()
        for thread in threads:
            thread.join(timeout=15)
        return self.record

    def reasons(self, name: str) -> list[str]:
        """The Rollout's event reasons in the order the operator numbered them (event names
        end in the zero-padded sequence number)."""
        listing = self.core.list_namespaced_event(
            self.plan.namespace, field_selector=f"involvedObject.name={name}"
        )
        items = [e for e in listing.items if e.involved_object.kind == "Rollout"]
        ordered = sorted(items, key=lambda e: str(e.metadata.name))
        return [str(e.reason) for e in ordered]


def _finished(body: dict[str, Any]) -> bool:
    """Rolled back, or Healthy on a spec the operator has seen (the canary's generation)."""
    status = body.get("status") or {}
    generation = (body.get("metadata") or {}).get("generation")
    if status.get("observedGeneration") != generation:
        return False
    if status.get("phase") == "Degraded" and status.get("rolledBackRevision"):
        return True
    return status.get("phase") == "Healthy" and status.get("canaryRevision") is None


def check(round_: Round, record: Record) -> list[str]:
    """What went wrong, per Rollout (empty: the round passed)."""
    problems = [
        f"{name}: not finished within {round_.plan.timeout:g}s" for name in record.unfinished
    ]
    plan = round_.plan
    for i in range(plan.rollouts):
        name = plan.name(i)
        body = round_.rollout(name)
        status = body.get("status") or {}
        fails = plan.fails(i)
        want_phase = "Degraded" if fails else "Healthy"
        if status.get("phase") != want_phase:
            problems.append(f"{name}: phase {status.get('phase')}, expected {want_phase}")
        weights = tuple(record.weights.get(name, []))
        # The route starts at 0 before the canary: what the canary went through follows it.
        moved = weights[1:] if weights[:1] == (0,) else weights
        want = ROLLED_BACK_WEIGHTS if fails else PROMOTED_WEIGHTS
        if moved != want:
            problems.append(f"{name}: route weights {list(moved)}, expected {list(want)}")
        stable = record.selectors.get(f"{name}-stable", [])
        revisions = [r for r in stable if r is not None]
        if fails and len(set(revisions)) != 1:
            problems.append(f"{name}: the stable Service selected {revisions}; it must not move")
        if not fails and (len(revisions) != 2 or revisions[0] == revisions[1]):
            problems.append(
                f"{name}: the stable Service selected {revisions}; expected old then new, once"
            )
        canary = [r for r in record.selectors.get(f"{name}-canary", []) if r is not None]
        if revisions:
            old, new = (
                revisions[0],
                status.get("rolledBackRevision") or status.get("stableRevision"),
            )
            want_canary = [old, new, old] if fails else [old, new]
            if canary != want_canary:
                problems.append(
                    f"{name}: the canary Service selected {canary}, expected {want_canary}"
                )
        reasons = tuple(round_.reasons(name))
        want_reasons = ROLLED_BACK_REASONS if fails else PROMOTED_REASONS
        if reasons != want_reasons:
            problems.append(f"{name}: events {list(reasons)}, expected {list(want_reasons)}")
    return problems


def summary(record: Record) -> Iterator[str]:
    after = sum(1 for _, why in record.kills if why != "random")
    yield f"kills: {len(record.kills)} ({after} right after a completion)"
    yield f"completions seen on routes: {record.completions}"


__all__ = [
    "E2E_FAILING",
    "E2E_ROLLOUTS",
    "OperatorControl",
    "Plan",
    "Record",
    "Round",
    "check",
    "manifests",
    "summary",
]
