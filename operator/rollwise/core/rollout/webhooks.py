"""Gating webhooks of a Rollout (``spec.strategy.canary.webhooks``): where each is called, what
it is sent, and what its answer does.

* ``confirm-rollout``: before a new revision's canary starts (nothing of it is scaled up or
  routed); until every one answered 2xx the revision waits, phase Paused with reason
  ``AwaitingConfirmation``, asked again every :data:`RECALL_SECONDS`. Never a rollback.
* ``pre-rollout``: once the canary's pods for the first weight are available, before that
  weight is written (and before a first header route or mirror); anything but a 2xx within
  the timeout fails the canary: rolled back, Degraded with reason ``PreRolloutHookFailed``.
  Called once per canary run (a retry runs it again).
* ``confirm-promotion``: before the canary gets 100% (a ``setWeight: 100`` step, or the
  promotion after the last step); holds like ``confirm-rollout``.
* ``rollback``: called once after a canary was rolled back or aborted; its answer is recorded
  (``WebhookPassed`` / ``WebhookFailed``) and never holds anything.

The core never calls anything: a gate it reaches records the webhook as ``Pending`` in
``status.webhooks`` (persisted first, like every decision) and asks for a pass at once; the
runtime calls what :func:`due_webhooks` names and hands the answers back as
``Observations.webhook_answers``, which the next decision records (:class:`Hooks`). A
promote-full request skips the remaining steps and their analysis, not the confirm-promotion
webhook: the webhook belongs to the spec (a person goes past it by removing it, or aborts).

Pure: no clock (``now`` is an argument), no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from rollwise.core.durations import InvalidDuration, add_seconds, format_seconds, parse_seconds
from rollwise.core.observations import ManualRequest
from rollwise.core.rollout import reasons as R
from rollwise.core.rollout.state import PassState
from rollwise.core.rollout.status import RolloutStatus, WebhookCall, WebhookResult
from rollwise.core.spec import RolloutSpec, Webhook, WebhookType

#: How often a holding confirm webhook is asked again.
RECALL_SECONDS = 5.0

#: The confirm kinds: anything but a 2xx holds, asked again.
CONFIRM_TYPES = frozenset({WebhookType.CONFIRM_ROLLOUT, WebhookType.CONFIRM_PROMOTION})

#: ``body.version``: the version of the documented body (docs/webhooks.md).
BODY_VERSION = "rollwise.dev/v1"


class Gate(Enum):
    """Where the webhooks of one gate stand for a revision."""

    OPEN = "open"
    HOLD = "hold"
    FAILED = "failed"


@dataclass(frozen=True)
class WebhookRequest:
    """One call the runtime makes: POST ``body`` (JSON) to ``url`` within ``timeout_seconds``."""

    name: str
    type: WebhookType
    revision: str
    attempt: int
    url: str
    timeout_seconds: float
    body: dict[str, Any]


def timeout_seconds(hook: Webhook) -> float:
    """The webhook's timeout (validated: above 0 and bounded); 10 s when it does not parse."""
    try:
        return parse_seconds(hook.timeout)
    except InvalidDuration:
        return 10.0


def call_id(namespace: str, name: str, hook: str, type_: str, revision: str) -> str:
    """The call's id: the same on every attempt of one webhook for one revision, so that a
    receiver can deduplicate."""
    key = f"{namespace}/{name}/{hook}/{type_}/{revision}".encode()
    return hashlib.sha256(key).hexdigest()[:32]


def webhook_body(
    hook: Webhook, call: WebhookCall, status: RolloutStatus, *, namespace: str, name: str
) -> dict[str, Any]:
    """The JSON body of a call (docs/webhooks.md): the Rollout, the webhook, the revisions,
    where the canary stands, the webhook's metadata and the call's id."""
    return {
        "version": BODY_VERSION,
        "id": call_id(namespace, name, hook.name, hook.type.value, call.revision),
        "name": name,
        "namespace": namespace,
        "webhook": hook.name,
        "type": hook.type.value,
        "phase": status.phase.value if status.phase is not None else None,
        "checksum": call.revision,
        "canaryRevision": call.revision,
        "stableRevision": status.stable_revision,
        "step": status.step,
        "weight": status.canary_weight if status.canary_revision == call.revision else 0,
        "attempt": call.calls + 1,
        "metadata": dict(hook.metadata),
    }


def _current(call: WebhookCall, status: RolloutStatus, template_hash: str) -> bool:
    """Whether ``call`` is still about where the Rollout stands: a confirm-rollout of the
    revision the template asks for (not yet a canary), a pre-rollout or confirm-promotion of
    the running canary; a rollback notice is always current."""
    if call.type == WebhookType.CONFIRM_ROLLOUT.value:
        return call.revision == template_hash and template_hash not in (
            status.stable_revision,
            status.canary_revision,
        )
    if call.type in (WebhookType.PRE_ROLLOUT.value, WebhookType.CONFIRM_PROMOTION.value):
        return call.revision == status.canary_revision
    return True


def due_webhooks(
    spec: RolloutSpec,
    status: RolloutStatus | None,
    template_hash: str,
    now: datetime,
    *,
    namespace: str,
    name: str,
) -> list[WebhookRequest]:
    """The calls to make this pass: each webhook a gate recorded ``Pending``, and each
    holding confirm webhook last asked :data:`RECALL_SECONDS` ago or more; none whose entry
    is no longer where the Rollout stands or whose webhook left the spec."""
    if status is None or not status.webhooks:
        return []
    hooks = {hook.name: hook for hook in spec.strategy.canary.webhooks}
    due: list[WebhookRequest] = []
    for call in status.webhooks:
        hook = hooks.get(call.name)
        if hook is None or hook.type.value != call.type:
            continue
        if not _current(call, status, template_hash):
            continue
        if call.result is WebhookResult.HELD:
            last = call.last_call
            if last is not None and now < add_seconds(last, RECALL_SECONDS):
                continue
        elif call.result is not WebhookResult.PENDING:
            continue
        due.append(
            WebhookRequest(
                name=hook.name,
                type=hook.type,
                revision=call.revision,
                attempt=call.calls + 1,
                url=hook.url,
                timeout_seconds=timeout_seconds(hook),
                body=webhook_body(hook, call, status, namespace=namespace, name=name),
            )
        )
    return due


def failed_pre_rollout(status: RolloutStatus, revision: str | None) -> WebhookCall | None:
    """The pre-rollout webhook that failed ``revision`` (which was rolled back), if one did."""
    for call in status.webhooks or ():
        if (
            call.type == WebhookType.PRE_ROLLOUT.value
            and call.revision == revision
            and call.result is WebhookResult.FAILED
        ):
            return call
    return None


def held_confirmation(status: RolloutStatus) -> WebhookCall | None:
    """A confirm webhook that holds the Rollout now (what the plugin and Argo CD show)."""
    for call in status.webhooks or ():
        confirm = call.type in {t.value for t in CONFIRM_TYPES}
        if confirm and call.result in (WebhookResult.PENDING, WebhookResult.HELD):
            return call
    return None


def _answer_text(code: int | None, detail: str) -> str:
    if code is None:
        return detail or "no answer"
    return f"answered {code}" + (f": {detail}" if detail else "")


class Hooks(PassState):
    """The gating webhooks inside a pass: their answers recorded, their gates asked."""

    #: Why a revision waits for a confirm webhook (empty: it does not).
    confirm_wait: str = ""

    def _record_webhooks(self) -> None:
        """This pass's answers recorded in ``status.webhooks`` (with their events); entries
        of webhooks no longer in the spec dropped, and so are waiting entries no longer about
        where the Rollout stands (a confirm of a revision the template left, a pre-rollout of
        a canary that ended): nothing waits on them any more."""
        hooks = {hook.name: hook for hook in self.canary_spec.webhooks}
        kept: list[WebhookCall] = []
        waiting = (WebhookResult.PENDING, WebhookResult.HELD)
        for call in self.s.webhooks or ():
            hook = hooks.get(call.name)
            if hook is None or hook.type.value != call.type:
                continue
            if call.result in waiting and not _current(call, self.s, self.obs.template_hash):
                continue
            answer = self.obs.webhook_answers.get(call.name)
            if (
                answer is None
                or answer.revision != call.revision
                or answer.attempt != call.calls + 1
            ):
                kept.append(call)
                continue
            every = format_seconds(RECALL_SECONDS)
            text = _answer_text(answer.code, answer.detail)[:300]
            fields = {"type": call.type, "name": call.name, "revision": call.revision}
            if answer.ok:
                result = WebhookResult.PASSED
                self.emit(R.WEBHOOK_PASSED, code=answer.code, **fields)
            elif hook.type in CONFIRM_TYPES:
                result = WebhookResult.HELD
                if call.result is not WebhookResult.HELD or call.code != answer.code:
                    self.emit(R.WEBHOOK_HELD, detail=text, every=every, **fields)
            else:
                result = WebhookResult.FAILED
                self.emit(R.WEBHOOK_FAILED, detail=text, **fields)
            kept.append(
                call.model_copy(
                    update={
                        "result": result,
                        "code": answer.code,
                        "message": text,
                        "last_call": self.now,
                        "calls": call.calls + 1,
                    }
                )
            )
        if any(
            c.type == WebhookType.ROLLBACK.value and c.result is WebhookResult.PENDING for c in kept
        ):
            self.wake(self.now)  # a rollback notice still to send
        self._set_calls(kept)

    def _set_calls(self, calls: Sequence[WebhookCall]) -> None:
        new = list(calls) or None
        if new != self.s.webhooks:
            self.update(webhooks=new)

    def _gate(self, type_: WebhookType, revision: str, what: str) -> Gate:
        """Where the ``type_`` webhooks stand for ``revision``: each not yet asked for it is
        recorded ``Pending`` (an ``AwaitingConfirmation`` event for a confirm gate), and a pass
        is asked for when the next call is due."""
        hooks = [hook for hook in self.canary_spec.webhooks if hook.type is type_]
        if not hooks:
            return Gate.OPEN
        calls = {call.name: call for call in self.s.webhooks or ()}
        created = False
        found: list[WebhookCall] = []
        for hook in hooks:
            call = calls.get(hook.name)
            if call is None or call.revision != revision or call.type != type_.value:
                call = WebhookCall(name=hook.name, type=type_.value, revision=revision)
                calls[hook.name] = call
                created = True
            found.append(call)
        if created:
            order = [hook.name for hook in self.canary_spec.webhooks]
            self._set_calls([calls[n] for n in order if n in calls])
        if any(call.result is WebhookResult.FAILED for call in found):
            return Gate.FAILED
        waiting = [call for call in found if call.result is not WebhookResult.PASSED]
        if not waiting:
            return Gate.OPEN
        for call in waiting:
            if call.result is WebhookResult.PENDING or call.last_call is None:
                self.wake(self.now)
            else:
                self.wake(add_seconds(call.last_call, RECALL_SECONDS))
        if created and type_ in CONFIRM_TYPES:
            names = ", ".join(call.name for call in waiting)
            self.emit(R.AWAITING_CONFIRMATION, what=what, type=type_.value, names=names)
        return Gate.HOLD

    def _waiting_text(self, type_: WebhookType, revision: str) -> str:
        """The webhooks of ``type_`` that have not passed for ``revision``, with their last
        answers."""
        parts = [
            f"{call.name} ({call.message or call.result.value})"
            for call in self.s.webhooks or ()
            if call.type == type_.value
            and call.revision == revision
            and call.result is not WebhookResult.PASSED
        ]
        return ", ".join(parts)

    def _confirmed(self, type_: WebhookType, revision: str, what: str) -> bool:
        """A confirm gate: True once every ``type_`` webhook answered 2xx for ``revision``;
        otherwise :attr:`confirm_wait` says what waits."""
        if self._gate(type_, revision, what) is Gate.OPEN:
            return True
        self.confirm_wait = (
            f"{what} waits for {type_.value} webhook {self._waiting_text(type_, revision)}"
        )
        return False

    def _pre_rollout_open(self, head: str) -> bool:
        """The pre-rollout gate of the running canary: True once passed; a failure rolls the
        canary back; otherwise the step waits (the webhook is being called)."""
        canary = self.s.canary_revision
        if canary is None:
            return False
        gate = self._gate(WebhookType.PRE_ROLLOUT, canary, head)
        if gate is Gate.OPEN:
            return True
        if gate is Gate.FAILED:
            failed = failed_pre_rollout(self.s, canary)
            detail = failed.message if failed is not None else "no 2xx answer"
            name = failed.name if failed is not None else "?"
            self._rollback(cause=f"pre-rollout webhook {name} failed ({detail})")
            return False
        self.message = (
            f"{head}: calling pre-rollout webhook "
            f"{self._waiting_text(WebhookType.PRE_ROLLOUT, canary)} before any traffic"
        )
        return False

    def _start_canary(self, rev: str) -> None:
        """A canary (re)starts: the pre-rollout and confirm-promotion webhooks are asked again
        for it (a retry of a rolled-back revision runs them anew)."""
        super()._start_canary(rev)
        again = {WebhookType.PRE_ROLLOUT.value, WebhookType.CONFIRM_PROMOTION.value}
        kept = [
            call
            for call in self.s.webhooks or ()
            if not (call.type in again and call.revision == rev)
        ]
        self._set_calls(kept)

    def _queue_rollback_hooks(self, revision: str) -> None:
        """Every rollback webhook recorded ``Pending`` for ``revision``: called next pass,
        after the rollback is stored and acted on."""
        hooks = [h for h in self.canary_spec.webhooks if h.type is WebhookType.ROLLBACK]
        if not hooks:
            return
        calls = {call.name: call for call in self.s.webhooks or ()}
        for hook in hooks:
            calls[hook.name] = WebhookCall(
                name=hook.name, type=WebhookType.ROLLBACK.value, revision=revision
            )
        order = [hook.name for hook in self.canary_spec.webhooks]
        self._set_calls([calls[n] for n in order if n in calls])
        self.wake(self.now)

    def _rollback(self, *, cause: str = "", request: ManualRequest | None = None) -> None:
        canary = self.s.canary_revision
        super()._rollback(cause=cause, request=request)
        if canary is not None and self.s.rolled_back_revision == canary:
            self._queue_rollback_hooks(canary)


__all__ = [
    "BODY_VERSION",
    "CONFIRM_TYPES",
    "RECALL_SECONDS",
    "Gate",
    "Hooks",
    "WebhookRequest",
    "call_id",
    "due_webhooks",
    "failed_pre_rollout",
    "held_confirmation",
    "timeout_seconds",
    "webhook_body",
]
