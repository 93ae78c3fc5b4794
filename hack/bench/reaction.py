"""``python -m hack.bench.reaction``: how fast a failing canary loses its traffic.

    python -m hack.bench.reaction [--intervals 1,5,10] [--reps 3]

One lab (the lab cluster's real control plane, the lab controller's demo services, Prometheus
scraping every 250 ms, traffic at 50 req/s through the route) and the real
``rollwise-operator`` process, installed with the chart and run as its ServiceAccount. For each
analysis interval and repetition, a fresh Gateway API Rollout (its own HTTPRoute, Services and
app label) becomes Healthy, then its template is patched to a revision answering 20% of its
requests with a 5xx. The benchmark polls, from its own threads:

- Prometheus every 100 ms with the Rollout's own error-ratio query (canaryRevision filled in);
  "failing visible" is the first time its value reaches the failure threshold (0.05);
- the HTTPRoute every 50 ms; "weight 0" is the first time the canary backendRef's weight is 0
  again after it was above 0.

Reaction = weight 0 - failing visible. Each sample is printed with the median and max per
interval, and PASS/MISS against the goal (interval + 2 s). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hack.bench._common import Api, Process, machine, wait_for

NAMESPACE = "bench"
THRESHOLD = 0.05
ERROR_RATIO = 0.2
RATE_WINDOW = "10s"
PROMETHEUS_EVERY = 0.1
ROUTE_EVERY = 0.05
BOUND_PER_SAMPLE = 60.0

DEFINITION = f"""definition:
  failing visible  the first time the canary's error-ratio query (the Rollout's own, with
                   canaryRevision filled in, rate window {RATE_WINDOW}), polled from Prometheus
                   every {PROMETHEUS_EVERY * 1000:.0f} ms, is >= {THRESHOLD} after the bad
                   revision's template patch (the revision answers {ERROR_RATIO:.0%} 5xx from its
                   first request; traffic 50 req/s through the HTTPRoute; scrape every 250 ms)
  weight 0         the first time the HTTPRoute's canary backendRef weight, polled every
                   {ROUTE_EVERY * 1000:.0f} ms, is 0 after having been above 0
  reaction         weight 0 - failing visible; goal <= interval + 2 s (printed, not asserted)"""

QUERY = (
    'sum(rate(http_requests_total{{service="{app}",revision="{{{{canaryRevision}}}}",'
    'code=~"5.."}}[{window}])) / '
    'sum(rate(http_requests_total{{service="{app}",revision="{{{{canaryRevision}}}}"}}[{window}]))'
)


def route_docs(name: str) -> list[dict[str, Any]]:
    """The stable and canary Services and the HTTPRoute (all traffic on stable) of one
    sample's Rollout; the app label is the name."""
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
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "parentRefs": [{"name": "gateway"}],
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
    return [*services, route]


def docs(name: str, interval: float) -> list[dict[str, Any]]:
    """Services, HTTPRoute and Rollout of one sample; the app label is the name."""
    labels = {"app": name}
    rollout = {
        "apiVersion": "rollwise.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "bench/app:1"}]},
            },
            "strategy": {
                "canary": {
                    "stableService": f"{name}-stable",
                    "canaryService": f"{name}-canary",
                    "trafficRouting": {"gatewayAPI": {"httpRoute": {"name": name}}},
                    "scaleDownDelaySeconds": 2,
                    "steps": [{"setWeight": 5}, {"setWeight": 25}, {"setWeight": 100}],
                    "analysis": {
                        "interval": f"{interval:g}s",
                        "failureLimit": 0,
                        "metrics": [
                            {
                                "name": "error-ratio",
                                "successCondition": f"result < {THRESHOLD}",
                                # Enough measurements that the canary stays at its first step
                                # until the failure.
                                "count": 1000,
                                "provider": {
                                    "prometheus": {
                                        "query": QUERY.format(app=name, window=RATE_WINDOW)
                                    }
                                },
                            }
                        ],
                    },
                }
            },
        },
    }
    return [*route_docs(name), rollout]


@dataclass
class Sample:
    interval: float
    rep: int
    reaction: float | None
    note: str


def route_weight(api: Api, name: str) -> int:
    route = api.call(
        "GET", f"/apis/gateway.networking.k8s.io/v1/namespaces/{NAMESPACE}/httproutes/{name}"
    )
    refs = route["spec"]["rules"][0]["backendRefs"]
    return next((int(r.get("weight", 1)) for r in refs if r["name"] == f"{name}-canary"), 0)


def rollout(api: Api, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = api.call(
        "GET", f"/apis/rollwise.dev/v1alpha1/namespaces/{NAMESPACE}/rollouts/{name}"
    )
    return obj


def measure(lab: Any, api: Api, interval: float, rep: int) -> Sample:
    from rollwise.core.analysis import render_query  # noqa: PLC0415 - the operator's renderer
    from rollwise.core.observations import revision_of  # noqa: PLC0415

    name = f"react-{interval:g}s-{rep}".replace(".", "-")
    objects = docs(name, interval)
    for doc in objects:
        api.create(doc, NAMESPACE)
    if not wait_for(lambda: (rollout(api, name).get("status") or {}).get("phase") == "Healthy", 30):
        return Sample(interval, rep, None, "not Healthy within 30 s")
    lab.start_traffic(f"httproute/{NAMESPACE}/{name}", rate=50)
    template = copy.deepcopy(objects[-1]["spec"]["template"])
    template["spec"]["containers"][0]["image"] = "bench/app:2"
    template["metadata"]["annotations"] = {"lab.rollwise.dev/error-ratio": str(ERROR_RATIO)}
    canary = revision_of(template)
    query = render_query(
        objects[-1]["spec"]["strategy"]["canary"]["analysis"]["metrics"][0]["provider"][
            "prometheus"
        ]["query"],
        {"canaryRevision": canary},
    )

    failing_at: list[float] = []
    raised_at: list[float] = []
    zero_at: list[float] = []
    stop = threading.Event()

    def poll_prometheus() -> None:
        while not stop.is_set() and not failing_at:
            try:
                value = lab.prometheus.query(query)
            except Exception:  # a failed poll (Prometheus busy) is retried, not fatal
                value = None
            if value is not None and value >= THRESHOLD:
                failing_at.append(time.monotonic())
            stop.wait(PROMETHEUS_EVERY)

    def poll_route() -> None:
        while not stop.is_set() and not zero_at:
            try:
                weight = route_weight(api, name)
            except RuntimeError:
                weight = -1
            now = time.monotonic()
            if weight > 0 and not raised_at:
                raised_at.append(now)
            elif weight == 0 and raised_at:
                zero_at.append(now)
            stop.wait(ROUTE_EVERY)

    pollers = [threading.Thread(target=poll_prometheus), threading.Thread(target=poll_route)]
    for poller in pollers:
        poller.start()
    patched = time.monotonic()
    api.call(
        "PATCH",
        f"/apis/rollwise.dev/v1alpha1/namespaces/{NAMESPACE}/rollouts/{name}",
        {"spec": {"template": template}},
        "application/merge-patch+json",
    )
    wait_for(lambda: bool(failing_at and zero_at), BOUND_PER_SAMPLE, every=0.05)
    stop.set()
    for poller in pollers:
        poller.join(timeout=10)
    status = rollout(api, name).get("status") or {}
    context = (
        f"phase {status.get('phase')}, canary weight above 0 at +{raised_at[0] - patched:.2f} s"
        if raised_at
        else f"phase {status.get('phase')}"
    )
    if not failing_at or not zero_at:
        missing = "failing never visible" if not failing_at else "weight never back to 0"
        return Sample(interval, rep, None, f"{missing} within {BOUND_PER_SAMPLE:g} s; {context}")
    note = (
        f"{context}, failing visible at +{failing_at[0] - patched:.2f} s, "
        f"weight 0 at +{zero_at[0] - patched:.2f} s (after the patch)"
    )
    return Sample(interval, rep, zero_at[0] - failing_at[0], note)


@contextmanager
def lab_with_operator(workdir: Path) -> Iterator[tuple[Any, Api]]:
    """The lab (Prometheus scraping every 250 ms) with the real operator installed with the
    chart and watching :data:`NAMESPACE`; both stopped on the way out, the operator's exit
    code and log printed."""
    from hack.lab.lab import Lab  # noqa: PLC0415 - heavy, after the argument check
    from hack.lab.operator import install_operator  # noqa: PLC0415

    lab = Lab(workdir / "lab", scrape_interval="250ms", log=lambda _: None).start()
    try:
        cluster = lab.running_cluster
        cluster.api("POST", "/api/v1/namespaces", body={"metadata": {"name": NAMESPACE}})
        release = install_operator(cluster, NAMESPACE, workdir / "operator")
        log = workdir / "operator.log"
        operator = Process(
            release.start("--namespace", NAMESPACE, log=log, prometheus_url=lab.prometheus_url),
            log,
        )
        try:
            yield lab, Api(cluster)
        finally:
            code = operator.stop()
            print(f"operator exit code {code}; log {operator.log}")
    finally:
        lab.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hack.bench.reaction", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--intervals", default="1,5,10", help="analysis intervals, s")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per interval")
    parser.add_argument("--workdir", type=Path, default=None, help="lab state and operator log")
    args = parser.parse_args(argv)
    intervals = [float(i) for i in args.intervals.split(",") if i.strip()]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rollwise-bench-reaction-"))
    print(f"machine: {machine()}")
    print(f"logs: {workdir}")
    print(DEFINITION, flush=True)

    samples: list[Sample] = []
    with lab_with_operator(workdir) as (lab, api):
        for interval in intervals:
            for rep in range(1, args.reps + 1):
                sample = measure(lab, api, interval, rep)
                samples.append(sample)
                shown = f"{sample.reaction:.2f} s" if sample.reaction is not None else "none"
                print(f"interval {interval:g} s rep {rep}: reaction {shown} ({sample.note})")
                print("", end="", flush=True)
    print("\nsummary:")
    for interval in intervals:
        got = [s.reaction for s in samples if s.interval == interval and s.reaction is not None]
        failed = sum(1 for s in samples if s.interval == interval and s.reaction is None)
        if not got:
            print(f"interval {interval:g} s: no sample ({failed} failed)")
            continue
        goal = interval + 2
        verdict = "PASS" if max(got) <= goal else "MISS"
        print(
            f"interval {interval:g} s: samples {', '.join(f'{g:.2f}' for g in got)} s; "
            f"median {statistics.median(got):.2f} s, max {max(got):.2f} s; "
            f"goal <= {goal:g} s: {verdict}" + (f" ({failed} samples failed)" if failed else "")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
