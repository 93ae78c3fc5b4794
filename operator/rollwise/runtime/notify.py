"""Notifications: the NotificationPolicies in memory, the delivery queue and its workers, and
the policies' status.

Flow: a pass posts a logged event (``runtime.passes.post_logged``) and hands it to
:meth:`Notifier.offer` on the event loop. ``offer`` never waits: it matches the event against
the policies of the object's own namespace (a policy never sees another namespace's objects)
and submits one :class:`Job` per matching sink to the :class:`DeliveryQueue`, or counts it as
dropped when the queue is full. So a sink that is slow, down or hostile never slows a pass.

The queue (:class:`DeliveryQueue`) is generic: a job says whose namespace's share it uses, how
to read its destination (in a worker thread: a Secret read), how to render the request for an
attempt (signed with the attempt's time), and whom to tell the outcome. Other producers (an
audit trail sending records to a CloudEvents sink) submit their own jobs. Design:

* bounded: at most ``capacity`` jobs wait (queued, parked or waiting for a retry); beyond
  that a job is dropped and counted (``rollwise_notifications_dropped_total``);
* ``workers`` asyncio workers send through a thread pool of their own (never the passes'
  threads), each attempt with the job's timeout (at most 10 s);
* at most ``per_namespace`` deliveries of one namespace in flight: a worker that takes a job
  of a namespace at its share parks it and takes another, so one tenant's dead sinks hold at
  most their share of the workers;
* retries with exponential backoff (1, 2, 4, ... s, capped; the receiver's ``Retry-After``
  when it gives one) are timers, not sleeping workers; only failures that may pass later
  (connection, timeout, 408/429/5xx) are retried.

Semantics (docs/notifications.md): at-least-once within a process, with a stable id per event
(``<uid>.<seq>``): the same event offered twice in a process is submitted once. After a restart
the runtime re-posts the events after the status's ``posted`` watermark and offers them again,
so a notification queued but not yet delivered when the process died is sent by the next one
(receivers deduplicate by the id); one that was queued and whose watermark had already moved is
lost, as is anything still in the queue when the retries run out.

The policies' status is written by one flusher task, at most once per ``flush_seconds`` per
policy and only when it changed: observedGeneration, Ready/InvalidSpec conditions, per-sink
counts and last delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import kopf

from rollwise import GROUP, NOTIFICATION_POLICIES, VERSION
from rollwise.adapters.errors import (
    AdapterError,
    NotFound,
    SinkError,
    SinkForbidden,
    SinkSecretError,
)
from rollwise.adapters.notify import NotificationPolicies, SinkCredentials, SinkSecrets, SinkSender
from rollwise.core.events import LoggedEvent
from rollwise.core.notification import (
    DeliveryResult,
    LastDelivery,
    NotificationPolicySpec,
    NotificationPolicyStatus,
    Sink,
    SinkStatus,
    SinkType,
    load_policy_spec,
    matches,
    policy_status,
)
from rollwise.core.notification_bodies import Notice, Outgoing, Subject, notice_id, render, signed
from rollwise.runtime.logging import logger
from rollwise.runtime.metrics import OperatorMetrics

PLURAL = NOTIFICATION_POLICIES

DEFAULT_CAPACITY = 1000
DEFAULT_WORKERS = 4
DEFAULT_NAMESPACE_DELIVERIES = 2
#: Retry backoff: the first delay and the cap (doubling in between).
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0
#: Seconds between two status writes of one policy, at most.
DEFAULT_FLUSH_SECONDS = 2.0
#: Event ids remembered to submit each event once per process.
REMEMBERED_IDS = 10_000
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


# --------------------------------------------------------------------------------------------
# The policies


@dataclass
class PolicyState:
    """What the notifier knows of one policy."""

    namespace: str
    name: str
    uid: str
    generation: int = 0
    spec: NotificationPolicySpec | None = None
    problems: list[str] = field(default_factory=list)
    sinks: dict[str, SinkStatus] = field(default_factory=dict)
    dropped: int = 0
    written: NotificationPolicyStatus | None = None
    dirty: bool = True


def _status_of(body: Mapping[str, Any]) -> NotificationPolicyStatus | None:
    raw = body.get("status")
    if not isinstance(raw, Mapping) or not raw:
        return None
    try:
        return NotificationPolicyStatus.model_validate(dict(raw))
    except ValueError:
        return None


def attempt_request(
    outgoing: Outgoing, sink_type: SinkType, credentials: SinkCredentials, timestamp: int
) -> Outgoing:
    """The request of one attempt: ``outgoing`` with the Secret's Authorization value (not to
    Slack-compatible sinks, whose URL is the credential) and signed at ``timestamp``."""
    headers = outgoing.headers
    if credentials.authorization and sink_type is not SinkType.SLACK:
        headers = (*headers, ("Authorization", credentials.authorization))
    return signed(Outgoing(headers, outgoing.body), credentials.signing_key, timestamp)


class Notifier:
    """The policies of the watched namespaces, matched against the events the passes offer."""

    def __init__(
        self,
        queue: DeliveryQueue,
        secrets: SinkSecrets,
        policies: NotificationPolicies,
        *,
        namespaces: Sequence[str] = (),
        metrics: OperatorMetrics | None = None,
        clock: Callable[[], datetime] = utc_now,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
    ) -> None:
        self.queue = queue
        self.secrets = secrets
        self.policies_api = policies
        self.namespaces = tuple(namespaces)
        self.metrics = metrics
        self.clock = clock
        self.flush_seconds = flush_seconds
        self.policies: dict[tuple[str, str], PolicyState] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._flusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._log = logger("rollwise.notify")

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Loads every policy (before any pass runs: kopf runs start-up handlers first), then
        starts the workers and the status flusher."""
        try:
            bodies = await asyncio.to_thread(self.policies_api.list, self.namespaces)
        except NotFound:
            self._log.warning("the NotificationPolicy CRD is not installed; no notifications")
            bodies = []
        except AdapterError as exc:
            self._log.error("cannot list NotificationPolicies", error=exc.message)
            bodies = []
        for body in bodies:
            self.observe(body)
        self.queue.start()
        self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())
        self._log.info("notifications on", policies=len(self.policies))

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        await self.flush()
        await self.queue.stop()

    # ------------------------------------------------------------------ policies

    def observe(self, body: Mapping[str, Any]) -> None:
        """A policy as its watch delivered it (added or changed)."""
        meta = body.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        uid = str(meta.get("uid") or "")
        if not namespace or not name:
            return
        if self.namespaces and namespace not in self.namespaces:
            return
        key = (namespace, name)
        state = self.policies.get(key)
        if state is None or state.uid != uid:
            recorded = _status_of(body)
            state = PolicyState(namespace=namespace, name=name, uid=uid, written=recorded)
            if recorded is not None:
                state.sinks = {s.name: s for s in recorded.sinks}
                state.dropped = recorded.dropped
            self.policies[key] = state
        generation = int(meta.get("generation") or 0)
        if generation == state.generation and state.generation:
            return
        state.generation = generation
        state.spec, state.problems = load_policy_spec(dict(body.get("spec") or {}))
        if state.spec is not None:
            names = [s.name for s in state.spec.sinks]
            state.sinks = {n: state.sinks.get(n) or SinkStatus(name=n) for n in names}
        state.dirty = True
        self._wake.set()
        log = self._log.bind(namespace=namespace, policy=name)
        if state.problems:
            log.warning("invalid NotificationPolicy", problems=state.problems)
        else:
            log.info("NotificationPolicy active", generation=generation)

    def forget(self, namespace: str, name: str) -> None:
        self.policies.pop((namespace, name), None)

    # ------------------------------------------------------------------ events

    def offer(self, subject: Subject, entry: LoggedEvent) -> None:
        """Queues the notifications of a logged event (see the module's docstring). Never
        waits, never raises."""
        event_id = notice_id(subject.uid, entry.seq)
        if event_id in self._seen:
            return
        self._seen[event_id] = None
        while len(self._seen) > REMEMBERED_IDS:
            self._seen.popitem(last=False)
        notice: Notice | None = None
        for state in list(self.policies.values()):
            spec = state.spec
            if state.namespace != subject.namespace or spec is None:
                continue
            if not matches(spec, subject.kind, subject.labels, entry.reason):
                continue
            if notice is None:
                notice = Notice(
                    subject=subject,
                    seq=entry.seq,
                    reason=entry.reason,
                    type=entry.type,
                    message=entry.message,
                    time=entry.time,
                )
            for sink in spec.sinks:
                self._submit(state, spec, sink, notice)

    def _submit(
        self, state: PolicyState, spec: NotificationPolicySpec, sink: Sink, notice: Notice
    ) -> None:
        mode = sink.cloud_events.mode if sink.cloud_events is not None else None
        outgoing = render(notice, sink.type, policy=state.name, sink=sink.name, mode=mode)
        job = Job(
            namespace=state.namespace,
            sink_type=sink.type,
            resolve=partial(self.secrets.read, state.namespace, sink.secret_ref.name),
            render=partial(attempt_request, outgoing, sink.type),
            report=partial(
                self._reported, (state.namespace, state.name), state.uid, sink.name, notice.id
            ),
            timeout=float(spec.delivery.timeout_seconds),
            retries=spec.delivery.retries,
        )
        if not self.queue.submit(job):
            state.dropped += 1
            state.dirty = True
            self._log.warning(
                "notification dropped: the queue is full",
                namespace=state.namespace,
                policy=state.name,
                sink=sink.name,
                event_id=notice.id,
            )

    def _reported(
        self, key: tuple[str, str], uid: str, sink: str, event_id: str, outcome: Outcome
    ) -> None:
        log = self._log.bind(namespace=key[0], policy=key[1], sink=sink, event_id=event_id)
        if outcome.result is DeliveryResult.DELIVERED:
            log.info(
                "notification delivered", attempts=outcome.attempts, http_status=outcome.http_status
            )
        else:
            log.warning(
                "notification not delivered",
                result=outcome.result.value,
                attempts=outcome.attempts,
                http_status=outcome.http_status,
                error=outcome.message,
            )
        state = self.policies.get(key)
        if state is None or state.uid != uid or sink not in state.sinks:
            return
        before = state.sinks[sink]
        counts = {
            "delivered": before.delivered + (outcome.result is DeliveryResult.DELIVERED),
            "failed": before.failed + (outcome.result is DeliveryResult.FAILED),
            "refused": before.refused + (outcome.result is DeliveryResult.REFUSED),
        }
        state.sinks[sink] = SinkStatus(
            name=sink,
            **counts,
            last_delivery=LastDelivery(
                time=outcome.finished,
                result=outcome.result,
                http_status=outcome.http_status,
                attempts=outcome.attempts,
                event_id=event_id,
                message=outcome.message,
            ),
        )
        state.dirty = True
        self._wake.set()

    # ------------------------------------------------------------------ status

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()
            await asyncio.sleep(self.flush_seconds)

    async def flush(self) -> None:
        """Writes the status of every policy whose status changed."""
        for key, state in list(self.policies.items()):
            if not state.dirty:
                continue
            status = policy_status(
                state.written,
                generation=state.generation,
                problems=state.problems,
                sinks=list(state.sinks.values()),
                dropped=state.dropped,
                now=self.clock(),
            )
            state.dirty = False
            if state.written is not None and status == state.written:
                continue
            wire = status.model_dump(mode="json", by_alias=True, exclude_none=True)
            try:
                await asyncio.to_thread(self.policies_api.patch_status, *key, wire)
            except asyncio.CancelledError:
                state.dirty = True  # stopped mid-write: the final flush writes it
                raise
            except NotFound:
                self.policies.pop(key, None)
                continue
            except AdapterError as exc:
                state.dirty = True
                self._wake.set()
                self._log.warning(
                    "cannot write a NotificationPolicy's status",
                    namespace=key[0],
                    policy=key[1],
                    error=exc.message,
                )
                continue
            state.written = status


def register_notifications(registry: kopf.OperatorRegistry, notifier: Notifier) -> None:
    """Loads the policies at start-up (before any pass), follows their changes, and stops the
    queue at exit."""

    @kopf.on.startup(id="notifications", registry=registry)
    async def start_notifications(**_: Any) -> None:
        await notifier.start()

    @kopf.on.cleanup(id="notifications", registry=registry)
    async def stop_notifications(**_: Any) -> None:
        await notifier.stop()

    @kopf.on.event(GROUP, VERSION, PLURAL, id="notification-policy", registry=registry)
    async def policy_changed(
        *, type: str, event: Mapping[str, Any], name: str, namespace: str | None, **_: Any
    ) -> None:
        if namespace is None:
            return
        if type == "DELETED":
            notifier.forget(namespace, name)
            return
        body = event.get("object")
        if isinstance(body, Mapping):
            notifier.observe(body)


__all__ = [
    "DEFAULT_CAPACITY",
    "DEFAULT_FLUSH_SECONDS",
    "DEFAULT_NAMESPACE_DELIVERIES",
    "DEFAULT_WORKERS",
    "DeliveryQueue",
    "Job",
    "Notifier",
    "Outcome",
    "PolicyState",
    "attempt_request",
    "register_notifications",
    "retry_delay",
]
