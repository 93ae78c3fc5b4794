from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from rollwise.core.observations import (
    REVISION_LABEL,
    ManualRequest,
    Measurement,
    RequestKind,
    RevisionState,
    requests_from_annotations,
    revision_of,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_revision_is_ten_hex_chars_and_stable() -> None:
    template = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"image": "x"}]}}
    rev = revision_of(template)
    assert len(rev) == 10
    assert all(c in "0123456789abcdef" for c in rev)
    assert revision_of(template) == rev


def test_revision_ignores_key_order() -> None:
    a = {"metadata": {"labels": {"app": "a", "tier": "web"}}, "spec": {"x": 1, "y": 2}}
    b = {"spec": {"y": 2, "x": 1}, "metadata": {"labels": {"tier": "web", "app": "a"}}}
    assert revision_of(a) == revision_of(b)


def test_revision_changes_with_content() -> None:
    a = {"spec": {"containers": [{"image": "app:v1"}]}}
    b = {"spec": {"containers": [{"image": "app:v2"}]}}
    assert revision_of(a) != revision_of(b)


def test_revision_label_does_not_change_identity() -> None:
    plain = {"metadata": {"labels": {"app": "a"}}, "spec": {}}
    labelled = {"metadata": {"labels": {"app": "a", REVISION_LABEL: "abc"}}, "spec": {}}
    assert revision_of(plain) == revision_of(labelled)


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        pytest.param(None, (), id="none"),
        pytest.param({"other": "x"}, (), id="unrelated"),
        pytest.param(
            {"rollwise.dev/promote": "r1"},
            (ManualRequest(RequestKind.PROMOTE, "r1"),),
            id="promote",
        ),
        pytest.param(
            {"rollwise.dev/abort": "a", "rollwise.dev/retry": "b", "rollwise.dev/promote-full": ""},
            (ManualRequest(RequestKind.ABORT, "a"), ManualRequest(RequestKind.RETRY, "b")),
            id="several-empty-ignored",
        ),
    ],
)
def test_requests_from_annotations(
    annotations: dict[str, str] | None, expected: tuple[ManualRequest, ...]
) -> None:
    assert requests_from_annotations(annotations) == expected


@pytest.mark.parametrize(
    ("measurement", "usable"),
    [
        pytest.param(Measurement(0.1, NOW), True, id="value"),
        pytest.param(Measurement(None, NOW), False, id="no-data"),
        pytest.param(Measurement(math.nan, NOW), False, id="nan"),
        pytest.param(Measurement(math.inf, NOW), False, id="inf"),
        pytest.param(Measurement(0.1, NOW, error="boom"), False, id="error"),
    ],
)
def test_measurement_usable(measurement: Measurement, usable: bool) -> None:
    assert measurement.usable is usable


@pytest.mark.parametrize(
    ("state", "replicas", "ok"),
    [
        pytest.param(RevisionState(3, 3, 3, 3), 3, True, id="ready"),
        pytest.param(RevisionState(3, 3, 3, 2), 3, False, id="not-available"),
        pytest.param(RevisionState(3, 3, 3, 3, current=False), 3, False, id="stale"),
        pytest.param(RevisionState(1, 1, 1, 1), 3, False, id="not-scaled"),
        pytest.param(RevisionState(0), 0, True, id="zero"),
    ],
)
def test_revision_ready_for(state: RevisionState, replicas: int, ok: bool) -> None:
    assert state.ready_for(replicas) is ok


def test_a_measurement_dated_by_the_decision_keeps_its_results() -> None:
    later = NOW.replace(hour=1)
    taken = Measurement(0.02, NOW, error=None, samples=150.0).taken_at(later)
    assert taken == Measurement(0.02, later, error=None, samples=150.0)
