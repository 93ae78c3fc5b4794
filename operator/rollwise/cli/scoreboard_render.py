"""The scoreboard (:class:`rollwise.cli.scoreboard.Board`) as text and as JSON: the tally
per namespace and overall, the worst deltas, the open regressions, and with ``-o wide``
every release's KPIs. Pure: a board in, a string or a document out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rollwise.cli.scoreboard import (
    Board,
    Kpi,
    Release,
    Tally,
    delta_text,
    number_text,
    since_text,
)
from rollwise.cli.text import table
from rollwise.core.scoreboard import KpiStatus


def _status_text(status: KpiStatus | None) -> str:
    return status.value if status is not None else "-"


def _since_text(since: timedelta | None) -> str:
    return "all time" if since is None else f"the last {since_text(since)}"


def _tally_row(name: str, t: Tally) -> list[str]:
    worst = "-"
    if t.worst is not None:
        release, kpi = t.worst
        worst = f"{release.ref} {kpi.name} {delta_text(kpi.delta)}"
    return [
        name,
        str(t.releases),
        str(t.on_track),
        str(t.attention),
        str(t.off_track),
        str(t.no_kpis),
        str(t.open_regressions),
        worst,
    ]


def _kpi_row(release: Release, kpi: Kpi, *, namespace: bool) -> list[str]:
    where = [release.namespace] if namespace else []
    return [
        *where,
        release.ref,
        kpi.name,
        kpi.source,
        number_text(kpi.value),
        number_text(kpi.target),
        delta_text(kpi.delta),
        delta_text(kpi.reference_delta),
        _status_text(kpi.status),
        kpi.state or "-",
    ]


def render_board(board: Board, *, wide: bool = False) -> str:
    """The scoreboard as text: the tally per namespace and overall, the worst deltas, the
    open regressions, and with ``wide`` every release's KPIs."""
    lines = [
        f"Scoreboard: {board.overall.releases} release(s) active in {_since_text(board.since)}"
        f", attention band {board.band * 100:g}% of the target"
    ]
    if board.left_out:
        lines.append(f"({board.left_out} release(s) with nothing recorded in that time left out)")
    if not board.releases:
        return "\n".join([*lines, "No releases to score."]) + "\n"
    header = ["NAMESPACE", "RELEASES", "ON TRACK", "ATTENTION", "OFF TRACK", "NO KPIS"]
    header += ["REGRESSIONS OPEN", "WORST DELTA"]
    rows = [_tally_row(ns, t) for ns, t in board.namespaces.items()]
    rows.append(_tally_row("(all)", board.overall))
    lines += ["", *table(header, rows)]
    many = len(board.namespaces) > 1
    kpi_header = [*(["NAMESPACE"] if many else [])]
    kpi_header += ["RELEASE", "KPI", "SOURCE", "VALUE", "TARGET", "DELTA TO TARGET"]
    kpi_header += ["VS PREVIOUS", "STATUS", "STATE"]
    worst = board.worst()
    lines.append("")
    if worst:
        lines.append(
            "Worst deltas (positive is worse; VS PREVIOUS: the previous revision or control):"
        )
        lines += table(kpi_header, [_kpi_row(r, k, namespace=many) for r, k in worst], "  ")
    else:
        lines.append("Worst deltas: <none> (no KPI has both a value and a target)")
    regressions = board.regressions()
    lines.append("")
    if regressions:
        lines.append("Regressions open:")
        header_r = [*(["NAMESPACE"] if many else []), "RELEASE", "KPI", "SEVERITY", "STATE"]
        header_r += ["REASON", "VALUE", "PREVIOUS", "SINCE"]
        rows_r = [
            [
                *([r.namespace] if many else []),
                r.ref,
                k.name,
                k.severity or "-",
                k.state or "-",
                k.reason or "-",
                number_text(k.value),
                number_text(k.reference),
                k.last_transition_at or "-",
            ]
            for r, k in regressions
        ]
        lines += table(header_r, rows_r, "  ")
    else:
        lines.append("Regressions open: <none>")
    if wide:
        lines += ["", "KPIs:"]
        rows_k = [_kpi_row(r, k, namespace=many) for r in board.releases for k in r.kpis]
        rows_k += [
            [*([r.namespace] if many else []), r.ref, "-", "-", "-", "-", "-", "-", "-", "-"]
            for r in board.releases
            if not r.kpis
        ]
        lines += table(kpi_header, rows_k, "  ")
    return "\n".join(lines) + "\n"


def board_document(board: Board) -> dict[str, Any]:
    """``scoreboard -o json``."""
    return {
        "since": board.since.total_seconds() if board.since is not None else None,
        "attentionBand": board.band,
        "leftOut": board.left_out,
        "overall": board.overall.document(),
        "namespaces": {ns: t.document() for ns, t in board.namespaces.items()},
        "worst": [
            {"release": r.ref, "namespace": r.namespace} | k.document() for r, k in board.worst()
        ],
        "regressionsOpen": [
            {"release": r.ref, "namespace": r.namespace} | k.document()
            for r, k in board.regressions()
        ],
        "releases": [r.document() for r in board.releases],
    }


__all__ = ["board_document", "render_board"]
