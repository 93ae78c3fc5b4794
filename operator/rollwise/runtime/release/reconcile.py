"""One reconcile pass of one ModelRelease: observe → decide → persist → act → post events.

The same shape as the Rollout's pass (the skeleton both share: :mod:`rollwise.runtime.skeleton`),
with the ModelRelease's ports (:mod:`rollwise.runtime.release.ports`); the observe step is
:mod:`rollwise.runtime.release.observe`:

1. **Observe** (from worker threads, in parallel): the release (from the operator's watch
   cache when the loop hands one, see :func:`rollwise.runtime.skeleton.read_object`, else a
   GET), the identity
   records the admission webhook wrote on it (``core.governance.read_records``: approvals,
   who set the version, a revoke request, waivers; ``core.overrides``: the override in
   effect for this version; records with a bad signature are ignored and reported), the
   gate results (``adapters.gates``) with the waivers applied, the other
   releases of the namespace (who holds the (model, alias) slot; whether the same content was
   Approved before; whether this version was revoked, also from the cluster's revocation
   ledger), the alias read back from its store, the child Rollout or the KServe
   InferenceService, the release manifest, the canary's measurements due now and, when the
   canary's queries are unchecked, the provider's verdict on them (``core.querycheck``).
2. **Decide**: :func:`rollwise.core.modelrelease.release.decide_release`, pure, in the worker thread
   of the write (it evaluates the spec's conditions: tenant input, never on the event loop).
   Its status carries the transition's events in ``status.eventLog`` (``core.events``).
3. **Persist first (write-ahead)**: the status is merge-patched (conditional on the
   resourceVersion read) only when it changed. It holds the rollback target (what served
   before the release, the alias's previous version), which cannot be observed again once the
   actions changed the cluster; a write that conflicts leaves the cluster untouched, and the
   pass is simply decided again.
4. **Act**: the actions in order, each idempotent for the status just persisted; the first
   failure stops the list and is retried with the Rollout pass's backoff (``ActionFailed``
   Warning event once per distinct error). A flip of the alias is never taken as done here:
   the core moves to Production only when a later pass reads the alias back on the new
   version.
5. **Post events**: the logged events not yet known to be posted, under deterministic names
   (``runtime.passes.post_logged``): none lost by a kill, none doubled.

The slot: releases of one (model, alias) in a namespace run one at a time. The release that
holds it is the earliest-created one in Staging or Approved, else the earliest-created
Candidate that is not refused or invalid; the others stay Candidate, ``Queued`` behind it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from rollwise.adapters.errors import AdapterError, AliasConflict
from rollwise.adapters.registry.base import EXPECT_UNSET, AliasStore, AliasTarget
from rollwise.adapters.releases import MODELRELEASES, PROMOTE_FULL
from rollwise.adapters.watch_cache import WatchCache
from rollwise.core.events import Event
from rollwise.core.modelrelease import reasons as MR
from rollwise.core.modelrelease.actions import (
    EnsureChildRollout,
    FlipAlias,
    ReleaseAction,
    ReleaseDecision,
    RemoveCanaryTrafficPercent,
    RevertChildRollout,
    SetCanaryTrafficPercent,
    SetPredictorStorageUri,
    release_event,
)
from rollwise.core.modelrelease.release import decide_release
from rollwise.core.modelrelease.status import Stage
from rollwise.core.observations import RequestKind
from rollwise.core.overrides import sign_request
from rollwise.core.spec_release import ModelReleaseSpec
from rollwise.core.status_model import format_time
from rollwise.runtime.logging import release_logger
from rollwise.runtime.passes import (
    after_actions,
    error_code,
    status_write_failed,
)
from rollwise.runtime.release.observe import (
    ledger_scope,
    observe,
)
from rollwise.runtime.release.ports import (
    ReleaseObject,
    ReleasePorts,
    describe_release_action,
    release_subject,
)
from rollwise.runtime.skeleton import (
    ActionFailure,
    Memory,
    PassResult,
    Persisted,
    cannot,
    pass_done,
    persist,
    post_pass_events,
    read_object,
    settle_write,
    timed_pass,
)

# --------------------------------------------------------------------------------------------
# Act


def _revert_spec(current: Mapping[str, Any] | None, action: RevertChildRollout) -> dict[str, Any]:
    spec = dict((current or {}).get("spec") or {})
    if action.template is None:
        spec["replicas"] = 0
    else:
        spec["template"] = dict(action.template)
    return spec


def _apply(
    action: ReleaseAction,
    obj: ReleaseObject,
    ports: ReleasePorts,
    spec: ModelReleaseSpec,
    pending_percent: int | None,
) -> bool:
    """Apply one action (in a worker thread); True when it (probably) changed something."""
    ns = obj.namespace
    if isinstance(action, EnsureChildRollout):
        return ports.objects.ensure_child(obj.ref, action.name, action.spec)
    if isinstance(action, RevertChildRollout):
        current = ports.objects.read_child(ns, action.name)
        annotations = None
        if action.template is not None:
            # A stable id: re-asserting the revert on a later pass is the same request. Signed:
            # the webhook lets no one but the operator promote a release's child Rollout.
            request = f"revert-{obj.name}-{obj.uid[:8]}"
            if ports.record_key is not None:
                request = sign_request(
                    RequestKind.PROMOTE_FULL, request, f"{ns}/{action.name}", ports.record_key
                )
            annotations = {PROMOTE_FULL: request}
        return ports.objects.ensure_child(
            obj.ref, action.name, _revert_spec(current, action), annotations=annotations
        )
    if isinstance(action, SetPredictorStorageUri):
        return ports.serving.set_storage_uri(ns, action.name, action.uri, pending_percent)
    if isinstance(action, SetCanaryTrafficPercent):
        return ports.serving.set_canary_percent(ns, action.name, action.percent)
    if isinstance(action, RemoveCanaryTrafficPercent):
        return ports.serving.remove_canary_percent(ns, action.name)
    if isinstance(action, FlipAlias):
        return _flip(ports.alias_store_for(spec, ns), action)
    return ports.objects.write_manifest(obj.ref, action.name, action.content)


def _flip(store: AliasStore, action: FlipAlias) -> bool:
    expected = action.expected_current if action.expected_current is not None else EXPECT_UNSET
    try:
        if action.version is None:
            store.delete(action.model, action.alias, expected=expected)
        else:
            target = AliasTarget(version=action.version, uri=action.uri or "", digest=action.digest)
            store.set(action.model, action.alias, target, expected=expected)
    except AliasConflict:
        # Re-asserted after it already happened (the read-back of this pass predates the
        # write of the last one): nothing to do. Anything else is a real conflict.
        current = store.get(action.model, action.alias)
        if (current.version if current is not None else None) != action.version:
            raise
        return False
    return True


async def _act(
    decision: ReleaseDecision,
    obj: ReleaseObject,
    spec: ModelReleaseSpec | None,
    ports: ReleasePorts,
) -> tuple[bool, ActionFailure[ReleaseAction] | None]:
    if not decision.actions or spec is None:
        return False, None
    actions = list(decision.actions)
    # A canary percent and a storage URI change of the same pass go out in one patch, so the
    # new revision never receives 100% by default.
    percents = {a.name: a.percent for a in actions if isinstance(a, SetCanaryTrafficPercent)}
    uri_names = {a.name for a in actions if isinstance(a, SetPredictorStorageUri)}
    acted = False
    for action in actions:
        if isinstance(action, SetCanaryTrafficPercent) and action.name in uri_names:
            continue
        pending = percents.get(action.name) if isinstance(action, SetPredictorStorageUri) else None
        try:
            acted = await asyncio.to_thread(_apply, action, obj, ports, spec, pending) or acted
        except AdapterError as exc:
            if ports.metrics is not None:
                ports.metrics.api_error(type(action).__name__, error_code(exc))
            return True, ActionFailure(action, exc, describe_release_action(action))
    return acted, None


async def _ledger(
    obj: ReleaseObject,
    spec: ModelReleaseSpec | None,
    decision: ReleaseDecision,
    ports: ReleasePorts,
    log: Any,
) -> None:
    """Records a revocation in the cluster's ledger (idempotent)."""
    revoked = decision.status.revoked
    if spec is None or decision.status.stage is not Stage.REVOKED or revoked is None:
        return
    record = {
        "model": spec.model,
        "version": spec.version,
        "release": obj.name,
        "reason": revoked.reason,
        "user": revoked.user,
        "at": format_time(revoked.at),
    }
    try:
        await asyncio.to_thread(
            ports.objects.record_revocation,
            obj.namespace,
            record,
            ledger_scope(spec, obj.namespace),
        )
    except AdapterError as exc:
        # The release's own status still says Revoked; the ledger is retried on the next pass.
        log.warning("cannot record the revocation in the ledger", error=exc.message)


# --------------------------------------------------------------------------------------------
# The pass


async def reconcile_release(
    namespace: str,
    name: str,
    ports: ReleasePorts,
    memory: Memory,
    cache: WatchCache | None = None,
) -> PassResult[ReleaseDecision]:
    """One pass over the ModelRelease ``namespace/name``, reading through ``cache`` (the
    watch-fed read cache of the release's loop; None: every read goes to the API server).
    Never raises for cluster, registry or provider failures: they come back in the result
    with the time to look again."""
    return await timed_pass(
        ports, cache, lambda for_pass: _reconcile(namespace, name, for_pass, memory, cache)
    )


async def _reconcile(
    namespace: str, name: str, ports: ReleasePorts, memory: Memory, cache: WatchCache | None
) -> PassResult[ReleaseDecision]:
    log = release_logger(namespace, name, None, None)
    try:
        body = await read_object(MODELRELEASES, namespace, name, ports.cluster.read_release, cache)
    except AdapterError as exc:
        return cannot(
            "read_release",
            "cannot read the ModelRelease",
            exc,
            memory,
            metrics=ports.metrics,
            log=log,
        )
    if body is None:
        return PassResult(requeue_after=None, gone=True)
    obj = ReleaseObject.from_body(body)
    change = obj.spec.get("change")
    ticket = change.get("ticket") if isinstance(change, Mapping) else None
    log = release_logger(namespace, name, obj.spec.get("version"), ticket)
    now = ports.clock()
    try:
        seen = await observe(obj, ports, now, log, memory)
    except AdapterError as exc:
        return cannot(
            "observe", "cannot observe the cluster", exc, memory, metrics=ports.metrics, log=log
        )

    ticket_text = ticket if isinstance(ticket, str) and ticket else "unknown"
    events: list[Event] = []
    rejected = frozenset(seen.records.rejected) if seen.records is not None else frozenset()
    rejected |= frozenset(seen.rejected_overrides)
    for message in sorted(rejected - memory.rejected_records):
        events.append(release_event(MR.RECORD_REJECTED, ticket_text, detail=message))
    memory.rejected_records = rejected

    # Persist first, then act: the status carries what the actions cannot recover once they
    # ran (the template or storage URI that served before this release, the alias's previous
    # version), so it must be stored before anything changes. A conflicting write means
    # somebody else wrote since the read: nothing was done, decide again. Deciding runs in the
    # worker thread of the write: it evaluates the spec's conditions (tenant input).
    def decide_and_write() -> tuple[ReleaseDecision, Persisted]:
        decided = decide_release(
            seen.spec if seen.spec is not None else obj.spec,
            seen.status,
            seen.observations,
            now,
            seen.rules,
            spec_errors=seen.spec_errors,
        )
        stored = persist(obj, seen.status, decided.status, ports.cluster.patch_release_status)
        return decided, stored

    decision, stored = await asyncio.to_thread(decide_and_write)
    ended = settle_write(
        MODELRELEASES, obj, stored, decision, cache=cache, metrics=ports.metrics, log=log
    )
    if ended is not None:
        return ended
    if stored.error is not None:
        return PassResult(
            requeue_after=status_write_failed(memory, stored.error, ports.metrics, log),
            decision=decision,
            error=stored.error.message,
        )
    status_written = stored.changed

    acted, failure = await _act(decision, obj, seen.spec, ports)
    await _ledger(obj, seen.spec, decision, ports, log)

    requeue, failed = after_actions(
        memory,
        decision.requeue_after,
        acted=acted,
        failure=failure,
        report_retryable=True,
        failed_event=lambda what, error: release_event(
            MR.RELEASE_ACTION_FAILED, ticket_text, action=what, error=error
        ),
        log=log,
    )
    if failed is not None:
        events.append(failed)

    notifier = ports.notifier
    subject = release_subject(obj, decision.status, ticket_text)
    requeue = await post_pass_events(
        requeue,
        uid=obj.uid,
        logged=decision.status.event_log,
        post_entry=lambda entry: ports.cluster.post_release_logged(obj.ref, entry),
        reports=events,
        post_report=lambda event: ports.cluster.post_release_event(obj.ref, event),
        memory=memory,
        metrics=ports.metrics,
        log=log,
        notify=(lambda entry: notifier.offer(subject, entry)) if notifier else None,
    )
    if ports.metrics is not None:
        stage = decision.status.stage
        ports.metrics.observe_release(
            namespace,
            name,
            stage.value if stage else None,
            model=seen.spec.model if seen.spec is not None else "",
            version=seen.spec.version if seen.spec is not None else "",
        )
        if status_written:
            # One increment per episode: the difference between the watch read and stored.
            before = seen.status.post_promotion if seen.status is not None else None
            ports.metrics.regressions_stored(
                namespace, name, before, decision.status.post_promotion
            )
        judged = decision.status.decision
        if status_written and judged is not None:
            for event in decision.events:
                if event.reason is MR.DECISION_CHANGED:
                    ports.metrics.decided(
                        "modelrelease", judged.action.value, judged.confidence.value
                    )
    return pass_done(
        decision,
        requeue,
        status_written=status_written,
        acted=acted,
        failure=failure,
        reports=events,
        log=log,
        stage=decision.status.stage.value if decision.status.stage else None,
        phase=decision.status.phase.value if decision.status.phase else None,
    )


__all__ = ["reconcile_release"]
