"""``python -m hack.bench.scale``: N Rollouts stepping at once on the lab cluster, and what it
costs the operator and the control plane.

    python -m hack.bench.scale [--sizes 100,300,1000] [--replicas 1] [--timeout 900]
                               [--noop-seconds 30] [--spread SECONDS] [--pause SECONDS]
                               [--operator-threads N]

For each size N, on a fresh lab cluster (a real control plane: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, and kwok as the kubelet of two fake Nodes; no lab
controller, no Prometheus): the CRDs applied, the chart installed with ``helm install`` into
namespace ``bench`` (namespace scope, its webhook on), and the operator (``rollwise-operator``)
run as the chart's ServiceAccount, as every end-to-end test runs it. N minimal Rollouts
(replica-ratio router, ``--replicas`` replicas, steps 5/25/100 without pauses, no analysis,
scaleDownDelaySeconds 0) are created and become Healthy; then every template is patched at once
and the benchmark waits, bounded, until all N are Healthy on the new revision: the worst case,
every Rollout stepping in the same second. ``--spread S`` patches the templates evenly over S
seconds instead, and ``--pause P`` puts a P-second pause step after the 5% and the 25% steps:
with P at least S, all N Rollouts are in flight at once while their steps arrive spread out, as
in a cluster where releases start over a minute rather than in the same instant. It prints
(definitions are printed with the figures):

- operator CPU seconds (utime+stime of its process) and peak RSS (VmHWM); the control plane's
  CPU apart, per process (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok);
- step lag p50/p99/max;
- the operator's API writes per step, split into status, events and other writes, from
  kube-apiserver's audit log (requests of the operator's user only), and the writes during a
  no-op window after everything settled;
- partial figures, marked as such, when the bound is hit.

It also writes ``lags-N.json`` to the workdir: every step's lag with its Rollout, step index
and start time, and the processes' CPU seconds sampled every 2 s.

Boundary: a measurement script. It asserts nothing; the goals are printed beside the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from hack.bench._common import (
    WRITE_VERBS,
    Api,
    AuditLog,
    Process,
    control_plane_cpu,
    cpu_seconds,
    machine,
    memory_kib,
    percentile,
    wait_for,
)
from hack.cluster import Cluster
from hack.lab.lab import ROLLWISE_CRDS, install_crds, load_crds
from hack.lab.operator import install_operator

NAMESPACE = "bench"
REPLICAS = 1
STEPS = (5, 25, 100)
QUIET_FOR = 5.0
ROLLOUTS = "/apis/rollwise.dev/v1alpha1/namespaces/bench/rollouts"

GOALS = (
    "goals: 1,000 rollouts with p99 step lag < 2 s, RSS < 300 MB, <= 2 writes per step,"
    " 0 on a no-op pass"
)

DEFINITIONS = f"""definitions:
  step lag   for each Rollout and each step after the first, (time the status first shows the
             next step, or phase Healthy on the new revision after the last step) minus (time it
             first showed the previous step). Nothing is subtracted for the revision's pods: a
             step that scales a Deployment waits for the cluster's own controllers (ReplicaSet,
             scheduler, kwok's kubelet) to make the pods Ready, as it would in a cluster. For a
             pause step (--pause) the pause's duration is subtracted. Times are when this
             process receives the watch event.
  start      per Rollout, from its template patch being sent to the status first showing step 0
             of the new revision (includes creating its Deployment; nothing subtracted).
  writes     create/update/patch/delete requests of the operator's user (its ServiceAccount)
             in kube-apiserver's audit log, from the first template patch until all are
             Healthy; per step = writes / (rollouts x steps), pause steps included
             ({len(STEPS)} steps per rollout, {2 * len(STEPS) - 1} with --pause).
  tail       writes after all are Healthy (old revisions deleted, queued events), until the
             old revisions are gone and the operator wrote nothing for {QUIET_FOR:g} s.
  no-op      the same writes over a window right after that.
  CPU        utime+stime from /proc/<pid>/stat (children excluded); RSS peak = VmHWM. The
             control plane is etcd + kube-apiserver + kube-controller-manager + kube-scheduler
             + kwok; the operator is not in it."""


def machine_cpu() -> tuple[float, float]:
    """CPU seconds the whole machine spent busy (all but idle, iowait and steal) and stolen
    by the hypervisor, summed over its CPUs (``/proc/stat``)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    ticks = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / ticks, steal / ticks


def bench_steps(pause: float) -> list[dict[str, Any]]:
    """The canary steps: 5/25/100, with a ``pause``-second pause after 5 and 25 when > 0."""
    steps: list[dict[str, Any]] = []
    for weight in STEPS:
        steps.append({"setWeight": weight})
        if pause > 0 and weight != STEPS[-1]:
            steps.append({"pause": {"duration": f"{pause:g}s"}})
    return steps


def rollout_docs(name: str, pause: float = 0.0, replicas: int = REPLICAS) -> list[dict[str, Any]]:
    """The two Services and the minimal Rollout of one benchmark object."""
    labels = {"app": name}
    services = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"{name}-{role}", "labels": labels},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
        }
        for role in ("stable", "canary")
    ]
    rollout = {
        "apiVersion": "rollwise.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "bench/app:1"}]},
            },
            "strategy": {
                "canary": {
                    "stableService": f"{name}-stable",
                    "canaryService": f"{name}-canary",
                    "scaleDownDelaySeconds": 0,
                    "steps": bench_steps(pause),
                }
            },
        },
    }
    return [*services, rollout]


@dataclass
class Tracker:
    """Rollout statuses from a watch, with the time each change arrived."""

    api: Api
    changes: dict[str, list[tuple[float, dict[str, Any]]]] = field(default_factory=dict)
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    stopped: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        threading.Thread(target=self._run, name="bench-watch", daemon=True).start()

    def _run(self) -> None:
        version = ""
        while not self.stopped.is_set():
            try:
                if not version:
                    listing = self.api.call("GET", ROLLOUTS)
                    for obj in listing["items"]:
                        self._seen(obj)
                    version = listing["metadata"]["resourceVersion"]
                params = f"?watch=1&timeoutSeconds=300&resourceVersion={version}"
                with self.api.session.get(
                    self.api.url + ROLLOUTS + params, stream=True, timeout=(10, 400)
                ) as answer:
                    for line in answer.iter_lines():
                        if self.stopped.is_set():
                            return
                        if not line:
                            continue
                        event = json.loads(line)
                        obj = event["object"]
                        if event["type"] == "ERROR":
                            version = ""
                            break
                        version = obj["metadata"].get("resourceVersion", version)
                        if event["type"] in ("ADDED", "MODIFIED"):
                            self._seen(obj)
            except (requests.RequestException, ValueError, KeyError):
                if not self.stopped.wait(0.5):
                    continue

    def _seen(self, obj: dict[str, Any]) -> None:
        now = time.monotonic()
        status = obj.get("status") or {}
        view = {
            "phase": status.get("phase"),
            "step": status.get("currentStepIndex"),
            "weight": status.get("canaryWeight"),
            "stable": status.get("stableRevision"),
            "canary": status.get("canaryRevision"),
        }
        name = obj["metadata"]["name"]
        with self.lock:
            if self.latest.get(name) != view:
                self.latest[name] = view
                self.changes.setdefault(name, []).append((now, view))

    def count(self, predicate: Any) -> int:
        with self.lock:
            return sum(1 for view in self.latest.values() if predicate(view))


@dataclass
class Result:
    """The printed lines of one size, and the main figures for a program to check."""

    size: int
    lines: list[str] = field(default_factory=list)
    completed: int = 0
    step_lags: list[float] = field(default_factory=list)
    writes: int | None = None
    noop_writes: int | None = None

    def say(self, text: str) -> None:
        print(text, flush=True)
        self.lines.append(text)


def event_names(api: Api) -> dict[str, str]:
    """The namespace's Events: name -> reason."""
    listing = api.call("GET", f"/api/v1/namespaces/{NAMESPACE}/events")
    return {e["metadata"]["name"]: f"{e.get('reason')}" for e in listing["items"]}


def new_reasons(before: dict[str, str], after: dict[str, str]) -> str:
    """How many Events of each reason appeared between two listings."""
    found = Counter(reason for name, reason in after.items() if name not in before)
    return ", ".join(f"{reason}={count}" for reason, count in found.most_common()) or "none"


def operator_writes(rows: list[dict[str, Any]], user: str) -> Counter[str]:
    """``user``'s writes (audit log rows) grouped as "status", "events" and
    "other:<verb> <resource>"."""
    found: Counter[str] = Counter()
    for row in rows:
        if row["user"] != user or row["verb"] not in WRITE_VERBS:
            continue
        resource = row["resource"]
        if resource.endswith("/status"):
            found["status"] += 1
        elif resource == "events":
            found["events"] += 1
        else:
            found[f"other:{row['verb']} {resource}"] += 1
    return found


def user_table(rows: list[dict[str, Any]], operator: str) -> str:
    """Requests by who made them: the operator, the control plane's own controllers (by their
    ServiceAccount or user), the benchmark (the administrator)."""
    by_user: Counter[str] = Counter()
    for row in rows:
        user = "operator" if row["user"] == operator else row["user"]
        user = user.removeprefix("system:serviceaccount:kube-system:")
        kind = "write" if row["verb"] in WRITE_VERBS else row["verb"]
        by_user[f"{user or '-'} {kind}"] += 1
    return ", ".join(f"{key}={value}" for key, value in sorted(by_user.items()))


def run_size(
    size: int,
    workdir: Path,
    timeout: float,
    noop_seconds: float,
    *,
    threads: int | None = None,
    quiet_for: float = QUIET_FOR,
    spread: float = 0.0,
    pause: float = 0.0,
    replicas: int = REPLICAS,
) -> Result:
    """One size, end to end (see the module docstring); never raises for a slow operator:
    a bound hit is reported as partial figures."""
    result = Result(size)
    cluster = Cluster(workdir / f"cluster-{size}", identities={}, nodes=2, log=lambda line: None)
    operator: Process | None = None
    tracker: Tracker | None = None
    try:
        began = time.monotonic()
        cluster.up()
        install_crds(cluster, load_crds(ROLLWISE_CRDS))
        api = Api(cluster)
        api.call(
            "POST", "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}}, "application/json"
        )
        release = install_operator(cluster, NAMESPACE, workdir / f"operator-{size}")
        result.say(
            f"[N={size}] cluster {cluster.version} up, CRDs and chart installed in "
            f"{time.monotonic() - began:.1f} s; operator user {release.user}"
        )
        began = time.monotonic()
        names = [f"r{i:04d}" for i in range(size)]

        def create_all(name: str) -> None:
            for doc in rollout_docs(name, pause, replicas):
                api.create(doc, NAMESPACE)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(create_all, names))
        result.say(
            f"[N={size}] created {size} Rollouts ({replicas} replica each) + {2 * size} "
            f"Services in {time.monotonic() - began:.1f} s"
        )
        tracker = Tracker(api)
        tracker.start()
        env = {"ROLLWISE_WORKERS": str(threads)} if threads else {}
        log = workdir / f"operator-{size}.log"
        operator = Process(release.start("--namespace", NAMESPACE, log=log, env=env), log)
        if threads:
            result.say(f"[N={size}] operator started with ROLLWISE_WORKERS={threads}")
        began = time.monotonic()
        healthy = wait_for(
            lambda: tracker.count(lambda v: v["phase"] == "Healthy") == size, timeout
        )
        result.say(
            f"[N={size}] initial: {tracker.count(lambda v: v['phase'] == 'Healthy')}/{size} "
            f"Healthy after {time.monotonic() - began:.1f} s; "
            f"operator CPU {cpu_seconds(operator.pid):.1f} s, "
            f"RSS peak {memory_kib(operator.pid) / 1024:.0f} MiB"
        )
        if not healthy:
            result.say(
                f"[N={size}] PARTIAL: not all initially Healthy within {timeout:g} s; stopping"
            )
            return result
        first_stable = {n: tracker.latest[n]["stable"] for n in names}

        audit = AuditLog(cluster)
        events_before = event_names(api)
        audit.mark()
        op_cpu0, plane_cpu0 = cpu_seconds(operator.pid), control_plane_cpu(cluster)
        patched_at: dict[str, float] = {}

        def trigger(name: str) -> None:
            patch = {
                "spec": {
                    "template": {"spec": {"containers": [{"name": "app", "image": "bench/app:2"}]}}
                }
            }
            # Taken before the request: the operator's status change can reach this process's
            # watch before the PATCH's own answer does, and must not count as earlier.
            patched_at[name] = time.monotonic()
            api.call("PATCH", f"{ROLLOUTS}/{name}", patch, "application/merge-patch+json")

        began = time.monotonic()
        components = list(plane_cpu0)
        columns = ["time", "operator", *components, "machine busy", "machine steal"]
        # (time, operator CPU, each control plane process's CPU..., machine busy, steal) in s
        usage: list[list[float]] = []
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(2.0):
                with contextlib.suppress(OSError):
                    busy, steal = machine_cpu()
                    plane = control_plane_cpu(cluster)
                    usage.append(
                        [
                            time.monotonic(),
                            cpu_seconds(operator.pid),
                            *(plane[c] for c in components),
                            busy,
                            steal,
                        ]
                    )

        threading.Thread(target=sample, name="bench-cpu", daemon=True).start()

        def trigger_in_turn(item: tuple[int, str]) -> None:
            index, name = item
            wait = began + index * spread / size - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            trigger(name)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(trigger_in_turn, enumerate(names)))
        how = f" (spread over {spread:g} s)" if spread > 0 else " (at once)"
        result.say(
            f"[N={size}] patched {size} templates in {time.monotonic() - began:.1f} s{how}"
            + (f"; pause steps of {pause:g} s" if pause > 0 else "")
        )

        def done(view: dict[str, Any], name: str) -> bool:
            return view["phase"] == "Healthy" and view["stable"] not in (None, first_stable[name])

        def all_done() -> bool:
            with tracker.lock:
                return all(done(tracker.latest[n], n) for n in names)

        finished = wait_for(all_done, timeout, every=0.25)
        elapsed = time.monotonic() - began
        sampling.set()
        op_cpu = cpu_seconds(operator.pid) - op_cpu0
        plane_now = control_plane_cpu(cluster)
        plane_used = {c: plane_now[c] - plane_cpu0[c] for c in components}
        rows = audit.requests()
        events_during = event_names(api)
        with tracker.lock:
            completed = sum(1 for n in names if done(tracker.latest[n], n))
            changes = {n: list(tracker.changes.get(n, [])) for n in names}
        result.completed = completed
        tag = "" if finished else f" PARTIAL (bound {timeout:g} s hit)"
        result.say(
            f"[N={size}] rollout: {completed}/{size} Healthy on the new revision after "
            f"{elapsed:.1f} s{tag}"
        )
        plane_total = sum(plane_used.values())
        result.say(
            f"[N={size}] CPU during the rollout: operator {op_cpu:.1f} s "
            f"({op_cpu / elapsed * 100:.0f}% of a core); control plane {plane_total:.1f} s "
            f"({plane_total / elapsed * 100:.0f}% of a core: "
            + ", ".join(f"{c} {v:.1f} s" for c, v in plane_used.items())
            + "); operator RSS peak (VmHWM) "
            f"{memory_kib(operator.pid) / 1024:.0f} MiB, "
            f"now {memory_kib(operator.pid, 'VmRSS') / 1024:.0f} MiB; kube-apiserver RSS peak "
            f"{memory_kib(cluster.state.processes['kube-apiserver'].pid) / 1024:.0f} MiB"
        )
        if len(usage) >= 2:
            span = usage[-1][0] - usage[0][0]
            busy = (usage[-1][-2] - usage[0][-2]) / span
            steal = (usage[-1][-1] - usage[0][-1]) / span
            result.say(
                f"[N={size}] machine during the rollout: {busy * 100:.0f}% of a core busy in all "
                f"(of {os.cpu_count()} cores; this benchmark process included), "
                f"{steal * 100:.0f}% of a core stolen by the hypervisor"
            )
        waits = [pause if "pause" in step else 0.0 for step in bench_steps(pause)]
        records: list[dict[str, Any]] = []
        lags, starts = step_lags(names, changes, patched_at, first_stable, waits, records=records)
        result.step_lags = lags
        (workdir / f"lags-{size}.json").write_text(
            json.dumps(
                {
                    "began": began,
                    "patched_at": patched_at,
                    "steps": records,
                    "cpu_columns": columns,
                    "cpu": usage,
                }
            )
        )
        result.say(
            f"[N={size}] step lag ("
            + (f"pause {pause:g} s subtracted, " if pause > 0 else "")
            + f"{len(lags)} steps): "
            f"p50 {percentile(lags, 0.5):.2f} s, p99 {percentile(lags, 0.99):.2f} s, "
            f"max {max(lags, default=float('nan')):.2f} s"
        )
        result.say(
            f"[N={size}] start (patch -> step 0 shown, {len(starts)} rollouts): "
            f"p50 {percentile(starts, 0.5):.2f} s, p99 {percentile(starts, 0.99):.2f} s, "
            f"max {max(starts, default=float('nan')):.2f} s"
        )
        writes = operator_writes(rows, release.user)
        steps = max(1, completed * len(bench_steps(pause)))
        total = sum(writes.values())
        result.writes = total
        result.say(
            f"[N={size}] operator writes during the rollout (audit log): {total} for {steps} "
            f"steps = {total / steps:.2f} per step (status {writes['status'] / steps:.2f}, "
            f"events {writes['events'] / steps:.2f}, "
            f"other {(total - writes['status'] - writes['events']) / steps:.2f})"
        )
        others = ", ".join(
            f"{k.split(':', 1)[1]}={v}" for k, v in sorted(writes.items()) if k.startswith("other:")
        )
        result.say(f"[N={size}]   other writes: {others or 'none'}")
        codes = Counter(r["code"] for r in rows if r["user"] == release.user)
        result.say(
            f"[N={size}]   operator answers by code: "
            + ", ".join(f"{code}={n}" for code, n in sorted(codes.items(), key=str))
        )
        result.say(f"[N={size}]   all requests by user: {user_table(rows, release.user)}")
        result.say(
            f"[N={size}]   new Events by reason: {new_reasons(events_before, events_during)}"
        )

        # Settle: the rollout's own tail (old revisions deleted, events still queued) is not
        # part of a no-op pass; wait, bounded, until the old revisions are gone and the
        # operator has written nothing for ``quiet_for`` seconds.
        healthy_at, last_total, last_change = began + elapsed, total, time.monotonic()
        settled_ok = False
        while time.monotonic() - healthy_at < timeout:
            now_total = sum(operator_writes(audit.requests(), release.user).values())
            if now_total != last_total:
                last_total, last_change = now_total, time.monotonic()
            listing = api.call("GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments")
            if len(listing["items"]) <= size and time.monotonic() - last_change >= quiet_for:
                settled_ok = True
                break
            time.sleep(1.0)
        result.say(
            f"[N={size}] tail after all Healthy: {last_total - total} more operator writes until "
            f"quiet for {quiet_for:g} s, last at +{last_change - healthy_at:.1f} s "
            f"(settled: {settled_ok}); Events by reason since Healthy: "
            f"{new_reasons(events_during, event_names(api))}"
        )
        events_before = event_names(api)
        audit.mark()
        op_cpu0, plane_cpu0 = cpu_seconds(operator.pid), control_plane_cpu(cluster)
        time.sleep(noop_seconds)
        quiet = audit.requests()
        quiet_events = new_reasons(events_before, event_names(api))
        quiet_writes = operator_writes(quiet, release.user)
        result.noop_writes = sum(quiet_writes.values())
        plane_quiet = sum(control_plane_cpu(cluster).values()) - sum(plane_cpu0.values())
        result.say(
            f"[N={size}] no-op window {noop_seconds:g} s: "
            f"{sum(quiet_writes.values())} operator writes {dict(quiet_writes) or ''}; "
            "operator CPU "
            f"{cpu_seconds(operator.pid) - op_cpu0:.2f} s, control plane CPU {plane_quiet:.2f} s"
            f"; requests: {user_table(quiet, release.user) or 'none'}"
        )
        result.say(f"[N={size}]   new Events in the window by reason: {quiet_events}")
        rss = memory_kib(operator.pid) / 1024
        rss_mb = memory_kib(operator.pid) * 1024 / 1e6
        p99 = percentile(lags, 0.99)
        result.say(
            f"[N={size}] against the goals: p99 step lag {p99:.2f} s "
            f"{'PASS' if p99 < 2 else 'MISS'}; "
            f"RSS {rss:.0f} MiB = {rss_mb:.0f} MB {'PASS' if rss_mb < 300 else 'MISS'}; "
            f"writes/step {total / steps:.2f} {'PASS' if total / steps <= 2 else 'MISS'}; "
            f"no-op writes {sum(quiet_writes.values())} "
            f"{'PASS' if not quiet_writes else 'MISS'}" + ("" if finished else " (partial run)")
        )
        return result
    finally:
        if tracker is not None:
            tracker.stopped.set()
        if operator is not None:
            code = operator.stop()
            if code != 0:
                print(f"[N={size}] operator exited {code}; log: {operator.log}", flush=True)
        cluster.down()


def step_lags(
    names: list[str],
    changes: dict[str, list[tuple[float, dict[str, Any]]]],
    patched_at: dict[str, float],
    first_stable: dict[str, str | None],
    waits: list[float],
    *,
    records: list[dict[str, Any]] | None = None,
) -> tuple[list[float], list[float]]:
    """Step lags and start latencies (see DEFINITIONS) from the watched status changes."""
    lags: list[float] = []
    starts: list[float] = []
    for name in names:
        trigger = patched_at.get(name)
        if trigger is None:
            continue
        marks: dict[int, float] = {}
        healthy_at = None
        for at, view in changes[name]:
            if at < trigger:
                continue
            new = view["canary"] not in (None, first_stable[name])
            if new and view["phase"] != "Healthy" and isinstance(view["step"], int):
                marks.setdefault(view["step"], at)
            if view["phase"] == "Healthy" and view["stable"] not in (None, first_stable[name]):
                healthy_at = at if healthy_at is None else healthy_at
        if 0 in marks:
            starts.append(marks[0] - trigger)
        indexes = sorted(marks)
        sequence = [(marks[i], waits[i] if i < len(waits) else 0.0) for i in indexes]
        if healthy_at is not None:
            sequence.append((healthy_at, 0.0))
        for index, ((a, wait), (b, _)) in enumerate(itertools.pairwise(sequence)):
            lags.append(b - a - wait)
            if records is not None:
                records.append(
                    {"rollout": name, "step": indexes[index], "from": a, "lag": b - a - wait}
                )
    return lags, starts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hack.bench.scale", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--sizes", default="100,300,1000", help="comma-separated N (default 100,300,1000)"
    )
    parser.add_argument(
        "--replicas", type=int, default=REPLICAS, help=f"replicas per Rollout (default {REPLICAS})"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="bound per phase and size, s")
    parser.add_argument("--noop-seconds", type=float, default=30.0, help="quiet window, s")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="logs and cluster state (a temp dir)"
    )
    parser.add_argument(
        "--operator-threads",
        type=int,
        default=None,
        help="run the operator with this many worker threads (ROLLWISE_WORKERS; default 6)",
    )
    parser.add_argument(
        "--spread",
        type=float,
        default=0.0,
        help="patch the templates evenly over this many seconds (default 0: all at once)",
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=0.0,
        help="a pause step of this many seconds after the 5%% and 25%% steps (default: none)",
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rollwise-bench-scale-"))
    print(f"machine: {machine()}")
    print(f"logs: {workdir}")
    print(DEFINITIONS)
    print(GOALS, flush=True)
    summary: list[str] = []
    for size in sizes:
        summary.extend(
            run_size(
                size,
                workdir,
                args.timeout,
                args.noop_seconds,
                threads=args.operator_threads,
                spread=args.spread,
                pause=args.pause,
                replicas=args.replicas,
            ).lines
        )
    print("\nsummary:")
    for line in summary:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
