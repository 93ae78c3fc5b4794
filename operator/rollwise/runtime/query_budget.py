"""Where metric queries run: a thread pool of their own, a share per namespace, a timeout
cap; and how a provider's failure is shortened for status and counted. Shared by every
measuring and checking function of the passes (:mod:`rollwise.runtime.passes`,
:mod:`rollwise.runtime.measure_kinds`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from rollwise.adapters.errors import KubeError

#: Longest provider error a measurement keeps (it reaches status and events).
MAX_MEASUREMENT_ERROR = 300


def clip_error(text: str) -> str:
    """A provider's error cut to :data:`MAX_MEASUREMENT_ERROR` characters."""
    if len(text) <= MAX_MEASUREMENT_ERROR:
        return text
    return text[: MAX_MEASUREMENT_ERROR - 3] + "..."


def error_code(error: BaseException) -> str:
    """The ``code`` label of ``rollwise_api_errors_total``."""
    if isinstance(error, KubeError) and error.status is not None:
        return str(error.status)
    return type(error).__name__


#: Longest a metric query may take, whatever its spec asks (operator setting
#: ``maxQueryTimeout``): a slow provider costs its namespace's budget, bounded.
DEFAULT_MAX_QUERY_SECONDS = 30.0


T = TypeVar("T")


class NamespaceShares:
    """At most ``limit`` holders at once per namespace (no bound when ``limit`` is None): a
    tenant's share of something all namespaces use. A namespace's semaphore lives while
    somebody holds or waits for it."""

    def __init__(self, limit: int | None) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"a namespace's share must be at least 1, not {limit}")
        self.limit = limit
        self._held: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def share(self, namespace: str | None) -> AsyncIterator[None]:
        if self.limit is None or namespace is None:
            yield
            return
        semaphore, users = self._held.get(namespace, (None, 0))
        if semaphore is None:
            semaphore = asyncio.Semaphore(self.limit)
        self._held[namespace] = (semaphore, users + 1)
        try:
            async with semaphore:
                yield
        finally:
            semaphore, users = self._held[namespace]
            if users <= 1:
                del self._held[namespace]
            else:
                self._held[namespace] = (semaphore, users - 1)

    def in_use(self) -> dict[str, int]:
        """Namespaces with holders or waiters, and how many."""
        return {namespace: users for namespace, (_, users) in self._held.items()}


class QueryBudget:
    """Where metric queries and query checks run: a thread pool of their own (``threads``),
    at most ``per_namespace`` of them in flight for any one namespace, each with a timeout of
    at most ``max_timeout`` seconds.

    A tenant whose specs point at a slow or hostile Prometheus then waits on its own share:
    the other namespaces' queries keep their threads, and the passes' other blocking calls
    (the API server's) never queue behind a query at all."""

    def __init__(
        self,
        threads: int,
        *,
        per_namespace: int | None = None,
        max_timeout: float = DEFAULT_MAX_QUERY_SECONDS,
    ) -> None:
        if threads < 1:
            raise ValueError(f"queries need at least one thread, not {threads}")
        self.threads = threads
        self.per_namespace = per_namespace
        self.max_timeout = max_timeout
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="rollwise-query")
        self._namespaces = NamespaceShares(per_namespace)

    async def run(self, namespace: str, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the query pool, within ``namespace``'s share."""
        async with self._namespaces.share(namespace):
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


async def call_in_budget(
    budget: QueryBudget | None, namespace: str, fn: Callable[..., T], *args: Any
) -> T:
    if budget is None:
        return await asyncio.to_thread(fn, *args)
    return await budget.run(namespace, fn, *args)


__all__ = [
    "DEFAULT_MAX_QUERY_SECONDS",
    "MAX_MEASUREMENT_ERROR",
    "NamespaceShares",
    "QueryBudget",
    "call_in_budget",
    "clip_error",
    "error_code",
]
