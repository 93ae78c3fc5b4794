"""Notifications: the NotificationPolicies in memory, the delivery queue and its workers, and
the policies' status.

Flow: a pass posts a logged event (``runtime.passes.post_logged``) and hands it to
:meth:`Notifier.offer` on the event loop. ``offer`` never waits: it matches the event against
the policies of the object's own namespace (a policy never sees another namespace's objects)
and submits one :class:`Job` per matching sink to the :class:`DeliveryQueue`, or counts it as
dropped when the queue is full. So a sink that is slow, down or hostile never slows a pass.

The queue (:class:`rollwise.runtime.delivery.DeliveryQueue`) is generic: a job says whose
namespace's share it uses, how to read its destination (in a worker thread: a Secret read),
how to render the request for an attempt (signed with the attempt's time), and whom to tell
the outcome. Other producers (an audit trail sending records to a CloudEvents sink) submit
their own jobs. Design:

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
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import kopf

from rollwise import GROUP, NOTIFICATION_POLICIES, VERSION
from rollwise.adapters.errors import (
    AdapterError,
    NotFound,
)
from rollwise.adapters.notify import NotificationPolicies, SinkCredentials, SinkSecrets
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
from rollwise.runtime.delivery import (
    DeliveryQueue,
    Job,
    Outcome,
    utc_now,
)
from rollwise.runtime.logging import logger
from rollwise.runtime.metrics import OperatorMetrics

PLURAL = NOTIFICATION_POLICIES

#: Seconds between two status writes of one policy, at most.
DEFAULT_FLUSH_SECONDS = 2.0
#: Event ids remembered to submit each event once per process.
REMEMBERED_IDS = 10_000
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
    "DEFAULT_FLUSH_SECONDS",
    "Notifier",
    "PolicyState",
    "attempt_request",
    "register_notifications",
]
