"""``python -m hack.bench.watch_lab``: how fast a confirmed post-promotion regression is rolled
back on the real path.

    python -m hack.bench.watch_lab [--intervals 2,5] [--reps 3] [--confirm-after 1]

One lab (the lab cluster's real control plane, the lab controller's demo services, Prometheus
scraping every 250 ms, traffic at 50 req/s through the route) and the real
``rollwise-operator`` process, installed with the chart and run as its ServiceAccount. For each
watch interval and repetition, a fresh Gateway API Rollout with ``postPromotion`` (its own
HTTPRoute, Services and app label) becomes Healthy, a second revision is promoted over it
(one 100% step, no analysis) and watched; once the watch evaluated it healthy, the promoted
revision's demo service answers 50% of its requests with a 5xx. The benchmark polls, from its
own threads:

- Prometheus every 100 ms with the watch's own short-window query for the promoted revision;
  "failing visible" is the first time it reaches the failure threshold (0.05);
- the stable Service every 50 ms; "switched" is the first time its selector is back on the
  previous revision.

It then reads ``status.decision.decidedAt``, the time of the pass that confirmed the regression
and decided the rollback ("decided"; the operator runs on this machine, so its clock is the
benchmark's). Per sample it prints decided -> switched (the fast track's own latency: persist,
then the stable Service) and failing visible -> switched (with ``--confirm-after 1`` the first
bad evaluation confirms, so this is what the issue's goal, interval + 2 s of the regression
being confirmable, measures), then the median and max per interval. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from hack.bench._common import Api, machine, wait_for
from hack.bench.reaction import NAMESPACE, lab_with_operator, rollout, route_docs

THRESHOLD = 0.05
ERROR_RATIO = 0.5
SHORT_WINDOW = "4s"
LONG_WINDOW = "20s"
PROMETHEUS_EVERY = 0.1
SERVICE_EVERY = 0.05
BOUND_PER_SAMPLE = 90.0

DEFINITION = f"""definition:
  failing visible  the first time the watch's error-ratio query for the promoted revision
                   (short window {SHORT_WINDOW}), polled from Prometheus every
                   {PROMETHEUS_EVERY * 1000:.0f} ms, is >= {THRESHOLD} after the promoted revision's
                   demo service starts answering {ERROR_RATIO:.0%} 5xx (traffic 50 req/s through
                   the HTTPRoute; scrape every 250 ms)
  decided          status.decision.decidedAt of the confirming pass (operator clock, same host)
  switched         the first time the stable Service's selector, polled every
                   {SERVICE_EVERY * 1000:.0f} ms, is back on the previous revision
  fast track       switched - decided
  reaction         switched - failing visible; goal <= interval + 2 s with confirmAfter 1
                   (printed, not asserted)"""

QUERY = (
    'sum(rate(http_requests_total{{service="{app}",revision="{{{{revision}}}}",'
    'code=~"5.."}}[{{{{window}}}}])) / '
    'sum(rate(http_requests_total{{service="{app}",revision="{{{{revision}}}}"}}[{{{{window}}}}]))'
)


def docs(name: str, interval: float, confirm_after: int) -> list[dict[str, Any]]:
    """Services, HTTPRoute and watched Rollout of one sample; the app label is the name."""
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
                    "steps": [{"setWeight": 100}],
                    "postPromotion": {
                        "duration": "1h",
                        "interval": f"{interval:g}s",
                        "windows": {"short": SHORT_WINDOW, "long": LONG_WINDOW},
                        "confirmAfter": confirm_after,
                        "clearAfter": 2,
                        "confirmWhenWindowsAgree": False,
                        "onRegression": {"critical": "rollback"},
                        "metrics": [
                            {
                                "name": "error-ratio",
                                "successCondition": f"result < {THRESHOLD}",
                                "provider": {"prometheus": {"query": QUERY.format(app=name)}},
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
    fast_track: float | None
    reaction: float | None
    note: str


def status_of(api: Api, name: str) -> dict[str, Any]:
    return dict(rollout(api, name).get("status") or {})


def stable_selector(api: Api, name: str) -> str | None:
    service = api.call("GET", f"/api/v1/namespaces/{NAMESPACE}/services/{name}-stable")
    selector = (service.get("spec") or {}).get("selector") or {}
    revision = selector.get("rollwise.dev/revision")
    return str(revision) if revision is not None else None


def watched_healthy(api: Api, name: str, revision: str) -> bool:
    """The promoted ``revision`` stable, Healthy, its watch evaluated at least once with a
    value and no episode open."""
    status = status_of(api, name)
    watch = status.get("postPromotion") or {}
    kpis = watch.get("kpis") or []
    return (
        status.get("stableRevision") == revision
        and status.get("phase") == "Healthy"
        and bool(watch.get("previousCaptured"))
        and int(watch.get("evaluations") or 0) >= 1
        and all(k.get("value") is not None and k.get("state") == "ok" for k in kpis)
    )


def decided_at(status: dict[str, Any]) -> float | None:
    decision = status.get("decision") or {}
    text = decision.get("decidedAt")
    if not text or decision.get("action") != "rollback":
        return None
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def measure(lab: Any, api: Api, interval: float, rep: int, confirm_after: int) -> Sample:
    from rollwise.core.observations import revision_of  # noqa: PLC0415
    from rollwise.core.postpromotion import WATCH_PLACEHOLDERS, window_text  # noqa: PLC0415
    from rollwise.core.query_templates import render_query  # noqa: PLC0415 - the operator's

    def missed(note: str) -> Sample:
        return Sample(interval, rep, None, None, note)

    name = f"watch-{interval:g}s-{rep}".replace(".", "-")
    objects = docs(name, interval, confirm_after)
    for doc in objects:
        api.create(doc, NAMESPACE)
    if not wait_for(lambda: status_of(api, name).get("phase") == "Healthy", 30):
        return missed("first revision not Healthy within 30 s")
    old = str(status_of(api, name)["stableRevision"])
    lab.start_traffic(f"httproute/{NAMESPACE}/{name}", rate=50)
    template = objects[-1]["spec"]["template"]
    template["spec"]["containers"][0]["image"] = "bench/app:2"
    new = revision_of(template)
    api.call(
        "PATCH",
        f"/apis/rollwise.dev/v1alpha1/namespaces/{NAMESPACE}/rollouts/{name}",
        {"spec": {"template": template}},
        "application/merge-patch+json",
    )
    if not wait_for(lambda: watched_healthy(api, name, new), 60 + 2 * interval):
        return missed("second revision not promoted and watched healthy within the bound")
    metric = objects[-1]["spec"]["strategy"]["canary"]["postPromotion"]["metrics"][0]
    query = render_query(
        metric["provider"]["prometheus"]["query"],
        {"revision": new, "window": window_text(SHORT_WINDOW)},
        WATCH_PLACEHOLDERS,
    )

    failing_at: list[float] = []
    switched_at: list[float] = []
    stop = threading.Event()

    def poll_prometheus() -> None:
        while not stop.is_set() and not failing_at:
            try:
                value = lab.prometheus.query(query)
            except Exception:  # a failed poll (Prometheus busy) is retried, not fatal
                value = None
            if value is not None and value >= THRESHOLD:
                failing_at.append(time.time())
            stop.wait(PROMETHEUS_EVERY)

    def poll_service() -> None:
        while not stop.is_set() and not switched_at:
            try:
                selected = stable_selector(api, name)
            except RuntimeError:
                selected = None
            if selected == old:
                switched_at.append(time.time())
            stop.wait(SERVICE_EVERY)

    pollers = [threading.Thread(target=poll_prometheus), threading.Thread(target=poll_service)]
    for poller in pollers:
        poller.start()
    raised = time.time()
    lab.demo(new).configure(error_ratio=ERROR_RATIO)
    wait_for(lambda: bool(failing_at and switched_at), BOUND_PER_SAMPLE, every=0.05)
    stop.set()
    for poller in pollers:
        poller.join(timeout=10)
    status = status_of(api, name)
    decided = decided_at(status)
    if not switched_at:
        return missed(f"stable Service never back on {old} within {BOUND_PER_SAMPLE:g} s")
    if not failing_at or decided is None:
        missing = "failing never visible" if not failing_at else "no rollback decision"
        return missed(f"{missing}; phase {status.get('phase')}")
    switched = switched_at[0]
    note = (
        f"failing visible at +{failing_at[0] - raised:.2f} s, decided at "
        f"+{decided - raised:.2f} s, switched at +{switched - raised:.2f} s (after the raise)"
    )
    return Sample(interval, rep, switched - decided, switched - failing_at[0], note)


def summary(label: str, values: list[float], goal: float | None = None) -> str:
    text = (
        f"{label}: {', '.join(f'{v:.2f}' for v in values)} s; median "
        f"{statistics.median(values):.2f} s, max {max(values):.2f} s"
    )
    if goal is not None:
        text += f"; goal <= {goal:g} s: {'PASS' if max(values) <= goal else 'MISS'}"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hack.bench.watch_lab", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--intervals", default="2,5", help="watch intervals, s")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per interval")
    parser.add_argument("--confirm-after", type=int, default=1, help="bad evaluations that confirm")
    parser.add_argument("--workdir", type=Path, default=None, help="lab state and operator log")
    args = parser.parse_args(argv)
    intervals = [float(i) for i in args.intervals.split(",") if i.strip()]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rollwise-bench-watch-lab-"))
    print(f"machine: {machine()}")
    print(f"logs: {workdir}")
    print(f"confirmAfter {args.confirm_after}, windows {SHORT_WINDOW}/{LONG_WINDOW}")
    print(DEFINITION, flush=True)

    samples: list[Sample] = []
    with lab_with_operator(workdir) as (lab, api):
        for interval in intervals:
            for rep in range(1, args.reps + 1):
                sample = measure(lab, api, interval, rep, args.confirm_after)
                samples.append(sample)
                if sample.fast_track is None or sample.reaction is None:
                    print(f"interval {interval:g} s rep {rep}: none ({sample.note})", flush=True)
                    continue
                print(
                    f"interval {interval:g} s rep {rep}: fast track {sample.fast_track:.2f} s, "
                    f"reaction {sample.reaction:.2f} s ({sample.note})",
                    flush=True,
                )
    print("\nsummary:")
    for interval in intervals:
        done = [s for s in samples if s.interval == interval and s.fast_track is not None]
        failed = sum(1 for s in samples if s.interval == interval) - len(done)
        if not done:
            print(f"interval {interval:g} s: no sample ({failed} failed)")
            continue
        fast = [s.fast_track for s in done if s.fast_track is not None]
        react = [s.reaction for s in done if s.reaction is not None]
        tail = f" ({failed} samples failed)" if failed else ""
        print(f"interval {interval:g} s: {summary('fast track', fast)}{tail}")
        goal = interval + 2 if args.confirm_after == 1 else None
        print(f"interval {interval:g} s: {summary('reaction', react, goal)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
