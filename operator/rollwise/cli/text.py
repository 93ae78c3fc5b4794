"""The small pieces every view of the plugin is made of: the symbols of a terminal that can or
cannot show Unicode, times from the API, ages as ``kubectl get`` prints them, tables whose
columns line up with or without colour, and long messages fitted to a width.

Pure functions and constants; no view lives here (:mod:`rollwise.cli.render`,
:mod:`rollwise.cli.render_release`, :mod:`rollwise.cli.tree`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from rollwise.cli.colour import visible_len

#: Narrowest a message column is made on a narrow terminal; a line longer than the terminal
#: then wraps rather than losing most of its message.
MIN_MESSAGE = 40


@dataclass(frozen=True)
class Symbols:
    """Markers of the step list (the current step, a finished one, one not reached), the
    ellipsis of a clipped message, the arrow of a change, and the branches of a tree."""

    current: str
    done: str
    pending: str
    ellipsis: str
    arrow: str
    tree_branch: str = "├─ "
    tree_last: str = "└─ "
    tree_pipe: str = "│  "
    tree_space: str = "   "


UNICODE = Symbols(current="▶", done="✓", pending=" ", ellipsis="…", arrow="→")
ASCII = Symbols(
    current=">",
    done="+",
    pending=" ",
    ellipsis="...",
    arrow="->",
    tree_branch="+- ",
    tree_last="`- ",
    tree_pipe="|  ",
)


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time from the API (``2026-01-02T03:04:05Z``, with or without fraction)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00") if value.endswith("Z") else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def human_duration(seconds: float) -> str:
    """A short duration the way ``kubectl get`` prints ages: ``45s``, ``3m20s``, ``5h``,
    ``2d3h``, ``40d``."""
    s = max(int(seconds), 0)
    if s < 120:
        return f"{s}s"
    minutes, secs = divmod(s, 60)
    if minutes < 10:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    hours, mins = divmod(minutes, 60)
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{mins}m" if mins else f"{hours}h"
    days, hrs = divmod(hours, 24)
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hrs}h" if hrs else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y"


def age(since: object, now: datetime) -> str:
    """``human_duration`` from ``since`` (an RFC 3339 string or a datetime) to ``now``."""
    at = parse_time(since)
    if at is None:
        return "<unknown>"
    return human_duration((now - at).total_seconds())


def table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "") -> list[str]:
    """Left-aligned columns separated by three spaces, like ``kubectl get``; the last column
    is not padded. Cells may carry colour: widths are those the terminal shows."""
    widths = [visible_len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], visible_len(cell))
    lines = []
    for row in [list(header), *[list(r) for r in rows]]:
        cells = [cell + " " * (widths[i] - visible_len(cell)) for i, cell in enumerate(row[:-1])]
        lines.append((indent + "   ".join([*cells, row[-1]])).rstrip())
    return lines


def clip(text: str, symbols: Symbols, limit: int | None) -> str:
    """``text`` on one line, cut with an ellipsis after ``limit`` characters (None: whole)."""
    flat = " ".join(text.split())
    if limit is None or len(flat) <= limit:
        return flat
    return flat[: max(limit - len(symbols.ellipsis), 1)] + symbols.ellipsis


def fit_last_column(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    indent: str,
    width: int | None,
    symbols: Symbols,
) -> list[list[str]]:
    """``rows`` with their last cell (a message) on one line and, when ``width`` is a
    terminal's, cut so that the row fits it (never below :data:`MIN_MESSAGE` characters).
    Without a width (a pipe, a file) nothing is cut."""
    if width is None:
        return [[*row[:-1], clip(row[-1], symbols, None)] for row in rows]
    widths = [visible_len(h) for h in header[:-1]]
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], visible_len(cell))
    offset = len(indent) + sum(w + 3 for w in widths)
    limit = max(width - offset, MIN_MESSAGE)
    return [[*row[:-1], clip(row[-1], symbols, limit)] for row in rows]


def generation_lag(generation: object, observed: int | None) -> str | None:
    """Why the status shown may be behind the spec: the status is of an older generation
    than ``metadata.generation`` (the operator has not caught up yet); None when it is not."""
    if isinstance(generation, int) and observed is not None and observed < generation:
        return (
            f"status is of generation {observed}, spec is at {generation}: "
            "the operator has not caught up yet"
        )
    return None


__all__ = [
    "ASCII",
    "MIN_MESSAGE",
    "UNICODE",
    "Symbols",
    "age",
    "clip",
    "fit_last_column",
    "generation_lag",
    "human_duration",
    "parse_time",
    "table",
]
