"""Events as a projection of status: the kernel's event type and the transition log.

Both kinds' cores return the events of a pass (:class:`Event`: a reason constant and its
message). :func:`log_events` numbers them and appends them to the object's
``status.eventLog``, in the same status write that records the transition: the log is written
*before* any event is posted, so an event can never be lost between the status write and its
post. The runtime posts each logged entry as a Kubernetes Event whose name is derived from the
object's uid and the entry's sequence number (:func:`event_name`): posting it again after a
restart answers AlreadyExists, which means done, so no event is ever doubled either.

``posted`` is the sequence number up to which the runtime knew the entries were posted when
the status was last written. It moves only with a write the pass makes anyway (never one of
its own), so it lags by at most one pass: after a restart the runtime re-posts from
``posted + 1``, a handful of AlreadyExists answers at most.

The log keeps every entry after ``posted`` and the :data:`KEEP` newest before it, up to
:data:`MAX_ENTRIES` in all (the runtime counts what it finds missing, should a long API outage
ever push unposted entries out).

Pure: no I/O, no clock (``now`` is an argument).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from pydantic import Field

from rollwise.core import reasons as R
from rollwise.core.status_model import StatusModel, Time

#: Entries kept at or before ``posted`` (the recent history ``kubectl get -o yaml`` shows).
KEEP = 12

#: Hard bound on the log, posted or not.
MAX_ENTRIES = 100


@dataclass(frozen=True)
class Event:
    """An event to emit on an object: a reason constant, its type and the message."""

    type: R.EventType
    reason: R.Reason
    message: str

    @classmethod
    def of(cls, reason: R.Reason, **fields: object) -> Event:
        return cls(reason.type, reason, R.clip(reason.format(**fields)))


class LoggedEvent(StatusModel):
    """One transition's event, numbered, as ``status.eventLog.entries`` keeps it."""

    seq: int
    type: str
    reason: str
    message: str
    time: Time


class EventLog(StatusModel):
    """``status.eventLog``: the last sequence number given, how far posting is known to have
    got, and the recent entries (oldest first)."""

    seq: int = 0
    posted: int = 0
    entries: list[LoggedEvent] = Field(default_factory=list)

    def unposted(self, after: int) -> list[LoggedEvent]:
        """The entries with a sequence number above ``after``, oldest first."""
        return [entry for entry in self.entries if entry.seq > after]


def log_events(log: EventLog, events: Sequence[Event], now: datetime) -> EventLog:
    """``log`` with ``events`` appended under the next sequence numbers, then trimmed."""
    if not events:
        return log
    seq = log.seq
    added: list[LoggedEvent] = []
    for event in events:
        seq += 1
        added.append(
            LoggedEvent(
                seq=seq,
                type=event.type.value,
                reason=event.reason.name,
                message=event.message,
                time=now,
            )
        )
    return _trimmed(log.model_copy(update={"seq": seq, "entries": [*log.entries, *added]}))


def mark_posted(log: EventLog, posted: int) -> EventLog:
    """``log`` with ``posted`` raised to what the runtime knows was posted (never lowered,
    never past the last sequence number), then trimmed."""
    through = min(max(log.posted, posted), log.seq)
    if through == log.posted:
        return log
    return _trimmed(log.model_copy(update={"posted": through}))


class Logged(Protocol):
    """A status with an event log (both kinds' status models)."""

    @property
    def event_log(self) -> EventLog: ...

    def model_copy(
        self: LoggedT, *, update: Mapping[str, Any] | None = None, deep: bool = False
    ) -> LoggedT: ...


LoggedT = TypeVar("LoggedT", bound=Logged)


def with_events(
    status: LoggedT, events: Sequence[Event], read: LoggedT | None, posted: int, now: datetime
) -> LoggedT:
    """``status`` with ``events`` appended to its log; when the status is written anyway (it
    differs from the one ``read``), ``posted`` catches up with what the runtime has posted
    (never a write of its own)."""
    log = log_events(status.event_log, events, now)
    if log is not status.event_log:
        status = status.model_copy(update={"event_log": log})
    if read is None or status != read:
        status = status.model_copy(update={"event_log": mark_posted(status.event_log, posted)})
    return status


def _trimmed(log: EventLog) -> EventLog:
    entries = log.entries
    done = [e for e in entries if e.seq <= log.posted][-KEEP:] if KEEP else []
    pending = [e for e in entries if e.seq > log.posted]
    kept = [*done, *pending][-MAX_ENTRIES:]
    if kept == entries:
        return log
    return log.model_copy(update={"entries": kept})


#: Digits of the sequence number in an event's name.
SEQ_DIGITS = 10

#: Longest Kubernetes object name (a DNS subdomain).
_MAX_NAME = 253


def event_name(object_name: str, uid: str, seq: int) -> str:
    """The Kubernetes Event name of entry ``seq`` of an object: the object's name (cut so the
    whole stays a valid DNS subdomain), its uid and the sequence number, zero-padded so that
    the API's listing order (by name) is the order of the transitions. The same entry always
    gets the same name, so posting it twice is refused as AlreadyExists."""
    tail = f".{uid}.{seq:0{SEQ_DIGITS}d}"
    head = object_name[: _MAX_NAME - len(tail)].rstrip(".-")
    return f"{head}{tail}" if head else tail.lstrip(".")


__all__ = [
    "KEEP",
    "MAX_ENTRIES",
    "Event",
    "EventLog",
    "LoggedEvent",
    "event_name",
    "log_events",
    "mark_posted",
]
