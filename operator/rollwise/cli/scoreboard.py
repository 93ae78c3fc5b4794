"""``kubectl rollwise scoreboard``: every release's KPIs against their targets, per namespace
and overall.

Two sources of KPIs, both read from status (nothing is queried):

* **canary KPIs**, while a canary runs: each metric of the current step's analysis run
  (``status.analysis`` of a Rollout, ``status.serving.analysis`` of a ModelRelease) with the
  target its pass rule states (:func:`rollwise.core.scoreboard.threshold_targets`: a
  ``thresholdRange`` bound or a ``result OP NUMBER`` condition), a compare metric's canary
  median against the control's median moved by the tolerance, an SLO burn-rate metric's
  pair burn (the lower of the pair's two windows) against the pair's rate. These are
  classified here with the core's :func:`~rollwise.core.scoreboard.score` and the attention
  band of ``--attention-band``. A metric whose rule states no readable target, or which has
  no value yet, is listed without a status.
* **watched KPIs**, after promotion: ``status.postPromotion.kpis`` as the regression watch
  records them, with the status (``on_track``, ``attention``, ``off_track``) the watch gave
  them with its own band, and the episode state (``ok``, ``detected``, ``confirmed``,
  ``cleared``). A detected or confirmed KPI is an open regression.

The delta of a KPI is signed so that positive is worse: against the target, and against the
previous revision (a watched KPI's ``previous``) or the control (a compare metric's control
median). A watched KPI's direction is read from its reason code (``*_drop``: lower is worse;
``error_rate_regression``, ``latency_regression`` and other ``*_regression``: higher is
worse); without one, its deltas are shown unsigned and it is not ranked.

Pure: objects in, a :class:`Board` out, rendered as text or JSON.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rollwise.cli.common import KIND_WORDS, KINDS, ROLLOUTS
from rollwise.cli.text import parse_time
from rollwise.core.scoreboard import (
    DEFAULT_BAND,
    KpiDelta,
    KpiDirection,
    KpiStatus,
    KpiTarget,
    compare_targets,
    kpi_delta,
    score,
    threshold_targets,
    worst_status,
)
from rollwise.core.spec import Metric

#: Episode states of a watched KPI that make an open regression.
OPEN_STATES = ("detected", "confirmed")
#: How many KPIs the "worst deltas" list shows.
WORST = 5


def _as_dict(value: object) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def _dicts(value: object) -> list[dict[str, Any]]:
    return [_as_dict(v) for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


# --------------------------------------------------------------------------------------------
# KPIs


@dataclass(frozen=True)
class Kpi:
    """One KPI of a release: where it comes from (``canary`` or ``watch``), its value and
    target, its status and signed deltas, and for a watched KPI its episode."""

    name: str
    source: str
    value: float | None
    target: float | None
    direction: KpiDirection | None
    status: KpiStatus | None
    delta: KpiDelta | None
    reference: float | None = None
    reference_delta: KpiDelta | None = None
    state: str | None = None
    severity: str | None = None
    reason: str | None = None
    confirmed: bool | None = None
    last_transition_at: str | None = None

    @property
    def open_regression(self) -> bool:
        return self.state in OPEN_STATES

    def document(self) -> dict[str, Any]:
        def delta(d: KpiDelta | None) -> dict[str, Any] | None:
            return None if d is None else {"absolute": d.absolute, "relative": d.relative}

        out: dict[str, Any] = {
            "name": self.name,
            "source": self.source,
            "value": self.value,
            "target": self.target,
            "direction": self.direction.value if self.direction is not None else None,
            "status": self.status.value if self.status is not None else None,
            "delta": delta(self.delta),
            "reference": self.reference,
            "referenceDelta": delta(self.reference_delta),
        }
        if self.source == "watch":
            out |= {
                "state": self.state,
                "severity": self.severity,
                "reason": self.reason,
                "confirmed": self.confirmed,
                "lastTransitionAt": self.last_transition_at,
            }
        return out


def _scored_kpi(
    name: str,
    value: float | None,
    targets: Sequence[KpiTarget],
    band: float,
    reference: float | None = None,
) -> Kpi:
    scored = score(value, targets, band) if value is not None else None
    if scored is None:
        one = targets[0] if len(targets) == 1 else None
        return Kpi(
            name=name,
            source="canary",
            value=value,
            target=one.value if one is not None else None,
            direction=one.direction if one is not None else None,
            status=None,
            delta=None,
            reference=reference,
        )
    ref_delta = (
        kpi_delta(value, reference, scored.target.direction)
        if value is not None and reference is not None
        else None
    )
    return Kpi(
        name=name,
        source="canary",
        value=value,
        target=scored.target.value,
        direction=scored.target.direction,
        status=scored.status,
        delta=scored.delta,
        reference=reference,
        reference_delta=ref_delta,
    )


def _burn_kpi(name: str, burn: Mapping[str, Any], band: float) -> Kpi:
    """An SLO burn-rate metric: each pair's burn (the lower of its windows' burns: the pair
    fires when both exceed its rate) against its rate; the worst pair."""
    burns = {str(w.get("window")): _number(w.get("burnRate")) for w in _dicts(burn.get("windows"))}
    best: Kpi | None = None
    for pair in _dicts(burn.get("pairs")):
        rate = _number(pair.get("threshold"))
        long, short = burns.get(str(pair.get("long"))), burns.get(str(pair.get("short")))
        if rate is None or long is None or short is None:
            continue
        kpi = _scored_kpi(
            name, min(long, short), [KpiTarget(rate, KpiDirection.LOWER_IS_BETTER)], band
        )
        if best is None or _rank(kpi) > _rank(best):
            best = kpi
    return best or _scored_kpi(name, None, [], band)


def canary_kpis(
    analysis: Mapping[str, Any], metrics: Mapping[str, Metric], band: float
) -> list[Kpi]:
    """The KPIs of a canary's analysis run (``analysis`` in its wire form), with the spec's
    metrics of its step (for their targets)."""
    out: list[Kpi] = []
    for raw in _dicts(analysis.get("metrics")):
        name = str(raw.get("name") or "?")
        measurements = _dicts(raw.get("measurements"))
        metric = metrics.get(name)
        compare = next((m for m in reversed(measurements) if _as_dict(m.get("compare"))), None)
        burn = next((m for m in reversed(measurements) if _as_dict(m.get("burnRate"))), None)
        if compare is not None:
            c = _as_dict(compare.get("compare"))
            control = _number(c.get("controlMedian"))
            targets = (
                compare_targets(control, metric.compare)
                if control is not None and metric is not None and metric.compare is not None
                else ()
            )
            out.append(_scored_kpi(name, _number(c.get("canaryMedian")), targets, band, control))
        elif burn is not None:
            out.append(_burn_kpi(name, _as_dict(burn.get("burnRate")), band))
        else:
            value = _number(measurements[-1].get("value")) if measurements else None
            targets = threshold_targets(metric) if metric is not None else ()
            out.append(_scored_kpi(name, value, targets, band))
    return out


def direction_of_reason(reason: str | None) -> KpiDirection | None:
    """A watched KPI's direction from its reason code (module docstring)."""
    if not reason:
        return None
    if reason.endswith("_drop"):
        return KpiDirection.HIGHER_IS_BETTER
    if reason.endswith("_regression"):
        return KpiDirection.LOWER_IS_BETTER
    return None


def _status(value: object) -> KpiStatus | None:
    try:
        return KpiStatus(str(value)) if value is not None else None
    except ValueError:
        return None


def watched_kpis(post: Mapping[str, Any]) -> list[Kpi]:
    """The KPIs of ``status.postPromotion`` as the watch recorded them."""
    out: list[Kpi] = []
    for raw in _dicts(post.get("kpis")):
        reason = str(raw["reason"]) if raw.get("reason") else None
        direction = direction_of_reason(reason)
        value, target = _number(raw.get("value")), _number(raw.get("target"))
        previous = _number(raw.get("previous"))
        delta = ref_delta = None
        if direction is not None and value is not None:
            delta = kpi_delta(value, target, direction) if target is not None else None
            ref_delta = kpi_delta(value, previous, direction) if previous is not None else None
        elif value is not None and previous is not None:
            # No direction: the difference as the watch records it, unsigned by badness.
            recorded = _number(raw.get("delta"))
            relative = _number(raw.get("relativeDelta"))
            ref_delta = KpiDelta(recorded if recorded is not None else value - previous, relative)
        confirmed = raw.get("confirmed")
        out.append(
            Kpi(
                name=str(raw.get("name") or "?"),
                source="watch",
                value=value,
                target=target,
                direction=direction,
                status=_status(raw.get("status")),
                delta=delta,
                reference=previous,
                reference_delta=ref_delta,
                state=str(raw["state"]) if raw.get("state") else None,
                severity=str(raw["severity"]) if raw.get("severity") else None,
                reason=reason,
                confirmed=confirmed if isinstance(confirmed, bool) else None,
                last_transition_at=str(raw.get("lastTransitionAt") or "") or None,
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# Releases


@dataclass(frozen=True)
class Release:
    """One Rollout or ModelRelease on the board: where it is and its KPIs."""

    plural: str
    namespace: str
    name: str
    phase: str
    canary: str | None
    watch_phase: str | None
    kpis: list[Kpi]
    last_activity: datetime | None

    @property
    def ref(self) -> str:
        return f"{KIND_WORDS[self.plural]}/{self.name}"

    @property
    def status(self) -> KpiStatus | None:
        return worst_status(k.status for k in self.kpis)

    @property
    def open_regressions(self) -> list[Kpi]:
        return [k for k in self.kpis if k.open_regression]

    def document(self) -> dict[str, Any]:
        return {
            "kind": KINDS[self.plural],
            "namespace": self.namespace,
            "name": self.name,
            "phase": self.phase,
            "canary": self.canary,
            "watch": self.watch_phase,
            "status": self.status.value if self.status is not None else None,
            "lastActivity": _stamp(self.last_activity),
            "kpis": [k.document() for k in self.kpis],
        }


def _stamp(at: datetime | None) -> str | None:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at is not None else None


def status_times(status: Mapping[str, Any]) -> list[datetime]:
    """Every time a status records something happening: the decision, the analysis's start,
    the event log's entries, a watch's start and its KPIs' transitions, a ModelRelease's
    history."""
    found: list[object] = [
        _as_dict(status.get("decision")).get("decidedAt"),
        _as_dict(status.get("analysis")).get("startedAt"),
        _as_dict(_as_dict(status.get("serving")).get("analysis")).get("startedAt"),
    ]
    found += [e.get("time") for e in _dicts(_as_dict(status.get("eventLog")).get("entries"))]
    post = _as_dict(status.get("postPromotion"))
    found.append(post.get("startedAt"))
    found += [k.get("lastTransitionAt") for k in _dicts(post.get("kpis"))]
    found += [h.get("time") for h in _dicts(status.get("history"))]
    return [t for t in (parse_time(v) for v in found) if t is not None]


def read_release(obj: Mapping[str, Any], plural: str, band: float = DEFAULT_BAND) -> Release:
    """What the scoreboard shows of ``obj``."""
    from rollwise.cli.explain import read_subject  # noqa: PLC0415 - the spec parsing it brings

    subject = read_subject(obj, plural)
    status = _as_dict(obj.get("status"))
    kpis: list[Kpi] = []
    if subject.canary is not None and subject.analysis is not None:
        kpis += canary_kpis(subject.analysis, subject.metrics, band)
    post = _as_dict(status.get("postPromotion"))
    kpis += watched_kpis(post)
    times = status_times(status)
    phase = status.get("phase") if plural == ROLLOUTS else status.get("stage")
    return Release(
        plural=plural,
        namespace=subject.namespace,
        name=subject.name,
        phase=str(phase or "-"),
        canary=subject.canary,
        watch_phase=str(post["phase"]) if post.get("phase") else None,
        kpis=kpis,
        last_activity=max(times) if times else None,
    )


def active(release: Release, now: datetime, since: timedelta | None) -> bool:
    """Whether ``release`` belongs on a board of the last ``since``: a canary or a watch
    running now, or anything recorded in the window (everything without ``since``)."""
    if since is None or release.canary is not None or release.watch_phase == "Watching":
        return True
    return release.last_activity is not None and release.last_activity >= now - since


# --------------------------------------------------------------------------------------------
# The board


def _rank(kpi: Kpi) -> tuple[int, float]:
    """How bad a KPI is: its status, then its relative (else absolute) delta to target."""
    order = {None: -1, KpiStatus.ON_TRACK: 0, KpiStatus.ATTENTION: 1, KpiStatus.OFF_TRACK: 2}
    d = kpi.delta
    size = -math.inf if d is None else (d.relative if d.relative is not None else d.absolute)
    return order[kpi.status], size


@dataclass(frozen=True)
class Tally:
    """One namespace's (or the whole board's) counts."""

    releases: int = 0
    on_track: int = 0
    attention: int = 0
    off_track: int = 0
    no_kpis: int = 0
    open_regressions: int = 0
    worst: tuple[Release, Kpi] | None = None

    def document(self) -> dict[str, Any]:
        worst = None
        if self.worst is not None:
            release, kpi = self.worst
            worst = {"release": release.ref, "namespace": release.namespace} | kpi.document()
        return {
            "releases": self.releases,
            "onTrack": self.on_track,
            "attention": self.attention,
            "offTrack": self.off_track,
            "noKpis": self.no_kpis,
            "openRegressions": self.open_regressions,
            "worst": worst,
        }


def tally(releases: Iterable[Release]) -> Tally:
    counts = dict.fromkeys(KpiStatus, 0)
    total = no_kpis = regressions = 0
    worst: tuple[Release, Kpi] | None = None
    for release in releases:
        total += 1
        status = release.status
        if status is None:
            no_kpis += 1
        else:
            counts[status] += 1
        regressions += len(release.open_regressions)
        for kpi in release.kpis:
            if kpi.delta is not None and (worst is None or _rank(kpi) > _rank(worst[1])):
                worst = (release, kpi)
    return Tally(
        releases=total,
        on_track=counts[KpiStatus.ON_TRACK],
        attention=counts[KpiStatus.ATTENTION],
        off_track=counts[KpiStatus.OFF_TRACK],
        no_kpis=no_kpis,
        open_regressions=regressions,
        worst=worst,
    )


@dataclass(frozen=True)
class Board:
    """The scoreboard: the releases on it, by namespace, and what was left out."""

    releases: list[Release]
    since: timedelta | None
    band: float
    left_out: int = 0
    namespaces: dict[str, Tally] = field(default_factory=dict)

    @property
    def overall(self) -> Tally:
        return tally(self.releases)

    def worst(self, limit: int = WORST) -> list[tuple[Release, Kpi]]:
        """The KPIs furthest the bad way past (or nearest to) their targets, worst first."""
        pairs = [(r, k) for r in self.releases for k in r.kpis if k.delta is not None]
        pairs.sort(key=lambda rk: _rank(rk[1]), reverse=True)
        return pairs[:limit]

    def regressions(self) -> list[tuple[Release, Kpi]]:
        return [(r, k) for r in self.releases for k in r.open_regressions]


def build_board(
    objects: Iterable[tuple[str, Mapping[str, Any]]],
    now: datetime,
    *,
    since: timedelta | None = None,
    band: float = DEFAULT_BAND,
) -> Board:
    """The board of ``objects`` (``(plural, object)`` pairs) active within ``since``."""
    releases: list[Release] = []
    left_out = 0
    for plural, obj in objects:
        release = read_release(obj, plural, band)
        if active(release, now, since):
            releases.append(release)
        else:
            left_out += 1
    releases.sort(key=lambda r: (r.namespace, r.plural != ROLLOUTS, r.name))
    by_ns: dict[str, list[Release]] = {}
    for release in releases:
        by_ns.setdefault(release.namespace, []).append(release)
    return Board(
        releases=releases,
        since=since,
        band=band,
        left_out=left_out,
        namespaces={ns: tally(rs) for ns, rs in by_ns.items()},
    )


# --------------------------------------------------------------------------------------------
# Rendering


def number_text(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


def delta_text(delta: KpiDelta | None) -> str:
    """``+0.012 (+24%)``: the signed delta and its relative size; ``-`` without one."""
    if delta is None:
        return "-"
    relative = f" ({delta.relative * 100:+.1f}%)" if delta.relative is not None else ""
    return f"{delta.absolute:+.4g}{relative}"


def since_text(since: timedelta) -> str:
    """A window as ``--since`` takes it: ``7d``, ``24h``, ``1h30m``."""
    from rollwise.core.durations import format_seconds  # noqa: PLC0415

    seconds = since.total_seconds()
    if seconds > 86400 and seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    return format_seconds(seconds)


__all__ = [
    "Board",
    "Kpi",
    "Release",
    "Tally",
    "active",
    "build_board",
    "canary_kpis",
    "delta_text",
    "direction_of_reason",
    "number_text",
    "read_release",
    "since_text",
    "status_times",
    "tally",
    "watched_kpis",
]
