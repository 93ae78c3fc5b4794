"""Standard Kubernetes conditions, for both kinds' status.

Each wing declares its condition types (an enum) and its condition model; the rules live
here once: ``lastTransitionTime`` moves only when a condition's status changes, and the
conditions are kept in the order of their type's enum, so that the same state always
serializes the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Protocol, TypeVar


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionLike(Protocol):
    """What the rules need of a condition model."""

    @property
    def type(self) -> StrEnum: ...

    @property
    def status(self) -> ConditionStatus: ...

    @property
    def last_transition_time(self) -> datetime: ...


C = TypeVar("C", bound=ConditionLike)


def find_condition(conditions: Sequence[C], type_: StrEnum) -> C | None:
    """The condition of ``type_``; None when there is none."""
    for cond in conditions:
        if cond.type is type_:
            return cond
    return None


def is_true(conditions: Sequence[C], type_: StrEnum) -> bool:
    """Whether the condition of ``type_`` is there and True."""
    cond = find_condition(conditions, type_)
    return cond is not None and cond.status is ConditionStatus.TRUE


def with_condition(
    conditions: Sequence[C],
    make: Callable[..., C],
    type_: StrEnum,
    status: ConditionStatus,
    *,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[C]:
    """``conditions`` with the condition of ``type_`` set (built by ``make``);
    ``lastTransitionTime`` moves only when the condition's status changes; kept in the order
    of ``type_``'s enum."""
    old = find_condition(conditions, type_)
    since = old.last_transition_time if old is not None and old.status is status else now
    new = make(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )
    order = list(type(type_))
    others = [c for c in conditions if c.type is not type_]
    return sorted([*others, new], key=lambda c: order.index(c.type))


def without_condition(conditions: Sequence[C], type_: StrEnum) -> list[C]:
    """``conditions`` without the condition of ``type_``."""
    return [c for c in conditions if c.type is not type_]
