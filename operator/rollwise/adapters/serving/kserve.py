"""KServe ``InferenceService`` (``serving.kserve.io/v1beta1``): the Kubernetes side of the
core's ``SetPredictorStorageUri``, ``SetCanaryTrafficPercent`` and
``RemoveCanaryTrafficPercent`` actions, and the ``InferenceServiceState`` they feed back.

What is read (pure: :func:`inference_service_state`):

- ``storage_uri``: ``spec.predictor.model.storageUri``, else the older per-framework form
  ``spec.predictor.<framework>.storageUri`` (``sklearn``, ``xgboost``, ...: the one entry of the
  predictor that is an object carrying ``storageUri``);
- ``canary_traffic_percent``: ``spec.predictor.canaryTrafficPercent`` (None when absent);
- from ``status.components.predictor``: the latest created, latest ready, latest rolled-out
  and previous rolled-out revisions, and ``latest_percent``, the share the ``traffic`` list
  gives the latest created revision (0 when the list names it nowhere, None when there is no
  list yet);
- ``observed_current``: KServe's controller observed the current spec
  (``status.observedGeneration`` reached ``metadata.generation``), so the status is not stale.

What is written: one JSON merge patch of ``spec.predictor`` per call, carrying the
``resourceVersion`` that was read (409 ``Conflict`` when the object changed meanwhile). A new
storage URI and its ``canaryTrafficPercent`` go in the same patch, so KServe never sees the
new revision without its canary percentage (which would roll it out to 100% at once). The
storage URI is written where the predictor keeps it (``model`` or the framework entry); a
predictor with neither (custom containers only) is refused with ``Invalid``, since writing a
bare ``model.storageUri`` would leave KServe a model without a format. Every write is skipped
when the object already says so (no write, no new resourceVersion) and reports whether it
wrote. Removing ``canaryTrafficPercent`` is a merge patch with ``null``.

Failures are the ``KubeError`` subclasses of :mod:`rollwise.adapters.errors`: a missing
InferenceService (or the CRD not installed) is ``NotFound`` on writes and None on ``read``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rollwise.adapters.errors import Invalid, NotFound
from rollwise.adapters.kube import KubeAPI
from rollwise.adapters.resources import Resource
from rollwise.core.modelrelease.observations import InferenceServiceState

INFERENCESERVICES = Resource("serving.kserve.io", "v1beta1", "inferenceservices")

#: Where current KServe keeps the model of a predictor.
MODEL_KEY = "model"
STORAGE_URI = "storageUri"
CANARY_PERCENT = "canaryTrafficPercent"


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _str_or_none(value: object) -> str | None:
    return str(value) if isinstance(value, str) and value else None


def model_key(predictor: Mapping[str, Any]) -> str | None:
    """The predictor entry that holds the model: ``model`` when present, else the one
    framework entry (an object with ``storageUri``); None when there is neither."""
    if isinstance(predictor.get(MODEL_KEY), Mapping):
        return MODEL_KEY
    found = [
        key
        for key, value in predictor.items()
        if isinstance(value, Mapping) and STORAGE_URI in value
    ]
    return found[0] if len(found) == 1 else None


def storage_uri_of(predictor: Mapping[str, Any]) -> str | None:
    key = model_key(predictor)
    if key is None:
        return None
    return _str_or_none(_mapping(predictor.get(key)).get(STORAGE_URI))


def latest_percent_of(predictor_status: Mapping[str, Any]) -> int | None:
    """The traffic share of the latest created revision (see the module docstring)."""
    traffic = predictor_status.get("traffic")
    if not isinstance(traffic, list):
        return None
    latest = _str_or_none(predictor_status.get("latestCreatedRevision"))
    total = 0
    for entry in traffic:
        if not isinstance(entry, Mapping):
            continue
        name = _str_or_none(entry.get("revisionName"))
        # An entry without a revision name that follows the latest revision is the latest's.
        is_latest = name == latest if name is not None else entry.get("latestRevision") is True
        if is_latest:
            total += _int_or_none(entry.get("percent")) or 0
    return total


def inference_service_state(obj: Mapping[str, Any]) -> InferenceServiceState:
    """What the core needs to know about an InferenceService (pure: no I/O)."""
    predictor = _mapping(_mapping(obj.get("spec")).get("predictor"))
    status = _mapping(obj.get("status"))
    components = _mapping(_mapping(status.get("components")).get("predictor"))
    generation = _int_or_none(_mapping(obj.get("metadata")).get("generation"))
    observed = _int_or_none(status.get("observedGeneration"))
    current = generation is None or (observed is not None and observed >= generation)
    return InferenceServiceState(
        exists=True,
        storage_uri=storage_uri_of(predictor),
        canary_traffic_percent=_int_or_none(predictor.get(CANARY_PERCENT)),
        latest_created_revision=_str_or_none(components.get("latestCreatedRevision")),
        latest_ready_revision=_str_or_none(components.get("latestReadyRevision")),
        latest_rolledout_revision=_str_or_none(components.get("latestRolledoutRevision")),
        previous_rolledout_revision=_str_or_none(components.get("previousRolledoutRevision")),
        latest_percent=latest_percent_of(components),
        observed_current=current,
    )


def check_percent(percent: int) -> None:
    """Refuses a percentage outside 0-100: a programming error, not an adapter failure."""
    if isinstance(percent, bool) or not 0 <= percent <= 100:
        raise ValueError(f"canaryTrafficPercent must be within 0-100, got {percent}")


class InferenceServices:
    """Reads and writes the predictor of InferenceServices through the Kubernetes API."""

    def __init__(self, kube: KubeAPI) -> None:
        self.kube = kube

    def _get(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            return self.kube.get(INFERENCESERVICES, namespace, name)
        except NotFound as exc:
            raise NotFound(
                f"InferenceService {namespace}/{name} not found ({exc.message})", status=404
            ) from exc

    def _patch(
        self, namespace: str, name: str, obj: Mapping[str, Any], predictor: dict[str, Any]
    ) -> None:
        patch = {
            "metadata": {"resourceVersion": _mapping(obj.get("metadata")).get("resourceVersion")},
            "spec": {"predictor": predictor},
        }
        self.kube.merge_patch(INFERENCESERVICES, namespace, name, patch)

    def read(self, namespace: str, name: str) -> InferenceServiceState | None:
        """The InferenceService's state; None when it does not exist."""
        found = self.kube.get_or_none(INFERENCESERVICES, namespace, name)
        return None if found is None else inference_service_state(found)

    def set_storage_uri(
        self, namespace: str, name: str, uri: str, canary_percent: int | None = None
    ) -> bool:
        """Points the predictor at ``uri`` (KServe starts a new revision), with
        ``canaryTrafficPercent`` = ``canary_percent`` in the same patch when given. True when
        it wrote."""
        if canary_percent is not None:
            check_percent(canary_percent)
        obj = self._get(namespace, name)
        predictor = _mapping(_mapping(obj.get("spec")).get("predictor"))
        key = model_key(predictor)
        if key is None:
            raise Invalid(
                f"InferenceService {namespace}/{name}: spec.predictor has no model (neither "
                "predictor.model nor one predictor.<framework> with a storageUri) to point at "
                f"{uri}"
            )
        change: dict[str, Any] = {}
        if storage_uri_of(predictor) != uri:
            change[key] = {STORAGE_URI: uri}
        if (
            canary_percent is not None
            and _int_or_none(predictor.get(CANARY_PERCENT)) != canary_percent
        ):
            change[CANARY_PERCENT] = canary_percent
        if not change:
            return False
        self._patch(namespace, name, obj, change)
        return True

    def set_canary_percent(self, namespace: str, name: str, percent: int) -> bool:
        """Sets ``canaryTrafficPercent``; 0 pins all traffic to the rolled-out revision. True
        when it wrote."""
        check_percent(percent)
        obj = self._get(namespace, name)
        predictor = _mapping(_mapping(obj.get("spec")).get("predictor"))
        if CANARY_PERCENT in predictor and _int_or_none(predictor[CANARY_PERCENT]) == percent:
            return False
        self._patch(namespace, name, obj, {CANARY_PERCENT: percent})
        return True

    def remove_canary_percent(self, namespace: str, name: str) -> bool:
        """Removes ``canaryTrafficPercent``: KServe rolls the latest ready revision out to 100%.
        True when it wrote."""
        obj = self._get(namespace, name)
        predictor = _mapping(_mapping(obj.get("spec")).get("predictor"))
        if CANARY_PERCENT not in predictor:
            return False
        self._patch(namespace, name, obj, {CANARY_PERCENT: None})
        return True


__all__ = [
    "INFERENCESERVICES",
    "InferenceServices",
    "check_percent",
    "inference_service_state",
    "latest_percent_of",
    "model_key",
    "storage_uri_of",
]
