"""The post-promotion regression watch of one KPI: detection, confirmation and clearing with
hysteresis, and where the KPI stands against its target (the scoreboard's status).

Both wings use it: a Rollout's ``strategy.canary.postPromotion`` and a ModelRelease's
``canary.postPromotion`` watch the revision they promoted for a while, one :class:`KpiRecord`
per watched metric in ``status.postPromotion.kpis``.

The state machine, per KPI, one :func:`advance` per evaluation:

* ``ok`` (or ``cleared``) and a bad evaluation: ``detected``; a new *episode* starts. When
  ``confirmAfter`` is 1, or both windows are bad and ``confirmWhenWindowsAgree`` is set, it is
  ``confirmed`` at once.
* ``detected``: ``confirmAfter`` consecutive bad evaluations (or both windows bad, as above)
  confirm it; ``clearAfter`` consecutive good evaluations clear it, and that episode was a
  *false positive* (detected, never confirmed).
* ``confirmed``: ``clearAfter`` consecutive good evaluations clear it.
* An evaluation without a verdict (no data, a provider error) changes nothing: no data is
  neither bad nor good.

Hysteresis: a good evaluation only counts towards clearing when the value is back on track,
outside the attention band around the target (:func:`standing`); a value that passes its rule
but sits inside the band is *neutral*: it neither clears the episode nor counts as bad, and it
breaks a run of consecutive bad or good evaluations. So a KPI crossing the threshold back and forth
inside the band stays in its one episode; and whatever the input, an episode is detected
once, confirmed at most once and cleared once (a property the tests check).

Pure: no clock (``now`` is an argument), no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import Field

from rollwise.core.decision_reasons import Severity
from rollwise.core.scoreboard import KpiDirection, KpiStatus, kpi_status
from rollwise.core.status_model import StatusModel, Time

#: Reason codes of a regression (``status.postPromotion.kpis[].reason``). A KPI the spec does
#: not give a reason gets one from its name (:func:`reason_for`).
ERROR_RATE_REGRESSION = "error_rate_regression"
LATENCY_REGRESSION = "latency_regression"
KPI_DROP = "kpi_drop"
#: The suffix of a user KPI's own code: ``approval-rate`` becomes ``approval_rate_drop``.
DROP_SUFFIX = "_drop"


class KpiState(StrEnum):
    """Where one KPI's episode stands."""

    OK = "ok"
    DETECTED = "detected"
    CONFIRMED = "confirmed"
    CLEARED = "cleared"


#: A KPI against its target (the scoreboard's classification, one for both views).
Standing = KpiStatus


class Signal(StrEnum):
    """What one evaluation says about a KPI: bad (the rule failed), good (the rule passed and
    the value is on track), neutral (passed inside the attention band) or unknown (no
    verdict)."""

    BAD = "bad"
    GOOD = "good"
    NEUTRAL = "neutral"
    UNKNOWN = "unknown"


class Transition(StrEnum):
    """A change of episode the wing turns into one event, one counter increment and, for a
    confirmation, one decision."""

    DETECTED = "detected"
    CONFIRMED = "confirmed"
    CLEARED = "cleared"
    #: Cleared without having been confirmed (``rollwise_regression_false_positive_total``).
    FALSE_POSITIVE = "false_positive"


@dataclass(frozen=True)
class WatchRule:
    """How many consecutive bad evaluations confirm (``confirmAfter``), how many good ones
    clear (``clearAfter``), and whether both windows being bad confirms at once."""

    confirm_after: int = 3
    clear_after: int = 3
    confirm_when_windows_agree: bool = False

    def __post_init__(self) -> None:
        if self.confirm_after < 1 or self.clear_after < 1:
            raise ValueError("confirmAfter and clearAfter must be at least 1")


class WindowValues(StatusModel):
    """The KPI's value over the short and the long window (None: no data)."""

    short: float | None = None
    long: float | None = None


class KpiRecord(StatusModel):
    """One watched KPI in ``status.postPromotion.kpis``: its episode state and counters, its
    latest values, and how it stands against its target and the previous revision.

    ``previous`` is the value captured for the previous revision when the watch started, kept
    here so that the comparison survives a restart. ``delta`` and ``relativeDelta`` compare
    ``value`` with ``previous`` (with ``target`` when there is no previous value)."""

    name: str
    reason: str
    severity: Severity = Severity.CRITICAL
    state: KpiState = KpiState.OK
    value: float | None = None
    windows: WindowValues = Field(default_factory=WindowValues)
    target: float | None = None
    previous: float | None = None
    delta: float | None = None
    relative_delta: float | None = None
    status: Standing | None = None
    bad_count: int = 0
    good_count: int = 0
    episodes: int = 0
    confirmed: bool = False
    """Whether the open (or last) episode was confirmed; what tells a false positive."""
    last_transition_at: Time | None = None


def reason_for(name: str, given: str | None = None) -> str:
    """A KPI's reason code: the spec's ``reason`` when given, else from the metric's name:
    an error rate or a latency gets the standard code, any other KPI its own
    ``<name>_drop`` (``approval-rate`` → ``approval_rate_drop``)."""
    if given:
        return given
    words = name.lower().replace("-", "_")
    if "error" in words or "5xx" in words:
        return ERROR_RATE_REGRESSION
    if "latency" in words or "duration" in words:
        return LATENCY_REGRESSION
    return f"{words}{DROP_SUFFIX}" if words else KPI_DROP


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def standing(
    value: float | None, target: float | None, *, band: float, higher_is_worse: bool
) -> Standing | None:
    """Where ``value`` stands against ``target``, as the scoreboard classifies it
    (:func:`rollwise.core.scoreboard.kpi_status`): off track past the target, attention while
    it still meets the target within ``band`` (a fraction of the target) of it, on track
    otherwise. None without a value or a target."""
    value, target = _finite(value), _finite(target)
    if value is None or target is None:
        return None
    direction = KpiDirection.LOWER_IS_BETTER if higher_is_worse else KpiDirection.HIGHER_IS_BETTER
    return kpi_status(value, target, direction, band)


def deltas(value: float | None, reference: float | None) -> tuple[float | None, float | None]:
    """``value - reference`` and the same relative to ``reference`` (None when it is 0)."""
    value, reference = _finite(value), _finite(reference)
    if value is None or reference is None:
        return None, None
    delta = value - reference
    return delta, (delta / abs(reference) if reference != 0 else None)


def signal_of(failed: bool | None, place: Standing | None) -> Signal:
    """One evaluation as the state machine reads it: ``failed`` is the evaluator's verdict
    (True: FAIL, False: PASS, None: inconclusive); a pass inside the attention band is
    neutral."""
    if failed is None:
        return Signal.UNKNOWN
    if failed:
        return Signal.BAD
    return Signal.NEUTRAL if place is Standing.ATTENTION else Signal.GOOD


def advance(
    record: KpiRecord,
    signal: Signal,
    rule: WatchRule,
    now: datetime,
    *,
    windows_agree: bool = False,
) -> tuple[KpiRecord, tuple[Transition, ...]]:
    """The KPI after one evaluation, and the transitions it made (in order).

    ``windows_agree``: both windows were bad in this evaluation (only read when the rule
    confirms on agreement)."""
    state, bad, good = record.state, record.bad_count, record.good_count
    episodes, confirmed = record.episodes, record.confirmed
    moves: list[Transition] = []
    if signal is Signal.UNKNOWN:
        return record, ()
    if signal is Signal.BAD:
        bad, good = bad + 1, 0
        if state in (KpiState.OK, KpiState.CLEARED):
            state, bad, episodes, confirmed = KpiState.DETECTED, 1, episodes + 1, False
            moves.append(Transition.DETECTED)
        agree = rule.confirm_when_windows_agree and windows_agree
        if state is KpiState.DETECTED and (bad >= rule.confirm_after or agree):
            state, confirmed = KpiState.CONFIRMED, True
            moves.append(Transition.CONFIRMED)
    elif signal is Signal.NEUTRAL:
        bad, good = 0, 0
    else:
        bad = 0
        if state in (KpiState.DETECTED, KpiState.CONFIRMED):
            good += 1
            if good >= rule.clear_after:
                moves.append(Transition.CLEARED)
                if state is KpiState.DETECTED:
                    moves.append(Transition.FALSE_POSITIVE)
                state, good = KpiState.CLEARED, 0
        else:
            good = 0
    updated = record.model_copy(
        update={
            "state": state,
            "bad_count": bad,
            "good_count": good,
            "episodes": episodes,
            "confirmed": confirmed,
            "last_transition_at": now if moves else record.last_transition_at,
        }
    )
    return updated, tuple(moves)


def open_episode(record: KpiRecord) -> bool:
    """Whether the KPI is in an episode (detected or confirmed)."""
    return record.state in (KpiState.DETECTED, KpiState.CONFIRMED)


__all__ = [
    "DROP_SUFFIX",
    "ERROR_RATE_REGRESSION",
    "KPI_DROP",
    "LATENCY_REGRESSION",
    "KpiRecord",
    "KpiState",
    "Signal",
    "Standing",
    "Transition",
    "WatchRule",
    "WindowValues",
    "advance",
    "deltas",
    "open_episode",
    "reason_for",
    "signal_of",
    "standing",
]
