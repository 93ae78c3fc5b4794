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
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, Self, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel

from rollwise.core import conditions as rules
from rollwise.core.conditions import ConditionStatus
from rollwise.core.reasons import Reason, clip


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


C = TypeVar("C", bound=ConditionModel[Any])


class ConditionedStatus(StatusModel, Generic[T, C]):
    """A kind's top-level status: its conditions (a ``conditions: list[C]`` field each kind
    declares where it wants it on the wire, ``condition_model`` the class of ``C``) read and
    set by the rules of :mod:`rollwise.core.conditions`, and its wire form."""

    condition_model: ClassVar[type[Any]]
    if TYPE_CHECKING:
        conditions: list[C]

    def condition(self, type_: T) -> C | None:
        return rules.find_condition(self.conditions, type_)

    def is_true(self, type_: T) -> bool:
        return rules.is_true(self.conditions, type_)

    def with_condition(
        self,
        type_: T,
        status: ConditionStatus,
        *,
        reason: str,
        message: str,
        now: datetime,
        generation: int | None,
    ) -> Self:
        """A copy with the condition set (:func:`rollwise.core.conditions.with_condition`)."""
        updated = rules.with_condition(
            self.conditions,
            self.condition_model,
            type_,
            status,
            reason=reason,
            message=message,
            now=now,
            generation=generation,
        )
        return self.model_copy(update={"conditions": updated})

    def without_condition(self, type_: T) -> Self:
        """A copy without the condition (the same object when it has none)."""
        if self.condition(type_) is None:
            return self
        updated = rules.without_condition(self.conditions, type_)
        return self.model_copy(update={"conditions": updated})

    def to_wire(self) -> dict[str, object]:
        """The status as the API server stores it (camelCase, RFC 3339 times)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


S = TypeVar("S", bound=ConditionedStatus[Any, Any])

#: How many validation errors a status message names before "... and N more".
SHOWN_ERRORS = 10


def invalid_spec_status(
    previous: S,
    errors: list[str],
    *,
    reason: Reason,
    ready: StrEnum,
    degraded: StrEnum,
    invalid_spec: StrEnum,
    generation: int | None,
    now: datetime,
    update: dict[str, Any],
) -> tuple[S, str, bool]:
    """The status of an object whose spec is invalid, for either kind: ``update`` (the kind's
    own phase and fields) with the message naming the first errors, ``Ready`` False,
    ``Degraded`` and ``InvalidSpec`` True (the kind's condition types), all under
    ``reason``. Returns the status, the errors as the message names them, and whether the
    previous status already said so (then no event repeats it)."""
    cut = len(errors) - SHOWN_ERRORS
    shown = "; ".join(errors[:SHOWN_ERRORS] + ([f"... and {cut} more"] if cut > 0 else []))
    message = clip(reason.format(errors=shown))
    before = previous.condition(invalid_spec)
    unchanged = (
        before is not None and before.status is ConditionStatus.TRUE and before.message == message
    )
    status = previous.model_copy(
        update={**update, "message": message, "observed_generation": generation}
    )
    for type_, value in (
        (ready, ConditionStatus.FALSE),
        (degraded, ConditionStatus.TRUE),
        (invalid_spec, ConditionStatus.TRUE),
    ):
        status = status.with_condition(
            type_, value, reason=reason.name, message=message, now=now, generation=generation
        )
    return status, shown, unchanged


__all__ = [
    "SHOWN_ERRORS",
    "ConditionModel",
    "ConditionedStatus",
    "StatusModel",
    "Time",
    "format_time",
    "invalid_spec_status",
]
