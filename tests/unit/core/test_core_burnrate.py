"""Multi-window, multi-burn-rate SLO checks: which windows to query, and the verdict on the
counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rollwise.core.burnrate import (
    DEFAULT_PAIRS,
    BurnRateRule,
    BurnWindowPair,
    PairSeverity,
    PairState,
    WindowCounts,
    canary_age,
    evaluate_burn_rate,
    windows_to_query,
)
from rollwise.core.confidence import Confidence
from rollwise.core.durations import parse_seconds
from rollwise.core.runs import Verdict

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
OLD = NOW - timedelta(days=1)
RULE = BurnRateRule(objective=0.999)
NAN = float("nan")

#: Counts per window label: (total, bad); None for a query that returned nothing.
Counts = dict[str, tuple[float | None, float | None] | None]


def counts_for(
    counts: Counts,
    rule: BurnRateRule = RULE,
    started: datetime = OLD,
    *,
    good: bool = False,
) -> list[WindowCounts]:
    """The runtime's answers: for each window asked for, the counts given under its label
    (windows without a label are not answered at all)."""
    answers = []
    for query in windows_to_query(rule, NOW, started):
        label = next((k for k in counts if parse_seconds(k) == query.window), None)
        if label is None:
            continue
        value = counts[label]
        total, bad = value if value is not None else (None, None)
        if good:
            answers.append(WindowCounts(query, total=total, good=bad))
        else:
            answers.append(WindowCounts(query, total=total, bad=bad))
    return answers


def burn(counts: Counts, rule: BurnRateRule = RULE, started: datetime = OLD, **kw: Any) -> Any:
    return evaluate_burn_rate(rule, counts_for(counts, rule, started, **kw), metric="availability")


def ratio(burn_rate: float) -> tuple[float, float]:
    """(total, bad) with the given burn rate under objective 0.999."""
    return (100_000.0, burn_rate * 100.0)


CLEAN: Counts = {"5m": ratio(0), "30m": ratio(0), "1h": ratio(0), "6h": ratio(0)}


def with_(**burns: float | None) -> Counts:
    """CLEAN with some windows (``m5``, ``m30``, ``h1``, ``h6``) at the given burn rate."""
    names = {"m5": "5m", "m30": "30m", "h1": "1h", "h6": "6h"}
    out = dict(CLEAN)
    for key, value in burns.items():
        out[names[key]] = ratio(value) if value is not None else None
    return out


# -------------------------------------------------------------------------- what to query


def test_windows_of_an_old_canary_are_the_rule_s() -> None:
    queries = windows_to_query(RULE, NOW, OLD)
    assert [q.window for q in queries] == [300, 1800, 3600, 21600]
    assert [q.seconds for q in queries] == [300, 1800, 3600, 21600]
    assert [q.range for q in queries] == ["300s", "1800s", "3600s", "21600s"]
    assert all(q.end == NOW and q.start == NOW - timedelta(seconds=q.seconds) for q in queries)
    assert not any(q.shortened for q in queries)


@pytest.mark.parametrize(
    ("age", "seconds"),
    [
        pytest.param(timedelta(minutes=40), [300, 1800, 2400, 2400], id="younger-than-1h"),
        pytest.param(timedelta(minutes=40, seconds=30.7), [300, 1800, 2430, 2430], id="floored"),
        pytest.param(timedelta(minutes=3), [180, 180, 180, 180], id="younger-than-5m"),
        pytest.param(timedelta(minutes=1), [60, 60, 60, 60], id="one-minute"),
        pytest.param(timedelta(seconds=59), [], id="under-a-minute"),
        pytest.param(timedelta(minutes=-5), [], id="clock-skew"),
        pytest.param(timedelta(hours=6), [300, 1800, 3600, 21600], id="exactly-6h"),
    ],
)
def test_windows_are_shortened_to_the_canary_age(age: timedelta, seconds: list[float]) -> None:
    queries = windows_to_query(RULE, NOW, NOW - age)
    assert [q.seconds for q in queries] == seconds
    assert [q.shortened for q in queries] == [
        s < w for s, w in zip(seconds, [300, 1800, 3600, 21600], strict=False)
    ]


def test_shared_windows_are_queried_once() -> None:
    rule = BurnRateRule(
        objective=0.99,
        windows=[
            BurnWindowPair(long="1h", short="5m", rate=14.4),
            BurnWindowPair(long="6h", short="1h", rate=6, severity=PairSeverity.WARNING),
        ],
    )
    assert [q.window for q in windows_to_query(rule, NOW, OLD)] == [300, 3600, 21600]


def test_canary_age_is_never_negative() -> None:
    assert canary_age(NOW, NOW + timedelta(seconds=5)) == timedelta(0)
    assert canary_age(NOW, NOW - timedelta(seconds=5)) == timedelta(seconds=5)


# ------------------------------------------------------------------------------- verdicts


@pytest.mark.parametrize(
    ("counts", "verdict", "critical", "warning", "confidence"),
    [
        pytest.param(
            CLEAN, Verdict.PASS, PairState.CLEAR, PairState.CLEAR, Confidence.HIGH, id="clean"
        ),
        pytest.param(
            with_(m5=20, h1=20),
            Verdict.FAIL,
            PairState.FIRING,
            PairState.CLEAR,
            Confidence.HIGH,
            id="critical-fires",
        ),
        pytest.param(
            with_(m5=20, h1=20, m30=20, h6=20),
            Verdict.FAIL,
            PairState.FIRING,
            PairState.FIRING,
            Confidence.HIGH,
            id="both-fire",
        ),
        pytest.param(
            with_(m30=8, h6=8),
            Verdict.INCONCLUSIVE,
            PairState.CLEAR,
            PairState.FIRING,
            Confidence.HIGH,
            id="warning-holds",
        ),
        pytest.param(
            with_(h1=20, m5=1),
            Verdict.PASS,
            PairState.CLEAR,
            PairState.CLEAR,
            Confidence.MEDIUM,
            id="long-only-recovered",
        ),
        pytest.param(
            with_(h1=2, m5=20),
            Verdict.PASS,
            PairState.CLEAR,
            PairState.CLEAR,
            Confidence.MEDIUM,
            id="short-only-spike",
        ),
        pytest.param(
            with_(h1=None),
            Verdict.PASS,
            PairState.CLEAR,
            PairState.CLEAR,
            Confidence.MEDIUM,
            id="long-missing-short-below",
        ),
        pytest.param(
            with_(h1=None, m5=20),
            Verdict.INCONCLUSIVE,
            PairState.UNKNOWN,
            PairState.CLEAR,
            Confidence.LOW,
            id="long-missing-short-above",
        ),
        pytest.param(
            with_(h1=1, m5=None),
            Verdict.PASS,
            PairState.CLEAR,
            PairState.CLEAR,
            Confidence.MEDIUM,
            id="short-missing-long-below",
        ),
        pytest.param(
            with_(h1=20, m5=None),
            Verdict.INCONCLUSIVE,
            PairState.UNKNOWN,
            PairState.CLEAR,
            Confidence.LOW,
            id="short-missing-long-above",
        ),
        pytest.param(
            {},
            Verdict.INCONCLUSIVE,
            PairState.UNKNOWN,
            PairState.UNKNOWN,
            Confidence.LOW,
            id="nothing-answered",
        ),
        pytest.param(
            dict.fromkeys(CLEAN, (0.0, 0.0)),
            Verdict.INCONCLUSIVE,
            PairState.UNKNOWN,
            PairState.UNKNOWN,
            Confidence.LOW,
            id="zero-traffic",
        ),
        pytest.param(
            dict.fromkeys(CLEAN, (NAN, 1.0)),
            Verdict.INCONCLUSIVE,
            PairState.UNKNOWN,
            PairState.UNKNOWN,
            Confidence.LOW,
            id="nan-total",
        ),
        pytest.param(
            dict.fromkeys(CLEAN, (100.0, NAN)),
            Verdict.INCONCLUSIVE,
            PairState.UNKNOWN,
            PairState.UNKNOWN,
            Confidence.LOW,
            id="nan-bad",
        ),
        pytest.param(
            dict.fromkeys(CLEAN, (100.0, None)),
            Verdict.INCONCLUSIVE,
            PairState.UNKNOWN,
            PairState.UNKNOWN,
            Confidence.LOW,
            id="no-bad-count",
        ),
        pytest.param(
            with_(m5=20, h1=20, m30=None, h6=None),
            Verdict.FAIL,
            PairState.FIRING,
            PairState.UNKNOWN,
            Confidence.HIGH,
            id="critical-fires-warning-unknown",
        ),
        pytest.param(
            with_(m30=8, h6=8, h1=None, m5=20),
            Verdict.INCONCLUSIVE,
            PairState.UNKNOWN,
            PairState.FIRING,
            Confidence.LOW,
            id="warning-fires-critical-unknown",
        ),
    ],
)
def test_verdicts(
    counts: Counts,
    verdict: Verdict,
    critical: PairState,
    warning: PairState,
    confidence: Confidence,
) -> None:
    result = burn(counts)
    assert result.verdict is verdict, result.message
    assert [p.state for p in result.pairs] == [critical, warning]
    assert result.confidence is confidence


@pytest.mark.parametrize(
    ("bad", "state"),
    [
        pytest.param(500.0, PairState.CLEAR, id="at-the-rate-is-not-above"),
        pytest.param(501.0, PairState.FIRING, id="just-above"),
    ],
)
def test_firing_needs_strictly_more_than_the_rate(bad: float, state: PairState) -> None:
    """Objective 0.75 (budget 1/4) and rate 2: a ratio of exactly 0.5 burns at exactly 2."""
    rule = BurnRateRule(objective=0.75, windows=[BurnWindowPair(long="1h", short="5m", rate=2)])
    result = burn({"5m": (1000.0, bad), "1h": (1000.0, bad)}, rule)
    assert result.pairs[0].state is state


def test_a_young_canary_is_judged_on_its_age_at_low_confidence() -> None:
    young = NOW - timedelta(minutes=40)
    clean = burn(CLEAN, started=young)
    assert clean.verdict is Verdict.PASS
    assert clean.shortened
    assert clean.confidence is Confidence.LOW
    assert "over 1h (shortened to 40m)" in clean.message

    failing = burn(with_(m5=20, h1=20), started=young)
    assert failing.verdict is Verdict.FAIL
    assert failing.confidence is Confidence.LOW


def test_a_canary_too_young_for_any_window_is_inconclusive() -> None:
    result = burn(CLEAN, started=NOW - timedelta(seconds=30))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert all(w.seconds == 0 for w in result.windows)
    assert not result.shortened


@pytest.mark.parametrize(
    ("total", "bad", "ratio_", "burn_"),
    [
        pytest.param(1000.0, 20.0, 0.02, 20.0, id="plain"),
        pytest.param(1000.0, 1005.0, 1.0, 1000.0, id="bad-above-total-clamped"),
        pytest.param(1000.0, -3.0, 0.0, 0.0, id="negative-bad-clamped"),
    ],
)
def test_error_ratio_and_burn(total: float, bad: float, ratio_: float, burn_: float) -> None:
    window = burn({"1h": (total, bad)}).windows[2]
    assert window.error_ratio == pytest.approx(ratio_)
    assert window.burn == pytest.approx(burn_)


def test_good_counts_are_turned_into_bad_ones() -> None:
    result = burn({"5m": (1000.0, 980.0), "1h": (1000.0, 980.0)}, good=True)
    assert result.windows[0].bad == pytest.approx(20.0)
    assert result.windows[0].burn == pytest.approx(20.0)
    assert result.pairs[0].state is PairState.FIRING


def test_bad_wins_over_good() -> None:
    query = windows_to_query(RULE, NOW, OLD)[0]
    result = evaluate_burn_rate(
        RULE, [WindowCounts(query, total=1000.0, bad=0.0, good=0.0)], metric="a"
    )
    assert result.windows[0].burn == 0.0


def test_firing_pair_says_when_the_budget_runs_out() -> None:
    result = burn(with_(m5=30, h1=20))
    pair = result.pairs[0]
    assert pair.exhaustion_seconds == pytest.approx(720 * 3600 / 20)
    assert result.pairs[1].exhaustion_seconds is None


def test_message_states_every_pair() -> None:
    result = burn(with_(m5=30, h1=20))
    assert result.message == (
        "SLO availability (objective 99.9%): critical pair 1h/5m: burn 20.00 over 1h and "
        "30.00 over 5m, both above 14.4; warning pair 6h/30m: burn 0.00 over 6h and 0.00 over "
        "30m, not both above 6: fail"
    )


def test_highest_burn_and_firing_helpers() -> None:
    result = burn(with_(m5=30, h1=20, m30=7, h6=7))
    assert result.highest_burn == pytest.approx(30)
    assert [p.pair.long for p in result.firing(PairSeverity.CRITICAL)] == ["1h"]
    assert [p.pair.long for p in result.firing(PairSeverity.WARNING)] == ["6h"]


# ----------------------------------------------------------------------------------- rule


def test_rule_defaults_are_the_workbook_s() -> None:
    rule = BurnRateRule.model_validate({"objective": 0.999})
    assert rule.windows == list(DEFAULT_PAIRS)
    assert [(p.long, p.short, p.rate, p.severity.value) for p in rule.windows] == [
        ("1h", "5m", 14.4, "critical"),
        ("6h", "30m", 6.0, "warning"),
    ]
    assert rule.budget == pytest.approx(0.001)
    assert rule.period == "720h"
    assert rule.min_events == 100


# ------------------------------------------------------------------- too few events


#: (total, bad) per window: every window burns 500 (one bad event in two), over few events.
def thin(total: float) -> Counts:
    return dict.fromkeys(CLEAN, (total, total / 2))


@pytest.mark.parametrize(
    ("counts", "rule", "verdict", "states", "fragment"),
    [
        pytest.param(
            thin(4),
            RULE,
            Verdict.INCONCLUSIVE,
            ["Unknown", "Unknown"],
            "burn 500.00 on 4 events (under minEvents 100) over 1h",
            id="burning-on-4-events-is-not-judged",
        ),
        pytest.param(
            thin(100),
            RULE,
            Verdict.FAIL,
            ["Firing", "Firing"],
            "burn 500.00 over 1h and 500.00 over 5m, both above 14.4",
            id="at-min-events-it-is-judged",
        ),
        pytest.param(
            dict.fromkeys(CLEAN, (10.0, 0.0)),
            RULE,
            Verdict.INCONCLUSIVE,
            ["Unknown", "Unknown"],
            "burn 0.00 on 10 events (under minEvents 100)",
            id="a-clean-window-of-10-events-vouches-for-nothing",
        ),
        pytest.param(
            thin(4),
            BurnRateRule(objective=0.999, min_events=1),
            Verdict.FAIL,
            ["Firing", "Firing"],
            "both above 14.4",
            id="min-events-1-judges-any-count",
        ),
        pytest.param(
            {**CLEAN, "5m": (50.0, 0.0)},
            RULE,
            Verdict.PASS,
            ["Clear", "Clear"],
            "burn 0.00 over 1h and 0.00 on 50 events (under minEvents 100) over 5m, not both",
            id="a-thin-short-window-leaves-the-long-one-to-clear-the-pair",
        ),
        pytest.param(
            {**thin(20), "1h": (100_000.0, 5_000.0), "6h": (100_000.0, 0.0)},
            RULE,
            Verdict.INCONCLUSIVE,
            ["Unknown", "Clear"],
            "burn 50.00 over 1h and 500.00 on 20 events (under minEvents 100) over 5m, "
            "cannot tell against 14.4",
            id="a-burning-long-window-with-a-thin-short-one-is-unknown",
        ),
    ],
)
def test_windows_under_min_events_are_no_data(
    counts: Counts, rule: BurnRateRule, verdict: Verdict, states: list[str], fragment: str
) -> None:
    result = burn(counts, rule)
    assert result.verdict is verdict, result.message
    assert [p.state.value for p in result.pairs] == states
    assert fragment in result.message
    # The burn is still computed and reported, whatever the floor says.
    assert all(w.burn is not None for w in result.windows)
    assert {w.window for w in result.few_events} == {
        w.window for w in result.windows if w.total is not None and w.total < rule.min_events
    }


def test_min_events_is_bounded() -> None:
    with pytest.raises(ValidationError):
        BurnRateRule.model_validate({"objective": 0.99, "minEvents": 0})
    assert BurnRateRule.model_validate({"objective": 0.99, "minEvents": 5}).min_events == 5


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param({"objective": 1}, id="objective-1"),
        pytest.param({"objective": 0}, id="objective-0"),
        pytest.param({"objective": 0.99, "windows": []}, id="no-pairs"),
        pytest.param(
            {"objective": 0.99, "windows": [{"long": "5m", "short": "1h", "rate": 2}]},
            id="short-longer",
        ),
        pytest.param(
            {"objective": 0.99, "windows": [{"long": "1h", "short": "1h", "rate": 2}]},
            id="short-equal",
        ),
        pytest.param(
            {"objective": 0.99, "windows": [{"long": "1h", "short": "30s", "rate": 2}]},
            id="short-under-a-minute",
        ),
        pytest.param(
            {"objective": 0.99, "windows": [{"long": "1h", "short": "5m", "rate": 0}]},
            id="zero-rate",
        ),
        pytest.param(
            {
                "objective": 0.99,
                "windows": [{"long": "1h", "short": "5m", "rate": 2, "severity": "info"}],
            },
            id="info-severity",
        ),
        pytest.param(
            {"objective": 0.99, "windows": [{"long": "1h", "short": "90500ms", "rate": 2}]},
            id="fractional-seconds",
        ),
        pytest.param(
            {"objective": 0.99, "windows": [{"long": "1d", "short": "5m", "rate": 2}]},
            id="bad-duration",
        ),
    ],
)
def test_rule_refuses(wire: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        BurnRateRule.model_validate(wire)


# ----------------------------------------------------------------------------- properties

maybe_count = st.none() | st.tuples(
    st.floats(min_value=0, max_value=1e6) | st.just(NAN),
    st.none() | st.floats(min_value=-10, max_value=2e6) | st.just(NAN),
)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(
    counts=st.fixed_dictionaries(dict.fromkeys(CLEAN, maybe_count)),
    age=st.integers(min_value=0, max_value=8 * 3600),
)
def test_verdict_is_the_pairs_three_valued_and(counts: Counts, age: int) -> None:
    result = burn(counts, started=NOW - timedelta(seconds=age))
    floor = RULE.min_events
    for pair in result.pairs:
        burns = [pair.long.usable_burn(floor), pair.short.usable_burn(floor)]
        known = [b for b in burns if b is not None]
        # A window under minEvents is never evidence, whatever its burn.
        for window in (pair.long, pair.short):
            if window.total is not None and window.burn is not None and window.total < floor:
                assert window.usable_burn(floor) is None
        firing = len(known) == 2 and all(b > pair.pair.rate for b in known)
        clear = any(b <= pair.pair.rate for b in known)
        assert (pair.state is PairState.FIRING) is firing
        assert (pair.state is PairState.CLEAR) is clear
        if pair.long.shortened or pair.short.shortened:
            assert pair.confidence is Confidence.LOW
    critical_firing = any(
        p.state is PairState.FIRING and p.pair.severity is PairSeverity.CRITICAL
        for p in result.pairs
    )
    assert (result.verdict is Verdict.FAIL) is critical_firing
    if result.verdict is Verdict.PASS:
        assert all(p.state is PairState.CLEAR for p in result.pairs)
    # Evidence resting on a shortened window is LOW; a rollback keeps the confidence of the
    # strongest critical pair that fires, which may have had its full windows.
    if result.shortened and result.verdict is not Verdict.FAIL:
        assert result.confidence is Confidence.LOW
    if result.verdict is Verdict.FAIL:
        firing = result.firing(PairSeverity.CRITICAL)
        full = any(not (p.long.shortened or p.short.shortened) for p in firing)
        assert (result.confidence is Confidence.HIGH) is full
