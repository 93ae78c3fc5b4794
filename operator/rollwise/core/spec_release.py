"""Typed spec of the ``ModelRelease`` custom resource (the Rollout's and the shared pieces are
in :mod:`rollwise.core.spec`).

These pydantic models mirror the ModelRelease CRD schema field by field (a test compares
them), as the models of :mod:`rollwise.core.spec` do for the Rollout; cross-field rules are
checked again by the wing (:mod:`rollwise.core.modelrelease.spec`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field

from rollwise.core.spec import (
    AnalysisSpec,
    DecisionMode,
    Duration,
    Model,
    PostPromotion,
    Sha256Digest,
    Step,
    TrafficRouting,
    default_steps,
)

#: A dotted path of a document's field (``model_details.owners``).
_FIELD_PATH = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
#: An RFC 3339 date, or date and time with an offset.
REVALIDATE_BY_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2}))?$"
)


class ChangeType(StrEnum):
    STANDARD = "standard"
    NORMAL = "normal"
    EMERGENCY = "emergency"


class Artifact(Model):
    uri: str = Field(min_length=1)
    digest: Sha256Digest


class Change(Model):
    type: ChangeType = ChangeType.NORMAL
    ticket: str = Field(min_length=1)


class InferenceServiceRef(Model):
    name: str = Field(min_length=1)


class Serving(Model):
    """Exactly one of a pod template (served through a child Rollout) or a KServe
    InferenceService. ``baseline`` / ``baselineService``: the child Rollout's baseline
    (template serving only), as in a Rollout's canary strategy."""

    template: dict[str, Any] | None = None
    inference_service_ref: InferenceServiceRef | None = None
    replicas: int = Field(default=1, ge=0)
    stable_service: str | None = None
    canary_service: str | None = None
    baseline: bool = False
    baseline_service: str | None = Field(default=None, min_length=1)
    traffic_routing: TrafficRouting | None = None


class Canary(Model):
    steps: list[Step] = Field(default_factory=default_steps)
    analysis: AnalysisSpec | None = None
    decision_mode: DecisionMode = DecisionMode.AUTO
    #: The regression watch once the version is in Production (the Rollout's shape).
    post_promotion: PostPromotion | None = None


class ConfigMapStore(Model):
    name: str = Field(min_length=1)


class MLflowStore(Model):
    """An alias in one of the MLflow registries the operator's settings name. A spec names
    the registry, never its address: the operator sends its credentials only where its own
    settings say. ``trackingURI`` is refused (kept in the schema so that a manifest still
    carrying it is told what to write instead)."""

    registry: str | None = Field(
        default=None, min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
    )
    tracking_uri: str | None = Field(default=None, alias="trackingURI")


class AliasStore(Model):
    config_map: ConfigMapStore | None = None
    mlflow: MLflowStore | None = None


class Alias(Model):
    name: str = Field(default="production", min_length=1)
    store: AliasStore | None = None


class Approvals(Model):
    required_roles: list[str] = Field(default_factory=lambda: ["security", "product"])


class SBOMSource(Model):
    config_map_key: ConfigMapKeyRef | None = Field(default=None, alias="configMapKeyRef")
    url: str | None = None
    max_severity: str = Field(default="high", pattern=r"^(low|medium|high|critical)$")


class ConfigMapKeyRef(Model):
    name: str = Field(min_length=1)
    key: str = Field(min_length=1)


class FreezeWindow(Model):
    """A window in which promotion to Production waits: a cron ``schedule`` with a
    ``duration``, or an explicit ``start``/``end`` (RFC 3339)."""

    name: str = Field(min_length=1)
    schedule: str | None = None
    duration: Duration | None = None
    start: str | None = None
    end: str | None = None
    time_zone: str = "UTC"


class ModelCardSource(Model):
    """The model card: a ConfigMap key or a URL, and the fields it must carry."""

    config_map_key: ConfigMapKeyRef | None = Field(default=None, alias="configMapKeyRef")
    url: str | None = Field(default=None, max_length=2048)
    #: At most 64 (the CRD's maxItems).
    required_fields: list[Annotated[str, Field(pattern=_FIELD_PATH)]] = Field(default_factory=list)


class SecurityDecisionSource(Model):
    """The security decision (JSON): a ConfigMap key or a URL."""

    config_map_key: ConfigMapKeyRef | None = Field(default=None, alias="configMapKeyRef")
    url: str | None = Field(default=None, max_length=2048)


class PublicKeyRef(Model):
    """A PEM public key in a ConfigMap key (in the release's namespace)."""

    config_map_key: ConfigMapKeyRef = Field(alias="configMapKeyRef")


class ConfigMapRef(Model):
    name: str = Field(min_length=1)


class KeylessVerifier(Model):
    """A ConfigMap (in the release's namespace) holding ``trusted_root.json``, ``identity``
    and ``issuer``: keyless verification."""

    config_map_ref: ConfigMapRef


class SignatureVerifier(Model):
    """What a Sigstore bundle is verified against: exactly one of a public key (key-based) or
    a trusted root with the expected identity and issuer (keyless)."""

    public_key: PublicKeyRef | None = None
    keyless: KeylessVerifier | None = None


class SignatureSource(Model):
    """The Sigstore bundle signing the artifact's digest (a ConfigMap key or a URL) and what
    verifies it."""

    config_map_key: ConfigMapKeyRef | None = Field(default=None, alias="configMapKeyRef")
    url: str | None = Field(default=None, max_length=2048)
    verifier: SignatureVerifier


class AttestationSource(Model):
    """The Sigstore bundle of an in-toto statement about the artifact (a ConfigMap key or a
    URL), what verifies it, and what its predicate must say (each optional)."""

    config_map_key: ConfigMapKeyRef | None = Field(default=None, alias="configMapKeyRef")
    url: str | None = Field(default=None, max_length=2048)
    verifier: SignatureVerifier
    predicate_type: str | None = Field(default=None, min_length=1, max_length=512)
    builder_id: str | None = Field(default=None, min_length=1, max_length=512)
    source_repository: str | None = Field(default=None, min_length=1, max_length=512)


class Gates(Model):
    sbom: SBOMSource | None = None
    model_card: ModelCardSource | None = None
    security_decision: SecurityDecisionSource | None = None
    signature: SignatureSource | None = None
    attestation: AttestationSource | None = None
    freeze_windows: list[FreezeWindow] | None = None


class ModelReleaseSpec(Model):
    model: str = Field(min_length=1)
    version: str = Field(min_length=1)
    artifact: Artifact
    policy_digest: Sha256Digest | None = None
    change: Change
    serving: Serving
    canary: Canary = Field(default_factory=Canary)
    alias: Alias = Field(default_factory=Alias)
    approvals: Approvals = Field(default_factory=Approvals)
    gates: Gates = Field(default_factory=Gates)
    revalidate_by: str | None = Field(default=None, pattern=REVALIDATE_BY_PATTERN)


SBOMSource.model_rebuild()
PublicKeyRef.model_rebuild()
