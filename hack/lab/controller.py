"""The lab controller: what the lab's cluster cannot run itself, driven by the real API server.

The control plane is real (kube-controller-manager turns Deployments into ReplicaSets and Pods,
kwok makes the Pods Running and Ready); only the data plane is simulated. This controller
watches the API server, as any controller in a cluster would, and does two jobs:

- **Revisions**: every Deployment labelled ``rollwise.dev/revision`` (a Rollout's revision) and
  every predictor revision of a KServe ``InferenceService`` is reported to ``on_revision`` when
  it appears and when it goes away; the lab starts and stops one demo service per revision,
  the "pods" the traffic generator sends requests to. The pod template annotations
  ``lab.rollwise.dev/error-ratio``, ``latency-ms`` and ``jitter-ms`` set the new revision's
  behaviour (see ``Lab``). A Rollout's baseline (a Deployment labelled
  ``rollwise.dev/baseline-of: <stable revision>``) is its own revision, reported with
  ``behaves_like`` naming that stable revision: the lab starts it with the stable's behaviour
  as it is at that moment (the baseline runs the stable's template), so metrics by revision tell
  stable, baseline and canary apart while the baseline answers as the stable does.
- **KServe's controller**, which cannot run here, for ``InferenceService``
  (serving.kserve.io/v1beta1, while that CRD is served): a change of ``spec.predictor`` (other
  than ``canaryTrafficPercent``) creates a predictor revision ``NAME-predictor-0000N``, ready
  after ``ready_delay``; traffic goes 100% to the first revision; a later ready revision
  receives ``canaryTrafficPercent`` percent and the last rolled-out revision the rest; without
  ``canaryTrafficPercent`` (or at 100) the latest ready revision takes all traffic and becomes
  ``latestRolledoutRevision`` (its predecessor ``previousRolledoutRevision``);
  ``canaryTrafficPercent: 0`` pins all traffic to the rolled-out revision (a rollback). An
  InferenceService annotated ``lab.rollwise.dev/never-ready: "true"`` never gets its latest
  revision ready.

Deployment status is not written here: the cluster's own controllers write it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from hack.lab._support import (
    DEPLOYMENTS,
    INFERENCESERVICES,
    ApiError,
    Informer,
    KubeEndpoint,
    KubeHTTP,
    Resource,
)
from hack.lab.traffic import REVISION_LABEL, template_revision

log = logging.getLogger(__name__)

NEVER_READY = "lab.rollwise.dev/never-ready"
#: Label the operator puts on a Rollout's baseline Deployment: the stable revision it copies.
BASELINE_OF_LABEL = "rollwise.dev/baseline-of"


@dataclass(frozen=True)
class RevisionEvent:
    """A revision of an application appeared (``present``) or went away."""

    namespace: str
    owner: str  # the Deployment or InferenceService name
    app: str  # the application's name: the DemoService's ``service`` label
    revision: str
    present: bool
    #: The pod template's annotations of the Deployment that brought the revision.
    annotations: dict[str, str] = field(default_factory=dict)
    #: The revision this one answers like (a baseline: the stable revision it copies).
    behaves_like: str | None = None


RevisionCallback = Callable[[RevisionEvent], Awaitable[None]]


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(
    ctype: str, status: bool, reason: str, message: str, previous: list[dict[str, Any]]
) -> dict[str, Any]:
    value = "True" if status else "False"
    old = next((c for c in previous if c.get("type") == ctype), None)
    now = _now()
    unchanged = old is not None and old.get("status") == value
    same_reason = unchanged and old is not None and old.get("reason") == reason
    return {
        "type": ctype,
        "status": value,
        "reason": reason,
        "message": message,
        "lastUpdateTime": old.get("lastUpdateTime", now) if same_reason and old else now,
        "lastTransitionTime": old.get("lastTransitionTime", now) if unchanged and old else now,
    }


def _comparable(status: dict[str, Any]) -> str:
    """The status without timestamps, to tell a real change from a rewrite."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: strip(v)
                for k, v in value.items()
                if k not in {"lastUpdateTime", "lastTransitionTime"}
            }
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return json.dumps(strip(status), sort_keys=True)


def _merge_patch_for(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = dict(desired)
    for key in current:
        if key not in desired:
            patch[key] = None
    return patch


def _annotated_never_ready(obj: dict[str, Any]) -> bool:
    meta = obj.get("metadata", {}).get("annotations") or {}
    return str(meta.get(NEVER_READY, "")).lower() == "true"


def deployment_app(deployment: dict[str, Any]) -> str:
    labels = deployment.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {}
    return str(
        labels.get("app")
        or labels.get("app.kubernetes.io/name")
        or deployment.get("metadata", {}).get("name", "")
    )


def template_annotations(deployment: dict[str, Any]) -> dict[str, str]:
    """The pod template's annotations of a Deployment (where a revision's behaviour is set)."""
    meta = deployment.get("spec", {}).get("template", {}).get("metadata", {})
    return dict(meta.get("annotations") or {})


class LabController:
    """Reports revisions to ``on_revision`` and writes InferenceService status."""

    def __init__(
        self,
        endpoint: KubeEndpoint,
        *,
        ready_delay: float = 0.2,
        on_revision: RevisionCallback | None = None,
        inference_services: bool = True,
    ) -> None:
        self.ready_delay = ready_delay
        self.on_revision = on_revision
        self._api = KubeHTTP(endpoint)
        self.deployments = Informer(
            self._api, DEPLOYMENTS, self._on_deployment, label_selector=REVISION_LABEL
        )
        self.inference_services = (
            Informer(self._api, INFERENCESERVICES, self._on_isvc) if inference_services else None
        )
        # (kind, namespace, name) -> (spec state, monotonic time it was first seen)
        self._since: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._tasks: dict[tuple[str, str, str], asyncio.Task[None]] = {}
        self._revisions: dict[tuple[str, str], set[str]] = {}  # (ns, revision) -> owners
        self._isvc_revisions: dict[str, dict[str, str]] = {}  # uid -> predictor hash -> name

    async def start(self) -> LabController:
        self.deployments.start()
        if self.inference_services is not None:
            self.inference_services.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.deployments.synced.wait(), timeout=5.0)
        return self

    async def stop(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.deployments.stop()
        if self.inference_services is not None:
            await self.inference_services.stop()
        await self._api.close()

    def _kick(self, namespace: str, name: str) -> None:
        key = ("isvc", namespace, name)
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()
        self._tasks[key] = asyncio.get_running_loop().create_task(
            self._reconcile_isvc(namespace, name)
        )

    def _state_since(self, key: tuple[str, str, str], state: str, now: float) -> float:
        known = self._since.get(key)
        if known is None or known[0] != state:
            known = (state, now)
            self._since[key] = known
        return known[1]

    # -- revisions -----------------------------------------------------------------------------

    async def _revision_seen(
        self,
        namespace: str,
        owner: str,
        app: str,
        revision: str,
        annotations: dict[str, str],
        *,
        behaves_like: str | None = None,
    ) -> None:
        owners = self._revisions.setdefault((namespace, revision), set())
        if owner in owners:
            return
        owners.add(owner)
        if len(owners) == 1 and self.on_revision is not None:
            await self.on_revision(
                RevisionEvent(
                    namespace, owner, app, revision, True, dict(annotations), behaves_like
                )
            )

    async def _revision_gone(self, namespace: str, owner: str, app: str, revision: str) -> None:
        owners = self._revisions.get((namespace, revision))
        if not owners or owner not in owners:
            return
        owners.discard(owner)
        if not owners:
            del self._revisions[(namespace, revision)]
            if self.on_revision is not None:
                await self.on_revision(RevisionEvent(namespace, owner, app, revision, False))

    # -- Deployments ---------------------------------------------------------------------------

    async def _on_deployment(self, event_type: str, obj: dict[str, Any]) -> None:
        namespace, name = Informer.key(obj)
        revision = template_revision(obj)
        if event_type == "DELETED":
            await self._revision_gone(namespace, name, deployment_app(obj), revision)
            return
        labels = (obj.get("metadata") or {}).get("labels") or {}
        await self._revision_seen(
            namespace,
            name,
            deployment_app(obj),
            revision,
            template_annotations(obj),
            behaves_like=labels.get(BASELINE_OF_LABEL) or None,
        )

    async def _settle(
        self,
        resource: Resource,
        informer: Informer,
        status_of: Callable[[dict[str, Any], float], tuple[dict[str, Any], float | None]],
        namespace: str,
        name: str,
    ) -> None:
        """Writes the simulated status of one object until it is what the simulation says,
        waking at the times the simulation names (a revision becoming ready)."""
        while True:
            obj = informer.get(namespace, name)
            if obj is None:
                return
            status, wake = status_of(obj, time.monotonic())
            current = obj.get("status") or {}
            if _comparable(status) != _comparable(current):
                try:
                    await self._api.merge_patch(
                        resource,
                        namespace,
                        name,
                        {"status": _merge_patch_for(current, status)},
                        sub="status",
                    )
                except ApiError as err:
                    if err.status == 404:
                        return
                    log.warning("status of %s %s/%s: %s", resource.plural, namespace, name, err)
                    await asyncio.sleep(0.2)
                    continue
                # The watch event of this write calls us again with the object it stored.
                return
            if wake is None:
                return
            await asyncio.sleep(max(0.0, wake - time.monotonic()))

    # -- InferenceServices ---------------------------------------------------------------------

    async def _on_isvc(self, event_type: str, obj: dict[str, Any]) -> None:
        namespace, name = Informer.key(obj)
        if event_type == "DELETED":
            task = self._tasks.pop(("isvc", namespace, name), None)
            if task is not None:
                task.cancel()
            uid = obj.get("metadata", {}).get("uid", f"{namespace}/{name}")
            for revision in self._isvc_revisions.pop(uid, {}).values():
                await self._revision_gone(namespace, name, name, revision)
            return
        revision = self._isvc_revision(obj)
        await self._revision_seen(namespace, name, name, revision, {})
        self._kick(namespace, name)

    def _isvc_revision(self, obj: dict[str, Any]) -> str:
        """The predictor revision of the object's current spec (created on first sight)."""
        meta = obj.get("metadata", {})
        name = meta.get("name", "")
        uid = meta.get("uid") or f"{meta.get('namespace')}/{name}"
        predictor = dict(obj.get("spec", {}).get("predictor") or {})
        predictor.pop("canaryTrafficPercent", None)
        digest = hashlib.sha256(json.dumps(predictor, sort_keys=True).encode()).hexdigest()
        known = self._isvc_revisions.setdefault(uid, {})
        if digest not in known:
            status_pred = obj.get("status", {}).get("components", {}).get("predictor", {})
            latest = status_pred.get("latestCreatedRevision")
            if not known and latest:
                # A restarted simulator adopts the revision the status already names.
                known[digest] = str(latest)
            else:
                numbers = [int(r.rsplit("-", 1)[-1]) for r in known.values() if r[-5:].isdigit()]
                if latest and str(latest)[-5:].isdigit():
                    numbers.append(int(str(latest)[-5:]))
                known[digest] = f"{name}-predictor-{max(numbers, default=0) + 1:05d}"
        return known[digest]

    def isvc_status(self, obj: dict[str, Any], now: float) -> tuple[dict[str, Any], float | None]:
        namespace, name = Informer.key(obj)
        current = obj.get("status") or {}
        previous = current.get("components", {}).get("predictor", {})
        latest = self._isvc_revision(obj)
        since = self._state_since(("isvc", namespace, name), latest, now)
        blocked = _annotated_never_ready(obj)
        latest_ready_now = not blocked and now >= since + self.ready_delay
        latest_ready = latest if latest_ready_now else previous.get("latestReadyRevision")
        rolled_out = previous.get("latestRolledoutRevision")
        prev_rolled_out = previous.get("previousRolledoutRevision")
        percent = obj.get("spec", {}).get("predictor", {}).get("canaryTrafficPercent")
        traffic: list[dict[str, Any]] = []
        if latest_ready == latest and (
            rolled_out in (None, latest) or percent is None or int(percent) >= 100
        ):
            if rolled_out not in (None, latest):
                prev_rolled_out = rolled_out
            rolled_out = latest
            traffic = [{"revisionName": latest, "percent": 100, "latestRevision": True}]
        elif latest_ready == latest and rolled_out is not None:
            canary = max(0, min(100, int(percent or 0)))
            traffic = [
                {
                    "revisionName": latest,
                    "percent": canary,
                    "latestRevision": True,
                    "tag": "latest",
                },
                {
                    "revisionName": rolled_out,
                    "percent": 100 - canary,
                    "latestRevision": False,
                    "tag": "prev",
                },
            ]
        elif rolled_out is not None:
            # The latest revision is not ready: KServe keeps routing to the rolled-out one.
            traffic = [{"revisionName": rolled_out, "percent": 100, "latestRevision": False}]
        serving = bool(traffic)
        latest_ok = latest_ready == latest
        conditions = current.get("conditions") or []
        predictor_status: dict[str, Any] = {
            "latestCreatedRevision": latest,
            "url": f"http://{name}-predictor.{namespace}.example.com",
            "traffic": traffic,
        }
        if latest_ready:
            predictor_status["latestReadyRevision"] = latest_ready
        if rolled_out:
            predictor_status["latestRolledoutRevision"] = rolled_out
        if prev_rolled_out:
            predictor_status["previousRolledoutRevision"] = prev_rolled_out
        reason = "" if latest_ok else ("RevisionFailed" if blocked else "RevisionNotReady")
        status: dict[str, Any] = {
            "observedGeneration": obj.get("metadata", {}).get("generation", 1),
            "url": f"http://{name}.{namespace}.example.com",
            "address": {"url": f"http://{name}.{namespace}.svc.cluster.local"},
            "components": {"predictor": predictor_status},
            "conditions": [
                _condition(
                    "PredictorReady",
                    latest_ok,
                    reason,
                    "" if latest_ok else f"revision {latest} is not ready",
                    conditions,
                ),
                _condition("Ready", serving and latest_ok, reason, "", conditions),
            ],
        }
        wake = None if latest_ready_now or blocked else since + self.ready_delay
        return status, wake

    async def _reconcile_isvc(self, namespace: str, name: str) -> None:
        if self.inference_services is None:
            return
        await self._settle(
            INFERENCESERVICES, self.inference_services, self.isvc_status, namespace, name
        )
