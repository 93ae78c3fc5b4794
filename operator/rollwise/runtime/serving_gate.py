"""The serving gate's webhook: a validating handler on Deployments and InferenceServices that
carry a model reference (labels ``rollwise.dev/model`` and ``rollwise.dev/model-version``). It
refuses serving a version that is revoked, not Staging/Approved/Production, or bound to another
policy digest; the judgement is :mod:`rollwise.core.modelrelease.serving_gate`'s, this module
reads the releases and the revocation ledgers (``adapters.releases.ReleaseObjects``) and
registers the handler (:mod:`rollwise.runtime.admission` serves it with the other webhooks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import kopf

from rollwise.core.modelrelease.serving_gate import (
    VERSION_LABEL,
    ReleaseView,
    model_reference,
    refusal,
)

#: The serving gate: webhook ``serving-gate.rollwise.dev`` on ``/serving-gate``.
SERVING_HANDLER_ID = "serving-gate"
SERVING_WEBHOOK_PATH = f"/{SERVING_HANDLER_ID}"
#: What the serving gate judges: (group, version, plural, kind).
SERVED_RESOURCES = (
    ("apps", "v1", "deployments", "Deployment"),
    ("serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService"),
)


class ServingReads(Protocol):
    """What the serving gate reads: ``adapters.releases.ReleaseObjects``."""

    def list_releases(self, namespace: str) -> list[dict[str, Any]]: ...

    def revoked(
        self, namespace: str, model: str, version: str, scope: str = ""
    ) -> dict[str, Any] | None: ...


def serving_refusal(reads: ServingReads, kind: str, body: Mapping[str, Any]) -> str | None:
    """Why the serving object ``body`` may not serve the version it names (None: it may)."""
    meta = body.get("metadata") or {}
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    reference = model_reference(labels)
    namespace = str(meta.get("namespace") or "")
    releases: list[ReleaseView] = []
    revoked_by: str | None = None
    if isinstance(reference, tuple):
        model, version = reference
        bodies = reads.list_releases(namespace)
        releases = [ReleaseView.of(r) for r in bodies]
        # Where a revocation of the version holds: the namespace, and every shared registry a
        # release of the model here moves its alias in (as the release pass records it).
        scopes = [f"namespace/{namespace}"]
        scopes += sorted({f"registry/{r}" for r in _registries(bodies, model)})
        for scope in scopes:
            record = reads.revoked(namespace, model, version, scope)
            if record is not None:
                revoked_by = str(record.get("release") or "unknown")
                break
    return refusal(
        kind=kind,
        namespace=namespace,
        name=str(meta.get("name") or meta.get("generateName") or ""),
        labels=labels,
        annotations=_annotations(body),
        releases=releases,
        revoked_by=revoked_by,
    )


def _registries(bodies: Sequence[Mapping[str, Any]], model: str) -> set[str]:
    """The MLflow registries the releases of ``model`` among ``bodies`` name."""
    found: set[str] = set()
    for body in bodies:
        spec = body.get("spec") or {}
        if not isinstance(spec, Mapping) or spec.get("model") != model:
            continue
        store = (spec.get("alias") or {}).get("store") or {}
        mlflow = store.get("mlflow") if isinstance(store, Mapping) else None
        registry = mlflow.get("registry") if isinstance(mlflow, Mapping) else None
        if isinstance(registry, str) and registry:
            found.add(registry)
    return found


def register_serving_gate(registry: kopf.OperatorRegistry, reads: ServingReads) -> None:
    """Register the validating serving gate for Deployments and InferenceServices."""
    for group, version, plural, kind in SERVED_RESOURCES:

        def gate(*, body: kopf.Body, logger: kopf.Logger, _kind: str = kind, **_: Any) -> None:
            message = serving_refusal(reads, _kind, body)
            if message is not None:
                logger.info(f"serving refused: {message}")
                raise kopf.AdmissionError(message, code=403)

        kopf.on.validate(
            group,
            version,
            plural,
            id=SERVING_HANDLER_ID,
            operations=["CREATE", "UPDATE"],
            labels={VERSION_LABEL: kopf.PRESENT},
            persistent=True,
            registry=registry,
        )(gate)


def _annotations(body: Mapping[str, Any] | None) -> dict[str, str]:
    meta = (body or {}).get("metadata") or {}
    return {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}


__all__ = [
    "SERVED_RESOURCES",
    "SERVING_HANDLER_ID",
    "SERVING_WEBHOOK_PATH",
    "ServingReads",
    "register_serving_gate",
    "serving_refusal",
]
