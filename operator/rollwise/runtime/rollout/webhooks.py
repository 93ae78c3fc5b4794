"""The gating webhooks of a Rollout pass: where their URLs may point, and the calls the core
asked for (:func:`rollwise.core.rollout.webhooks.due_webhooks`), made side by side in the
query threads within the namespace's share (:class:`rollwise.runtime.query_budget.QueryBudget`:
a tenant's slow receivers hold its own share, never another namespace's calls nor the event
loop), each within its webhook's timeout, their answers handed to the core as observations.

A call is made before the decision that records its answer is stored: when that store fails
(a conflict), the next pass calls again. Receivers deduplicate by the call's id
(docs/webhooks.md).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from rollwise.core.observations import WebhookAnswer
from rollwise.core.rollout.status import RolloutStatus
from rollwise.core.rollout.webhooks import due_webhooks
from rollwise.core.spec import RolloutSpec
from rollwise.runtime.metrics import OperatorMetrics
from rollwise.runtime.query_budget import QueryBudget, call_in_budget
from rollwise.runtime.rollout.ports import GateHooksPort

#: Why a spec with webhooks is invalid on an operator built without a webhook caller.
NO_CALLER = "this operator makes no webhook calls (it was started without a webhook caller)"


def webhook_refusals(spec: RolloutSpec, hooks: GateHooksPort | None) -> list[str]:
    """A message per webhook whose URL the operator's host policy refuses, naming the field."""
    found: list[str] = []
    for i, hook in enumerate(spec.strategy.canary.webhooks):
        where = f"spec.strategy.canary.webhooks[{i}].url"
        why = NO_CALLER if hooks is None else hooks.refusal(hook.url)
        if why is not None:
            found.append(f"{where}: {why} (operator settings ROLLWISE_NOTIFY_*, docs/webhooks.md)")
    return found


async def call_webhooks(
    spec: RolloutSpec,
    status: RolloutStatus | None,
    template_hash: str,
    now: datetime,
    hooks: GateHooksPort | None,
    *,
    namespace: str,
    name: str,
    log: Any,
    metrics: OperatorMetrics | None = None,
    budget: QueryBudget | None = None,
) -> dict[str, WebhookAnswer]:
    """The answers of the webhooks due now, by name (empty: none due)."""
    if hooks is None:
        return {}
    due = due_webhooks(spec, status, template_hash, now, namespace=namespace, name=name)
    if not due:
        return {}
    results = await asyncio.gather(
        *(
            call_in_budget(budget, namespace, hooks.call, r.name, r.url, r.body, r.timeout_seconds)
            for r in due
        )
    )
    answers = [
        WebhookAnswer(name=r.name, revision=r.revision, attempt=r.attempt, code=code, detail=detail)
        for r, (code, detail) in zip(due, results, strict=True)
    ]
    for request, answer in zip(due, answers, strict=True):
        if metrics is not None:
            metrics.webhook_called(request.type.value, answer.code)
        log.info(
            "webhook called",
            webhook=request.name,
            type=request.type.value,
            revision=request.revision,
            code=answer.code,
            detail=answer.detail or None,
        )
    return {answer.name: answer for answer in answers}


__all__ = ["NO_CALLER", "call_webhooks", "webhook_refusals"]
