"""The ModelRelease's spec: parsing, validation against the cluster policy, and the values
derived from it (the gates that apply, the required roles, the content an approval is bound
to, the child Rollout that serves a template, the release manifest).

Pure: no clock, no I/O.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from rollwise.core.durations import InvalidDuration, parse_seconds
from rollwise.core.modelrelease.observations import (
    BACKEND_KSERVE,
    BACKEND_TEMPLATE,
    GATE_APPROVALS,
    GATE_ARTIFACT,
    GATE_ATTESTATION,
    GATE_FREEZE,
    GATE_MODEL_CARD,
    GATE_POLICY,
    GATE_POLICY_ACCEPT,
    GATE_POLICY_CANARY,
    GATE_POLICY_PROMOTE,
    GATE_REVALIDATE,
    GATE_SBOM,
    GATE_SECURITY,
    GATE_SIGNATURE,
)
from rollwise.core.modelrelease.policy import ReleaseRules
from rollwise.core.modelrelease.status import (
    ModelReleaseStatus,
    Stage,
)
from rollwise.core.observations import revision_of
from rollwise.core.spec import DEFAULT_SCALE_DOWN_DELAY, DecisionMode, PostPromotion
from rollwise.core.spec_release import ModelReleaseSpec
from rollwise.core.status_model import format_time
from rollwise.core.validation import (
    MSG_BASELINE_NEEDS_SERVICE,
    MSG_BASELINE_SERVICE_DIFFERS,
    MSG_ONE_ROUTER,
    validate_analysis,
    validate_steps,
)

#: The environment variables injected into every container of a template-served model.
MODEL_ENV = ("MODEL_NAME", "MODEL_VERSION", "MODEL_URI", "MODEL_DIGEST")


MSG_ONE_BACKEND = "serving needs exactly one of template or inferenceServiceRef"


MSG_TEMPLATE_SERVICES = "template serving needs stableService and canaryService"


MSG_SERVICES_DIFFER = "stableService and canaryService must differ"
MSG_BASELINE_NEEDS_TEMPLATE = "baseline needs template serving (KServe runs no baseline)"


MSG_TEMPLATE_CONTAINERS = "serving.template needs spec.containers with at least one container"


MSG_TEMPLATE_LABELS = (
    "serving.template needs metadata.labels (they select the child Rollout's pods)"
)


MSG_KSERVE_ADVISORY = (
    "advisory mode needs template serving (a KServe canary takes no promote request)"
)
MSG_KSERVE_PAUSE = (
    "a pause step of a KServe canary needs a duration (a ModelRelease takes no promote request)"
)


MSG_ONE_STORE = "alias store must set at most one of configMap or mlflow"


MSG_SBOM_SOURCE = "gates.sbom needs exactly one of configMapKeyRef or url"


MSG_MODEL_CARD_SOURCE = "gates.modelCard needs exactly one of configMapKeyRef or url"


MSG_SECURITY_SOURCE = "gates.securityDecision needs exactly one of configMapKeyRef or url"


MSG_SIGNATURE_SOURCE = "gates.signature needs exactly one of configMapKeyRef or url"


MSG_ATTESTATION_SOURCE = "gates.attestation needs exactly one of configMapKeyRef or url"


MSG_ONE_VERIFIER = "verifier needs exactly one of publicKey or keyless"


MSG_FREEZE_SHAPE = "a freeze window needs either schedule and duration, or start and end"


MSG_TRACKING_URI = (
    "trackingURI is not accepted; name a registry of the operator's settings with registry"
)


MSG_NO_REGISTRY = "registry is required: the name of an MLflow registry of the operator's settings"


#: The cluster policy when none is given: no registry, no model owner, nothing required.
STRICT_RULES = ReleaseRules()


#: The parts of a spec that decide what runs once a release is approved. An approval is bound
#: to their hashes (:func:`release_content`): changing any of them voids it.
CONTENT_FIELDS = (
    "model",
    "version",
    "artifact",
    "policyDigest",
    "serving.template",
    "serving.inferenceServiceRef",
    "serving.replicas",
    "serving.stableService",
    "serving.canaryService",
    "serving.trafficRouting",
    "gates",
    "alias",
)


def parse_release_spec(raw: Mapping[str, Any]) -> ModelReleaseSpec | list[str]:
    """``raw`` (wire form) as a :class:`ModelReleaseSpec`, or one message per problem."""
    try:
        return ModelReleaseSpec.model_validate(raw)
    except ValidationError as exc:
        out: list[str] = []
        for err in exc.errors():
            where = "spec"
            for part in err["loc"]:
                where += f"[{part}]" if isinstance(part, int) else f".{part}"
            out.append(f"{where}: {err['msg']}")
        return out


def validate_release(spec: ModelReleaseSpec) -> list[str]:
    """Every cross-field problem of ``spec``; empty when it is valid."""
    errors: list[str] = []
    serving = spec.serving
    if (serving.template is None) == (serving.inference_service_ref is None):
        errors.append(f"spec.serving: {MSG_ONE_BACKEND}")
    if serving.template is not None:
        if not serving.stable_service or not serving.canary_service:
            errors.append(f"spec.serving: {MSG_TEMPLATE_SERVICES}")
        elif serving.stable_service == serving.canary_service:
            errors.append(f"spec.serving: {MSG_SERVICES_DIFFER}")
        pod_spec = serving.template.get("spec")
        containers = pod_spec.get("containers") if isinstance(pod_spec, Mapping) else None
        if (
            not isinstance(containers, list)
            or not containers
            or not all(isinstance(c, Mapping) for c in containers)
        ):
            errors.append(f"spec.serving.template: {MSG_TEMPLATE_CONTAINERS}")
        if not _template_labels(serving.template):
            errors.append(f"spec.serving.template: {MSG_TEMPLATE_LABELS}")
    routing = serving.traffic_routing
    if routing is not None and (routing.gateway_api is None) == (routing.istio is None):
        errors.append(f"spec.serving.trafficRouting: {MSG_ONE_ROUTER}")
    if serving.baseline and serving.template is None:
        errors.append(f"spec.serving: {MSG_BASELINE_NEEDS_TEMPLATE}")
    if serving.baseline and routing is not None and serving.baseline_service is None:
        errors.append(f"spec.serving: {MSG_BASELINE_NEEDS_SERVICE}")
    if serving.baseline_service is not None and serving.baseline_service in (
        serving.stable_service,
        serving.canary_service,
    ):
        errors.append(f"spec.serving: {MSG_BASELINE_SERVICE_DIFFERS}")
    errors.extend(validate_steps("spec.canary", spec.canary.steps, spec.canary.analysis))
    if spec.canary.analysis is not None:
        errors.extend(validate_analysis("spec.canary", spec.canary.analysis))
    if serving.inference_service_ref is not None:
        for i, step in enumerate(spec.canary.steps):
            if step.pause is not None and step.pause.duration is None:
                errors.append(f"spec.canary.steps[{i}].pause: {MSG_KSERVE_PAUSE}")
        if spec.canary.decision_mode is not DecisionMode.AUTO:
            errors.append(f"spec.canary.decisionMode: {MSG_KSERVE_ADVISORY}")
    store = spec.alias.store
    if store is not None and store.config_map is not None and store.mlflow is not None:
        errors.append(f"spec.alias.store: {MSG_ONE_STORE}")
    sbom = spec.gates.sbom
    if sbom is not None and (sbom.config_map_key is None) == (sbom.url is None):
        errors.append(f"spec.gates.sbom: {MSG_SBOM_SOURCE}")
    card = spec.gates.model_card
    if card is not None and (card.config_map_key is None) == (card.url is None):
        errors.append(f"spec.gates.modelCard: {MSG_MODEL_CARD_SOURCE}")
    decision = spec.gates.security_decision
    if decision is not None and (decision.config_map_key is None) == (decision.url is None):
        errors.append(f"spec.gates.securityDecision: {MSG_SECURITY_SOURCE}")
    signature = spec.gates.signature
    if signature is not None and (signature.config_map_key is None) == (signature.url is None):
        errors.append(f"spec.gates.signature: {MSG_SIGNATURE_SOURCE}")
    attestation = spec.gates.attestation
    if attestation is not None and (attestation.config_map_key is None) == (
        attestation.url is None
    ):
        errors.append(f"spec.gates.attestation: {MSG_ATTESTATION_SOURCE}")
    for name, source in (("signature", signature), ("attestation", attestation)):
        verifier = source.verifier if source is not None else None
        if verifier is not None and (verifier.public_key is None) == (verifier.keyless is None):
            errors.append(f"spec.gates.{name}.verifier: {MSG_ONE_VERIFIER}")
    if spec.revalidate_by is not None:
        try:
            revalidate_by_time(spec)
        except ValueError:
            errors.append(
                f"spec.revalidateBy: {spec.revalidate_by!r} is not a valid date or time "
                "(RFC 3339: 2027-06-30 or 2027-06-30T12:00:00Z)"
            )
    for i, window in enumerate(spec.gates.freeze_windows or []):
        cron = window.schedule is not None and window.duration is not None
        cron = cron and window.start is None and window.end is None
        explicit = window.start is not None and window.end is not None
        explicit = explicit and window.schedule is None and window.duration is None
        if not (cron or explicit):
            errors.append(f"spec.gates.freezeWindows[{i}]: {MSG_FREEZE_SHAPE}")
    return errors


def validate_rules(spec: ModelReleaseSpec, rules: ReleaseRules) -> list[str]:
    """What the cluster policy refuses in ``spec``: a registry named by address or unknown to
    the operator's settings, and a model on a shared registry that the release's namespace
    does not own (its alias is global: only the owner may move it)."""
    errors: list[str] = []
    store = spec.alias.store
    mlflow = store.mlflow if store is not None else None
    if mlflow is None:
        return errors
    where = "spec.alias.store.mlflow"
    if mlflow.tracking_uri is not None:
        errors.append(f"{where}.trackingURI: {MSG_TRACKING_URI}")
    if mlflow.registry is None:
        errors.append(f"{where}: {MSG_NO_REGISTRY}")
        return errors
    if mlflow.registry not in rules.registries:
        known = ", ".join(sorted(rules.registries)) or "none"
        errors.append(
            f"{where}.registry: unknown registry {mlflow.registry!r} (the operator's settings "
            f"name: {known})"
        )
    owner = rules.model_owner
    if owner is None:
        errors.append(
            f"spec.model: no namespace owns model {spec.model!r} in the operator's settings "
            "(releasePolicy.modelOwners), so no release may move its alias in a shared registry"
        )
    elif owner != rules.namespace:
        errors.append(
            f"spec.model: model {spec.model!r} is owned by namespace {owner} "
            "(releasePolicy.modelOwners); only its owner may move its alias in a shared registry"
        )
    return errors


def load_release_spec(
    raw: Mapping[str, Any] | ModelReleaseSpec,
    rules: ReleaseRules | None = None,
) -> tuple[ModelReleaseSpec | None, list[str]]:
    """Parse (when given the wire form) and validate: the spec when usable, and all problems.
    With ``rules`` the cluster policy is checked too (:func:`validate_rules`)."""
    spec = raw if isinstance(raw, ModelReleaseSpec) else parse_release_spec(raw)
    if isinstance(spec, list):
        return None, spec
    errors = validate_release(spec)
    if rules is not None:
        errors.extend(validate_rules(spec, rules))
    return (None if errors else spec), errors


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def release_content(spec: ModelReleaseSpec) -> dict[str, str]:
    """The hash of each part of ``spec`` that decides what runs (:data:`CONTENT_FIELDS`), by
    field path (``spec.serving.template``): what an approval is bound to."""
    wire = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    out: dict[str, str] = {}
    for name in CONTENT_FIELDS:
        value: Any = wire
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        out[f"spec.{name}"] = _digest(value)
    return out


def changed_fields(before: Mapping[str, Any], after: Mapping[str, str]) -> tuple[str, ...]:
    """The field paths whose hashes differ between two :func:`release_content` results (a
    field missing on either side counts as changed)."""
    return tuple(sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)))


def _template_labels(template: Mapping[str, Any]) -> dict[str, str]:
    metadata = template.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    if not isinstance(labels, Mapping):
        return {}
    return {str(k): str(v) for k, v in labels.items()}


def revalidate_by_time(spec: ModelReleaseSpec) -> datetime | None:
    """When the release must have been revalidated (a date alone: midnight UTC at its start);
    None when no date is set. ``ValueError`` for a date that does not exist (2027-02-30)."""
    text = spec.revalidate_by
    if text is None:
        return None
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def pre_staging_gates(
    spec: ModelReleaseSpec, rules: ReleaseRules = STRICT_RULES
) -> tuple[str, ...]:
    """The gates that must pass before Staging (and keep passing for every later promotion):
    ``sbom``, ``policy-digest``, ``model-card``, ``security-decision``, ``signature`` and
    ``attestation`` when the spec configures them or the cluster policy requires them, and
    ``revalidate-by`` when the spec sets a date."""
    names = [GATE_ARTIFACT]
    required = rules.required_gates
    if spec.gates.sbom is not None or GATE_SBOM in required:
        names.append(GATE_SBOM)
    if policy_applies(spec, rules):
        names.extend((GATE_POLICY, GATE_POLICY_ACCEPT))
    if spec.gates.model_card is not None or GATE_MODEL_CARD in required:
        names.append(GATE_MODEL_CARD)
    if spec.gates.security_decision is not None or GATE_SECURITY in required:
        names.append(GATE_SECURITY)
    if spec.gates.signature is not None or GATE_SIGNATURE in required:
        names.append(GATE_SIGNATURE)
    if spec.gates.attestation is not None or GATE_ATTESTATION in required:
        names.append(GATE_ATTESTATION)
    if spec.revalidate_by is not None:
        names.append(GATE_REVALIDATE)
    return tuple(names)


def policy_applies(spec: ModelReleaseSpec, rules: ReleaseRules = STRICT_RULES) -> bool:
    """Whether the release is bound to the cluster's policy snapshot: ``spec.policyDigest``
    is set or the cluster policy requires it. Then the snapshot's Rego rules are evaluated
    at its decision points (``policy-accept``, ``policy-promote``, ``policy-canary``) too."""
    return spec.policy_digest is not None or GATE_POLICY in rules.required_gates


def promote_gates(spec: ModelReleaseSpec, rules: ReleaseRules = STRICT_RULES) -> tuple[str, ...]:
    """The gates that must pass, besides the pre-Staging ones and approvals, to become
    Approved and to go on to Production: the Rego policy's promote point when it applies."""
    return (GATE_POLICY_PROMOTE,) if policy_applies(spec, rules) else ()


def canary_gates(spec: ModelReleaseSpec, rules: ReleaseRules = STRICT_RULES) -> tuple[str, ...]:
    """The gates the canary itself answers to: the Rego policy's canary point when it applies.
    A Failed one rolls a running canary back; the canary passes only while it passes."""
    return (GATE_POLICY_CANARY,) if policy_applies(spec, rules) else ()


def all_gates(spec: ModelReleaseSpec, rules: ReleaseRules = STRICT_RULES) -> tuple[str, ...]:
    """Every gate of the release, in the order they apply. ``freeze-window`` always applies:
    freeze windows may come from the cluster-wide ConfigMap as well as from the spec."""
    return (
        *pre_staging_gates(spec, rules),
        GATE_APPROVALS,
        *promote_gates(spec, rules),
        *canary_gates(spec, rules),
        GATE_FREEZE,
    )


def required_roles(spec: ModelReleaseSpec, rules: ReleaseRules = STRICT_RULES) -> tuple[str, ...]:
    """The roles that must approve: the cluster policy's, then the spec's own."""
    return tuple(dict.fromkeys((*rules.required_roles, *spec.approvals.required_roles)))


def child_rollout_name(spec: ModelReleaseSpec) -> str:
    """The child Rollout serving ``model`` behind ``alias``: one per (model, alias), shared by
    the successive releases, so each release canaries against the one before. A DNS label;
    names that had to be changed get a short hash so that two models never collide."""
    raw = f"{spec.model}-{spec.alias.name}"
    name = _NOT_DNS.sub("-", raw.lower()).strip("-")
    if name != raw or len(name) > 63:
        digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:6]
        name = f"{name[:56].strip('-')}-{digest}".strip("-")
    return name or "model"


def inject_model_env(template: Mapping[str, Any], spec: ModelReleaseSpec) -> dict[str, Any]:
    """A copy of ``template`` whose every container has MODEL_NAME, MODEL_VERSION, MODEL_URI
    and MODEL_DIGEST set to the release's values (replacing existing entries of those names,
    keeping every other variable in place)."""
    values = {
        "MODEL_NAME": spec.model,
        "MODEL_VERSION": spec.version,
        "MODEL_URI": spec.artifact.uri,
        "MODEL_DIGEST": spec.artifact.digest,
    }
    out = copy.deepcopy(dict(template))
    pod_spec = out.get("spec")
    if not isinstance(pod_spec, dict):
        return out
    containers = pod_spec.get("containers")
    if not isinstance(containers, list):
        return out
    for container in containers:
        if not isinstance(container, dict):
            continue
        env = container.get("env")
        entries = [e for e in env if isinstance(e, dict)] if isinstance(env, list) else []
        kept: list[dict[str, Any]] = []
        seen: set[str] = set()
        for entry in entries:
            name = entry.get("name")
            if name in values:
                if name not in seen:
                    kept.append({"name": name, "value": values[name]})
                    seen.add(name)
                continue
            kept.append(entry)
        kept.extend({"name": n, "value": values[n]} for n in MODEL_ENV if n not in seen)
        container["env"] = kept
    return out


def child_rollout_spec(spec: ModelReleaseSpec) -> dict[str, Any]:
    """The Rollout spec (wire form) of the child Rollout serving ``spec``'s version."""
    serving = spec.serving
    template = inject_model_env(serving.template or {}, spec)
    canary: dict[str, Any] = {
        "steps": [
            s.model_dump(mode="json", by_alias=True, exclude_none=True) for s in spec.canary.steps
        ],
        "stableService": serving.stable_service or "",
        "canaryService": serving.canary_service or "",
    }
    if serving.baseline:
        canary["baseline"] = True
    if serving.baseline_service is not None:
        canary["baselineService"] = serving.baseline_service
    if serving.traffic_routing is not None:
        canary["trafficRouting"] = serving.traffic_routing.model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
    if spec.canary.analysis is not None:
        canary["analysis"] = spec.canary.analysis.model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
    if spec.canary.decision_mode is not DecisionMode.AUTO:
        # Only when set: a release in auto mode keeps the child spec it always had.
        canary["decisionMode"] = spec.canary.decision_mode.value
    watch = spec.canary.post_promotion
    if watch is not None:
        # Only with a watch: the revision the child replaces stays warm while the release
        # watches its successor, so a rollback moves the traffic at once.
        canary["scaleDownDelaySeconds"] = warm_seconds(watch)
        canary["scaleDownDelayReplicas"] = watch.previous_revision_replicas
    return {
        "replicas": serving.replicas,
        "selector": {"matchLabels": _template_labels(template)},
        "template": template,
        "strategy": {"canary": canary},
    }


def warm_seconds(watch: PostPromotion) -> int:
    """How long the child Rollout keeps the revision it replaced: the release's watch
    period and one interval. The child is promoted before the watch starts (the alias flip
    and its read-back come between); one interval covers that, so the previous revision is
    still there for the watch's last evaluation. Never under the Rollout's default (30 s)."""
    try:
        seconds = parse_seconds(watch.duration) + parse_seconds(watch.interval)
    except InvalidDuration:
        return DEFAULT_SCALE_DOWN_DELAY
    return max(math.ceil(seconds), DEFAULT_SCALE_DOWN_DELAY)


def child_revision(spec: ModelReleaseSpec) -> str:
    """The child Rollout's revision id of this release's template."""
    return revision_of(child_rollout_spec(spec)["template"])


def _backend(spec: ModelReleaseSpec) -> str:
    return BACKEND_TEMPLATE if spec.serving.template is not None else BACKEND_KSERVE


def release_manifest(spec: ModelReleaseSpec, status: ModelReleaseStatus) -> dict[str, Any]:
    """The content of ``release_manifest.json``: what was approved, under which policy, with
    which evidence and by whom, and how to roll back. Built from the spec and the status only
    (the approvals and gate results as recorded when the release was approved)."""
    alias = status.alias
    approved_at = next(
        (h.time for h in reversed(status.history) if h.stage is Stage.APPROVED), None
    )
    return {
        "model": spec.model,
        "version": spec.version,
        "artifact_uri": spec.artifact.uri,
        "artifact_digest": spec.artifact.digest,
        "policy_digest": spec.policy_digest,
        # The Rego decisions taken on the bundle of that digest (the policy gates pass only
        # when the bundle evaluated is the one spec.policyDigest names).
        "policy_decisions": {
            g.name: {"status": g.status.value, "message": g.message}
            for g in status.gates
            if g.name in (GATE_POLICY_ACCEPT, GATE_POLICY_PROMOTE, GATE_POLICY_CANARY)
        },
        "change": {"type": spec.change.type.value, "ticket": spec.change.ticket},
        "canary": {
            "backend": _backend(spec),
            **spec.canary.model_dump(mode="json", by_alias=True, exclude_none=True),
        },
        "rollback_target": {
            "alias": spec.alias.name,
            "version": alias.previous_version if alias is not None else None,
        },
        "approvals": [a.model_dump(mode="json") for a in status.approvals],
        "gates": [
            g.model_dump(mode="json", exclude_none=True, exclude={"last_transition_time"})
            for g in status.gates
        ],
        "approved_at": format_time(approved_at) if approved_at is not None else None,
    }


_NOT_DNS = re.compile(r"[^a-z0-9-]+")
