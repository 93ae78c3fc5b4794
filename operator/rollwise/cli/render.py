"""Terminal views of Rollouts, and the pieces of a Rollout's view the ModelRelease view
reuses (steps, checks): pure functions from API objects to text. The ModelRelease view is
:mod:`rollwise.cli.render_release`; the sections every view shares (conditions, events, the
lists) are :mod:`rollwise.cli.sections`.

Nothing here talks to the API server or reads the clock: the caller passes the objects it
fetched (Rollout, events, the router's actual weight) and ``now``, so every view is a table
test away. The Rollout's ``status`` is read with the core's tolerant models
(:class:`~rollwise.core.rollout.status.RolloutStatus`); its ``spec`` with the core's
strict ones when it parses, and loosely from the raw dict when it does not (an invalid spec must
still display)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from rollwise.cli.colour import PLAIN, Palette
from rollwise.cli.sections import closing_lines, list_view, message_lines, name_lines
from rollwise.cli.text import (
    ASCII,
    UNICODE,
    Symbols,
    age,
    human_duration,
    parse_time,
    table,
)
from rollwise.cli.text import clip as clip_to
from rollwise.cli.tree import RevisionTree, build_tree, images_lines, tree_lines
from rollwise.core.analysis import checks_for_step, format_value, measured_text, next_due
from rollwise.core.durations import InvalidDuration, format_seconds, parse_seconds
from rollwise.core.observations import TemplateKey, TemplateRead
from rollwise.core.rollout.status import ConditionType, PauseReason, RolloutStatus
from rollwise.core.rollout.webhooks import RECALL_SECONDS, held_confirmation
from rollwise.core.runs import AnalysisRun, MetricRun, Verdict
from rollwise.core.spec import Metric, RolloutSpec
from rollwise.core.status_model import format_time
from rollwise.core.templates import resolve_rollout
from rollwise.core.validation import parse_rollout_spec

if TYPE_CHECKING:
    pass

#: Longest message of an analysis or a gate shown before it is cut with an ellipsis (condition
#: and event messages are fitted to the terminal instead: :func:`fit_last_column`).
MAX_MESSAGE = 160


@dataclass(frozen=True)
class ActualWeight:
    """The canary weight the traffic router reports now (``weight`` None: unknown), where it
    was read (``HTTPRoute demo``) and why it could not be, if so."""

    weight: int | None
    source: str
    error: str = ""


def clip(text: str, symbols: Symbols, limit: int | None = MAX_MESSAGE) -> str:
    """``text`` on one line, cut with an ellipsis after ``limit`` characters."""
    return clip_to(text, symbols, limit)


def _as_dict(value: object) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


# --------------------------------------------------------------------------------------------
# Steps


def step_text(step: Mapping[str, Any], analysed: bool = False) -> str:
    """One step as the user wrote it: ``setWeight 25%``, ``pause 1m``, ``analysis``."""
    if "setWeight" in step and step["setWeight"] is not None:
        text = f"setWeight {step['setWeight']}%"
        return text + " + analysis" if analysed else text
    if "pause" in step and step["pause"] is not None:
        duration = _as_dict(step["pause"]).get("duration")
        return f"pause {duration}" if duration else "pause (until promoted)"
    if "analysis" in step and step["analysis"] is not None:
        return "analysis"
    if "setHeaderRoute" in step and step["setHeaderRoute"] is not None:
        route = _as_dict(step["setHeaderRoute"])
        if not route.get("match"):
            return f"remove header route {route.get('name', '?')}"
        return f"setHeaderRoute {route.get('name', '?')}"
    if "setMirrorRoute" in step and step["setMirrorRoute"] is not None:
        mirror = _as_dict(step["setMirrorRoute"])
        if not mirror.get("percentage"):
            return f"remove mirror route {mirror.get('name', '?')}"
        return f"setMirrorRoute {mirror.get('name', '?')} {mirror.get('percentage')}%"
    if "approval" in step and step["approval"] is not None:
        approval = _as_dict(step["approval"])
        roles = approval.get("roles")
        named = ", ".join(str(r) for r in roles) if isinstance(roles, list) else "?"
        timeout = approval.get("timeout")
        return f"approval by {named}" + (f" (timeout {timeout})" if timeout else "")
    return "(empty step)"


def _metric_names(spec: RolloutSpec | None, index: int) -> str:
    if spec is None:
        return ""
    checks = checks_for_step(spec, index)
    return ", ".join(m.name for m in checks.metrics) if checks is not None else ""


def _remaining_pause(step: Mapping[str, Any], status: RolloutStatus, now: datetime) -> float | None:
    duration = _as_dict(step.get("pause")).get("duration")
    if not isinstance(duration, str) or status.pause_started_at is None:
        return None
    try:
        seconds = parse_seconds(duration)
    except InvalidDuration:
        return None
    end = status.pause_started_at + timedelta(seconds=seconds)
    return max((end - now).total_seconds(), 0.0)


def _current_step_note(
    name: str,
    step: Mapping[str, Any],
    status: RolloutStatus,
    paused: bool,
    now: datetime,
) -> str:
    if paused:
        return f"held by spec.paused (kubectl rollwise resume {name})"
    if status.pause_reason is PauseReason.ANALYSIS_INCONCLUSIVE:
        return "analysis inconclusive: paused (retry, promote or abort)"
    if step.get("pause") is not None:
        left = _remaining_pause(step, status, now)
        if left is not None:
            return f"paused, {format_seconds(math.ceil(left))} left"
        return f"paused until promoted (kubectl rollwise promote {name})"
    if step.get("setWeight") is not None:
        target = step["setWeight"]
        if isinstance(target, int) and status.canary_weight < target:
            return f"scaling the canary for {target}%"
        run = status.analysis
        if run is not None and run.step_index == status.current_step_index and run.metrics:
            return "analysis running"
        return "weight set"
    if step.get("analysis") is not None:
        return "analysis running"
    return ""


def _steps_lines(
    name: str,
    raw_steps: list[dict[str, Any]],
    *,
    spec: RolloutSpec | None,
    status: RolloutStatus | None,
    paused: bool,
    now: datetime,
    symbols: Symbols,
    palette: Palette = PLAIN,
) -> list[str]:
    canary_active = status is not None and status.canary_revision is not None
    current = status.current_step_index if status is not None and canary_active else None
    heading = "Steps:" if canary_active else "Steps (no canary in progress):"
    lines = [heading]
    rows: list[list[str]] = []
    for i, step in enumerate(raw_steps):
        metrics = _metric_names(spec, i)
        text = step_text(step, analysed=bool(metrics) and "setWeight" in step)
        if metrics:
            text += f" ({metrics})"
        cell, note = f"{symbols.pending} {i + 1}", ""
        if current is not None and status is not None:
            if i < current:
                cell = palette.good(f"{symbols.done} {i + 1}")
            elif i == current:
                cell = palette.info(f"{symbols.current} {i + 1}")
                note = _current_step_note(name, step, status, paused, now)
        rows.append([cell, text, note])
    if current is not None and current >= len(raw_steps):
        rows.append(
            [
                palette.info(f"{symbols.current}  "),
                "all steps done",
                "promoting the canary to stable",
            ]
        )
    lines += table(["  #", "STEP", ""], rows, indent="  ")[1:]
    return lines


# --------------------------------------------------------------------------------------------
# Analysis


def threshold_text(metric: Metric) -> str:
    """The metric's pass rule in a few characters: ``< 0.05``, ``<= 0.500``, ``[0.1, 2]``,
    with its sampleGuard's minimum when it has one: ``< 0.05; >= 50 samples``."""
    parts: list[str] = []
    rng = metric.threshold_range
    if rng is not None:
        low = None if rng.min is None else format_value(rng.min)
        high = None if rng.max is None else format_value(rng.max)
        if low is not None and high is not None:
            parts.append(f"[{low}, {high}]")
        elif high is not None:
            parts.append(f"<= {high}")
        elif low is not None:
            parts.append(f">= {low}")
    if metric.success_condition:
        parts.append(_strip_result(metric.success_condition))
    if metric.failure_condition:
        parts.append(f"fail if {_strip_result(metric.failure_condition)}")
    if not parts:
        return "(no rule)"
    if metric.sample_guard is not None:
        parts.append(f">= {metric.sample_guard.min_samples} samples")
    return "; ".join(parts)


def _strip_result(expression: str) -> str:
    """``result < 0.05`` reads as ``< 0.05``; anything more complex is shown whole."""
    text = " ".join(expression.split())
    head, _, rest = text.partition(" ")
    simple = "result" not in rest and "&&" not in rest and "||" not in rest
    if head == "result" and simple and rest.split(" ", 1)[0] in ("<", "<=", ">", ">=", "==", "!="):
        return rest
    return text


def last_value(run: MetricRun) -> str:
    """The last measured value of a metric in the operator's words (``-`` before the first;
    ``no data``, ``nan`` or ``error`` when it had no number: :func:`measured_text`)."""
    if not run.measurements:
        return "-"
    return measured_text(run.measurements[-1])


def _verdict_word(verdict: Verdict | None, *, running: bool = True) -> str:
    if verdict is None:
        return "RUNNING" if running else "STOPPED"
    return verdict.value.upper()


def metric_result(run: MetricRun, count: int | None, *, running: bool) -> str:
    """``RUNNING (2/3)``, ``FAIL (2/2, 2 failed)``: a metric's verdict and measurements."""
    shown = f"{run.taken}/{count}" if count is not None else f"{run.taken}"
    extras = []
    if run.failed:
        extras.append(f"{run.failed} failed")
    if run.inconclusive:
        extras.append(f"{run.inconclusive} inconclusive")
    if run.error:
        extras.append(f"{run.error} errors")
    detail = ", ".join([shown, *extras])
    return f"{_verdict_word(run.verdict, running=running)} ({detail})"


def _analysis_lines(
    run: AnalysisRun,
    *,
    spec: RolloutSpec | None,
    status: RolloutStatus,
    steps: int,
    now: datetime,
    symbols: Symbols,
    palette: Palette = PLAIN,
) -> list[str]:
    current = (
        status.canary_revision is not None
        and run.revision == status.canary_revision
        and run.step_index == status.current_step_index
    )
    title = "Analysis" if current else "Last analysis"
    verdict = palette.word(_verdict_word(run.verdict, running=current))
    lines = analysis_heading(title, run, steps, verdict, now=now, symbols=symbols)
    checks = checks_for_step(spec, run.step_index) if spec is not None else None
    metrics = {m.name: m for m in checks.metrics} if checks is not None else {}
    rows: list[list[str]] = []
    names = [m.name for m in checks.metrics] if checks is not None else []
    names += [m.name for m in run.metrics if m.name not in names]
    for name in names:
        metric_run = run.metric(name) or MetricRun(name=name)
        metric = metrics.get(name)
        next_text = ""
        if checks is not None and metric is not None and current and run.verdict is None:
            due = next_due(checks, metric, run)
            if due is not None:
                next_text = f"in {human_duration(max((due - now).total_seconds(), 0.0))}"
        rows.append(
            [
                name,
                last_value(metric_run),
                threshold_text(metric) if metric is not None else "?",
                palette.word(
                    metric_result(
                        metric_run,
                        metric.count if metric is not None else None,
                        running=current and run.verdict is None,
                    )
                ),
                next_text,
            ]
        )
    header = ["METRIC", "VALUE", "PASS IF", "RESULT", "NEXT"]
    if not any(row[-1] for row in rows):
        header, rows = header[:-1], [row[:-1] for row in rows]
    lines += table(header, rows, indent="  ")
    return lines + failing_notes(run, symbols)


def analysis_heading(
    title: str, run: AnalysisRun, steps: int, verdict: str, *, now: datetime, symbols: Symbols
) -> list[str]:
    """The first line of an analysis run's section (step, revision, age, verdict), and the
    run's message under it."""
    lines = [
        f"{title} (step {run.step_index + 1}/{steps}, revision {run.revision}, "
        f"started {age(run.started_at, now)} ago): {verdict}"
    ]
    if run.message:
        lines.append(f"  {clip(run.message, symbols)}")
    return lines


def failing_notes(run: AnalysisRun, symbols: Symbols) -> list[str]:
    """The last measurement's sentence of each failing or inconclusive metric: it names value
    and rule. The run's message often already quotes it (a failed step): then it is not
    printed twice."""
    lines = []
    for metric_run in run.metrics:
        if metric_run.verdict not in (Verdict.FAIL, Verdict.INCONCLUSIVE):
            continue
        last = metric_run.measurements[-1].message if metric_run.measurements else ""
        if last and last not in run.message:
            lines.append(f"  {clip(last, symbols)}")
    return lines


# --------------------------------------------------------------------------------------------
# The Rollout view


def _weight_line(status: RolloutStatus, actual: ActualWeight | None) -> str:
    text = f"{status.canary_weight}% to the canary (set)"
    if actual is None:
        return text
    if actual.weight is not None:
        return text + f", {actual.weight}% actual ({actual.source})"
    why = f": {actual.error}" if actual.error else ""
    return text + f", actual unknown ({actual.source}{why})"


def _invalid_lines(status: RolloutStatus) -> list[str]:
    cond = status.condition(ConditionType.INVALID_SPEC)
    if cond is None or cond.status.value != "True":
        return []
    text = cond.message.removeprefix("invalid spec: ")
    return ["Invalid spec:", *[f"  - {part}" for part in text.split("; ") if part]]


def _upstream_lines(raw_spec: Mapping[str, Any], status: RolloutStatus, name: str) -> list[str]:
    """When the stable revision became Healthy, and the upstream Rollouts a new revision waits
    for (``spec.promotion.after``) with how to go past them."""
    lines: list[str] = []
    if status.healthy_since is not None:
        lines.append(f"Healthy:     since {format_time(status.healthy_since)}")
    after = _as_dict(raw_spec.get("promotion")).get("after")
    upstreams = [_as_dict(u) for u in after] if isinstance(after, list) else []
    named = ", ".join(
        f"{u.get('namespace', '?')}/{u.get('rollout', '?')} (soak {u.get('soak', '0s')})"
        for u in upstreams
    )
    if named:
        lines.append(f"Upstream:    {named}")
    if status.awaiting_upstream is not None and status.canary_revision is None:
        lines.append(
            f"Waiting:     revision {status.awaiting_upstream} for its upstream Rollouts "
            f"(past them: kubectl rollwise override rollout/{name} --decision promote, "
            "confirmed by a second person)"
        )
    return lines


def _webhook_lines(status: RolloutStatus, name: str) -> list[str]:
    """The gating webhooks' last calls, and the confirm webhook a revision waits for."""
    lines: list[str] = []
    for index, call in enumerate(status.webhooks or []):
        label = "Webhooks:" if index == 0 else ""
        if call.code is not None:
            answer = f"answered {call.code}"
        else:
            answer = call.message or "not called yet"
        when = f", last {format_time(call.last_call)}" if call.last_call is not None else ""
        lines.append(
            f"{label:<13}{call.name} ({call.type}): {call.result.value} for {call.revision}, "
            f"{answer} ({call.calls} call{'' if call.calls == 1 else 's'}{when})"
        )
    held = held_confirmation(status)
    if held is not None:
        out = (
            f"kubectl rollwise abort {name} rolls the canary back"
            if status.canary_revision == held.revision
            else "a template change replaces the revision"
        )
        lines.append(
            f"Waiting:     revision {held.revision} for {held.type} webhook {held.name} to "
            f"answer 2xx (asked again every {RECALL_SECONDS:g}s; {out})"
        )
    return lines


def approval_lines(status: RolloutStatus, name: str) -> list[str]:
    """The approval step the canary is at (or last passed): who approved as which role, the
    roles pending with the command that approves, its deadline, who changed the template,
    and the approvals that do not count."""
    st = status.approvals
    if st is None or status.canary_revision is None:
        return []
    given = ", ".join(f"{g.role} by {g.user}" for g in st.granted) or "none yet"
    lines = [f"Approval:    step {st.step_index + 1}, revision {st.revision}: {given}"]
    if st.approved_at is not None:
        lines[0] += f" (approved {format_time(st.approved_at)})"
        return lines
    if st.pending:
        lines.append(
            f"             pending: {', '.join(st.pending)} "
            f"(kubectl rollwise approve rollout/{name} --role {st.pending[0]})"
        )
    if st.deadline is not None:
        state = "timed out, holding" if st.timed_out else "until"
        lines.append(f"             {state} {format_time(st.deadline)}")
    if st.template_changed_by:
        lines.append(f"             template changed by {st.template_changed_by} (may not approve)")
    lines += [f"             not counted: {text}" for text in st.refused]
    return lines


def _blue_green_lines(
    blue_green: Mapping[str, Any], status: RolloutStatus, name: str, now: datetime
) -> list[str]:
    """A blue-green Rollout's revisions: the active one and its Service, the preview and its
    state, the wait for promotion, and the last switch."""
    active_service = blue_green.get("activeService", "?")
    preview_service = blue_green.get("previewService")
    recorded = status.blue_green
    active = recorded.active_revision if recorded is not None else None
    lines = [f"Active:      {active or status.stable_revision or '-'} (Service {active_service})"]
    preview = status.canary_revision
    if preview is None:
        lines.append("Preview:     -")
    else:
        ready = recorded is not None and recorded.preview_ready_at is not None
        state = "ready" if ready else "starting"
        where = f"Service {preview_service}, " if preview_service else ""
        lines.append(f"Preview:     {preview} ({where}{state})")
        if active == preview:
            lines.append(
                f"Previous:    {status.stable_revision or '-'} (still running: switched back "
                f"if the postPromotionAnalysis fails or on kubectl rollwise abort {name})"
            )
        if status.pause_reason is PauseReason.AWAITING_PROMOTION:
            lines.append(
                f"Waiting:     for promotion (kubectl rollwise promote {name} switches the "
                "active Service)"
            )
    if recorded is not None and recorded.switched_at is not None:
        switched = (
            f"Switched:    {human_duration((now - recorded.switched_at).total_seconds())} ago"
        )
        if recorded.previous_revision:
            switched += f" from {recorded.previous_revision}"
            if recorded.scale_down_at is not None:
                left = max((recorded.scale_down_at - now).total_seconds(), 0.0)
                switched += f" (still running, removed in {human_duration(left)})"
        lines.append(switched)
    return lines


def render_rollout(
    rollout: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    now: datetime,
    *,
    actual: ActualWeight | None = None,
    symbols: Symbols = UNICODE,
    tree: RevisionTree | None = None,
    palette: Palette = PLAIN,
    width: int | None = None,
    templates: Mapping[TemplateKey, TemplateRead | None] | None = None,
) -> str:
    """The ``kubectl rollwise get rollout`` view of one Rollout (ends with a newline).

    ``templates``: the analysis templates the spec references, as read (the steps' metric
    names and each metric's pass condition then come from them, resolved as the operator
    resolves them; without them, or when they do not resolve, the spec's inline metrics).

    ``tree``: the revisions with their Deployments, ReplicaSets and pods (without it, the
    images shown are the spec's alone and no tree is drawn); ``palette``: colour on a
    terminal; ``width``: the terminal's, to which condition and event messages are fitted
    (None: not a terminal, nothing cut)."""
    meta = _as_dict(rollout.get("metadata"))
    raw_spec = _as_dict(rollout.get("spec"))
    raw_status = rollout.get("status")
    name = str(meta.get("name", "?"))
    parsed = parse_rollout_spec(raw_spec)
    spec = parsed if isinstance(parsed, RolloutSpec) else None
    if spec is not None and templates is not None:
        resolved, problems = resolve_rollout(spec, templates)
        spec = resolved if not problems else spec
    canary_spec = _as_dict(_as_dict(raw_spec.get("strategy")).get("canary"))
    raw_steps = [_as_dict(s) for s in canary_spec.get("steps") or []]
    if "steps" not in canary_spec:
        raw_steps = [{"setWeight": 5}, {"setWeight": 25}, {"setWeight": 100}]
    blue_green = _as_dict(_as_dict(raw_spec.get("strategy")).get("blueGreen"))
    if blue_green:
        # The stages before the switch, as the operator runs them.
        raw_steps = (
            [
                step.model_dump(mode="json", by_alias=True, exclude_none=True)
                for step in spec.strategy.canary.steps
            ]
            if spec is not None
            else []
        )
    paused = bool(raw_spec.get("paused"))

    lines = name_lines(meta)
    status: RolloutStatus | None = None
    status_error = ""
    if isinstance(raw_status, Mapping) and raw_status:
        try:
            status = RolloutStatus.model_validate(raw_status)
        except ValidationError as exc:
            status_error = f"{exc.error_count()} unreadable field(s)"

    if status is None:
        if status_error:
            lines.append(f"Phase:       {raw_status.get('phase', '?')}")  # type: ignore[union-attr]
            lines.append(f"Message:     status could not be read ({status_error})")
        else:
            lines.append("Phase:       <no status yet> (is the Rollwise operator running?)")
    else:
        phase = palette.word(status.phase.value) if status.phase is not None else "<unknown>"
        if paused:
            phase += f" (spec.paused: kubectl rollwise resume {name})"
        lines.append(f"Phase:       {phase}")
        lines += message_lines(status.message, meta.get("generation"), status.observed_generation)
        if blue_green:
            lines += _blue_green_lines(blue_green, status, name, now)
        else:
            lines.append(f"Stable:      {status.stable_revision or '-'}")
        if blue_green:
            # No weight, segments nor mirrors: the Services' selectors carry the traffic.
            pass
        elif status.canary_revision is not None:
            step = status.current_step_index
            where = (
                f" (step {min((step or 0) + 1, len(raw_steps))}/{len(raw_steps)})"
                if raw_steps
                else ""
            )
            lines.append(f"Canary:      {status.canary_revision}{where}")
            lines.append(f"Weight:      {_weight_line(status, actual)}")
            baseline = status.baseline
            if baseline is not None:
                lines.append(
                    f"Baseline:    {baseline.revision} (template of {baseline.stable_revision}; "
                    f"weight {baseline.weight}%, {baseline.available_replicas}/"
                    f"{baseline.replicas} pods available)"
                )
            # Header routes in effect: their requests go to the canary whatever the weight.
            for index, route in enumerate(status.header_routes or []):
                label = "Segments:" if index == 0 else ""
                lines.append(f"{label:<13}{route.name}: {' and '.join(route.match)} -> canary")
            # Mirrors in effect: copies of the routed requests, the canary's answers discarded.
            for index, mirror in enumerate(status.mirror_routes or []):
                label = "Mirror:" if index == 0 else ""
                lines.append(
                    f"{label:<13}{mirror.name}: {mirror.percentage}% of requests copied to the "
                    "canary (responses discarded)"
                )
        else:
            lines.append("Canary:      -")
            if actual is not None and actual.weight not in (None, 0):
                lines.append(f"Weight:      {_weight_line(status, actual)}")
        lines += approval_lines(status, name)
        lines += _upstream_lines(raw_spec, status, name)
        lines += _webhook_lines(status, name)
        if status.rolled_back_revision is not None and status.canary_revision is None:
            how = "aborted" if status.aborted else "rolled back"
            lines.append(
                f"Rolled back: {status.rolled_back_revision} ({how}; "
                f"kubectl rollwise retry {name} to try it again)"
            )
        lines.append(
            f"Pods:        {status.available_replicas}/{status.replicas} available "
            f"(spec.replicas {raw_spec.get('replicas', 1)})"
        )
    shown_tree = tree if tree is not None else build_tree(rollout, [], [], [], now)
    lines += images_lines(shown_tree, palette)

    lines.append("")
    if status is not None:
        invalid = _invalid_lines(status)
        if invalid:
            lines += [*invalid, ""]
    lines += _steps_lines(
        name,
        raw_steps,
        spec=spec,
        status=status,
        paused=paused,
        now=now,
        symbols=symbols,
        palette=palette,
    )

    if status is not None and status.analysis is not None:
        run = status.analysis
        relevant = run.revision in (status.canary_revision, status.rolled_back_revision)
        if relevant:
            lines.append("")
            lines += _analysis_lines(
                run,
                spec=spec,
                status=status,
                steps=len(raw_steps),
                now=now,
                symbols=symbols,
                palette=palette,
            )

    if tree is not None:
        lines.append("")
        lines += tree_lines(tree, now, symbols=symbols, palette=palette)

    lines += closing_lines(status, events, now, symbols, width=width, palette=palette)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Lists


_APPROVAL_PAUSES = {
    "AwaitingApproval": "awaiting approval",
    "ApprovalTimedOut": "approval timed out",
}


def _rollout_row(item: Mapping[str, Any], now: datetime, palette: Palette) -> list[str]:
    meta = _as_dict(item.get("metadata"))
    spec = _as_dict(item.get("spec"))
    status = _as_dict(item.get("status"))
    canary_spec = _as_dict(_as_dict(spec.get("strategy")).get("canary"))
    steps = canary_spec.get("steps")
    n = len(steps) if isinstance(steps, list) else 3
    blue_green = bool(_as_dict(spec.get("strategy")).get("blueGreen"))
    canary = status.get("canaryRevision")
    index = status.get("currentStepIndex")
    step = f"{min(index + 1, n)}/{n}" if canary and isinstance(index, int) else "-"
    phase = palette.word(str(status.get("phase"))) if status.get("phase") else "<none>"
    if spec.get("paused"):
        phase += " (spec.paused)"
    elif canary and status.get("pauseReason") in _APPROVAL_PAUSES:
        phase += f" ({_APPROVAL_PAUSES[str(status.get('pauseReason'))]})"
    weight = status.get("canaryWeight")
    awaiting = status.get("awaitingUpstream")
    shown = canary or (f"{awaiting} (waiting)" if awaiting else "-")
    if blue_green:
        # No steps nor weights: the stage, and the preview beside the active revision.
        step = "blue-green"
        if canary and status.get("pauseReason") == PauseReason.AWAITING_PROMOTION.value:
            step = "awaiting promotion"
        shown = f"{canary} (preview)" if canary else shown
        weight = None
    return [
        str(meta.get("name", "")),
        phase,
        step,
        f"{weight}%" if isinstance(weight, int) and canary else "-",
        str(status.get("stableRevision") or "-"),
        str(shown),
        age(meta.get("creationTimestamp"), now),
    ]


#: The Rollouts table of ``kubectl rollwise list``.
render_rollout_table = list_view(
    ["NAME", "PHASE", "STEP", "WEIGHT", "STABLE", "CANARY", "AGE"], _rollout_row
)


__all__ = [
    "ASCII",
    "UNICODE",
    "ActualWeight",
    "Symbols",
    "age",
    "analysis_heading",
    "clip",
    "failing_notes",
    "human_duration",
    "last_value",
    "metric_result",
    "parse_time",
    "render_rollout",
    "render_rollout_table",
    "step_text",
    "table",
    "threshold_text",
]
