"""The post-promotion regression watch, for either kind: what to measure and when, and what
the measurements do to ``status.postPromotion``.

After a promotion the promoted revision is watched for ``duration``: every ``interval`` each
watched metric is measured over the short and the long window (``{{window}}`` in its query
is the window, ``{{revision}}`` the revision measured) and judged by the one evaluator of the
analysis (:func:`rollwise.core.judging.judge`); the short window's verdict drives the KPI's
state machine (:mod:`rollwise.core.regression`), both windows failing together may confirm
at once. Right after the promotion, each metric is measured once over the long window for the
previous revision: that value is kept in status as the KPI's ``previous``, so the comparison
survives a restart.

The runtime measures what :func:`watch_queries` asks for, under the keys it gives
(``<metric>@short``, ``<metric>@long``, ``<metric>@previous``; ``@`` never appears in a
metric's name), beside the canary's measurements in ``Observations.measurements``; the wing
calls :func:`evaluate` and turns its transitions into events, counters and a decision.

Pure: no clock (``now`` is an argument), no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import Field

from rollwise.core.analysis import format_value
from rollwise.core.confidence import Confidence
from rollwise.core.decision import Decision, DecisionReason, Priority, RequiredAction
from rollwise.core.decision_evidence import Action
from rollwise.core.decision_reasons import REGRESSION_CONFIRMED, Severity
from rollwise.core.durations import InvalidDuration, add_seconds, parse_seconds
from rollwise.core.judging import judge
from rollwise.core.observations import Measurement, TemplateKey, TemplateRead
from rollwise.core.query_templates import REVISION_PLACEHOLDER, WINDOW_PLACEHOLDER
from rollwise.core.reasons import Reason
from rollwise.core.regression import (
    KpiRecord,
    KpiState,
    Transition,
    WatchRule,
    WindowValues,
    advance,
    deltas,
    reason_for,
    signal_of,
    standing,
)
from rollwise.core.runs import Verdict
from rollwise.core.spec import (
    DecisionMode,
    Direction,
    Metric,
    MetricKind,
    PostPromotion,
    RegressionAction,
    WatchedKpi,
)
from rollwise.core.status_model import StatusModel, Time
from rollwise.core.templates import merge
from rollwise.core.validation import validate_metrics

#: Separates a watched metric's name from what a measurement is for (``error-rate@short``).
KEY_SEPARATOR = "@"
SHORT = "short"
LONG = "long"
PREVIOUS = "previous"

#: The CEL rule's and the operator's messages for a watch that cannot work.
MSG_WATCH_NEEDS_METRICS = "postPromotion needs metrics or templates"
MSG_WATCH_THRESHOLD_ONLY = (
    "postPromotion watches threshold metrics (thresholdRange, successCondition or "
    "failureCondition); compare and sloBurnRate metrics judge a canary against a control"
)
MSG_WINDOWS_ORDER = "postPromotion.windows.short must not be longer than windows.long"
MSG_KPI_UNKNOWN = "postPromotion.kpis names a metric the watch does not have"

#: What a watched metric's queries may use beyond a threshold query's placeholders.
WATCH_PLACEHOLDERS = frozenset({WINDOW_PLACEHOLDER, REVISION_PLACEHOLDER})


class WatchPhase(StrEnum):
    """``status.postPromotion.phase``."""

    WATCHING = "Watching"
    PASSED = "Passed"
    REGRESSED = "Regressed"


class HoldLift(StatusModel):
    """``status.postPromotion.holdLifted``: the request that let a held revision proceed
    past a confirmed regression with action hold: a promote override (``user`` made it,
    ``confirmedBy`` confirmed it) or a ``rollwise.dev/promote`` request (no one named)."""

    revision: str
    request: str
    """The override's id, or the promote request's."""
    override: bool = False
    user: str | None = None
    confirmed_by: str | None = None
    at: Time


class PostPromotionStatus(StatusModel):
    """``status.postPromotion``: the watch of the revision promoted last."""

    phase: WatchPhase
    revision: str
    """The promoted revision being watched."""
    previous_revision: str
    """The revision it replaced, kept warm for the watch period."""
    started_at: Time
    ends_at: Time
    action: RegressionAction | None = None
    """What a confirmed regression did (None: nothing confirmed)."""
    previous_captured: bool = False
    """Whether the previous revision's values were measured (once, at the start)."""
    last_evaluated_at: Time | None = None
    evaluations: int = 0
    ended_at: Time | None = None
    """When the watch stopped evaluating: its period ended, a rollback, or the hold lifted."""
    held_revision: str | None = None
    """A new revision a confirmed regression with action hold keeps waiting."""
    hold_lifted: HoldLift | None = None
    """Who let a held revision proceed past the confirmed regression (None: no one)."""
    kpis: list[KpiRecord] = Field(default_factory=list)

    def kpi(self, name: str) -> KpiRecord | None:
        for record in self.kpis:
            if record.name == name:
                return record
        return None


@dataclass(frozen=True)
class KpiChange:
    """One KPI's transitions in one evaluation, with the record after it."""

    record: KpiRecord
    transitions: tuple[Transition, ...]


@dataclass(frozen=True)
class Evaluated:
    """What one evaluation did: the new watch status, each KPI's transitions, and the action
    taken by a confirmation in it (None when nothing was confirmed)."""

    status: PostPromotionStatus
    changes: tuple[KpiChange, ...] = ()
    action: RegressionAction | None = None
    ended: bool = False

    @property
    def confirmed(self) -> bool:
        """Whether some KPI's episode was confirmed in this evaluation."""
        return any(Transition.CONFIRMED in change.transitions for change in self.changes)

    def decision(self, mode: DecisionMode, now: datetime) -> Decision | None:
        """``status.decision`` of this evaluation: the confirmed regression's, else None."""
        if not self.confirmed or self.action is None:
            return None
        return regression_decision(self.status, self.action, mode, now)


@dataclass(frozen=True)
class EpisodeReasons:
    """A wing's event reasons for the transitions of a KPI's episode (each wing words its
    own messages: a Rollout's revision, a ModelRelease's version)."""

    detected: Reason
    confirmed: Reason
    cleared: Reason


def key(metric: str, which: str) -> str:
    """The measurement key of ``metric`` for ``which`` (short, long, previous)."""
    return f"{metric}{KEY_SEPARATOR}{which}"


def window_text(duration: str) -> str:
    """A window as PromQL writes it: whole seconds (``1h`` → ``3600s``), at least 1s."""
    try:
        seconds = parse_seconds(duration)
    except InvalidDuration:
        seconds = 0
    return f"{max(int(seconds), 1)}s"


def _render(text: str | None, values: Mapping[str, str]) -> str | None:
    if text is None:
        return None
    for name, value in values.items():
        for spelled in (f"{{{{{name}}}}}", f"{{{{ {name} }}}}"):
            text = text.replace(spelled, value)
    return text


def rendered(metric: Metric, name: str, window: str, revision: str) -> Metric:
    """``metric`` named ``name`` with ``{{window}}`` and ``{{revision}}`` replaced in its
    queries; the other placeholders are left to the measuring that renders every query."""
    values = {WINDOW_PLACEHOLDER: window, REVISION_PLACEHOLDER: revision}
    provider = metric.provider
    update: dict[str, object] = {"name": name}
    if provider.prometheus is not None:
        prometheus = provider.prometheus.model_copy(
            update={"query": _render(provider.prometheus.query, values)}
        )
        provider = provider.model_copy(update={"prometheus": prometheus})
    if provider.web is not None:
        web = provider.web.model_copy(
            update={
                "path": _render(provider.web.path, values) or "",
                "body": _render(provider.web.body, values),
            }
        )
        provider = provider.model_copy(update={"web": web})
    update["provider"] = provider
    if metric.sample_guard is not None:
        guard = metric.sample_guard.model_copy(
            update={"query": _render(metric.sample_guard.query, values)}
        )
        update["sample_guard"] = guard
    return metric.model_copy(update=update)


def _seconds(text: str) -> float:
    try:
        return parse_seconds(text)
    except InvalidDuration:
        return 0.0


def watch_metrics(
    where: str, watch: PostPromotion, reads: Mapping[TemplateKey, TemplateRead | None]
) -> tuple[list[Metric], list[str]]:
    """The watch's metrics, its templates' (read this pass) then its inline ones, or the
    problems."""
    if not watch.templates:
        return list(watch.metrics), []
    return merge(
        f"{where}.postPromotion", watch.templates, watch.metrics, reads, WATCH_PLACEHOLDERS
    )


def resolved_metrics(
    where: str, watch: PostPromotion | None, reads: Mapping[TemplateKey, TemplateRead | None]
) -> list[Metric]:
    """The watch's metrics (:func:`watch_metrics`), none without a watch or while its
    templates have problems."""
    if watch is None:
        return []
    metrics, problems = watch_metrics(where, watch, reads)
    return [] if problems else metrics


def watch_problems(
    where: str, watch: PostPromotion | None, reads: Mapping[TemplateKey, TemplateRead | None]
) -> list[str]:
    """Problems of a watch at ``where`` (its templates' first, then its own); none without
    one."""
    if watch is None:
        return []
    metrics, problems = watch_metrics(where, watch, reads)
    return problems or validate(where, watch, metrics)


def validate(where: str, watch: PostPromotion, metrics: Sequence[Metric]) -> list[str]:
    """Problems of a watch whose templates are resolved into ``metrics`` (the metrics
    themselves are checked as any analysis' are, with ``{{window}}`` and ``{{revision}}``
    known)."""
    errors: list[str] = []
    at = f"{where}.postPromotion"
    for field, text in (
        ("duration", watch.duration),
        ("interval", watch.interval),
        ("windows.short", watch.windows.short),
        ("windows.long", watch.windows.long),
    ):
        try:
            if parse_seconds(text) <= 0:
                errors.append(f"{at}.{field}: duration must be greater than 0")
        except InvalidDuration as exc:
            errors.append(f"{at}.{field}: {exc}")
    if _seconds(watch.windows.short) > _seconds(watch.windows.long):
        errors.append(f"{at}.windows: {MSG_WINDOWS_ORDER}")
    if not metrics:
        errors.append(f"{at}: {MSG_WATCH_NEEDS_METRICS}")
    for i, metric in enumerate(metrics):
        if metric.kinds and metric.kind is not MetricKind.THRESHOLD:
            errors.append(f"{at}.metrics[{i}]: {MSG_WATCH_THRESHOLD_ONLY}")
    errors.extend(validate_metrics(at, list(metrics), WATCH_PLACEHOLDERS))
    names = {m.name for m in metrics}
    for i, kpi in enumerate(watch.kpis or []):
        if kpi.metric not in names:
            errors.append(f"{at}.kpis[{i}].metric: {MSG_KPI_UNKNOWN} ({kpi.metric})")
    return errors


def kpi_spec(watch: PostPromotion, metric: str) -> WatchedKpi:
    """How ``metric`` is read as a KPI (a critical one, higher is worse, by default)."""
    for kpi in watch.kpis or []:
        if kpi.metric == metric:
            return kpi
    return WatchedKpi(metric=metric)


def rule_of(watch: PostPromotion) -> WatchRule:
    return WatchRule(
        confirm_after=watch.confirm_after,
        clear_after=watch.clear_after,
        confirm_when_windows_agree=watch.confirm_when_windows_agree,
    )


def start(
    watch: PostPromotion,
    metrics: Sequence[Metric],
    *,
    revision: str,
    previous: str,
    now: datetime,
) -> PostPromotionStatus:
    """The watch of ``revision`` (which replaced ``previous``), starting ``now``."""
    kpis = []
    for metric in metrics:
        kpi = kpi_spec(watch, metric.name)
        kpis.append(
            KpiRecord(
                name=metric.name,
                reason=reason_for(metric.name, kpi.reason),
                severity=Severity(kpi.severity.value),
                target=kpi.target,
            )
        )
    return PostPromotionStatus(
        phase=WatchPhase.WATCHING,
        revision=revision,
        previous_revision=previous,
        started_at=now,
        ends_at=add_seconds(now, _seconds(watch.duration)),
        kpis=kpis,
    )


def watching(status: PostPromotionStatus | None) -> bool:
    """Whether the watch still evaluates (its period not over, no rollback)."""
    return status is not None and status.ended_at is None


def next_due(watch: PostPromotion, status: PostPromotionStatus) -> datetime | None:
    """When the watch next needs measurements (or ends); None once it is over."""
    if not watching(status):
        return None
    if not status.previous_captured:
        return status.started_at
    last = status.last_evaluated_at or status.started_at
    return min(add_seconds(last, _seconds(watch.interval)), status.ends_at)


def watch_queries(
    watch: PostPromotion,
    metrics: Sequence[Metric],
    status: PostPromotionStatus | None,
    now: datetime,
) -> list[Metric]:
    """The measurements the runtime takes now for the watch, each a metric named by its key
    (:func:`key`) with ``{{window}}`` and ``{{revision}}`` rendered."""
    if status is None or not watching(status):
        return []
    due = next_due(watch, status)
    if due is None or now < due:
        return []
    long = window_text(watch.windows.long)
    if not status.previous_captured:
        return [rendered(m, key(m.name, PREVIOUS), long, status.previous_revision) for m in metrics]
    if now >= status.ends_at:
        return []
    short = window_text(watch.windows.short)
    queries = []
    for metric in metrics:
        queries.append(rendered(metric, key(metric.name, SHORT), short, status.revision))
        queries.append(rendered(metric, key(metric.name, LONG), long, status.revision))
    return queries


def _usable(measurement: Measurement | None) -> float | None:
    return measurement.value if measurement is not None and measurement.usable else None


def _verdict(metric: Metric, measurement: Measurement | None) -> Verdict:
    if measurement is None:
        return Verdict.INCONCLUSIVE
    return judge(metric, measurement.taken_at(measurement.at)).verdict


_ACTION_RANK = {RegressionAction.ROLLBACK: 0, RegressionAction.HOLD: 1, RegressionAction.ALERT: 2}


def action_for(watch: PostPromotion, severity: Severity) -> RegressionAction:
    table = watch.on_regression
    if severity is Severity.CRITICAL:
        return table.critical
    if severity is Severity.WARNING:
        return table.warning
    return table.info


def evaluate(
    watch: PostPromotion,
    metrics: Sequence[Metric],
    status: PostPromotionStatus,
    measurements: Mapping[str, Measurement],
    now: datetime,
) -> Evaluated:
    """The watch after this pass's measurements (or its end, at ``endsAt``). A pass that
    took none of the watch's measurements (the runtime measures what :func:`watch_queries`
    asked for when the pass began) changes nothing but the end."""
    if not watching(status):
        return Evaluated(status)
    due = next_due(watch, status)
    if due is None or now < due:
        return Evaluated(status)
    names = [record.name for record in status.kpis]
    if not status.previous_captured:
        if not any(key(name, PREVIOUS) in measurements for name in names):
            return Evaluated(status)  # not measured in this pass: the next one does
        kpis = []
        for record in status.kpis:
            previous = _usable(measurements.get(key(record.name, PREVIOUS)))
            kpis.append(record.model_copy(update={"previous": previous}))
        return Evaluated(status.model_copy(update={"kpis": kpis, "previous_captured": True}))
    if now >= status.ends_at:
        phase = WatchPhase.REGRESSED if status.action is not None else WatchPhase.PASSED
        ended = status.model_copy(update={"phase": phase, "ended_at": now})
        return Evaluated(ended, ended=True)
    if not any(key(name, which) in measurements for name in names for which in (SHORT, LONG)):
        return Evaluated(status)  # not measured in this pass: the next one does
    by_name = {m.name: m for m in metrics}
    rule = rule_of(watch)
    kpis, changes = [], []
    action: RegressionAction | None = None
    for record in status.kpis:
        metric = by_name.get(record.name)
        if metric is None:
            kpis.append(record)
            continue
        short_m = measurements.get(key(record.name, SHORT))
        long_m = measurements.get(key(record.name, LONG))
        short_v, long_v = _verdict(metric, short_m), _verdict(metric, long_m)
        failed = None if short_v is Verdict.INCONCLUSIVE else short_v is Verdict.FAIL
        short_value, long_value = _usable(short_m), _usable(long_m)
        value = long_value if long_value is not None else short_value
        higher_is_worse = kpi_spec(watch, record.name).direction is not Direction.DECREASE
        place = standing(
            value, record.target, band=watch.attention_band, higher_is_worse=higher_is_worse
        )
        reference = record.previous if record.previous is not None else record.target
        delta, relative = deltas(value, reference)
        measured = record.model_copy(
            update={
                "value": value,
                "windows": WindowValues(short=short_value, long=long_value),
                "delta": delta,
                "relative_delta": relative,
                "status": place,
            }
        )
        updated, moves = advance(
            measured,
            signal_of(failed, place),
            rule,
            now,
            windows_agree=short_v is Verdict.FAIL and long_v is Verdict.FAIL,
        )
        kpis.append(updated)
        if moves:
            changes.append(KpiChange(updated, moves))
        if Transition.CONFIRMED in moves:
            taken = action_for(watch, updated.severity)
            if action is None or _ACTION_RANK[taken] < _ACTION_RANK[action]:
                action = taken
    update: dict[str, object] = {
        "kpis": kpis,
        "last_evaluated_at": now,
        "evaluations": status.evaluations + 1,
    }
    if action is not None:
        update["phase"] = WatchPhase.REGRESSED
        before = status.action
        if before is None or _ACTION_RANK[action] < _ACTION_RANK[before]:
            update["action"] = action
        if action is RegressionAction.ROLLBACK:
            # The previous revision serves again: nothing is left to watch.
            update["ended_at"] = now
    return Evaluated(status.model_copy(update=update), tuple(changes), action)


def holding(status: PostPromotionStatus | None) -> bool:
    """Whether a confirmed regression whose action is ``hold`` still blocks changes: some
    KPI's episode is confirmed and not cleared."""
    return (
        status is not None
        and status.action is RegressionAction.HOLD
        and any(k.state is KpiState.CONFIRMED for k in status.kpis)
    )


def confirmed_reasons(status: PostPromotionStatus) -> str:
    """The reason codes of the KPIs whose regression is confirmed, as events say them."""
    confirmed = [k.reason for k in status.kpis if k.state is KpiState.CONFIRMED]
    return ", ".join(confirmed) or "regression"


def episode_events(
    reasons: EpisodeReasons,
    subject: Mapping[str, str],
    watch: PostPromotion,
    changes: Sequence[KpiChange],
) -> list[tuple[Reason, dict[str, object]]]:
    """The events of an evaluation's episode transitions, in order, each a reason and its
    message fields: one detection, one confirmation (with the action its severity maps to)
    and one clearing per episode. ``subject`` names what is watched in the wing's words
    (``{"revision": ...}``, ``{"version": ...}``)."""
    events: list[tuple[Reason, dict[str, object]]] = []
    for change in changes:
        record, transitions = change.record, change.transitions
        fields: dict[str, object] = {**subject, "code": record.reason, "detail": describe(record)}
        if Transition.DETECTED in transitions:
            events.append((reasons.detected, {**fields, "severity": record.severity.value}))
        if Transition.CONFIRMED in transitions:
            action = action_for(watch, record.severity).value
            events.append(
                (
                    reasons.confirmed,
                    {
                        **fields,
                        "severity": record.severity.value,
                        "bad": record.bad_count,
                        "action": action,
                    },
                )
            )
        if Transition.CLEARED in transitions:
            how = "false positive" if Transition.FALSE_POSITIVE in transitions else "recovered"
            events.append((reasons.cleared, {**fields, "how": how}))
    return events


def describe(record: KpiRecord) -> str:
    """A KPI's numbers as events say them."""
    parts = [f"{record.name} = {format_value(record.value)}"]
    if record.windows.short is not None:
        parts.append(f"short {format_value(record.windows.short)}")
    if record.previous is not None:
        parts.append(f"previous {format_value(record.previous)}")
    if record.target is not None:
        parts.append(f"target {format_value(record.target)}")
    return ", ".join(parts)


class Counted(StrEnum):
    """The regression counters (``rollwise_regression_<name>_total``)."""

    DETECTED = "detected"
    CONFIRMED = "confirmed"
    FALSE_POSITIVE = "false_positive"


def counted(
    before: PostPromotionStatus | None, after: PostPromotionStatus | None
) -> list[tuple[Counted, KpiRecord]]:
    """The counter increments a pass made, from the watch it read and the one it stored:
    one detection per new episode, one confirmation and at most one false positive per
    episode (a pass that is not stored counts nothing; the next one finds the same
    difference)."""
    if after is None:
        return []
    same = before is not None and before.revision == after.revision
    found: list[tuple[Counted, KpiRecord]] = []
    for record in after.kpis:
        old = before.kpi(record.name) if same and before is not None else None
        episodes = old.episodes if old is not None else 0
        if record.episodes > episodes:
            found.append((Counted.DETECTED, record))
        was_confirmed = old is not None and old.confirmed and record.episodes == episodes
        if record.confirmed and not was_confirmed:
            found.append((Counted.CONFIRMED, record))
        was_open = old is not None and old.state is KpiState.DETECTED
        if record.state is KpiState.CLEARED and not record.confirmed and was_open:
            found.append((Counted.FALSE_POSITIVE, record))
    return found


_DECISION_ACTION = {
    RegressionAction.ROLLBACK: Action.ROLLBACK,
    RegressionAction.HOLD: Action.HOLD,
    RegressionAction.ALERT: Action.HOLD,
}


def regression_decision(
    status: PostPromotionStatus, action: RegressionAction, mode: DecisionMode, now: datetime
) -> Decision:
    """``status.decision`` of a confirmed regression: the action it takes, at high
    confidence, one reason per confirmed KPI."""
    confirmed = [k for k in status.kpis if k.state is KpiState.CONFIRMED]
    reasons = [
        DecisionReason(
            code=REGRESSION_CONFIRMED.code,
            severity=k.severity,
            message=f"{k.reason}: {describe(k)}",
            metric=k.name,
            observed=k.value,
            threshold=k.previous if k.previous is not None else k.target,
        )
        for k in confirmed
    ]
    verb = {"rollback": "rolled back", "hold": "held", "alert": "alerted"}[action.value]
    recommended = _DECISION_ACTION[action]
    message = (
        f"post-promotion regression of revision {status.revision} confirmed "
        f"({', '.join(k.reason for k in confirmed) or 'no KPI'}): {verb}"
    )
    required = []
    if action is not RegressionAction.ROLLBACK:
        required.append(
            RequiredAction(
                id="investigate-regression",
                description=(
                    f"investigate the regression of revision {status.revision}; "
                    f"previous revision {status.previous_revision} is kept warm until "
                    "the watch ends"
                ),
                priority=Priority.HIGH,
            )
        )
    return Decision(
        action=recommended,
        recommended=recommended,
        mode=mode,
        confidence=Confidence.HIGH,
        message=message,
        reasons=reasons,
        required_actions=required,
        decided_at=now,
    )


__all__ = [
    "KEY_SEPARATOR",
    "LONG",
    "PREVIOUS",
    "SHORT",
    "Counted",
    "EpisodeReasons",
    "Evaluated",
    "HoldLift",
    "KpiChange",
    "PostPromotionStatus",
    "WatchPhase",
    "action_for",
    "confirmed_reasons",
    "counted",
    "describe",
    "episode_events",
    "evaluate",
    "holding",
    "key",
    "kpi_spec",
    "next_due",
    "regression_decision",
    "rendered",
    "resolved_metrics",
    "rule_of",
    "start",
    "validate",
    "watch_metrics",
    "watch_problems",
    "watch_queries",
    "watching",
    "window_text",
]
