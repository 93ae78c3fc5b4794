"""The metric provider interface and ``NopProvider``.

A provider answers one query with one number. ``query`` returns None when the query matched
no data: that is an answer, not a failure (the core makes it INCONCLUSIVE and does not count it
towards ``consecutiveErrorLimit``). NaN and ±Inf are returned as they are (the core makes them
INCONCLUSIVE too). Failures raise ``ProviderUnavailable`` (retryable: connection, timeout,
5xx) or ``QueryError`` (the query is wrong, or its result is not one number).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol, runtime_checkable

from rollwise.adapters.errors import ProviderError


@runtime_checkable
class MetricProvider(Protocol):
    def query(self, query: str, timeout_s: float) -> float | None:
        """The query's single value now; None for an empty result."""
        ...

    def parse(self, query: str, timeout_s: float) -> None:
        """Checks that the provider can parse ``query``, evaluating as little as it can.
        Raises ``QueryRefused`` when it cannot, ``ProviderUnavailable`` when it cannot be
        asked now; a query that parses but may fail on data later passes."""
        ...

    def is_online(self) -> bool:
        """Whether the provider answers at all (never raises)."""
        ...


@runtime_checkable
class RangeProvider(Protocol):
    """A provider that also answers range queries (Prometheus): what ``compare`` metrics
    need."""

    def query_range(
        self, query: str, start: datetime, end: datetime, step_s: float, timeout_s: float
    ) -> list[float]:
        """The samples of ``query``'s single series over the range; ``[]`` for none."""
        ...


class NopProvider:
    """Answers from a table: ``values[query]`` (a float, None, or a ``ProviderError`` to
    raise), else ``default``. ``parse`` raises ``unparsable[query]`` when the table has one
    (a ``ProviderError``), else accepts. Records the queries it was asked and parsed."""

    def __init__(
        self,
        values: Mapping[str, float | ProviderError | None] | None = None,
        *,
        default: float | None = None,
        online: bool = True,
        unparsable: Mapping[str, ProviderError] | None = None,
    ) -> None:
        self.values = dict(values or {})
        self.default = default
        self.online = online
        self.unparsable = dict(unparsable or {})
        self.queries: list[str] = []
        self.parsed: list[str] = []
        #: Range answers: query -> samples (a ``ProviderError`` to raise); unknown: ``[]``.
        self.ranges: dict[str, list[float] | ProviderError] = {}

    def query(self, query: str, timeout_s: float) -> float | None:
        self.queries.append(query)
        value = self.values.get(query, self.default)
        if isinstance(value, ProviderError):
            raise value
        return value

    def query_range(
        self, query: str, start: datetime, end: datetime, step_s: float, timeout_s: float
    ) -> list[float]:
        self.queries.append(query)
        samples = self.ranges.get(query, [])
        if isinstance(samples, ProviderError):
            raise samples
        return list(samples)

    def parse(self, query: str, timeout_s: float) -> None:
        self.parsed.append(query)
        refusal = self.unparsable.get(query)
        if refusal is not None:
            raise refusal

    def is_online(self) -> bool:
        return self.online


__all__ = ["MetricProvider", "NopProvider", "RangeProvider"]
