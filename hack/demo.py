"""``python -m hack.demo`` (``make demo``): the README's demo, a Rollout told as it happens.

It brings up the lab (a real Kubernetes control plane on loopback with kwok's fake nodes, a real
Prometheus, the demo service's revisions, traffic through the HTTPRoute), installs the chart with
helm and starts the real ``rollwise-operator`` process as the chart's ServiceAccount, applies
``examples/rollout-gateway-api`` with kubectl (demo-sized timings patched in on the way), then
acts as a user would: one good image change that walks 5% → 25% → 100%, and one bad
revision that the operator rolls back. Every change it sees (status, route weight, analysis
measurements, events, Prometheus' count of requests per revision) is printed as one line.

Then the second product: ``examples/modelrelease-template`` as alice, whom the lab's API server
authenticates by token (a ``file://`` artifact with its real digest, demo-sized timings, no
freeze window). Its gates pass, the canary runs and passes, bob approves as security and carol
as product with ``kubectl rollwise approve`` under their own kubeconfigs (the operator's
admission webhook records who they are), the ``production`` alias flips to the new version and
is read back from its ConfigMap.

Its boundary: it only drives and observes through the API (kubectl for what a user types, the
Kubernetes client for fast polling) and Prometheus; it never imports the operator. Each stage
has a bounded timeout; the demo exits 1 with a message naming the stage that did not happen,
130 on Ctrl-C, and always stops the operator (SIGTERM) and the lab.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import yaml

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "rollout-gateway-api"
BIN = Path(sys.executable).parent
NAMESPACE = "default"
NAME = "demo"

#: Demo-sized timings patched into the example at apply time.
INTERVAL_SECONDS = 1
COUNT = 2
PAUSE = "2s"
RATE_WINDOW = "10s"
TRAFFIC_RATE = 100.0

#: Stage timeouts, in seconds: the whole demo stays well under two minutes.
LAB_TIMEOUT = 30.0
HEALTHY_TIMEOUT = 45.0
PROMOTE_TIMEOUT = 45.0
ROLLBACK_TIMEOUT = 30.0

RELEASE_TIMEOUT = 60.0

MODEL_EXAMPLE = REPO / "examples" / "modelrelease-template"
#: Who does what in the model release: people the lab's API server authenticates by token
#: (``hack.cluster.DEFAULT_IDENTITIES``), their groups mapped to approver roles.
CREATOR, SECURITY, PRODUCT = "alice", "bob", "carol"
ROLE_GROUPS = "security=sec-team;product=pm"
#: A Service over every revision of the model's pods: what its clients call.
MODEL_CLIENT_SERVICE = "fraud-detector"
MODEL_STEPS: list[dict[str, Any]] = [{"setWeight": 5}, {"setWeight": 25}, {"setWeight": 100}]

IMAGE_GOOD = "ghcr.io/rollwise/demo-service:1.1.0"
IMAGE_BAD = "ghcr.io/rollwise/demo-service:1.2.0"
BAD_ANNOTATION = "lab.rollwise.dev/error-ratio"

#: Per-measurement events repeat what the ``measure`` lines show.
MEASUREMENT_REASONS = {"AnalysisMeasured", "MeasurementFailed", "MeasurementInconclusive"}


class StageTimeout(Exception):
    """A stage of the demo did not happen within its time."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM."""


class Style:
    """ANSI colours, only for a terminal and unless NO_COLOR is set."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def green(self, text: str) -> str:
        return self._wrap("32", text)

    def red(self, text: str) -> str:
        return self._wrap("31", text)

    def yellow(self, text: str) -> str:
        return self._wrap("33", text)

    def cyan(self, text: str) -> str:
        return self._wrap("36", text)


def demo_documents() -> list[dict[str, Any]]:
    """The example's manifests (Services, route, then Rollout) with demo-sized timings."""
    docs: list[dict[str, Any]] = []
    for path in sorted(EXAMPLE.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    order = {"Service": 0, "HTTPRoute": 1, "Rollout": 2}
    docs.sort(key=lambda d: order.get(d["kind"], 3))
    rollout = next(d for d in docs if d["kind"] == "Rollout")
    canary = rollout["spec"]["strategy"]["canary"]
    for step in canary["steps"]:
        if "pause" in step and "duration" in step["pause"]:
            step["pause"]["duration"] = PAUSE
    canary["scaleDownDelaySeconds"] = 2
    analysis = canary["analysis"]
    analysis["interval"] = f"{INTERVAL_SECONDS}s"
    for metric in analysis["metrics"]:
        metric["count"] = COUNT
        # One-second intervals over 10 s windows cannot gather the example's minimum of
        # canary requests before the first measurement: the guard would pause every step.
        metric.pop("sampleGuard", None)
        source = metric["provider"]["prometheus"]
        # The lab's Prometheus is the operator's default (ROLLWISE_PROMETHEUS_URL).
        source.pop("address", None)
        source["query"] = source["query"].replace("[1m]", f"[{RATE_WINDOW}]")
    return docs


def release_documents(artifact: Path) -> list[dict[str, Any]]:
    """``examples/modelrelease-template`` with the demo's artifact and timings, plus a client
    Service over every revision of the model's pods."""
    docs: list[dict[str, Any]] = []
    for path in sorted(MODEL_EXAMPLE.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    services = [d for d in docs if d["kind"] == "Service"]
    client = yaml.safe_load(yaml.safe_dump(services[0]))
    client["metadata"]["name"] = MODEL_CLIENT_SERVICE
    release = next(d for d in docs if d["kind"] == "ModelRelease")
    spec = release["spec"]
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    spec["artifact"] = {"uri": artifact.as_uri(), "digest": f"sha256:{digest}"}
    spec["serving"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "MODEL_URI", "value": artifact.as_uri()}
    ]
    # The demo runs any day: no Friday-evening freeze window.
    spec["gates"].pop("freezeWindows", None)
    canary = spec["canary"]
    canary["steps"] = MODEL_STEPS
    analysis = canary["analysis"]
    analysis["interval"] = f"{INTERVAL_SECONDS}s"
    for metric in analysis["metrics"]:
        metric["count"] = COUNT
        source = metric["provider"]["prometheus"]
        source["query"] = source["query"].replace("[1m]", f"[{RATE_WINDOW}]")
    return [*services, client, release]


def measurement_text(measurement: dict[str, Any]) -> str:
    """A recorded measurement in the operator's words (``0.012``, ``no data``, ``nan``,
    ``error``), as the plugin's VALUE column and the status messages say it."""
    from rollwise.core.analysis import measured_text  # noqa: PLC0415 - heavy import
    from rollwise.core.runs import MeasurementRecord  # noqa: PLC0415

    return measured_text(MeasurementRecord.model_validate(measurement))


def threshold_text(metric: dict[str, Any]) -> str:
    """A metric's pass rule, short: ``< 0.05``, ``<= 0.5``."""
    parts: list[str] = []
    condition = metric.get("successCondition")
    if condition:
        parts.append(str(condition).replace("result", "").strip())
    limits = metric.get("thresholdRange") or {}
    if limits.get("min") is not None:
        parts.append(f">= {limits['min']:g}")
    if limits.get("max") is not None:
        parts.append(f"<= {limits['max']:g}")
    if metric.get("failureCondition"):
        parts.append(f"fails if {metric['failureCondition']}")
    return " and ".join(parts) or "no rule"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _event_time(event: Any) -> str:
    for value in (event.event_time, event.last_timestamp, event.first_timestamp):
        if value is not None:
            return str(value.isoformat())
    return ""


@dataclass
class Snapshot:
    """What one poll saw."""

    rollout: dict[str, Any]
    route_weight: int
    at: datetime

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.rollout.get("status") or {})


@dataclass
class Period:
    """A stretch of time at one route weight, for Prometheus' count of requests."""

    weight: int
    canary: str
    counts: dict[str, float]
    began: float


@dataclass
class Demo:
    out: TextIO
    style: Style
    workdir: Path
    started: float = field(default_factory=time.monotonic)
    act_started: float = field(default_factory=time.monotonic)
    lab: Any = None
    release: Any = None
    operator: subprocess.Popen[bytes] | None = None
    api: Any = None
    kubectl_binary: str = "kubectl"
    custom: Any = None
    core: Any = None
    seen_events: set[tuple[str, int]] = field(default_factory=set)
    seen_measurements: set[tuple[str, int, str, str]] = field(default_factory=set)
    last_state: tuple[Any, ...] | None = None
    period: Period | None = None
    steps: int = 0
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    reasons_seen: list[str] = field(default_factory=list)
    weights_seen: list[int] = field(default_factory=list)
    act_reasons_from: int = 0
    bad_revision: str = ""
    model_version: str = ""
    rolled_back_at: int = 0

    # -- output ---------------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def title(self, text: str) -> None:
        self.say()
        self.say(self.style.bold(f"== {text}"))

    def line(self, snap: Snapshot, kind: str, text: str) -> None:
        """One aligned progress line: time, step, weights, what happened."""
        status = snap.status
        index = status.get("currentStepIndex")
        step = (
            f"{index + 1}/{self.steps}"
            if status.get("canaryRevision") and isinstance(index, int) and index < self.steps
            else "-"
        )
        elapsed = time.monotonic() - self.act_started
        weight = int(status.get("canaryWeight", 0))
        self.say(
            f"{self.style.dim(f'{elapsed:6.1f}s')}  {step:>4}  {weight:>4}%  "
            f"{snap.route_weight:>4}%  {kind:<8} {text}"
        )

    def header(self) -> None:
        self.say(
            self.style.dim(
                "  time  step  status route  what\n"
                "  (seconds since this part began; the step the Rollout is on; the canary weight\n"
                "   in the Rollout's status and in the HTTPRoute the gateway reads)"
            )
        )

    # -- the cluster, as a user and as a poller sees it -----------------------------------

    def kubectl(
        self, *args: str, input: str | None = None, plugin: bool = False, user: str = ""
    ) -> str:
        """Runs kubectl as a user would (a plugin takes no kubectl flags before its name), as
        the lab's administrator or as ``user``, one of the people the API server knows."""
        kubeconfig = self.lab.kubeconfig_of(user) if user else self.lab.kubeconfig
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        cache = self.workdir / "kubecache" / (user or "admin")
        flags = [] if plugin else ["--cache-dir", str(cache), "-n", NAMESPACE]
        cmd = [self.kubectl_binary, *flags, *args]
        proc = subprocess.run(
            cmd, input=input, capture_output=True, text=True, env=env, timeout=30, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def snapshot(self) -> Snapshot:
        rollout = self.custom.get_namespaced_custom_object(
            "rollwise.dev", "v1alpha1", NAMESPACE, "rollouts", NAME
        )
        route = self.custom.get_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", NAMESPACE, "httproutes", NAME
        )
        refs = route["spec"]["rules"][0]["backendRefs"]
        weights = {r["name"]: int(r.get("weight", 1)) for r in refs}
        return Snapshot(rollout, weights.get(f"{NAME}-canary", 0), datetime.now(UTC))

    def new_events(self, name: str = NAME) -> list[Any]:
        listing = self.core.list_namespaced_event(
            NAMESPACE, field_selector=f"involvedObject.name={name}"
        )
        fresh = []
        for event in sorted(listing.items, key=_event_time):
            key = (str(event.metadata.uid), int(event.count or 1))
            if key not in self.seen_events:
                self.seen_events.add(key)
                fresh.append(event)
        return fresh

    def request_counts(self) -> dict[str, float]:
        """Requests served so far per revision, as Prometheus last scraped them."""
        assert self.lab.prometheus is not None
        try:
            result = self.lab.prometheus.query_vector(
                f'sum by (revision) (http_requests_total{{service="{NAME}"}})'
            )
        except Exception:  # a missed count only drops one informative line
            return {}
        return {labels.get("revision", ""): value for labels, value in result}

    # -- following the Rollout ------------------------------------------------------------

    def report(self, snap: Snapshot) -> None:
        """Prints what changed since the last poll."""
        status = snap.status
        state = (
            status.get("phase"),
            status.get("currentStepIndex"),
            status.get("canaryWeight", 0),
            snap.route_weight,
        )
        if state != self.last_state:
            before = self.last_state or (None, None, 0, 0)
            if state[3] != before[3]:
                self.close_period(snap)
            self.last_state = state
            change = self.describe_change(before, state, snap)
            if change:
                self.line(snap, "state", change)
        run = status.get("analysis") or {}
        for metric in run.get("metrics") or []:
            for m in metric.get("measurements") or []:
                key = (
                    str(run.get("revision")),
                    int(run.get("stepIndex", -1)),
                    metric["name"],
                    m["at"],
                )
                if key in self.seen_measurements:
                    continue
                self.seen_measurements.add(key)
                shown = measurement_text(m)
                verdict = str(m.get("verdict"))
                painted = {"Pass": self.style.green, "Fail": self.style.red}.get(
                    verdict, self.style.yellow
                )(verdict)
                rule = threshold_text(self.metrics.get(metric["name"], {}))
                self.line(
                    snap, "measure", f"{metric['name']:<12} {shown:>8}  pass if {rule:<8} {painted}"
                )
        for event in self.new_events():
            self.reasons_seen.append(str(event.reason))
            if event.reason in MEASUREMENT_REASONS:
                continue
            warn = event.type == "Warning"
            reason = (self.style.red if warn else self.style.cyan)(f"{event.reason}")
            kind = "WARNING" if warn else "event"
            self.line(snap, kind, f"{reason}: {event.message}")

    def describe_change(
        self, before: tuple[Any, ...], after: tuple[Any, ...], snap: Snapshot
    ) -> str:
        """``route 5% -> 25%, phase Paused -> Progressing``: what moved, in words."""
        changes: list[str] = []
        if after[3] != before[3]:
            changes.append(self.style.bold(f"route {before[3]}% -> {after[3]}%"))
            if after[3] > 0:
                self.weights_seen.append(int(after[3]))
        if after[2] != before[2]:
            changes.append(f"status {before[2]}% -> {after[2]}%")
        if after[0] != before[0]:
            phase = str(after[0] or "(none yet)")
            painted = {"Healthy": self.style.green, "Degraded": self.style.red}.get(
                phase, self.style.yellow
            )(phase)
            changes.append(f"phase {before[0] or '(none yet)'} -> {painted}")
        index = snap.status.get("currentStepIndex")
        if not changes and isinstance(index, int) and index < self.steps:
            changes.append(f"step -> {index + 1}/{self.steps}")
        return ", ".join(changes)

    def close_period(self, snap: Snapshot) -> None:
        """At a route weight change: how Prometheus saw the traffic at the weight before it."""
        counts = self.request_counts()
        previous, self.period = self.period, None
        canary = str(snap.status.get("canaryRevision") or "")
        if snap.route_weight > 0 and canary:
            self.period = Period(snap.route_weight, canary, counts, time.monotonic())
        if previous is None or not counts:
            return
        delta = {r: counts.get(r, 0.0) - previous.counts.get(r, 0.0) for r in counts}
        total = sum(v for v in delta.values() if v > 0)
        on_canary = max(delta.get(previous.canary, 0.0), 0.0)
        if total <= 0:
            return
        seconds = time.monotonic() - previous.began
        self.line(
            snap,
            "traffic",
            f"Prometheus: {100 * on_canary / total:.1f}% of requests on the canary "
            f"({on_canary:.0f} of {total:.0f} in {seconds:.1f} s with the route at "
            f"{previous.weight}%)",
        )

    def follow(self, done: Callable[[Snapshot], bool], timeout: float, stage: str) -> Snapshot:
        """Polls and prints until ``done``; StageTimeout after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            snap = self.snapshot()
            self.report(snap)
            if done(snap):
                return snap
            if time.monotonic() > deadline:
                raise StageTimeout(f"{stage} did not happen within {timeout:g} s")
            time.sleep(0.05)

    # -- the acts -------------------------------------------------------------------------

    def start_lab(self) -> None:
        from hack.cluster import build  # noqa: PLC0415 - keeps --help fast
        from hack.lab.lab import Lab  # noqa: PLC0415
        from hack.lab.operator import install_operator  # noqa: PLC0415

        self.title("1. The lab and the operator")
        # A fresh machine builds the control plane's binaries first (minutes, once).
        build.ensure_built(log=lambda line: self.say(self.style.dim(line)))
        began = time.monotonic()
        self.lab = Lab(self.workdir / "lab", scrape_interval="250ms", log=lambda _: None).start()
        if time.monotonic() - began > LAB_TIMEOUT:
            raise StageTimeout(f"the lab did not start within {LAB_TIMEOUT:g} s")
        assert self.lab.prometheus is not None
        cluster = self.lab.running_cluster
        self.kubectl_binary = str(cluster.kubectl_path)
        self.say(
            f"lab up in {time.monotonic() - began:.1f} s: Kubernetes {cluster.version} "
            f"(etcd, kube-apiserver, kube-controller-manager, kube-scheduler; kwok plays the "
            f"kubelet) at {cluster.server}, Prometheus {self.lab.prometheus.url}"
        )
        from kubernetes import client  # noqa: PLC0415 - heavy import

        self.api = self.lab.api_client()
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)

        release = install_operator(cluster, NAMESPACE, self.workdir / "operator")
        self.say(
            f"$ helm install {release.name} charts/rollwise -n {NAMESPACE} "
            "--set deployment.enabled=false --set webhook.url=... (the operator runs here)"
        )
        log = self.workdir / "operator.log"
        self.operator = release.start(
            "--namespace",
            NAMESPACE,
            log=log,
            prometheus_url=self.lab.prometheus.url,
            env={
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                # Who may approve as what (the chart's governance.roleGroups), and where
                # artifact digests may be read from (the demo's own folder).
                "ROLLWISE_ROLE_GROUPS": ROLE_GROUPS,
                "ROLLWISE_EVIDENCE_POLICY": json.dumps({"filePathPrefixes": [str(self.workdir)]}),
            },
        )
        self.release = release
        self.say(
            f"operator: rollwise-operator (pid {self.operator.pid}) as {release.user}, "
            f"logs to {log}"
        )

    def apply_example(self) -> None:
        self.title("2. kubectl apply -f examples/rollout-gateway-api/")
        docs = demo_documents()
        rollout = next(d for d in docs if d["kind"] == "Rollout")
        canary = rollout["spec"]["strategy"]["canary"]
        self.steps = len(canary["steps"])
        self.metrics = {m["name"]: m for m in canary["analysis"]["metrics"]}
        self.say(
            self.style.dim(
                f"(demo timings patched in at apply time: analysis every {INTERVAL_SECONDS}s "
                f"x{COUNT}, pauses {PAUSE}, rate windows {RATE_WINDOW}, the lab's Prometheus)"
            )
        )
        for line in self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs)).splitlines():
            self.say(f"  {line}")
        self.lab.start_traffic(f"httproute/{NAMESPACE}/{NAME}", rate=TRAFFIC_RATE)
        self.say(f"traffic: {TRAFFIC_RATE:g} requests/s through httproute/{NAME}")
        self.say(self.style.dim("(nothing moves until the operator has started: a few seconds)"))
        self.begin_act()
        self.follow(
            lambda s: s.status.get("phase") == "Healthy" and self.seen("Initialized"),
            HEALTHY_TIMEOUT,
            "the first revision becoming Healthy",
        )

    def patch_template(self, ops: list[dict[str, Any]]) -> str:
        self.kubectl("patch", f"rollout/{NAME}", "--type=json", "-p", json.dumps(ops))
        from rollwise.core.observations import revision_of  # noqa: PLC0415 - heavy import

        template = self.snapshot().rollout["spec"]["template"]
        return str(revision_of(template))

    def good_change(self) -> str:
        self.title(f"3. A new image: {IMAGE_GOOD}")
        self.say(
            self.style.dim(
                "Each step sets a weight, checks the route carries it, then measures the canary"
                f"\n{COUNT} times (error ratio and p99 latency from Prometheus) before moving on."
            )
        )
        self.say(
            f'$ kubectl patch rollout {NAME} --type=json -p \'[{{"op": "replace", '
            f'"path": "/spec/template/spec/containers/0/image", "value": "{IMAGE_GOOD}"}}]\''
        )
        self.begin_act()
        first_weight = len(self.weights_seen)
        new = self.patch_template(
            [
                {
                    "op": "replace",
                    "path": "/spec/template/spec/containers/0/image",
                    "value": IMAGE_GOOD,
                }
            ]
        )
        self.follow(
            lambda s: (
                s.status.get("phase") == "Healthy"
                and s.status.get("stableRevision") == new
                and self.seen("RolloutCompleted")
            ),
            PROMOTE_TIMEOUT,
            f"the promotion of revision {new} (5% -> 25% -> 100%, then Healthy)",
        )
        weights = " -> ".join(f"{w}%" for w in self.weights_seen[first_weight:])
        self.say(f"route weights seen: {weights}")
        self.say(self.style.green(f"revision {new} is stable and takes all traffic: Healthy"))
        return new

    def bad_change(self, stable: str) -> float:
        self.title(f"4. A bad revision: {IMAGE_BAD}, 20% of its requests fail")
        self.say(
            self.style.dim(
                f'The pod template carries {BAD_ANNOTATION}: "0.2", which the lab\'s demo'
                "\nservice obeys. The error-ratio check must fail and the operator roll back."
            )
        )
        self.begin_act()
        bad = self.patch_template(
            [
                {
                    "op": "replace",
                    "path": "/spec/template/spec/containers/0/image",
                    "value": IMAGE_BAD,
                },
                {
                    "op": "add",
                    "path": "/spec/template/metadata/annotations",
                    "value": {BAD_ANNOTATION: "0.2"},
                },
            ]
        )
        self.follow(lambda s: s.route_weight > 0, ROLLBACK_TIMEOUT, f"the canary {bad} at 5%")
        self.bad_revision = bad
        back = self.follow(
            lambda s: s.route_weight == 0, ROLLBACK_TIMEOUT, "the route back at 0% (rollback)"
        )
        degraded = self.follow(
            lambda s: (
                s.status.get("phase") == "Degraded" and s.status.get("rolledBackRevision") == bad
            ),
            10,
            "phase Degraded",
        )
        if degraded.status.get("stableRevision") != stable:
            raise StageTimeout(
                f"the stable revision changed to {degraded.status['stableRevision']}"
            )
        self.follow(
            lambda s: self.seen("AnalysisFailed", "RolledBack"),
            10,
            "the AnalysisFailed and RolledBack events",
        )
        failing = [
            m
            for metric in (degraded.status.get("analysis") or {}).get("metrics") or []
            for m in metric.get("measurements") or []
            if m.get("verdict") == "Fail"
        ]
        if not failing:
            raise StageTimeout("no failing measurement recorded in status")
        first = min(parse_time(m["at"]) for m in failing)
        reaction = (back.at - first).total_seconds()
        bound = INTERVAL_SECONDS + 2
        self.rolled_back_at = self.weights_seen[-1] if self.weights_seen else 0
        verdict = self.style.green("within") if reaction <= bound else self.style.red("OVER")
        self.say(
            f"reaction time: {reaction:.2f} s from the step's first failing measurement to the "
            f"route at 0% ({verdict} the bound: interval {INTERVAL_SECONDS} s + 2 s)"
        )
        if reaction > bound:
            raise StageTimeout(f"the rollback took {reaction:.2f} s, more than {bound} s")
        return reaction

    def begin_act(self) -> None:
        self.act_started = time.monotonic()
        self.act_reasons_from = len(self.reasons_seen)
        self.header()

    def seen(self, *reasons: str) -> bool:
        """Whether every one of ``reasons`` was among the events since the act began."""
        return set(reasons) <= set(self.reasons_seen[self.act_reasons_from :])

    def final_state(self) -> None:
        self.title(f"5. kubectl rollwise get rollout {NAME}")
        try:
            shown = self.kubectl("rollwise", "get", "rollout", NAME, plugin=True)
        except RuntimeError as err:
            shown = str(err)
        for line in shown.rstrip().splitlines():
            self.say(f"  {line}")

    # -- the model release ----------------------------------------------------------------

    def release_status(self, name: str) -> dict[str, Any]:
        release = self.custom.get_namespaced_custom_object(
            "rollwise.dev", "v1alpha1", NAMESPACE, "modelreleases", name
        )
        return dict(release.get("status") or {})

    def follow_release(
        self,
        name: str,
        done: Callable[[dict[str, Any]], bool],
        stage: str,
        events: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Polls the release and prints each change of stage, weight or message and each
        event, until ``done(status)`` and every reason of ``events`` was seen (a status and
        the events of the same pass reach the demo in either order); StageTimeout after
        RELEASE_TIMEOUT seconds."""
        deadline = time.monotonic() + RELEASE_TIMEOUT
        while True:
            status = self.release_status(name)
            serving = status.get("serving") or {}
            state = (status.get("stage"), status.get("phase"), serving.get("weight"))
            if state != self.last_state:
                self.last_state = state
                self.release_line(
                    status, "state", f"{state[0]} / {state[1]}: {status.get('message', '')}"
                )
            for event in self.new_events(name):
                self.reasons_seen.append(str(event.reason))
                warn = event.type == "Warning"
                reason = (self.style.red if warn else self.style.cyan)(f"{event.reason}")
                self.release_line(
                    status, "WARNING" if warn else "event", f"{reason}: {event.message}"
                )
            if status.get("stage") in ("RolledBack", "Revoked"):
                raise StageTimeout(
                    f"the release reached {status['stage']}: {status.get('message')}"
                )
            if done(status) and self.seen(*events):
                return status
            if time.monotonic() > deadline:
                raise StageTimeout(f"{stage} did not happen within {RELEASE_TIMEOUT:g} s")
            time.sleep(0.1)

    def release_line(self, status: dict[str, Any], kind: str, text: str) -> None:
        elapsed = time.monotonic() - self.act_started
        weight = (status.get("serving") or {}).get("weight")
        shown = "-" if weight is None else f"{weight}%"
        self.say(f"{self.style.dim(f'{elapsed:6.1f}s')}  {shown:>5}  {kind:<8} {text}")

    def model_release(self) -> str:
        from hack.lab.testing.cluster_fixtures import grant_namespace  # noqa: PLC0415

        self.title(
            f"6. A model release: kubectl apply -f examples/modelrelease-template/ (as {CREATOR})"
        )
        artifact = self.workdir / "fraud-detector-7.bin"
        artifact.write_bytes(b"weights of fraud-detector version 7\n" * 64)
        docs = release_documents(artifact)
        release = next(d for d in docs if d["kind"] == "ModelRelease")
        name = str(release["metadata"]["name"])
        spec = release["spec"]
        self.say(
            self.style.dim(
                f"The lab's API server knows {CREATOR}, {SECURITY} and {PRODUCT} by token;"
                f" {SECURITY} is in group sec-team\n(role security), {PRODUCT} in pm "
                "(role product). The artifact is a file:// model with its real sha256;\n"
                f"demo timings patched in (steps 5/25/100%, analysis every {INTERVAL_SECONDS}s "
                f"x{COUNT}), no freeze window."
            )
        )
        grant_namespace(self.lab.running_cluster, NAMESPACE, [CREATOR, SECURITY, PRODUCT])
        deadline = time.monotonic() + 20
        while not self.release.webhook_serving():
            if time.monotonic() > deadline:
                raise StageTimeout("the operator's admission webhook did not serve within 20 s")
            time.sleep(0.1)
        applied = self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs), user=CREATOR)
        for line in applied.splitlines():
            self.say(f"  {line}")
        self.lab.start_traffic(f"service/{NAMESPACE}/{MODEL_CLIENT_SERVICE}", rate=TRAFFIC_RATE)
        self.say(f"traffic: {TRAFFIC_RATE:g} requests/s through service/{MODEL_CLIENT_SERVICE}")
        self.act_started = time.monotonic()
        self.act_reasons_from = len(self.reasons_seen)
        self.last_state = None
        self.say(self.style.dim("  time  weight  what"))
        held = self.follow_release(
            name,
            lambda s: (
                s.get("stage") == "Staging"
                and str(s.get("message", "")).startswith("canary passed; waiting for approvals")
            ),
            "the gates and the canary",
            events=("Staged", "CanaryPassed"),
        )
        passed = ", ".join(
            f"{g['name']} {g['status']}" for g in held.get("gates") or [] if g.get("name")
        )
        self.say(f"gates: {passed}")
        for user, role in ((SECURITY, "security"), (PRODUCT, "product")):
            self.say(f"$ kubectl rollwise approve modelrelease/{name} --role {role}   # as {user}")
            shown = self.kubectl(
                "rollwise",
                "approve",
                f"modelrelease/{name}",
                "--role",
                role,
                "-n",
                NAMESPACE,
                plugin=True,
                user=user,
            )
            for line in shown.rstrip().splitlines():
                self.say(f"  {line}")
        done = self.follow_release(
            name,
            lambda s: s.get("stage") == "Production" and s.get("phase") == "Healthy",
            "the approvals, the alias flip and Production",
            events=("ReleaseApproved", "PromotedToProduction"),
        )
        approvals = ", ".join(f"{a['role']}: {a['user']}" for a in done.get("approvals") or [])
        self.say(self.style.green(f"{name} is in Production, approved by {approvals}"))
        store = spec["alias"]["store"]["configMap"]["name"]
        self.say(
            f"$ kubectl get configmap {store} -o jsonpath='{{.data}}'   # the alias, read back"
        )
        data = self.kubectl("get", "configmap", store, "-o", "jsonpath={.data}")
        self.say(f"  {data}")
        entry = json.loads(data or "{}").get(f"{spec['model']}.{spec['alias']['name']}")
        if entry is None or json.loads(entry).get("version") != spec["version"]:
            raise StageTimeout(f"the alias read back is not version {spec['version']}: {data}")
        self.model_version = f"{spec['model']} version {spec['version']}"
        return name

    def summary(self, good: str, stable_before: str, reaction: float, release: str) -> None:
        total = time.monotonic() - self.started
        self.title("What happened")
        self.say(
            f"- The example Rollout started on revision {stable_before}; a new image became\n"
            f"  revision {good}, which took 5%, then 25%, then 100% of the traffic, each step\n"
            "  gated by Prometheus checks, and was promoted: phase Healthy.\n"
            f"- A bad revision, {self.bad_revision} (20% errors), failed its error-ratio check\n"
            f"  with {self.rolled_back_at}% of the traffic; the operator sent all traffic back to\n"
            f"  {good} {reaction:.2f} s after the step's first failing measurement, scaled\n"
            "  the canary down and marked the Rollout Degraded (AnalysisFailed, RolledBack).\n"
            + (
                "  (At 5% it got only a few requests a second: too few errors to fail more than\n"
                "  the one measurement failureLimit allows; a larger share exposed it.)\n"
                if self.rolled_back_at > 5
                else ""
            )
            + "  It does not retry that revision until the template changes or you ask it to.\n"
            f"- {CREATOR} released {self.model_version} ({release}): its gates passed, its\n"
            f"  canary ran and passed, {SECURITY} (security) and {PRODUCT} (product) approved\n"
            "  under their own identities, and the production alias flipped and was read back.\n"
            f"- Operator log: {self.workdir / 'operator.log'}   (demo took {total:.0f} s)"
        )
        self.say()
        self.say(
            self.style.bold("Try it yourself") + " (with .venv/bin on PATH, from the repo root)"
        )
        for command, why in (
            ("python -m hack.lab up --traffic httproute/default/demo", "terminal 1: the lab"),
            ("python -m hack.lab operator", "terminal 2: helm install, then the operator"),
            ("export KUBECONFIG=$PWD/.lab/cluster/kubeconfig", "terminal 3"),
            ("python -m hack.demo --manifests | kubectl apply -f -", "the example, demo timings"),
            (f"kubectl rollwise get rollout {NAME} -w", "watch it live"),
            (f"kubectl rollwise retry {NAME}", "or abort, promote, pause"),
        ):
            self.say(f"  {command:<64} {self.style.dim('# ' + why)}")

    def run(self) -> None:
        self.start_lab()
        self.apply_example()
        stable_before = str(self.snapshot().status.get("stableRevision"))
        good = self.good_change()
        reaction = self.bad_change(good)
        self.final_state()
        version = self.model_release()
        self.summary(good, stable_before, reaction, version)

    def teardown(self) -> None:
        if self.operator is not None and self.operator.poll() is None:
            self.operator.send_signal(signal.SIGTERM)
            try:
                self.operator.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.operator.kill()
                self.operator.wait(timeout=5)
        if self.api is not None:
            self.api.close()
        if self.lab is not None:
            self.lab.stop()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.demo", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--workdir", type=Path, help="where the lab and the operator log go (default: a temp dir)"
    )
    parser.add_argument(
        "--manifests",
        action="store_true",
        help="print the example's manifests with the demo's timings, and exit",
    )
    args = parser.parse_args(argv)
    if args.manifests:
        print(yaml.safe_dump_all(demo_documents(), sort_keys=False), end="")
        return 0
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rollwise-demo-"))
    style = Style(sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
    demo = Demo(sys.stdout, style, workdir.resolve())
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    code = 0
    try:
        demo.run()
    except StageTimeout as err:
        demo.say(style.red(f"demo failed: {err}"))
        demo.say(f"operator log: {workdir / 'operator.log'}")
        code = 1
    except Interrupted as err:
        demo.say(f"interrupted ({err}); stopping")
        code = 130
    except Exception as err:
        demo.say(style.red(f"demo failed: {type(err).__name__}: {err}"))
        demo.say(f"operator log: {workdir / 'operator.log'}")
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        demo.teardown()
        demo.say(style.dim(f"stopped the operator and the lab; files kept in {workdir}"))
    return code


if __name__ == "__main__":
    sys.exit(main())
