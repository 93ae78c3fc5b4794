"""Terminal views of ModelReleases: ``kubectl rollwise get modelrelease`` and the
ModelReleases table of ``kubectl rollwise list``. Pure functions from API objects to text.

The status is read section by section with the core's models
(:mod:`rollwise.core.modelrelease.status`): one unreadable entry (a gate, a history entry)
is skipped and counted, never hides the rest of the view, since this view is what someone
reads when something went wrong. The spec is read from the raw dict (an invalid spec must still
display) and with the core's strict model where it parses, for what derives from it (the gates
that apply, the child Rollout's name). The identity records the admission webhook wrote on the
annotations (:mod:`rollwise.cli.records`) complete the approvals the status counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from rollwise.cli import records
from rollwise.cli.colour import PLAIN, Palette
from rollwise.cli.manual import REVOKE
from rollwise.cli.render import (
    UNICODE,
    Symbols,
    age,
    analysis_heading,
    clip,
    failing_notes,
    human_duration,
    last_value,
    metric_result,
    step_text,
    table,
)
from rollwise.cli.sections import closing_lines, list_view, message_lines, name_lines
from rollwise.core.modelrelease.observations import BACKEND_KSERVE, BACKEND_TEMPLATE
from rollwise.core.modelrelease.spec import (
    all_gates,
    child_rollout_name,
    parse_release_spec,
    revalidate_by_time,
)
from rollwise.core.modelrelease.status import (
    AliasStatus,
    ApprovalRecord,
    GateRecord,
    GateStatus,
    HistoryEntry,
    ReleaseCondition,
    RevokeRecord,
    ServingStatus,
    Stage,
)
from rollwise.core.runs import AnalysisRun
from rollwise.core.spec_release import ModelReleaseSpec
from rollwise.core.status_model import format_time

#: History entries shown (the newest ones; ``kubectl get -o yaml`` has all of them).
MAX_HISTORY_SHOWN = 10

#: Hex digits of the artifact digest shown (as ``git log --oneline`` shortens hashes).
SHORT_DIGEST = 12

#: The canary steps of a release that sets none (:class:`rollwise.core.spec_release.Canary`).
DEFAULT_STEPS: list[dict[str, Any]] = [{"setWeight": 5}, {"setWeight": 25}, {"setWeight": 100}]

#: The roles a release needs when it names none (:class:`rollwise.core.spec_release.Approvals`).
DEFAULT_ROLES = ["security", "product"]

#: Stages a release never leaves (:attr:`rollwise.core.modelrelease.status.Stage.terminal`).
_TERMINAL = frozenset(stage.value for stage in Stage if stage.terminal)

M = TypeVar("M", bound=BaseModel)


def _as_dict(value: object) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


# --------------------------------------------------------------------------------------------
# Reading the status, section by section


@dataclass
class _Approval:
    record: ApprovalRecord
    version: str


@dataclass
class _Status:
    stage: str = ""
    phase: str = ""
    message: str = ""
    observed_generation: int | None = None
    conditions: list[ReleaseCondition] = field(default_factory=list)
    gates: list[GateRecord] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    approvals: list[_Approval] = field(default_factory=list)
    alias: AliasStatus | None = None
    serving: ServingStatus | None = None
    revoked: RevokeRecord | None = None
    queued_behind: str = ""
    unreadable: list[str] = field(default_factory=list)


def _one(model: type[M], raw: object, where: str, unreadable: list[str]) -> M | None:
    if raw is None:
        return None
    try:
        return model.model_validate(raw)
    except ValidationError:
        unreadable.append(where)
        return None


def _each(model: type[M], raw: object, where: str, unreadable: list[str]) -> list[M]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        unreadable.append(where)
        return []
    found = [_one(model, item, f"{where}[{i}]", unreadable) for i, item in enumerate(raw)]
    return [item for item in found if item is not None]


def read_status(raw: Mapping[str, Any]) -> _Status:
    """The readable parts of a ModelRelease's ``status``, the unreadable ones named."""
    bad: list[str] = []
    generation = raw.get("observedGeneration")
    status = _Status(
        stage=_text(raw.get("stage")),
        phase=_text(raw.get("phase")),
        message=_text(raw.get("message")),
        observed_generation=generation if isinstance(generation, int) else None,
        queued_behind=_text(raw.get("queuedBehind")),
    )
    status.conditions = _each(ReleaseCondition, raw.get("conditions"), "conditions", bad)
    status.gates = _each(GateRecord, raw.get("gates"), "gates", bad)
    status.history = _each(HistoryEntry, raw.get("history"), "history", bad)
    raw_approvals = raw.get("approvals")
    if raw_approvals is not None and not isinstance(raw_approvals, list):
        bad.append("approvals")
    for i, item in enumerate(raw_approvals if isinstance(raw_approvals, list) else []):
        record = _one(ApprovalRecord, item, f"approvals[{i}]", bad)
        if record is not None:
            # The core's record has no version (it counts the current one only); a status
            # that carries it is shown as it is.
            status.approvals.append(_Approval(record, _text(_as_dict(item).get("version"))))
    status.alias = _one(AliasStatus, raw.get("alias"), "alias", bad)
    status.serving = _one(ServingStatus, raw.get("serving"), "serving", bad)
    status.revoked = _one(RevokeRecord, raw.get("revoked"), "revoked", bad)
    status.unreadable = bad
    return status


# --------------------------------------------------------------------------------------------
# The header


def short_digest(digest: str) -> str:
    """``sha256:9e99d0f91dbc`` of ``sha256:9e99d0f91dbc6e01…``."""
    algorithm, sep, hexa = digest.partition(":")
    if not sep:
        return digest[:SHORT_DIGEST] if digest else "-"
    return f"{algorithm}:{hexa[:SHORT_DIGEST]}"


def _store_text(alias_spec: Mapping[str, Any]) -> str:
    store = _as_dict(alias_spec.get("store"))
    config_map = _as_dict(store.get("configMap"))
    mlflow = _as_dict(store.get("mlflow"))
    if config_map.get("name"):
        return f"ConfigMap {config_map['name']}"
    if mlflow.get("registry"):
        return f"MLflow registry {mlflow['registry']}"
    return "the operator's default store"


def _alias_line(
    alias_spec: Mapping[str, Any], alias: AliasStatus | None, version: str, stage: str
) -> str:
    name = _text(alias_spec.get("name")) or (alias.name if alias is not None else "production")
    head = f"{name} ({_store_text(alias_spec)})"
    if alias is None:
        return f"{head}: not read yet"
    current = alias.current_version
    text = f"{head}: points at " + (f"version {current}" if current else "an unknown version")
    if alias.restored:
        text += " (restored to the previous version)"
    elif current and current == version:
        text += " (verified: read back)" if alias.held else " (not verified yet)"
    elif alias.flip_requested and stage not in _TERMINAL:
        text += f" (flip to {version} requested, not read back yet)"
    elif stage not in _TERMINAL:
        text += f" (not flipped to {version} yet)"
    if alias.previous_version and not alias.restored:
        text += f", previous {alias.previous_version}"
    if alias.last_error:
        text += f"; last error: {alias.last_error}"
    return text


def _serving_line(
    raw_serving: Mapping[str, Any], spec: ModelReleaseSpec | None, sv: ServingStatus | None
) -> str:
    backend = sv.backend if sv is not None else ""
    ref = _as_dict(raw_serving.get("inferenceServiceRef"))
    if backend == BACKEND_KSERVE or (not backend and ref):
        target = (sv.name if sv is not None and sv.name else "") or _text(ref.get("name")) or "?"
        return f"InferenceService {target} (KServe canaryTrafficPercent)"
    if backend == BACKEND_TEMPLATE or (not backend and raw_serving.get("template") is not None):
        child = sv.name if sv is not None and sv.name else ""
        if not child and spec is not None:
            child = child_rollout_name(spec)
        if not child:
            return "child Rollout (name unknown: the spec is invalid)"
        return f"child Rollout {child} (kubectl rollwise get rollout {child})"
    return "- (spec.serving sets neither template nor inferenceServiceRef)"


def _canary_line(
    sv: ServingStatus | None, steps: Sequence[Mapping[str, Any]], version: str, stage: str
) -> str:
    if sv is None:
        return "not started (gates first)" if stage in ("", Stage.CANDIDATE.value) else "-"
    if stage == Stage.REVOKED.value:
        return f"revoked: traffic taken off version {version}"
    if sv.failure is not None:
        return f"failed: {sv.failure}"
    if sv.passed:
        return f"passed: version {version} serves all traffic"
    n = len(steps)
    index = min(sv.step_index, n - 1) if n else 0
    where = f"step {index + 1}/{n} ({step_text(steps[index])})" if n else "step ?"
    return f"{where}, {sv.weight}% of traffic to version {version}"


def _revoke_pending(annotations: Mapping[str, Any], now: datetime, symbols: Symbols) -> str:
    """A revoke the operator has not acted on yet: recorded by the webhook, or an unsigned
    request (which the operator honours too)."""
    record = records.revocation(annotations)
    if record is not None:
        return (
            f"requested by {record.user} {age(record.at, now)} ago, not acted on yet: "
            f"{clip(record.reason, symbols)}"
        )
    if isinstance(annotations.get(REVOKE), str):
        return "requested (unsigned: user unknown), not acted on yet"
    return ""


# --------------------------------------------------------------------------------------------
# Sections


def _analysis_lines(
    run: AnalysisRun,
    steps: int,
    counts: Mapping[str, int],
    now: datetime,
    symbols: Symbols,
) -> list[str]:
    verdict = run.verdict.value.upper() if run.verdict is not None else "RUNNING"
    lines = analysis_heading("Analysis", run, steps, verdict, now=now, symbols=symbols)
    rows = [
        [
            m.name,
            last_value(m),
            metric_result(m, counts.get(m.name), running=run.verdict is None),
        ]
        for m in run.metrics
    ]
    if rows:
        lines += table(["METRIC", "VALUE", "RESULT"], rows, indent="  ")
    return lines + failing_notes(run, symbols)


def _revalidate_line(spec: ModelReleaseSpec | None, now: datetime) -> str:
    """When the version must be revalidated, and whether that date has passed."""
    if spec is None or spec.revalidate_by is None:
        return ""
    try:
        due = revalidate_by_time(spec)
    except ValueError:
        return f"{spec.revalidate_by} (not a valid date)"
    if due is None:
        return ""
    if now >= due:
        return (
            f"OVERDUE since {format_time(due)} ({age(due, now)} ago): no further promotion "
            "until revalidated and spec.revalidateBy moved forward"
        )
    return f"by {format_time(due)} (in {human_duration((due - now).total_seconds())})"


def _waiver_text(expires: datetime | None, now: datetime) -> str:
    if expires is None:
        return ""
    left = (expires - now).total_seconds()
    if left > 0:
        return f"expires in {human_duration(left)}"
    return f"expired {human_duration(-left)} ago"


def _gates_lines(
    gates: Sequence[GateRecord], expected: Sequence[str], now: datetime, symbols: Symbols
) -> list[str]:
    rows = [
        [
            g.name,
            g.status.value,
            age(g.checked_at, now) if g.checked_at is not None else "-",
            _waiver_text(g.waiver_expires_at, now) if g.status is GateStatus.WAIVED else "",
            clip(g.message, symbols),
        ]
        for g in gates
    ]
    shown = {g.name for g in gates}
    rows += [[n, "Pending", "-", "", "not evaluated yet"] for n in expected if n not in shown]
    if not rows:
        return ["Gates:  <none evaluated yet>"]
    header = ["NAME", "STATUS", "CHECKED", "WAIVER", "MESSAGE"]
    if not any(row[3] for row in rows):
        header, rows = header[:3] + header[4:], [row[:3] + row[4:] for row in rows]
    return ["Gates:", *table(header, rows, indent="  ")]


def _approvals_lines(
    counted: Sequence[_Approval],
    recorded: Sequence[records.RecordedApproval],
    required: Sequence[str],
    version: str,
    now: datetime,
    *,
    open_: bool,
) -> list[str]:
    rows: list[list[str]] = []
    seen: set[tuple[str, str, str]] = set()
    for item in counted:
        shown = item.version or version
        seen.add((item.record.role, item.record.user, shown))
        rows.append([item.record.role, item.record.user, shown, age(item.record.at, now), ""])
    for rec in recorded:
        if (rec.role, rec.user, rec.version) in seen:
            continue
        note = "recorded" if rec.version == version else "recorded, not this version"
        rows.append([rec.role, rec.user, rec.version or "-", age(rec.at, now), note])
    have = {row[0] for row in rows if row[2] == version}
    missing = [role for role in dict.fromkeys(required) if role not in have]
    waiting = missing if open_ else []
    head = f"Approvals (required: {', '.join(required) or 'none'}"
    head += f"; waiting for {', '.join(waiting)})" if waiting else ")"
    if not rows:
        return [f"{head}:  <none>"]
    header = ["ROLE", "USER", "VERSION", "AGE", ""]
    if not any(row[-1] for row in rows):
        header, rows = header[:-1], [row[:-1] for row in rows]
    return [f"{head}:", *table(header, rows, indent="  ")]


def _history_lines(history: Sequence[HistoryEntry], now: datetime, symbols: Symbols) -> list[str]:
    if not history:
        return ["History:  <none>"]
    shown = history[-MAX_HISTORY_SHOWN:]
    rows = []
    for entry in shown:
        change = f"{entry.from_stage.value} {symbols.arrow} " if entry.from_stage else ""
        rows.append(
            [
                age(entry.time, now),
                change + entry.stage.value,
                entry.reason,
                entry.user or "-",
                clip(entry.message, symbols),
            ]
        )
    title = "History:"
    if len(history) > len(shown):
        title = f"History ({len(history) - len(shown)} earlier entries not shown):"
    return [title, *table(["AGE", "CHANGE", "REASON", "USER", "MESSAGE"], rows, indent="  ")]


# --------------------------------------------------------------------------------------------
# The ModelRelease view


def render_release(
    release: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    now: datetime,
    *,
    symbols: Symbols = UNICODE,
    palette: Palette = PLAIN,
    width: int | None = None,
) -> str:
    """The ``kubectl rollwise get modelrelease`` view of one ModelRelease (ends with a
    newline); ``palette`` and ``width`` as for :func:`rollwise.cli.render.render_rollout`."""
    meta = _as_dict(release.get("metadata"))
    raw_spec = _as_dict(release.get("spec"))
    raw_status = release.get("status")
    parsed = parse_release_spec(raw_spec)
    spec = parsed if isinstance(parsed, ModelReleaseSpec) else None
    version = str(raw_spec.get("version") or "")
    artifact = _as_dict(raw_spec.get("artifact"))
    change = _as_dict(raw_spec.get("change"))
    alias_spec = _as_dict(raw_spec.get("alias"))
    canary = _as_dict(raw_spec.get("canary"))
    steps = [_as_dict(s) for s in canary.get("steps") or []] if "steps" in canary else DEFAULT_STEPS
    counts = {
        str(m.get("name")): m["count"]
        for m in (_as_dict(canary.get("analysis")).get("metrics") or [])
        if isinstance(m, dict) and isinstance(m.get("count"), int)
    }
    approvals_spec = _as_dict(raw_spec.get("approvals"))
    roles = approvals_spec.get("requiredRoles")
    required = [str(r) for r in roles] if isinstance(roles, list) else DEFAULT_ROLES

    status = read_status(raw_status) if isinstance(raw_status, Mapping) and raw_status else None
    lines = name_lines(meta)
    if status is None:
        lines.append("Stage:       <no status yet> (is the Rollwise operator running?)")
    else:
        lines.append(f"Stage:       {palette.word(status.stage) if status.stage else '<unknown>'}")
        lines.append(f"Phase:       {palette.word(status.phase) if status.phase else '<unknown>'}")
        lines += message_lines(status.message, meta.get("generation"), status.observed_generation)
        if status.unreadable:
            lines.append(
                f"             ({len(status.unreadable)} unreadable status field(s) not shown: "
                f"{', '.join(status.unreadable)})"
            )
    model = str(raw_spec.get("model") or "-")
    lines.append(f"Model:       {model}, version {version or '-'}")
    digest = short_digest(str(artifact.get("digest") or ""))
    lines.append(f"Artifact:    {artifact.get('uri') or '-'} ({digest})")
    ticket = change.get("ticket") or "-"
    lines.append(f"Change:      {change.get('type') or 'normal'}, ticket {ticket}")
    serving = status.serving if status is not None else None
    raw_serving = _as_dict(raw_spec.get("serving"))
    lines.append(f"Serving:     {_serving_line(raw_serving, spec, serving)}")
    stage = status.stage if status is not None else ""
    lines.append(f"Canary:      {_canary_line(serving, steps, version, stage)}")
    alias = status.alias if status is not None else None
    lines.append(f"Alias:       {_alias_line(alias_spec, alias, version, stage)}")
    revalidate = _revalidate_line(spec, now)
    if revalidate:
        lines.append(f"Revalidate:  {revalidate}")
    if status is not None and status.queued_behind:
        lines.append(f"Queued:      behind {status.queued_behind} (same model and alias)")
    if status is not None and status.revoked is not None:
        rv = status.revoked
        lines.append(
            f"Revoked:     by {rv.user or 'unknown (unsigned request)'}, "
            f"{age(rv.at, now)} ago, from {rv.from_stage.value}: {clip(rv.reason, symbols)}"
        )
    elif status is None or status.stage != Stage.REVOKED.value:
        pending = _revoke_pending(_as_dict(meta.get("annotations")), now, symbols)
        if pending:
            lines.append(f"Revoke:      {pending}")
    if spec is None and isinstance(parsed, list):
        lines += ["", "Invalid spec:", *[f"  - {problem}" for problem in parsed]]

    if serving is not None and serving.analysis is not None:
        lines.append("")
        lines += _analysis_lines(serving.analysis, len(steps), counts, now, symbols)

    lines.append("")
    # Gates that apply but have no result yet are shown Pending while the release can still
    # move; a finished release shows what it recorded.
    live = status is not None and status.stage not in _TERMINAL
    expected = all_gates(spec) if spec is not None and live else ()
    lines += _gates_lines(status.gates if status is not None else [], expected, now, symbols)
    lines.append("")
    annotations = _as_dict(meta.get("annotations"))
    lines += _approvals_lines(
        status.approvals if status is not None else [],
        records.approvals(annotations),
        required,
        version,
        now,
        open_=status is None or status.stage not in _TERMINAL,
    )
    lines.append("")
    lines += _history_lines(status.history if status is not None else [], now, symbols)
    lines += closing_lines(status, events, now, symbols, width=width, palette=palette)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# The list


def _release_row(item: Mapping[str, Any], now: datetime, palette: Palette) -> list[str]:
    meta = _as_dict(item.get("metadata"))
    spec = _as_dict(item.get("spec"))
    status = _as_dict(item.get("status"))
    alias = _text(_as_dict(spec.get("alias")).get("name")) or "production"
    return [
        str(meta.get("name", "")),
        palette.word(_text(status.get("stage"))) or "<none>",
        palette.word(_text(status.get("phase"))) or "-",
        str(spec.get("model") or "-"),
        str(spec.get("version") or "-"),
        alias,
        age(meta.get("creationTimestamp"), now),
    ]


#: The ModelReleases table of ``kubectl rollwise list``.
render_release_table = list_view(
    ["NAME", "STAGE", "PHASE", "MODEL", "VERSION", "ALIAS", "AGE"], _release_row
)


__all__ = [
    "MAX_HISTORY_SHOWN",
    "read_status",
    "render_release",
    "render_release_table",
    "short_digest",
]
