"""How the plugin's output looks on the stream it goes to: Unicode or ASCII symbols, colour
or none (:mod:`rollwise.cli.colour` has the rules), and the terminal's width, to which long
messages are fitted (none when the output is not a terminal: nothing is cut then)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TextIO

from rollwise.cli.colour import COLOUR, PLAIN, Palette, wants_colour
from rollwise.cli.text import ASCII, UNICODE, Symbols


@dataclass(frozen=True)
class Display:
    symbols: Symbols
    palette: Palette
    tty: bool
    columns: Callable[[], int | None]
    """The terminal's width now (it may be resized while a watch runs); None: no terminal."""


def _symbols(stream: TextIO) -> Symbols:
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
    return UNICODE if encoding.startswith("utf") else ASCII


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty()) if callable(isatty) else False


def display_for(stream: TextIO, environ: Mapping[str, str], colour: str = "auto") -> Display:
    """The display of ``stream``, with ``--color`` ``colour`` and the environment ``environ``
    (``NO_COLOR``, ``TERM``)."""
    tty = _isatty(stream)

    def columns() -> int | None:
        if not tty:
            return None
        try:
            return os.get_terminal_size(stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return None

    palette = COLOUR if wants_colour(stream, environ, colour) else PLAIN
    return Display(symbols=_symbols(stream), palette=palette, tty=tty, columns=columns)


__all__ = ["Display", "display_for"]
