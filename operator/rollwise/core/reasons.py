"""Event reasons: the type every reason constant has, and the message length bound.

One reason per meaning (a user filtering ``kubectl get events --field-selector reason=...``
gets exactly one kind of happening), ``Warning`` for anything a human should look at, and a
message template naming what is involved. Each wing keeps its own constants
(:mod:`rollwise.core.rollout.reasons`, :mod:`rollwise.core.modelrelease.reasons`); nothing
else in the package builds a reason from a string.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EventType(StrEnum):
    """Kubernetes event types."""

    NORMAL = "Normal"
    WARNING = "Warning"


@dataclass(frozen=True)
class Reason:
    """An event reason: its wire name, its event type, what it means and its message template
    (``str.format`` fields documented by the template itself)."""

    name: str
    type: EventType
    doc: str
    template: str

    def format(self, **fields: object) -> str:
        """The message for this reason."""
        return self.template.format(**fields)


#: Longest event or condition message the cores write; longer ones are clipped with "...".
MAX_MESSAGE = 1000


def clip(text: str) -> str:
    """``text`` cut to :data:`MAX_MESSAGE` characters, marked with "..." when cut."""
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."
