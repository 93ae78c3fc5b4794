"""The wire conventions every status model of the kernel and both wings follows.

Frozen pydantic models, camelCase on the wire, unknown fields ignored rather than refused (a
status written by a newer or older operator version must never make this one fail to read
its own object), and times as timezone-aware datetimes serialized as RFC 3339 with a ``Z``
suffix. Conditions have one model (:class:`ConditionModel`), made concrete by each wing with
its own condition types.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel

from rollwise.core.conditions import ConditionStatus


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix, second precision unless there are microseconds."""
    utc = value.astimezone(UTC)
    if utc.microsecond:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


Time = Annotated[AwareDatetime, PlainSerializer(format_time, return_type=str, when_used="json")]


class StatusModel(BaseModel):
    """Base of the status models: camelCase on the wire, unknown fields ignored, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )


T = TypeVar("T", bound=StrEnum)


class ConditionModel(StatusModel, Generic[T]):
    """A standard Kubernetes condition whose ``type`` is one of a wing's condition types
    (``T``); the rules that set one are :mod:`rollwise.core.conditions`."""

    type: T
    status: ConditionStatus
    reason: str
    message: str = ""
    last_transition_time: Time
    observed_generation: int | None = None


__all__ = ["ConditionModel", "StatusModel", "Time", "format_time"]
