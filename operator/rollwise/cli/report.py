"""``kubectl rollwise report``: what the operator decided, from what the objects record.

Two reports, each as text, Markdown or JSON:

* **the decision report** (``report --since 24h``): over the Rollouts and ModelReleases in
  scope, the decisions made (``DecisionChanged``), the rollbacks (``RolledBack``,
  ``Aborted``, ``ReleaseRolledBack`` and any other ``*RolledBack`` reason), the regressions
  of the post-promotion watch (confirmed, false positives: detected then cleared without
  confirmation, and still open), the top critical items (critical reasons of the decisions in
  force, critical regressions) and the overrides with who made and who confirmed them (the
  signed records of ``rollwise.dev/overrides``, as :mod:`rollwise.cli.records` reads them);
* **a release's record** (``report rollout|modelrelease NAME``): phase by phase, each step
  (a ModelRelease's stages first) with when it started and ended, its events, each metric of
  its analysis with the canary's and the control's values, target, status and verdict, the
  decisions and approvals, then the post-promotion watch and the outcome.

What the record covers: status keeps the *current* step's analysis run only, the event log's
newest entries (:data:`rollwise.core.events.KEEP` posted ones) and the current decision; the
API server keeps Kubernetes Events for a while (one hour by default, ``--event-ttl``). The
report merges the event log with the Events it can still list (the same transition has the
same sequence number in both: an Event's name ends with it) and says what it could not see:
an earlier step's metric values are gone once the next step's analysis starts, and only its
events tell how it went. Every report states this in its ``coverage`` note.

Pure: objects, their Events and ``now`` in; a document out (:func:`fleet_report`,
:func:`release_report`), rendered by :mod:`rollwise.cli.report_render`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rollwise.cli.common import KIND_WORDS, KINDS, ROLLOUTS
from rollwise.cli.explain_subject import step_metrics
from rollwise.cli.records import approvals, overrides
from rollwise.cli.scoreboard import (
    Kpi,
    canary_kpis,
    since_text,
    watched_kpis,
)
from rollwise.cli.text import parse_time
from rollwise.core.events import KEEP, SEQ_DIGITS
from rollwise.core.scoreboard import DEFAULT_BAND

#: The sentence every report carries about what it can see.
COVERAGE = (
    "Built from status and Kubernetes Events: status keeps the current step's analysis only, "
    f"the newest {KEEP} posted entries of its event log and the current decision; the API "
    "server keeps Events for its --event-ttl (1h by default). Earlier steps show what their "
    "events said; anything older than both is not in this report."
)

#: Event reasons of a decision, of a rollback, and of a step's progress.
DECISION_REASONS = ("DecisionChanged",)
ROLLBACK_REASONS = ("RolledBack", "Aborted", "ReleaseRolledBack")
#: How many critical items the decision report lists.
TOP_CRITICAL = 10

_STEP = re.compile(r"\bstep (\d+)/(\d+)")
_DECISION = re.compile(r"decision (\w+) at (\w+) confidence")


def _as_dict(value: object) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def _dicts(value: object) -> list[dict[str, Any]]:
    return [_as_dict(v) for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _stamp(at: datetime | None) -> str | None:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at is not None else None


# --------------------------------------------------------------------------------------------
# Events: the status event log merged with the Kubernetes Events still listed


@dataclass(frozen=True)
class Entry:
    """One recorded transition of an object."""

    seq: int | None
    time: datetime
    type: str
    reason: str
    message: str

    @property
    def step(self) -> int | None:
        """The 1-based step the message names (``step 3/5``), if it names one."""
        match = _STEP.search(self.message)
        return int(match.group(1)) if match else None

    def document(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": _stamp(self.time),
            "type": self.type,
            "reason": self.reason,
            "message": self.message,
        }


def _seq_of_event(event: Mapping[str, Any], uid: str) -> int | None:
    """The sequence number of an Event the operator posted for the object ``uid``: its name
    ends with ``.<uid>.<seq>``, the sequence number zero-padded
    (:func:`rollwise.core.events.event_name`); None for any other Event."""
    name = str(_as_dict(event.get("metadata")).get("name") or "")
    head, _, tail = name.rpartition(".")
    if not uid or len(tail) != SEQ_DIGITS or not tail.isdigit():
        return None
    return int(tail) if head.endswith(f".{uid}") or head == uid else None


def merged_entries(
    status: Mapping[str, Any], events: Iterable[Mapping[str, Any]] = (), uid: str = ""
) -> list[Entry]:
    """The transitions of the object ``uid``, oldest first: ``status.eventLog.entries`` and
    the Events (``events``, core/v1) that are not already in the log (by sequence number,
    else by reason and message)."""
    found: dict[object, Entry] = {}
    for raw in _dicts(_as_dict(status.get("eventLog")).get("entries")):
        at = parse_time(raw.get("time"))
        seq = raw.get("seq")
        if at is None or not isinstance(seq, int):
            continue
        found[seq] = Entry(
            seq,
            at,
            str(raw.get("type") or ""),
            str(raw.get("reason") or ""),
            str(raw.get("message") or ""),
        )
    texts = {(e.reason, e.message) for e in found.values()}
    for event in events:
        ev = _as_dict(event)
        at = (
            parse_time(ev.get("lastTimestamp"))
            or parse_time(ev.get("eventTime"))
            or parse_time(ev.get("firstTimestamp"))
            or parse_time(_as_dict(ev.get("metadata")).get("creationTimestamp"))
        )
        if at is None:
            continue
        reason, message = str(ev.get("reason") or ""), str(ev.get("message") or "")
        seq = _seq_of_event(ev, uid)
        key: object = seq if seq is not None else (reason, message, _stamp(at))
        if key in found or (seq is None and (reason, message) in texts):
            continue
        found[key] = Entry(seq, at, str(ev.get("type") or ""), reason, message)
    return sorted(found.values(), key=lambda e: (e.time, e.seq if e.seq is not None else 0))


# --------------------------------------------------------------------------------------------
# The decision report


@dataclass(frozen=True)
class Subject:
    """One object in a report: its kind, place, object and Events."""

    plural: str
    obj: Mapping[str, Any]
    events: Sequence[Mapping[str, Any]] = ()

    @property
    def namespace(self) -> str:
        return str(_as_dict(self.obj.get("metadata")).get("namespace") or "")

    @property
    def name(self) -> str:
        return str(_as_dict(self.obj.get("metadata")).get("name") or "")

    @property
    def uid(self) -> str:
        return str(_as_dict(self.obj.get("metadata")).get("uid") or "")

    @property
    def ref(self) -> str:
        return f"{KIND_WORDS[self.plural]}/{self.name}"

    @property
    def status(self) -> dict[str, Any]:
        return _as_dict(self.obj.get("status"))


def _where(subject: Subject) -> dict[str, Any]:
    return {"kind": KINDS[subject.plural], "namespace": subject.namespace, "name": subject.name}


def _is_rollback(reason: str) -> bool:
    return reason in ROLLBACK_REASONS or reason.endswith("RolledBack")


def _regressions(subject: Subject, start: datetime) -> list[dict[str, Any]]:
    """The watch's KPIs whose episode moved in the window, by outcome."""
    out: list[dict[str, Any]] = []
    post = _as_dict(subject.status.get("postPromotion"))
    for kpi in watched_kpis(post):
        at = parse_time(kpi.last_transition_at)
        if at is None or at < start or kpi.state in (None, "ok"):
            continue
        if kpi.state == "confirmed" or (kpi.state == "cleared" and kpi.confirmed):
            outcome = "confirmed"
        elif kpi.state == "cleared" and kpi.confirmed is False:
            outcome = "false_positive"
        elif kpi.state == "cleared":
            outcome = "cleared"  # a watch that does not say whether it had been confirmed
        else:
            outcome = "open"
        out.append(
            _where(subject)
            | {
                "kpi": kpi.name,
                "outcome": outcome,
                "state": kpi.state,
                "severity": kpi.severity,
                "reason": kpi.reason,
                "value": kpi.value,
                "previous": kpi.reference,
                "at": _stamp(at),
                "action": post.get("action"),
            }
        )
    return out


def _critical(subject: Subject, start: datetime) -> list[dict[str, Any]]:
    """Critical reasons of the decision in force (decided in the window) and critical
    regressions that moved in the window."""
    out: list[dict[str, Any]] = []
    decision = _as_dict(subject.status.get("decision"))
    decided = parse_time(decision.get("decidedAt"))
    if decided is not None and decided >= start:
        for reason in _dicts(decision.get("reasons")):
            if reason.get("severity") == "critical":
                out.append(
                    _where(subject)
                    | {
                        "at": _stamp(decided),
                        "source": "decision",
                        "action": decision.get("action"),
                        "code": reason.get("code"),
                        "metric": reason.get("metric"),
                        "message": reason.get("message"),
                    }
                )
    for regression in _regressions(subject, start):
        if regression["severity"] == "critical" and regression["outcome"] != "false_positive":
            out.append(
                _where(subject)
                | {
                    "at": regression["at"],
                    "source": "regression",
                    "action": regression["action"],
                    "code": regression["reason"],
                    "metric": regression["kpi"],
                    "message": f"regression {regression['outcome']} on {regression['kpi']}",
                }
            )
    return out


def fleet_report(subjects: Iterable[Subject], now: datetime, since: timedelta) -> dict[str, Any]:
    """``report --since``: the decision report over ``subjects`` for the window ending
    ``now`` (the JSON document; the text and Markdown views render it)."""
    start = now - since
    decisions: list[dict[str, Any]] = []
    rollbacks: list[dict[str, Any]] = []
    regressions: list[dict[str, Any]] = []
    critical: list[dict[str, Any]] = []
    recorded: list[dict[str, Any]] = []
    releases = 0
    for subject in subjects:
        releases += 1
        for entry in merged_entries(subject.status, subject.events, subject.uid):
            if entry.time < start:
                continue
            if entry.reason in DECISION_REASONS:
                match = _DECISION.search(entry.message)
                decisions.append(
                    _where(subject)
                    | entry.document()
                    | {
                        "action": match.group(1) if match else None,
                        "confidence": match.group(2) if match else None,
                    }
                )
            elif _is_rollback(entry.reason):
                rollbacks.append(_where(subject) | entry.document())
        regressions += _regressions(subject, start)
        critical += _critical(subject, start)
        annotations = _as_dict(_as_dict(subject.obj.get("metadata")).get("annotations"))
        for record in overrides(annotations):
            at = parse_time(record.at)
            if at is None or at < start:
                continue
            recorded.append(
                _where(subject)
                | {
                    "id": record.id,
                    "decision": record.decision,
                    "reason": record.reason,
                    "user": record.user,
                    "at": record.at,
                    "target": record.target,
                    "confirmedBy": record.confirmed_by or None,
                    "confirmedAt": record.confirmed_at or None,
                }
            )
    for items in (decisions, rollbacks, regressions, recorded):
        items.sort(key=lambda i: str(i.get("time") or i.get("at") or ""))
    critical.sort(key=lambda i: str(i.get("at") or ""), reverse=True)
    by_action: dict[str, int] = {}
    for d in decisions:
        key = str(d.get("action") or "unknown")
        by_action[key] = by_action.get(key, 0) + 1
    by_outcome = {
        o: sum(1 for r in regressions if r["outcome"] == o)
        for o in ("confirmed", "false_positive", "open", "cleared")
    }
    return {
        "window": {"since": since_text(since), "from": _stamp(start), "to": _stamp(now)},
        "releases": releases,
        "summary": {
            "decisions": len(decisions),
            "decisionsByAction": by_action,
            "rollbacks": len(rollbacks),
            "regressions": by_outcome,
            "critical": len(critical),
            "overrides": len(recorded),
        },
        "decisions": decisions,
        "rollbacks": rollbacks,
        "regressions": regressions,
        "critical": critical[:TOP_CRITICAL],
        "overrides": recorded,
        "coverage": COVERAGE,
    }


# --------------------------------------------------------------------------------------------
# A release's record


def _metrics_for(obj: Mapping[str, Any], plural: str) -> tuple[dict[str, Any] | None, list[Kpi]]:
    """The analysis run status keeps for the object's canary (the current or last step's)
    and its metrics as KPIs (value, control, target, status)."""
    status = _as_dict(obj.get("status"))
    analysis = _as_dict(
        status.get("analysis")
        if plural == ROLLOUTS
        else _as_dict(status.get("serving")).get("analysis")
    )
    if not analysis:
        return None, []
    step = analysis.get("stepIndex")
    metrics = step_metrics(
        plural, _as_dict(obj.get("spec")), step if isinstance(step, int) else None
    )
    return analysis, canary_kpis(analysis, metrics, DEFAULT_BAND)


def _metric_rows(analysis: Mapping[str, Any], kpis: Sequence[Kpi]) -> list[dict[str, Any]]:
    by_name = {k.name: k for k in kpis}
    rows = []
    for raw in _dicts(analysis.get("metrics")):
        name = str(raw.get("name") or "?")
        kpi = by_name.get(name)
        measurements = _dicts(raw.get("measurements"))
        compare = next(
            (_as_dict(m.get("compare")) for m in reversed(measurements) if m.get("compare")), {}
        )
        rows.append(
            {
                "metric": name,
                "canary": kpi.value if kpi is not None else None,
                "control": compare.get("control"),
                "controlValue": compare.get("controlMedian"),
                "target": kpi.target if kpi is not None else None,
                "delta": (
                    {"absolute": kpi.delta.absolute, "relative": kpi.delta.relative}
                    if kpi is not None and kpi.delta is not None
                    else None
                ),
                "status": kpi.status.value if kpi is not None and kpi.status else None,
                "verdict": raw.get("verdict"),
                "measurements": {
                    "successful": raw.get("successful", 0),
                    "failed": raw.get("failed", 0),
                    "inconclusive": raw.get("inconclusive", 0),
                    "errors": raw.get("error", 0),
                },
            }
        )
    return rows


def _steps(
    entries: Sequence[Entry],
    analysis: Mapping[str, Any] | None,
    kpis: Sequence[Kpi],
    decision: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """The canary's steps as the entries and the analysis tell them, in order."""
    by_step: dict[int, list[Entry]] = {}
    for entry in entries:
        if entry.step is not None:
            by_step.setdefault(entry.step, []).append(entry)
    run_step = analysis.get("stepIndex") if analysis is not None else None
    current = run_step + 1 if isinstance(run_step, int) else None
    if current is not None:
        by_step.setdefault(current, [])
    out = []
    numbers = sorted(by_step)
    for i, number in enumerate(numbers):
        found = by_step[number]
        started = found[0].time if found else None
        if number == current and analysis is not None:
            begun = parse_time(analysis.get("startedAt"))
            started = min(filter(None, (started, begun)), default=None)
        following = by_step.get(numbers[i + 1]) if i + 1 < len(numbers) else None
        ended = following[0].time if following else None
        if (
            ended is None
            and found
            and any(
                e.reason in ("StepAdvanced", "AnalysisPassed", "AnalysisFailed", *ROLLBACK_REASONS)
                for e in found
            )
        ):
            ended = found[-1].time
        step: dict[str, Any] = {
            "step": number,
            "startedAt": _stamp(started),
            "endedAt": _stamp(ended),
            "events": [e.document() for e in found],
            "decisions": [e.document() for e in found if e.reason in DECISION_REASONS],
            "metrics": None,
            "analysisVerdict": None,
        }
        if number == current and analysis is not None:
            step["metrics"] = _metric_rows(analysis, kpis)
            step["analysisVerdict"] = analysis.get("verdict")
            if decision:
                step["decisionInForce"] = {
                    k: decision.get(k)
                    for k in ("action", "recommended", "confidence", "mode", "decidedAt", "message")
                } | {
                    "reasons": [
                        {
                            k: r.get(k)
                            for k in ("severity", "code", "metric", "observed", "threshold")
                        }
                        for r in _dicts(decision.get("reasons"))
                    ]
                }
        out.append(step)
    return out


def _outcome(plural: str, status: Mapping[str, Any], steps: int | None) -> str:
    if plural == ROLLOUTS:
        phase = str(status.get("phase") or "unknown")
        if status.get("rolledBackRevision"):
            return f"{phase}: revision {status['rolledBackRevision']} rolled back"
        if status.get("canaryRevision"):
            index = status.get("currentStepIndex")
            where = status.get("step") or (
                f"{index + 1}/{steps if steps is not None else '?'}"
                if isinstance(index, int)
                else "?"
            )
            return f"{phase}: canary {status['canaryRevision']} in progress at step {where}"
        return f"{phase}: revision {status.get('stableRevision') or '?'} stable"
    stage, phase = status.get("stage") or "unknown", status.get("phase") or "unknown"
    return f"stage {stage}, phase {phase}"


def outcome(plural: str, status: Mapping[str, Any], steps: int | None = None) -> str:
    """Where the release ended (or stands), with the post-promotion watch's verdict;
    ``steps`` is the number of canary steps (for ``at step 2/5``)."""
    text = _outcome(plural, status, steps)
    post = _as_dict(status.get("postPromotion"))
    if post.get("phase"):
        action = f" (action {post['action']})" if post.get("action") else ""
        text += f"; after promotion: watch {post['phase']}{action}"
    return text


def _child_rollout(plural: str, status: Mapping[str, Any]) -> str | None:
    """The child Rollout a template-served ModelRelease's canary runs in (its steps and
    analysis are that Rollout's record)."""
    serving = _as_dict(status.get("serving"))
    if plural == ROLLOUTS or serving.get("backend") != "template" or not serving.get("name"):
        return None
    return str(serving["name"])


def _step_count(spec: Mapping[str, Any]) -> int | None:
    steps = _as_dict(_as_dict(spec.get("strategy")).get("canary")).get("steps")
    return len(steps) if isinstance(steps, list) else None


def release_report(subject: Subject, now: datetime) -> dict[str, Any]:
    """``report rollout|modelrelease NAME``: the object's record phase by phase."""
    status = subject.status
    entries = merged_entries(status, subject.events, subject.uid)
    analysis, kpis = _metrics_for(subject.obj, subject.plural)
    decision = _as_dict(status.get("decision"))
    annotations = _as_dict(_as_dict(subject.obj.get("metadata")).get("annotations"))
    stages = [
        {
            "from": h.get("from"),
            "stage": h.get("stage"),
            "at": h.get("time"),
            "reason": h.get("reason"),
            "message": h.get("message"),
            "user": h.get("user"),
        }
        for h in _dicts(status.get("history"))
    ]
    approved = [
        {"role": a.get("role"), "user": a.get("user"), "at": a.get("at")}
        for a in _dicts(status.get("approvals"))
    ]
    if not approved:
        approved = [
            {"role": a.role, "user": a.user, "at": a.at, "version": a.version}
            for a in approvals(annotations)
        ]
    post = _as_dict(status.get("postPromotion"))
    watch = None
    if post:
        watch = {
            "phase": post.get("phase"),
            "startedAt": post.get("startedAt"),
            "endsAt": post.get("endsAt"),
            "previousRevision": post.get("previousRevision"),
            "action": post.get("action"),
            "kpis": [k.document() for k in watched_kpis(post)],
        }
    spec = _as_dict(subject.obj.get("spec"))
    return _where(subject) | {
        "generatedAt": _stamp(now),
        "version": spec.get("version") if subject.plural != ROLLOUTS else None,
        "stableRevision": status.get("stableRevision"),
        "canaryRevision": status.get("canaryRevision"),
        "canaryRollout": _child_rollout(subject.plural, status),
        "stages": stages,
        "steps": _steps(entries, analysis, kpis, decision),
        "approvals": approved,
        "overrides": [
            {
                "id": o.id,
                "decision": o.decision,
                "reason": o.reason,
                "user": o.user,
                "at": o.at,
                "target": o.target,
                "confirmedBy": o.confirmed_by or None,
                "confirmedAt": o.confirmed_at or None,
            }
            for o in overrides(annotations)
        ],
        "postPromotion": watch,
        "events": [e.document() for e in entries],
        "firstRecorded": _stamp(entries[0].time) if entries else None,
        "unstepped": [e.document() for e in entries if e.step is None],
        "outcome": outcome(subject.plural, status, _step_count(spec)),
        "coverage": COVERAGE,
    }


def as_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2) + "\n"


__all__ = [
    "COVERAGE",
    "Entry",
    "Subject",
    "as_json",
    "fleet_report",
    "merged_entries",
    "release_report",
    "since_text",
]
