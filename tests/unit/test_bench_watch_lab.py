"""Keeps ``hack/bench/watch_lab.py`` honest without a lab: the Rollout it applies is one the
operator accepts (its watch included), its query is the watch's own once rendered, and the
decision time it reads is the operator's ``decidedAt``.

The figures are measured by ``python -m hack.bench.watch_lab`` (docs/benchmarks.md); nothing
here checks a time.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hack.bench.watch_lab import decided_at, docs, summary
from rollwise.core.postpromotion import WATCH_PLACEHOLDERS, window_text
from rollwise.core.query_templates import render_query
from rollwise.core.rollout.watch import watch_errors
from rollwise.core.validation import load_rollout_spec


@pytest.mark.parametrize("confirm_after", [1, 3])
def test_the_sample_rollout_is_a_valid_watched_rollout(confirm_after: int) -> None:
    service, route, rollout = docs("watch-2s-1", 2.0, confirm_after)[-3:]
    assert service["kind"] == "Service"
    assert route["kind"] == "HTTPRoute"
    spec, errors = load_rollout_spec(rollout["spec"])
    assert errors == []
    assert spec is not None
    assert watch_errors(spec, {}) == []
    watch = spec.strategy.canary.post_promotion
    assert watch is not None
    assert (watch.interval, watch.confirm_after) == ("2s", confirm_after)
    assert watch.on_regression.critical.value == "rollback"


def test_the_polled_query_is_the_watch_s_short_window_for_the_revision() -> None:
    rollout = docs("watch-2s-1", 2.0, 1)[-1]
    metric = rollout["spec"]["strategy"]["canary"]["postPromotion"]["metrics"][0]
    query = render_query(
        metric["provider"]["prometheus"]["query"],
        {"revision": "abc", "window": window_text("4s")},
        WATCH_PLACEHOLDERS,
    )
    assert 'service="watch-2s-1",revision="abc"' in query
    assert "[4s]" in query
    assert "{{" not in query


def test_decided_at_is_the_rollback_decision_s_time() -> None:
    when = datetime(2026, 12, 8, 2, 0, 1, 250000, tzinfo=UTC)
    status = {"decision": {"action": "rollback", "decidedAt": "2026-12-08T02:00:01.250000Z"}}
    assert decided_at(status) == when.timestamp()
    assert decided_at({"decision": {"action": "hold", "decidedAt": "2026-12-08T02:00:01Z"}}) is None
    assert decided_at({}) is None


def test_summary_says_pass_or_miss_against_the_goal() -> None:
    assert summary("reaction", [1.0, 3.0, 2.0], 4) == (
        "reaction: 1.00, 3.00, 2.00 s; median 2.00 s, max 3.00 s; goal <= 4 s: PASS"
    )
    assert summary("reaction", [5.0], 4).endswith("MISS")
    assert summary("fast track", [0.1]) == "fast track: 0.10 s; median 0.10 s, max 0.10 s"
