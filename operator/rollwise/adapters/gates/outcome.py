"""What one gate check found: a status and the message that explains it.

The evaluator turns an :class:`Outcome` into the core's ``GateResult`` (adding the gate name
and the time). ``Passed`` only ever comes with evidence; a check that could not be made is
``Pending`` and says why; ``Failed`` names what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rollwise.core.modelrelease.status import GateStatus


@dataclass(frozen=True)
class Outcome:
    status: GateStatus
    message: str
    #: When the outcome changes by itself (a freeze window closing); None: not known.
    recheck_at: datetime | None = None

    @classmethod
    def passed(cls, message: str, recheck_at: datetime | None = None) -> Outcome:
        return cls(GateStatus.PASSED, message, recheck_at)

    @classmethod
    def failed(cls, message: str, recheck_at: datetime | None = None) -> Outcome:
        return cls(GateStatus.FAILED, message, recheck_at)

    @classmethod
    def pending(cls, message: str) -> Outcome:
        return cls(GateStatus.PENDING, message)


def short_digest(digest: str) -> str:
    """``sha256:`` and the first 12 hex digits: enough to tell two digests apart in a message."""
    algorithm, sep, value = digest.partition(":")
    return f"{algorithm}:{value[:12]}" if sep else digest[:19]


__all__ = ["Outcome", "short_digest"]
