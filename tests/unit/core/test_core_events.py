"""The transition log (``core.events``): numbering, the posted watermark, trimming, names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rollwise.core.events import (
    KEEP,
    MAX_ENTRIES,
    Event,
    EventLog,
    event_name,
    log_events,
    mark_posted,
)
from rollwise.core.rollout import reasons as R

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
TAIL = ".u-1.0000000007"


def events(n: int) -> list[Event]:
    return [Event.of(R.STEP_ADVANCED, step=i, steps=n, what="x", next="y") for i in range(n)]


def logged(n: int, *, posted: int = 0) -> EventLog:
    log = log_events(EventLog(), events(n), NOW)
    return mark_posted(log, posted)


def test_events_get_consecutive_numbers_after_the_last_one() -> None:
    log = log_events(EventLog(), events(2), NOW)
    log = log_events(log, events(3), NOW)
    assert log.seq == 5
    assert [e.seq for e in log.entries] == [1, 2, 3, 4, 5]
    assert log.entries[0].reason == "StepAdvanced"
    assert log.entries[0].type == "Normal"
    assert log.entries[0].time == NOW


def test_no_events_leave_the_log_as_it_was() -> None:
    log = logged(3)
    assert log_events(log, [], NOW) is log


@pytest.mark.parametrize(
    ("n", "posted", "kept"),
    [
        pytest.param(3, 0, [1, 2, 3], id="nothing-posted-all-kept"),
        pytest.param(KEEP + 5, 0, list(range(1, KEEP + 6)), id="unposted-never-trimmed"),
        pytest.param(KEEP + 5, KEEP + 5, list(range(6, KEEP + 6)), id="posted-keeps-the-last"),
        pytest.param(KEEP + 5, 10, list(range(1, KEEP + 6)), id="keep-plus-pending"),
        pytest.param(
            MAX_ENTRIES + 7,
            0,
            list(range(8, MAX_ENTRIES + 8)),
            id="hard-bound-drops-the-oldest",
        ),
    ],
)
def test_trimming_keeps_every_unposted_entry_within_the_bound(
    n: int, posted: int, kept: list[int]
) -> None:
    log = logged(n, posted=posted)
    assert [e.seq for e in log.entries] == kept


@pytest.mark.parametrize(
    ("before", "claim", "after"),
    [
        pytest.param(2, 4, 4, id="raised"),
        pytest.param(4, 2, 4, id="never-lowered"),
        pytest.param(2, 99, 5, id="never-past-the-last-number"),
    ],
)
def test_the_posted_watermark_only_moves_forward(before: int, claim: int, after: int) -> None:
    log = mark_posted(logged(5), before)
    assert mark_posted(log, claim).posted == after


def test_unposted_lists_the_entries_after_a_number() -> None:
    assert [e.seq for e in logged(5).unposted(3)] == [4, 5]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("demo", "demo.u-1.0000000007", id="short"),
        pytest.param("a" * 260, "a" * (253 - len(TAIL)) + TAIL, id="cut-to-253"),
        pytest.param("a" * 237 + "-b", "a" * 237 + TAIL, id="no-dash-before-the-dot"),
    ],
)
def test_event_names_are_deterministic_dns_subdomains(name: str, expected: str) -> None:
    got = event_name(name, "u-1", 7)
    assert got == expected
    assert len(got) <= 253
    assert event_name(name, "u-1", 7) == got
    assert event_name(name, "u-1", 8) != got
