"""The serving-side gate: whether a Deployment or InferenceService may serve the model version
its labels name.

A serving object names a model version with two labels, ``rollwise.dev/model`` and
``rollwise.dev/model-version`` (labels, so that the webhook configuration's ``objectSelector``
sends only such objects to the webhook). It may also carry the annotation
``rollwise.dev/policy-digest``, the policy snapshot it was prepared against.

The version may be served only when, among the ModelReleases of its namespace,

* none revoked it (stage Revoked, or a revocation ledger holds it);
* one of them is in Staging, Approved or Production;
* that release's ``policy-digest`` gate is not Failed (the cluster policy it is bound to is
  still the one in force), and the object's ``rollwise.dev/policy-digest``, when set, is the
  release's ``spec.policyDigest``.

Otherwise the create or update is refused with one sentence naming the object, the release and
the reason. Pure: the runtime reads the releases and the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rollwise.core.signing import PREFIX

MODEL_LABEL = PREFIX + "model"
VERSION_LABEL = PREFIX + "model-version"
POLICY_ANNOTATION = PREFIX + "policy-digest"
#: The stages whose version may be served.
SERVABLE = ("Staging", "Approved", "Production")


@dataclass(frozen=True)
class ReleaseView:
    """What the gate needs of one ModelRelease."""

    name: str
    model: str
    version: str
    stage: str
    policy_digest: str | None
    policy_gate: str | None

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> ReleaseView:
        meta = body.get("metadata") or {}
        spec = body.get("spec") or {}
        status = body.get("status") or {}
        gates = status.get("gates") if isinstance(status, Mapping) else None
        policy_gate = next(
            (
                str(g.get("status"))
                for g in (gates if isinstance(gates, list) else [])
                if isinstance(g, Mapping) and g.get("name") == "policy-digest"
            ),
            None,
        )
        digest = spec.get("policyDigest") if isinstance(spec, Mapping) else None
        return cls(
            name=str(meta.get("name", "")),
            model=str(spec.get("model", "")) if isinstance(spec, Mapping) else "",
            version=str(spec.get("version", "")) if isinstance(spec, Mapping) else "",
            stage=str(status.get("stage") or "") if isinstance(status, Mapping) else "",
            policy_digest=digest if isinstance(digest, str) else None,
            policy_gate=policy_gate,
        )


def model_reference(labels: Mapping[str, str]) -> tuple[str, str] | str | None:
    """(model, version) named by ``labels``; None when they name none; a problem (str) when
    only one of the two labels is set."""
    model, version = labels.get(MODEL_LABEL), labels.get(VERSION_LABEL)
    if model is None and version is None:
        return None
    if not model or not version:
        missing = VERSION_LABEL if model else MODEL_LABEL
        return f"names a model version without the label {missing}"
    return model, version


def refusal(
    *,
    kind: str,
    namespace: str,
    name: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    releases: Sequence[ReleaseView],
    revoked_by: str | None,
) -> str | None:
    """Why the object may not serve what it names (None: it may). ``revoked_by``: the release
    a revocation ledger records as having revoked the version, if any."""
    what = f"{kind} {namespace}/{name}"
    reference = model_reference(labels)
    if reference is None:
        return None
    if isinstance(reference, str):
        return f"{what} {reference}"
    model, version = reference
    serves = f"{what} serves model {model} version {version}"
    mine = [r for r in releases if r.model == model and r.version == version]
    revoked = [r.name for r in mine if r.stage == "Revoked"]
    if revoked_by is not None and revoked_by not in revoked:
        revoked.append(revoked_by)
    if revoked:
        return f"{serves}, which ModelRelease {sorted(revoked)[0]} revoked: refused"
    servable = [r for r in mine if r.stage in SERVABLE]
    if not servable:
        if not mine:
            return (
                f"{serves}, which no ModelRelease in namespace {namespace} releases: only a "
                "Staging, Approved or Production version may be served"
            )
        shown = ", ".join(f"{r.name} ({r.stage or 'no stage yet'})" for r in mine)
        return f"{serves}, which is not in Staging, Approved or Production (ModelRelease {shown})"
    release = sorted(servable, key=lambda r: SERVABLE.index(r.stage))[-1]
    if release.policy_gate == "Failed":
        return (
            f"{serves}: ModelRelease {release.name}'s policy-digest gate is Failed (the "
            "cluster policy is no longer the one the version is bound to)"
        )
    claimed = annotations.get(POLICY_ANNOTATION)
    if claimed is not None and claimed != release.policy_digest:
        bound = release.policy_digest or "no policy digest"
        return (
            f"{serves} under policy {claimed} ({POLICY_ANNOTATION}), but ModelRelease "
            f"{release.name} is bound to {bound}"
        )
    return None


__all__ = [
    "MODEL_LABEL",
    "POLICY_ANNOTATION",
    "SERVABLE",
    "VERSION_LABEL",
    "ReleaseView",
    "model_reference",
    "refusal",
]
