"""A failed measurement tells a provider that is down from a query that failed on a live one:
on ``ProviderUnavailable`` the provider's health check (``is_online``) is asked, and an
offline provider's error says so first; other errors never pay for the check."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from rollwise.adapters.errors import ProviderError, ProviderUnavailable, QueryError
from rollwise.adapters.metrics.base import NopProvider
from rollwise.runtime.measuring import PROVIDER_OFFLINE, query_metric


class _Said:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))


class _Provider(NopProvider):
    """A table provider that counts its health checks."""

    def __init__(self, error: ProviderError, *, online: bool) -> None:
        super().__init__({"up": error}, online=online)
        self.checks = 0

    def is_online(self) -> bool:
        self.checks += 1
        return super().is_online()


def _measure(provider: _Provider) -> str | None:
    measured = asyncio.run(
        query_metric(
            provider,
            "up",
            timeout=1.0,
            now=datetime.now(UTC),
            metrics=None,
            log=_Said(),
            name="error-ratio",
        )
    )
    assert measured.value is None
    return measured.error


@pytest.mark.parametrize(
    ("error", "online", "expected", "checks"),
    [
        pytest.param(
            ProviderUnavailable("Prometheus at http://p:9090 unreachable: connection refused"),
            False,
            f"{PROVIDER_OFFLINE}: Prometheus at http://p:9090 unreachable: connection refused",
            1,
            id="down",
        ),
        pytest.param(
            ProviderUnavailable("Prometheus at http://p:9090: query timed out"),
            True,
            "Prometheus at http://p:9090: query timed out",
            1,
            id="slow-query-on-a-live-provider",
        ),
        pytest.param(
            QueryError("several series"),
            False,
            "several series",
            0,
            id="query-error-asks-no-health-check",
        ),
    ],
)
def test_a_failed_query_says_whether_the_provider_is_offline(
    error: ProviderError, online: bool, expected: str, checks: int
) -> None:
    provider = _Provider(error, online=online)
    assert _measure(provider) == expected
    assert provider.checks == checks
