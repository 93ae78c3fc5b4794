"""Colour on a terminal, none anywhere else.

The rules (``kubectl rollwise --color auto|always|never``, default ``auto``):

- ``never``: no colour;
- ``always``: colour, even into a pipe or with ``NO_COLOR`` set (a flag given for one run
  overrides the environment, as https://no-color.org asks);
- ``auto``: colour only when the output is a terminal, ``NO_COLOR`` is unset or empty, and
  ``TERM`` is not ``dumb``.

Colour adds meaning to words that already carry it (a phase, a verdict, an event type, a pod's
state): a view reads the same without it. Tables measure cells without their escape codes,
so columns line up either way. Pure: the caller decides, from its stream and environment,
with :func:`wants_colour`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

#: Select Graphic Rendition codes of the styles used.
GREEN = "32"
RED = "31"
YELLOW = "33"
BLUE = "34"
CYAN = "36"
GREY = "90"
BOLD = "1"

_ESCAPES = re.compile(r"\x1b\[[0-9;]*m")

#: Words of the views and their colour: good news green, trouble red, waiting yellow, work in
#: progress blue or cyan, the past grey.
WORD_STYLES: dict[str, str] = {
    # Rollout phases
    "Healthy": GREEN,
    "Progressing": BLUE,
    "Paused": YELLOW,
    "Degraded": RED,
    # ModelRelease phases and stages
    "Production": GREEN,
    "Waiting": YELLOW,
    "Queued": YELLOW,
    "RolledBack": RED,
    "Revoked": RED,
    # verdicts
    "PASS": GREEN,
    "FAIL": RED,
    "INCONCLUSIVE": YELLOW,
    "RUNNING": BLUE,
    "STOPPED": GREY,
    # events
    "Warning": YELLOW,
    # revisions, Deployments, ReplicaSets and pods
    "stable": GREEN,
    "canary": YELLOW,
    "rolled back": RED,
    "Available": GREEN,
    "Running": GREEN,
    "Succeeded": GREEN,
    "Pending": YELLOW,
    "ContainerCreating": YELLOW,
    "PodInitializing": YELLOW,
    "Terminating": GREY,
    "ScaledDown": GREY,
    "Stalled": RED,
    "Failed": RED,
    "Error": RED,
    "CrashLoopBackOff": RED,
    "ImagePullBackOff": RED,
    "ErrImagePull": RED,
    "NotReady": YELLOW,
}


@dataclass(frozen=True)
class Palette:
    """Paints text with ANSI styles when ``enabled``; returns it unchanged otherwise."""

    enabled: bool

    def paint(self, text: str, *styles: str) -> str:
        if not self.enabled or not text or not styles:
            return text
        return f"\x1b[{';'.join(styles)}m{text}\x1b[0m"

    def word(self, text: str, key: str | None = None) -> str:
        """``text`` in the colour of ``key`` (default: of ``text`` itself, its first word
        when it has several: ``Degraded (spec.paused)``), else unchanged."""
        lookup = key if key is not None else text
        style = WORD_STYLES.get(lookup) or WORD_STYLES.get(lookup.split(" ", 1)[0])
        return self.paint(text, style) if style else text

    def good(self, text: str) -> str:
        return self.paint(text, GREEN)

    def bad(self, text: str) -> str:
        return self.paint(text, RED)

    def warn(self, text: str) -> str:
        return self.paint(text, YELLOW)

    def info(self, text: str) -> str:
        return self.paint(text, CYAN)

    def dim(self, text: str) -> str:
        return self.paint(text, GREY)

    def bold(self, text: str) -> str:
        return self.paint(text, BOLD)


PLAIN = Palette(enabled=False)
COLOUR = Palette(enabled=True)

#: ``--color`` values.
CHOICES = ("auto", "always", "never")


def wants_colour(stream: TextIO, environ: Mapping[str, str], choice: str = "auto") -> bool:
    """Whether output to ``stream`` gets colour (the rules of the module docstring)."""
    if choice == "always":
        return True
    if choice == "never":
        return False
    if environ.get("NO_COLOR", ""):
        return False
    if environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty()) if callable(isatty) else False


def visible_len(text: str) -> int:
    """The width of ``text`` on a terminal: its length without colour escapes."""
    return len(_ESCAPES.sub("", text))


def strip(text: str) -> str:
    """``text`` without colour escapes."""
    return _ESCAPES.sub("", text)


__all__ = [
    "CHOICES",
    "COLOUR",
    "PLAIN",
    "WORD_STYLES",
    "Palette",
    "strip",
    "visible_len",
    "wants_colour",
]
