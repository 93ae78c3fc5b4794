"""The delivery queue of notifications (:class:`DeliveryQueue`): bounded, with its own
workers and threads, a share per namespace, and retries as timers.

It is generic: a :class:`Job` says whose namespace's share it uses, how to read its
destination (in a worker thread: a Secret read), how to render the request for an attempt
(signed with the attempt's time), and whom to tell the :class:`Outcome`. The notifications
of posted events (:mod:`rollwise.runtime.notify`) are one producer; other producers submit
their own jobs. The design (bounds, shares, backoff) is described in
:mod:`rollwise.runtime.notify`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from rollwise.adapters.errors import (
    AdapterError,
    SinkError,
    SinkForbidden,
    SinkSecretError,
)
from rollwise.adapters.notify import SinkCredentials, SinkSender
from rollwise.core.notification import (
    DeliveryResult,
    SinkType,
)
from rollwise.core.notification_bodies import Outgoing
from rollwise.runtime.logging import logger
from rollwise.runtime.metrics import OperatorMetrics

DEFAULT_CAPACITY = 1000
DEFAULT_WORKERS = 4
DEFAULT_NAMESPACE_DELIVERIES = 2
#: Retry backoff: the first delay and the cap (doubling in between).
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0
#: Longest message a sink's status keeps.
MAX_STATUS_MESSAGE = 300


def utc_now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------
# The queue


@dataclass(frozen=True)
class Outcome:
    """How a job ended: its result, the attempts made, the receiver's last HTTP status and
    what went wrong (empty when delivered)."""

    result: DeliveryResult
    attempts: int
    http_status: int | None
    message: str
    finished: datetime


@dataclass
class Job:
    """One delivery. ``resolve`` (a worker thread) reads the destination; ``render`` builds the
    request of an attempt from it and the attempt's Unix time; ``report`` (the event loop)
    hears the outcome once."""

    namespace: str
    sink_type: SinkType
    resolve: Callable[[], SinkCredentials]
    render: Callable[[SinkCredentials, int], Outgoing]
    report: Callable[[Outcome], None]
    timeout: float = 5.0
    retries: int = 3
    attempts: int = 0


def retry_delay(attempts: int, retry_after: float | None = None) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: the receiver's
    ``Retry-After`` when given, else 1, 2, 4, ...; at most 30."""
    if retry_after is not None:
        return min(retry_after, RETRY_MAX_SECONDS)
    return float(min(RETRY_FIRST_SECONDS * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS))


class DeliveryQueue:
    """The bounded queue and its workers (see the module's docstring). Start and stop it on the
    event loop that submits to it."""

    def __init__(
        self,
        sender: SinkSender,
        *,
        capacity: int = DEFAULT_CAPACITY,
        workers: int = DEFAULT_WORKERS,
        per_namespace: int | None = DEFAULT_NAMESPACE_DELIVERIES,
        metrics: OperatorMetrics | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if capacity < 1 or workers < 1:
            raise ValueError("a delivery queue needs room for a job and a worker")
        self.sender = sender
        self.capacity = capacity
        self.workers = workers
        self.per_namespace = per_namespace
        self.metrics = metrics
        self.clock = clock
        self._ready: asyncio.Queue[Job] = asyncio.Queue()
        self._parked: dict[str, deque[Job]] = {}
        self._inflight: dict[str, int] = {}
        self._waiting = 0  # queued, parked or waiting for a retry
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="rollwise-notify")
        self._log = logger("rollwise.notify")

    @property
    def waiting(self) -> int:
        return self._waiting

    def submit(self, job: Job) -> bool:
        """Queues ``job``; False (counted as dropped) when the queue is full. Never waits."""
        if self._waiting >= self.capacity:
            if self.metrics is not None:
                self.metrics.notification_dropped()
            return False
        self._waiting += 1
        self._gauge()
        self._ready.put_nowait(job)
        return True

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._work(), name=f"rollwise-notify-{i}") for i in range(self.workers)
        ]

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def drained(self, timeout: float) -> bool:
        """Waits until nothing waits and nothing is in flight (tests); False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._waiting or any(self._inflight.values()):
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.notification_queue.set(self._waiting)

    async def _work(self) -> None:
        carry: Job | None = None
        while True:
            job = carry if carry is not None else await self._ready.get()
            carry = None
            namespace = job.namespace
            if self.per_namespace is not None and self._inflight.get(namespace, 0) >= (
                self.per_namespace
            ):
                self._parked.setdefault(namespace, deque()).append(job)
                continue
            self._waiting -= 1
            self._gauge()
            self._inflight[namespace] = self._inflight.get(namespace, 0) + 1
            try:
                await self._attempt(job)
            except Exception:
                self._log.exception("a notification delivery crashed", namespace=namespace)
            finally:
                left = self._inflight[namespace] - 1
                if left:
                    self._inflight[namespace] = left
                else:
                    del self._inflight[namespace]
                parked = self._parked.get(namespace)
                if parked:
                    carry = parked.popleft()
                    if not parked:
                        del self._parked[namespace]

    async def _attempt(self, job: Job) -> None:
        loop = asyncio.get_running_loop()
        job.attempts += 1
        status: int | None = None
        try:
            credentials = await loop.run_in_executor(self._pool, job.resolve)
            outgoing = job.render(credentials, int(self.clock().timestamp()))
            status = await loop.run_in_executor(
                self._pool, self.sender.post, credentials.url, outgoing, job.timeout
            )
        except SinkError as exc:
            if exc.retryable and job.attempts <= job.retries:
                self._retry_later(job, retry_delay(job.attempts, exc.retry_after))
                return
            refused = isinstance(exc, SinkForbidden | SinkSecretError)
            result = DeliveryResult.REFUSED if refused else DeliveryResult.FAILED
            self._finish(job, result, exc.status, exc.message)
            return
        except AdapterError as exc:
            self._finish(job, DeliveryResult.FAILED, None, exc.message)
            return
        self._finish(job, DeliveryResult.DELIVERED, status, "")

    def _retry_later(self, job: Job, delay: float) -> None:
        self._waiting += 1
        self._gauge()
        loop = asyncio.get_running_loop()

        def again() -> None:
            self._timers.discard(timer)
            self._ready.put_nowait(job)

        timer = loop.call_later(delay, again)
        self._timers.add(timer)

    def _finish(self, job: Job, result: DeliveryResult, status: int | None, message: str) -> None:
        if self.metrics is not None:
            self.metrics.notified(job.sink_type.value, result.value)
        outcome = Outcome(
            result=result,
            attempts=job.attempts,
            http_status=status,
            message=message[:MAX_STATUS_MESSAGE],
            finished=self.clock(),
        )
        try:
            job.report(outcome)
        except Exception:
            self._log.exception("reporting a delivery outcome failed")


__all__ = [
    "DEFAULT_CAPACITY",
    "DEFAULT_NAMESPACE_DELIVERIES",
    "DEFAULT_WORKERS",
    "RETRY_FIRST_SECONDS",
    "RETRY_MAX_SECONDS",
    "DeliveryQueue",
    "Job",
    "Outcome",
    "retry_delay",
    "utc_now",
]
