"""The regression watch's per-KPI state machine (:mod:`rollwise.core.regression`): tables of
input sequences, flapping included, and the property that no sequence confirms an episode
twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollwise.core.regression import (
    ERROR_RATE_REGRESSION,
    LATENCY_REGRESSION,
    KpiRecord,
    KpiState,
    Signal,
    Standing,
    Transition,
    WatchRule,
    advance,
    deltas,
    reason_for,
    signal_of,
    standing,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
B, G, N, U = Signal.BAD, Signal.GOOD, Signal.NEUTRAL, Signal.UNKNOWN


def run(
    signals: list[Signal], rule: WatchRule, agree: list[bool] | None = None
) -> tuple[KpiRecord, list[Transition]]:
    record = KpiRecord(name="error-rate", reason=ERROR_RATE_REGRESSION)
    seen: list[Transition] = []
    for i, signal in enumerate(signals):
        windows_agree = agree[i] if agree is not None else False
        record, moves = advance(
            record, signal, rule, T0 + timedelta(seconds=i), windows_agree=windows_agree
        )
        seen.extend(moves)
    return record, seen


D, C, CL, FP = (
    Transition.DETECTED,
    Transition.CONFIRMED,
    Transition.CLEARED,
    Transition.FALSE_POSITIVE,
)


@pytest.mark.parametrize(
    ("signals", "rule", "state", "moves", "episodes"),
    [
        pytest.param([G, G, G], WatchRule(3, 2), KpiState.OK, [], 0, id="healthy-stays-ok"),
        pytest.param([B], WatchRule(3, 2), KpiState.DETECTED, [D], 1, id="one-bad-detects"),
        pytest.param([B, B, B], WatchRule(3, 2), KpiState.CONFIRMED, [D, C], 1, id="n-bad-confirm"),
        pytest.param([B], WatchRule(1, 2), KpiState.CONFIRMED, [D, C], 1, id="confirm-after-1"),
        pytest.param(
            [B, B, B, B, B, B], WatchRule(3, 2), KpiState.CONFIRMED, [D, C], 1, id="long-bad-once"
        ),
        pytest.param(
            [B, G, G], WatchRule(3, 2), KpiState.CLEARED, [D, CL, FP], 1, id="blip-false-positive"
        ),
        pytest.param(
            [B, B, B, G, G], WatchRule(3, 2), KpiState.CLEARED, [D, C, CL], 1, id="confirmed-clears"
        ),
        pytest.param(
            [B, G, B, G, B, G, B, G],
            WatchRule(3, 3),
            KpiState.DETECTED,
            [D],
            1,
            id="flapping-one-episode",
        ),
        pytest.param(
            [B, B, N, B, B, N, B, B],
            WatchRule(3, 2),
            KpiState.DETECTED,
            [D],
            1,
            id="neutral-breaks-consecutive-bad",
        ),
        pytest.param(
            [B, B, B, N, G, N, G, N, G],
            WatchRule(3, 3),
            KpiState.CONFIRMED,
            [D, C],
            1,
            id="inside-band-never-clears",
        ),
        pytest.param(
            [B, U, U, B, U, B],
            WatchRule(3, 2),
            KpiState.CONFIRMED,
            [D, C],
            1,
            id="no-data-changes-nothing",
        ),
        pytest.param(
            [B, G, G, B, G, G],
            WatchRule(3, 2),
            KpiState.CLEARED,
            [D, CL, FP, D, CL, FP],
            2,
            id="two-blips-two-episodes",
        ),
        pytest.param(
            [B, B, B, G, G, B, B, B],
            WatchRule(3, 2),
            KpiState.CONFIRMED,
            [D, C, CL, D, C],
            2,
            id="relapse-after-clear-is-new-episode",
        ),
    ],
)
def test_state_machine_table(
    signals: list[Signal],
    rule: WatchRule,
    state: KpiState,
    moves: list[Transition],
    episodes: int,
) -> None:
    record, seen = run(signals, rule)
    assert record.state is state
    assert seen == moves
    assert record.episodes == episodes


def test_windows_agreeing_confirm_at_once() -> None:
    rule = WatchRule(5, 2, confirm_when_windows_agree=True)
    record, seen = run([B, B], rule, agree=[False, True])
    assert seen == [D, C]
    assert record.state is KpiState.CONFIRMED
    # Without the rule, agreement is ignored.
    record, seen = run([B, B], WatchRule(5, 2), agree=[True, True])
    assert seen == [D]


def test_transition_time_moves_only_on_transitions() -> None:
    rule = WatchRule(3, 2)
    record = KpiRecord(name="x", reason="x_drop")
    record, _ = advance(record, B, rule, T0)
    assert record.last_transition_at == T0
    record, moves = advance(record, B, rule, T0 + timedelta(seconds=5))
    assert moves == ()
    assert record.last_transition_at == T0
    assert record.bad_count == 2


def test_rule_refuses_zero_counts() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        WatchRule(0, 1)


@pytest.mark.parametrize(
    ("value", "target", "band", "higher_is_worse", "expected"),
    [
        pytest.param(0.01, 0.05, 0.1, True, Standing.ON_TRACK, id="below-max"),
        pytest.param(0.048, 0.05, 0.1, True, Standing.ATTENTION, id="below-max-inside-band"),
        pytest.param(0.05, 0.05, 0.1, True, Standing.ATTENTION, id="at-max"),
        pytest.param(0.052, 0.05, 0.1, True, Standing.OFF_TRACK, id="past-max"),
        pytest.param(0.95, 0.9, 0.05, False, Standing.ON_TRACK, id="above-min"),
        pytest.param(0.92, 0.9, 0.05, False, Standing.ATTENTION, id="above-min-inside-band"),
        pytest.param(0.87, 0.9, 0.05, False, Standing.OFF_TRACK, id="below-min"),
        pytest.param(0.05, 0.0, 0.1, True, Standing.OFF_TRACK, id="zero-target-no-band"),
        pytest.param(0.0, 0.0, 0.1, True, Standing.ON_TRACK, id="zero-target-met"),
        pytest.param(None, 0.05, 0.1, True, None, id="no-value"),
        pytest.param(0.1, None, 0.1, True, None, id="no-target"),
        pytest.param(float("nan"), 0.05, 0.1, True, None, id="nan-value"),
    ],
)
def test_standing(
    value: float | None,
    target: float | None,
    band: float,
    higher_is_worse: bool,
    expected: Standing | None,
) -> None:
    assert standing(value, target, band=band, higher_is_worse=higher_is_worse) == expected


def test_deltas() -> None:
    assert deltas(0.15, 0.1) == pytest.approx((0.05, 0.5))
    assert deltas(0.1, 0.0) == (0.1, None)
    assert deltas(None, 0.1) == (None, None)


def test_signal_of() -> None:
    assert signal_of(None, Standing.OFF_TRACK) is Signal.UNKNOWN
    assert signal_of(True, Standing.ON_TRACK) is Signal.BAD
    assert signal_of(False, Standing.ATTENTION) is Signal.NEUTRAL
    assert signal_of(False, None) is Signal.GOOD


@pytest.mark.parametrize(
    ("name", "given", "expected"),
    [
        pytest.param("error-rate", None, ERROR_RATE_REGRESSION, id="error"),
        pytest.param("p99-latency", None, LATENCY_REGRESSION, id="latency"),
        pytest.param("approval-rate", None, "approval_rate_drop", id="user-kpi"),
        pytest.param("approval-rate", "custom_code", "custom_code", id="given"),
    ],
)
def test_reason_for(name: str, given: str | None, expected: str) -> None:
    assert reason_for(name, given) == expected


@settings(max_examples=300, deadline=None)
@given(
    signals=st.lists(st.sampled_from(list(Signal)), max_size=60),
    agree=st.lists(st.booleans(), min_size=60, max_size=60),
    confirm_after=st.integers(1, 5),
    clear_after=st.integers(1, 5),
    on_agreement=st.booleans(),
)
def test_no_sequence_confirms_an_episode_twice(
    signals: list[Signal],
    agree: list[bool],
    confirm_after: int,
    clear_after: int,
    on_agreement: bool,
) -> None:
    rule = WatchRule(confirm_after, clear_after, confirm_when_windows_agree=on_agreement)
    record, seen = run(signals, rule, agree=agree[: len(signals)])
    # Split the transitions into episodes: each starts with DETECTED.
    episodes: list[list[Transition]] = []
    for move in seen:
        if move is Transition.DETECTED:
            episodes.append([])
        episodes[-1].append(move)
    assert len(episodes) == record.episodes
    for episode in episodes:
        assert episode.count(Transition.CONFIRMED) <= 1
        assert episode.count(Transition.CLEARED) <= 1
        # A false positive is a cleared episode that was never confirmed.
        assert (Transition.FALSE_POSITIVE in episode) == (
            Transition.CLEARED in episode and Transition.CONFIRMED not in episode
        )
