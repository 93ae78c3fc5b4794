"""The ModelRelease decision: ``decide_release(spec, status, obs, now) -> ReleaseDecision``.

A pure function of its arguments, shaped like :func:`rollwise.core.rollout.canary.decide`. The
runtime observes (gate results from the gate adapters, approvals and the revoke request
recorded by the admission webhook with the API server's identities, the alias read back from
its store, the child Rollout or the KServe InferenceService, the metrics
:func:`release_due_metrics` asked for, whether another release holds the (model, alias) slot),
calls :func:`decide_release`, applies the actions in order, patches the status once, emits the
events and looks again after ``requeue_after`` seconds.

Lifecycle (``status.stage``):

* **Candidate → Staging** when the gates that apply before Staging pass: ``artifact-digest``
  always, ``sbom`` when ``spec.gates.sbom`` is set, ``policy-digest`` when ``spec.policyDigest``
  is set. A gate is an observation (:class:`GateResult`); a gate with no result is *Pending*,
  never Passed. A Waived gate passes until its waiver expires, then counts as its own
  (``underlying``) result again. Only one release per (model, alias) runs: while
  ``blocking_release`` is set the release stays Candidate, ``Queued``.
* **Staging**: the canary. With ``serving.template`` the release owns a child Rollout
  (:func:`child_rollout_spec`, action :class:`EnsureChildRollout`) and follows its status: it
  passed when the child is Healthy with this release's revision stable; a rollback of that
  revision makes the release RolledBack. With ``serving.inferenceServiceRef`` the core steps
  ``canaryTrafficPercent`` itself (``spec.canary.steps``, default 5 → 25 → 100) with the
  Rollout's analysis semantics (:mod:`rollwise.core.analysis`), removes it at the end
  (KServe then rolls the new revision out), and on FAIL sets it to 0, which per KServe pins
  all traffic to the previously rolled-out revision.
* **Staging → Approved** when the canary passed, the earlier gates still pass, and the
  ``approvals`` gate passes: each ``approvals.requiredRoles`` role approved this version, by
  distinct people, none of them the person who set the version (re-checked here though the
  webhook refuses such approvals). A ``standard`` change whose digest was Approved before needs
  no approvals. Entering Approved writes the release manifest (:class:`WriteReleaseManifest`).
* **Approved → Production**: outside a freeze window (``freeze-window`` gate; an
  ``emergency`` change passes it only with an ``executive`` approval) the alias is flipped
  (:class:`FlipAlias`); the stage becomes Production only when the alias is *read back*
  pointing at this version, so a flip that did not happen never shows as done.
* **Revoked** at any stage on a revoke request: traffic off the version, the alias back to
  the previous version if this one held it (verified by read-back too), terminal. A version
  revoked before is refused at Candidate (``InvalidSpec`` condition, no action).

Every transition is an event whose message carries the change ticket (every event of the
release does), a condition and an entry in the bounded ``status.history``. Events come from
transitions only: deciding again with the returned status, the same observations and ``now``
gives the same status, no events and the same (idempotent) actions.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from rollwise.core.analysis import (
    MetricDue,
    StepChecks,
    any_inconclusive,
    checks_for,
    due_now,
    measured_text,
    new_run,
    next_due,
    record,
    run_verdict,
)
from rollwise.core.conditions import ConditionStatus
from rollwise.core.durations import InvalidDuration, add_seconds, format_seconds, parse_seconds
from rollwise.core.events import Event, log_events, mark_posted
from rollwise.core.modelrelease import reasons as R
from rollwise.core.modelrelease.policy import ReleaseRules
from rollwise.core.modelrelease.status import (
    MAX_HISTORY,
    AliasStatus,
    ApprovalRecord,
    GateRecord,
    GateStatus,
    HistoryEntry,
    ModelReleaseStatus,
    ReleaseConditionType,
    ReleasePhase,
    RevokeRecord,
    ServingStatus,
    Stage,
)
from rollwise.core.observations import Measurement, revision_of
from rollwise.core.overrides import ReleaseOverride
from rollwise.core.phases import Phase
from rollwise.core.querycheck import (
    QueryCheck,
    canary_metrics,
    condition_of,
    queries_digest,
    recheck_at,
    refusals,
    verification,
)
from rollwise.core.reasons import MAX_MESSAGE, Reason, clip
from rollwise.core.runs import AnalysisRun, MetricRun, Verdict
from rollwise.core.spec import ChangeType, Metric, ModelReleaseSpec, Step
from rollwise.core.status_model import format_time
from rollwise.core.validation import MSG_ONE_ROUTER, validate_analysis, validate_steps

#: How often to look again while waiting on the cluster or the alias store.
POLL_SECONDS = 5.0
#: How often to look again while waiting on gates, approvals, a freeze window or the queue.
GATE_POLL_SECONDS = 30.0
#: Kubernetes caps event messages; the status message is kept to the same size.

GATE_ARTIFACT = "artifact-digest"
GATE_SBOM = "sbom"
GATE_POLICY = "policy-digest"
GATE_APPROVALS = "approvals"
GATE_FREEZE = "freeze-window"
#: The role whose approval lets an emergency change pass a freeze window.
EXECUTIVE_ROLE = "executive"
#: The environment variables injected into every container of a template-served model.
MODEL_ENV = ("MODEL_NAME", "MODEL_VERSION", "MODEL_URI", "MODEL_DIGEST")

BACKEND_TEMPLATE = "template"
BACKEND_KSERVE = "inferenceService"

MSG_ONE_BACKEND = "serving needs exactly one of template or inferenceServiceRef"
MSG_TEMPLATE_SERVICES = "template serving needs stableService and canaryService"
MSG_SERVICES_DIFFER = "stableService and canaryService must differ"
MSG_TEMPLATE_CONTAINERS = "serving.template needs spec.containers with at least one container"
MSG_TEMPLATE_LABELS = (
    "serving.template needs metadata.labels (they select the child Rollout's pods)"
)
MSG_KSERVE_PAUSE = (
    "a pause step of a KServe canary needs a duration (a ModelRelease takes no promote request)"
)
MSG_ONE_STORE = "alias store must set at most one of configMap or mlflow"
MSG_SBOM_SOURCE = "gates.sbom needs exactly one of configMapKeyRef or url"
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

# --------------------------------------------------------------------------------------------
# Observations


@dataclass(frozen=True)
class GateResult:
    """A gate's result as an adapter reported it.

    ``status`` Waived carries the gate's own result in ``underlying`` (Pending when unknown),
    which applies again once ``waiver_expires_at`` has passed. ``freeze-window`` reports Failed
    while a freeze window is open (its message names the window and when it ends).
    ``recheck_at``: when the result is due to change by itself (a freeze window's end): the
    release looks again then rather than at its next poll.
    """

    name: str
    status: GateStatus
    message: str = ""
    checked_at: datetime | None = None
    waiver_expires_at: datetime | None = None
    underlying: GateStatus | None = None
    recheck_at: datetime | None = None


@dataclass(frozen=True)
class Approval:
    """An approval recorded by the admission webhook: ``user`` is the API server's identity."""

    role: str
    user: str
    at: datetime
    version: str


@dataclass(frozen=True)
class VoidedApproval:
    """A signed approval that does not count: ``fields`` changed since it was given (empty:
    it was recorded before approvals were bound to the release's content)."""

    role: str
    user: str
    fields: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.role}/{self.user}: {', '.join(self.fields) or 'unbound'}"

    def describe(self) -> str:
        changed = ", ".join(self.fields) or "the release's content (recorded unbound)"
        return f"{self.role} by {self.user} (given before {changed} changed)"


@dataclass(frozen=True)
class AliasReading:
    """The alias read back from its store: ``version`` None when the alias is unset;
    ``error`` set when the store could not be read (or refused the last flip)."""

    version: str | None = None
    uri: str | None = None
    digest: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ChildRolloutState:
    """The child Rollout (template serving) as read from its status."""

    exists: bool = True
    phase: Phase | None = None
    canary_weight: int = 0
    current_step_index: int | None = None
    stable_revision: str | None = None
    canary_revision: str | None = None
    rolled_back_revision: str | None = None
    message: str = ""
    template: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class InferenceServiceState:
    """The KServe InferenceService's predictor: spec fields read back and status revisions.

    ``latest_percent``: the traffic share status reports for the latest revision.
    ``observed_current``: the KServe controller observed the latest spec (status not stale).
    """

    exists: bool = True
    storage_uri: str | None = None
    canary_traffic_percent: int | None = None
    latest_created_revision: str | None = None
    latest_ready_revision: str | None = None
    latest_rolledout_revision: str | None = None
    previous_rolledout_revision: str | None = None
    latest_percent: int | None = None
    observed_current: bool = True


@dataclass(frozen=True)
class RevokeRequest:
    """``kubectl rollwise revoke``: ``user`` is the identity the webhook recorded."""

    id: str
    reason: str
    user: str | None
    at: datetime


#: Override decisions (``kubectl rollwise override``), as :mod:`rollwise.core.overrides` names them.
OVERRIDE_PROMOTE = "promote"
OVERRIDE_HOLD = "hold"
OVERRIDE_ROLLBACK = "rollback"
#: The gate reason of a failed gate a confirmed promote override lets pass.
OVERRIDDEN = "Overridden"


@dataclass(frozen=True)
class ReleaseObservations:
    """Everything observed this pass.

    ``name``: the ModelRelease's ``metadata.name``. ``generation``: its ``metadata.generation``.
    ``gates``: gate results, one per gate (a second result for the same gate is ignored;
    approvals are not a reported gate: the core computes that gate from ``approvals``, and an
    ``approvals`` entry here is ignored). ``version_set_by``: who set
    ``spec.version`` (never a valid approver). ``digest_previously_approved``: the artifact
    digest was Approved in an earlier release. ``version_revoked_before``: another release
    revoked this version. ``blocking_release``: the release holding the (model, alias) slot,
    when it is another one. ``alias``: None when not read this pass. ``manifest_written``: the
    release manifest ConfigMap exists. ``override``: the override in effect for this version:
    ``hold`` stops every stage transition and alias flip (and pauses the child Rollout);
    ``rollback`` ends the release RolledBack, traffic and alias back as for a revoke but
    without entering the revocation ledger; a confirmed ``promote`` lets this version's failed
    gates pass (Waived, reason ``Overridden``); approvals are never overridden.
    ``approvals`` are those bound to the spec's current content (:func:`release_content`);
    ``voided_approvals``: signed approvals given for another content, which do not count.
    ``overrides_seq``: the counter of the verified override list (remembered in status, so
    that an older list put back is recognised).
    """

    name: str
    generation: int
    gates: tuple[GateResult, ...] = ()
    approvals: tuple[Approval, ...] = ()
    version_set_by: str | None = None
    digest_previously_approved: bool = False
    version_revoked_before: bool = False
    blocking_release: str | None = None
    alias: AliasReading | None = None
    child: ChildRolloutState | None = None
    inference_service: InferenceServiceState | None = None
    measurements: Mapping[str, Measurement] = field(default_factory=dict)
    revoke: RevokeRequest | None = None
    manifest_written: bool = False
    override: ReleaseOverride | None = None
    query_check: QueryCheck | None = None
    events_posted: int = 0
    reference_errors: tuple[str, ...] = ()
    voided_approvals: tuple[VoidedApproval, ...] = ()
    overrides_seq: int = 0


# --------------------------------------------------------------------------------------------
# Actions and decision


@dataclass(frozen=True)
class EnsureChildRollout:
    """Create or update the child Rollout ``name`` with ``spec`` (owned by the release)."""

    name: str
    spec: Mapping[str, Any] = field(compare=True, hash=False)


@dataclass(frozen=True)
class RevertChildRollout:
    """Take traffic off the release's revision: set the child Rollout's template back to
    ``template`` and request full promotion (``rollwise.dev/promote-full``) so the previous
    version serves everything at once; ``template`` None (nothing served before) scales the
    child Rollout to zero replicas."""

    name: str
    template: Mapping[str, Any] | None = field(compare=True, hash=False)


@dataclass(frozen=True)
class SetPredictorStorageUri:
    """Set the InferenceService predictor's ``storageUri`` (KServe starts a new revision)."""

    name: str
    uri: str


@dataclass(frozen=True)
class SetCanaryTrafficPercent:
    """Set the predictor's ``canaryTrafficPercent``; applied before a storage URI change of
    the same pass (or in the same patch) so the new revision never gets 100% by default."""

    name: str
    percent: int


@dataclass(frozen=True)
class RemoveCanaryTrafficPercent:
    """Remove ``canaryTrafficPercent``: KServe rolls the latest revision out to 100%."""

    name: str


@dataclass(frozen=True)
class FlipAlias:
    """Point ``model``/``alias`` at ``version`` (``uri``, ``digest``) if it still points at
    ``expected_current`` (optimistic concurrency); ``version`` None removes the alias."""

    model: str
    alias: str
    version: str | None
    uri: str | None
    digest: str | None
    expected_current: str | None


@dataclass(frozen=True)
class WriteReleaseManifest:
    """Write ConfigMap ``name`` with ``release_manifest.json`` = ``content``; the runtime
    refuses to overwrite an existing manifest."""

    name: str
    content: Mapping[str, Any] = field(compare=True, hash=False)


ReleaseAction = (
    EnsureChildRollout
    | RevertChildRollout
    | SetPredictorStorageUri
    | SetCanaryTrafficPercent
    | RemoveCanaryTrafficPercent
    | FlipAlias
    | WriteReleaseManifest
)


@dataclass(frozen=True)
class ReleaseDecision:
    status: ModelReleaseStatus
    actions: tuple[ReleaseAction, ...]
    events: tuple[Event, ...]
    requeue_after: float | None


def release_event(reason: Reason, ticket: str, **fields: object) -> Event:
    """An event of a release: ``reason``'s message with the change ticket appended."""
    return _event(reason, ticket, **fields)


def _event(reason: Reason, ticket: str, **fields: object) -> Event:
    suffix = f" [change {ticket}]"
    body = reason.format(**fields)
    if len(body) + len(suffix) > MAX_MESSAGE:
        body = body[: MAX_MESSAGE - len(suffix) - 3] + "..."
    return Event(reason.type, reason, body + suffix)


# --------------------------------------------------------------------------------------------
# Spec: parsing, validation, derived values


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
    errors.extend(validate_steps("spec.canary", spec.canary.steps, spec.canary.analysis))
    if spec.canary.analysis is not None:
        errors.extend(validate_analysis("spec.canary", spec.canary.analysis))
    if serving.inference_service_ref is not None:
        for i, step in enumerate(spec.canary.steps):
            if step.pause is not None and step.pause.duration is None:
                errors.append(f"spec.canary.steps[{i}].pause: {MSG_KSERVE_PAUSE}")
    store = spec.alias.store
    if store is not None and store.config_map is not None and store.mlflow is not None:
        errors.append(f"spec.alias.store: {MSG_ONE_STORE}")
    sbom = spec.gates.sbom
    if sbom is not None and (sbom.config_map_key is None) == (sbom.url is None):
        errors.append(f"spec.gates.sbom: {MSG_SBOM_SOURCE}")
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


def pre_staging_gates(
    spec: ModelReleaseSpec, rules: ReleaseRules = STRICT_RULES
) -> tuple[str, ...]:
    """The gates that must pass before Staging: ``sbom`` and ``policy-digest`` when the spec
    configures them or the cluster policy requires them."""
    names = [GATE_ARTIFACT]
    if spec.gates.sbom is not None or GATE_SBOM in rules.required_gates:
        names.append(GATE_SBOM)
    if spec.policy_digest is not None or GATE_POLICY in rules.required_gates:
        names.append(GATE_POLICY)
    return tuple(names)


def all_gates(spec: ModelReleaseSpec, rules: ReleaseRules = STRICT_RULES) -> tuple[str, ...]:
    """Every gate of the release, in the order they apply. ``freeze-window`` always applies:
    freeze windows may come from the cluster-wide ConfigMap as well as from the spec."""
    return (*pre_staging_gates(spec, rules), GATE_APPROVALS, GATE_FREEZE)


def required_roles(spec: ModelReleaseSpec, rules: ReleaseRules = STRICT_RULES) -> tuple[str, ...]:
    """The roles that must approve: the cluster policy's, then the spec's own."""
    return tuple(dict.fromkeys((*rules.required_roles, *spec.approvals.required_roles)))


_NOT_DNS = re.compile(r"[^a-z0-9-]+")


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
    if serving.traffic_routing is not None:
        canary["trafficRouting"] = serving.traffic_routing.model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
    if spec.canary.analysis is not None:
        canary["analysis"] = spec.canary.analysis.model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
    return {
        "replicas": serving.replicas,
        "selector": {"matchLabels": _template_labels(template)},
        "template": template,
        "strategy": {"canary": canary},
    }


def child_revision(spec: ModelReleaseSpec) -> str:
    """The child Rollout's revision id of this release's template."""
    return revision_of(child_rollout_spec(spec)["template"])


def _backend(spec: ModelReleaseSpec) -> str:
    return BACKEND_TEMPLATE if spec.serving.template is not None else BACKEND_KSERVE


# --------------------------------------------------------------------------------------------
# The release's own analysis (KServe backend)


def _active_run(
    spec: ModelReleaseSpec, status: ModelReleaseStatus | None
) -> tuple[StepChecks, AnalysisRun] | None:
    if status is None or status.stage is not Stage.STAGING or status.serving is None:
        return None
    sv = status.serving
    own = sv.backend == BACKEND_KSERVE or (sv.solo and sv.solo_started_at is not None)
    if not own or sv.passed or sv.failure is not None:
        return None
    run = sv.analysis
    if run is None or run.step_index != sv.step_index or run.verdict is not None:
        return None
    checks = checks_for(spec.canary.steps, spec.canary.analysis, sv.step_index)
    if checks is None:
        return None
    return checks, run


def release_due_metrics(
    spec: ModelReleaseSpec, status: ModelReleaseStatus | None, now: datetime
) -> list[MetricDue]:
    """The metrics of the release's KServe canary to query now, in spec order."""
    active = _active_run(spec, status)
    if active is None:
        return []
    checks, run = active
    return due_now(checks, run, now)


def release_query_context(
    namespace: str, spec: ModelReleaseSpec, status: ModelReleaseStatus | None
) -> dict[str, str]:
    """The query placeholders for the release's own canary analysis: for KServe, ``name`` is
    the InferenceService and the revisions are KServe's revision names; for the analysis of a
    first release alone (``serving.solo``), ``name`` is the child Rollout and both revisions
    are this release's."""
    sv = status.serving if status is not None else None
    if sv is not None and sv.backend == BACKEND_TEMPLATE:
        return {
            "namespace": namespace,
            "name": sv.name,
            "stableRevision": sv.revision or "",
            "canaryRevision": sv.revision or "",
            "stableService": spec.serving.stable_service or "",
            "canaryService": spec.serving.canary_service or "",
        }
    ref = spec.serving.inference_service_ref
    return {
        "namespace": namespace,
        "name": ref.name if ref is not None else "",
        "stableRevision": (sv.stable_revision if sv is not None else None) or "",
        "canaryRevision": (sv.revision if sv is not None else None) or "",
        "stableService": spec.serving.stable_service or "",
        "canaryService": spec.serving.canary_service or "",
    }


# --------------------------------------------------------------------------------------------
# Entry point


def decide_release(
    spec: ModelReleaseSpec | Mapping[str, Any],
    status: ModelReleaseStatus | None,
    obs: ReleaseObservations,
    now: datetime,
    rules: ReleaseRules = STRICT_RULES,
) -> ReleaseDecision:
    """Decide the next status, actions, events and requeue of a ModelRelease.

    ``spec`` may be the wire form (parsed and validated here) or a parsed spec. ``status``
    None means the object has no status yet. A naive ``now`` is taken as UTC. ``rules``: the
    cluster policy for this release (its defaults know no registry and no model owner). Never
    raises on well-typed input.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    previous = status if status is not None else ModelReleaseStatus()
    loaded, errors = load_release_spec(spec, rules)
    digest = ""
    if loaded is not None:
        digest = queries_digest(release_metrics(loaded))
        queries = verification(digest, previous.queries, obs.query_check, now)
        if queries != previous.queries:
            previous = previous.model_copy(update={"queries": queries})
        errors = [*refusals(queries, digest), *obs.reference_errors]
    if loaded is None or errors:
        decision = _invalid(previous, errors, _raw_ticket(spec), obs, now)
    else:
        decision = _Pass(loaded, previous, obs, now, rules).run()
    return _release_logged(_release_queries(decision, digest, obs, now), status, obs, now)


def release_metrics(spec: ModelReleaseSpec) -> list[tuple[str, Metric]]:
    """Every metric the release's canary can measure, with its spec path."""
    return canary_metrics(spec.canary.steps, spec.canary.analysis, "spec.canary")


def _release_queries(
    decision: ReleaseDecision, digest: str, obs: ReleaseObservations, now: datetime
) -> ReleaseDecision:
    """The ``QueriesVerified`` condition, and a look again when the queries are unverified."""
    status = decision.status
    condition = condition_of(status.queries, digest)
    if condition is None:
        status = status.without_condition(ReleaseConditionType.QUERIES_VERIFIED)
        return dataclasses.replace(decision, status=status)
    value, reason, message = condition
    status = status.with_condition(
        ReleaseConditionType.QUERIES_VERIFIED,
        ConditionStatus(value),
        reason=reason,
        message=clip(message),
        now=now,
        generation=obs.generation,
    )
    requeue = decision.requeue_after
    again = recheck_at(status.queries)
    if again is not None:
        wait = max((again - now).total_seconds(), 0.0)
        requeue = wait if requeue is None else min(requeue, wait)
    return dataclasses.replace(decision, status=status, requeue_after=requeue)


def _release_logged(
    decision: ReleaseDecision,
    read: ModelReleaseStatus | None,
    obs: ReleaseObservations,
    now: datetime,
) -> ReleaseDecision:
    """The decision's events appended to ``status.eventLog`` (see ``core.events``)."""
    status = decision.status
    log = log_events(status.event_log, decision.events, now)
    if log is not status.event_log:
        status = status.model_copy(update={"event_log": log})
    if read is None or status != read:
        status = status.model_copy(
            update={"event_log": mark_posted(status.event_log, obs.events_posted)}
        )
    return dataclasses.replace(decision, status=status)


def _raw_ticket(spec: ModelReleaseSpec | Mapping[str, Any]) -> str:
    if isinstance(spec, ModelReleaseSpec):
        return spec.change.ticket
    change = spec.get("change")
    ticket = change.get("ticket") if isinstance(change, Mapping) else None
    return ticket if isinstance(ticket, str) and ticket else "unknown"


def _invalid(
    previous: ModelReleaseStatus,
    errors: list[str],
    ticket: str,
    obs: ReleaseObservations,
    now: datetime,
) -> ReleaseDecision:
    shown = errors[:10] + ([f"... and {len(errors) - 10} more"] if len(errors) > 10 else [])
    message = clip(R.INVALID_SPEC.format(errors="; ".join(shown)))
    before = previous.condition(ReleaseConditionType.INVALID_SPEC)
    unchanged = (
        before is not None and before.status is ConditionStatus.TRUE and before.message == message
    )
    events = () if unchanged else (_event(R.INVALID_SPEC, ticket, errors="; ".join(shown)),)
    gen = obs.generation
    status = previous.model_copy(
        update={
            "stage": previous.stage or Stage.CANDIDATE,
            "phase": ReleasePhase.DEGRADED,
            "message": message,
            "observed_generation": gen,
        }
    )
    for type_, value in (
        (ReleaseConditionType.READY, ConditionStatus.FALSE),
        (ReleaseConditionType.DEGRADED, ConditionStatus.TRUE),
        (ReleaseConditionType.INVALID_SPEC, ConditionStatus.TRUE),
    ):
        status = status.with_condition(
            type_, value, reason=R.INVALID_SPEC.name, message=message, now=now, generation=gen
        )
    return ReleaseDecision(status=status, actions=(), events=events, requeue_after=None)


# --------------------------------------------------------------------------------------------
# One pass


@dataclass(frozen=True)
class _Gate:
    record: GateRecord
    passing: bool


def _step_what(step: Step) -> str:
    if step.set_weight is not None:
        return f"setWeight {step.set_weight}%"
    if step.pause is not None:
        return f"pause {step.pause.duration}" if step.pause.duration else "pause"
    return "analysis"


class _Pass:
    """The mutable scratchpad of one ``decide_release`` call."""

    def __init__(
        self,
        spec: ModelReleaseSpec,
        previous: ModelReleaseStatus,
        obs: ReleaseObservations,
        now: datetime,
        rules: ReleaseRules,
    ) -> None:
        self.spec = spec
        self.prev = previous
        self.obs = obs
        self.now = now
        self.rules = rules
        self.content = release_content(spec)
        #: Fields changed since the release was approved: nothing of the change is applied.
        self.changed_since_approval: tuple[str, ...] = ()
        self.ticket = spec.change.ticket
        self.backend = _backend(spec)
        self.steps = spec.canary.steps
        self.n = len(self.steps)
        self.events: list[Event] = []
        self.wakes: list[datetime] = []
        self.message = ""
        self.waiting = False
        self.refused = False
        self.flip_allowed = False
        self.superseded = False
        self.held = False
        #: Why a promote override does not act yet (it waits for a confirmation), or what it
        #: cannot override; added to the status message.
        self.override_note = ""
        self.gates: dict[str, _Gate] = {}
        self.s = previous.model_copy(
            update={
                "observed_generation": obs.generation,
                "overrides_seq": max(previous.overrides_seq, obs.overrides_seq),
            }
        )

    # ---------------------------------------------------------------- helpers

    def update(self, **fields: Any) -> None:
        self.s = self.s.model_copy(update=fields)

    def serving(self, **fields: Any) -> None:
        if self.s.serving is not None:
            self.update(serving=self.s.serving.model_copy(update=fields))

    def alias(self, **fields: Any) -> None:
        current = self.s.alias or AliasStatus(name=self.spec.alias.name)
        self.update(alias=current.model_copy(update=fields))

    def emit(self, reason: Reason, **fields: object) -> None:
        self.events.append(_event(reason, self.ticket, **fields))

    def wake(self, at: datetime | None) -> None:
        if at is not None:
            self.wakes.append(at)

    def poll(self, seconds: float) -> None:
        self.wake(add_seconds(self.now, seconds))

    def wait(self, message: str, seconds: float = GATE_POLL_SECONDS) -> None:
        """Held by a gate, approvals, a freeze window or the queue."""
        self.waiting = True
        self.message = message
        self.poll(seconds)

    def cluster_wait(self, message: str) -> None:
        """Waiting on the cluster or the alias store to catch up."""
        self.message = message
        self.poll(POLL_SECONDS)

    @property
    def stage(self) -> Stage:
        return self.s.stage or Stage.CANDIDATE

    def transition(
        self, to: Stage, reason: Reason, user: str | None = None, **fields: object
    ) -> None:
        event = _event(reason, self.ticket, **fields)
        self.events.append(event)
        entry = HistoryEntry(
            from_stage=self.s.stage,
            stage=to,
            time=self.now,
            reason=reason.name,
            message=event.message,
            user=user,
        )
        self.update(stage=to, history=[*self.s.history, entry][-MAX_HISTORY:])

    # ---------------------------------------------------------------- the pass

    def run(self) -> ReleaseDecision:
        invalid = self.prev.condition(ReleaseConditionType.INVALID_SPEC)
        if (
            invalid is not None
            and invalid.status is ConditionStatus.TRUE
            and invalid.reason == R.INVALID_SPEC.name
        ):
            self.emit(R.SPEC_CORRECTED)
        if self.s.stage is None:
            self.transition(
                Stage.CANDIDATE,
                R.RELEASE_CREATED,
                self.obs.version_set_by,
                model=self.spec.model,
                version=self.spec.version,
                change_type=self.spec.change.type.value,
            )
        if self.spec.change.type is ChangeType.EMERGENCY and not self.s.emergency_announced:
            self.emit(R.EMERGENCY_CHANGE, model=self.spec.model, version=self.spec.version)
            self.update(emergency_announced=True)
        self._read_alias()
        if self.obs.revoke is not None and self.stage is not Stage.REVOKED:
            self._revoke()
        if self.stage.terminal:
            self._terminal()
        elif self.stage is Stage.CANDIDATE and self.obs.version_revoked_before:
            self._refuse()
        else:
            self._evaluate_gates()
            override = self.obs.override
            if override is not None and override.decision == OVERRIDE_ROLLBACK:
                self._override_rollback(override)
                self._terminal()
            elif override is not None and override.decision == OVERRIDE_HOLD:
                self.held = True
                self.wait(
                    f"held at stage {self.stage.value} by {override.user} "
                    f"(override {override.id}): {override.reason}"
                )
            else:
                self._advance()
        self._finish()
        return ReleaseDecision(
            status=self.s,
            actions=tuple(self._actions()),
            events=tuple(self.events),
            requeue_after=self._requeue(),
        )

    def _advance(self) -> None:
        for _ in range(4):
            before = self.stage
            if before is Stage.CANDIDATE:
                self._candidate()
            elif before is Stage.STAGING:
                self._staging()
            elif before is Stage.APPROVED:
                self._approved()
            elif before is Stage.PRODUCTION:
                self._production()
            if self.stage.terminal:
                self._terminal()
                return
            if self.stage is before:
                return

    # ---------------------------------------------------------------- alias readings

    def _read_alias(self) -> None:
        reading = self.obs.alias
        if self.s.alias is None:
            self.alias(name=self.spec.alias.name)
        if reading is None:
            return
        if reading.error is not None:
            return
        self.alias(current_version=reading.version)
        if reading.version == self.spec.version:
            self.alias(held=True)
        # Until the alias shows this version, what it shows is the rollback target: recorded
        # from every reading before Production, so a crash between the flip and the status
        # patch never loses it.
        before_flip = self.stage in (Stage.CANDIDATE, Stage.STAGING, Stage.APPROVED)
        if before_flip and reading.version != self.spec.version:
            self.alias(
                previous_version=reading.version,
                previous_uri=reading.uri,
                previous_digest=reading.digest,
            )

    def _alias_shows(self, version: str | None) -> bool:
        reading = self.obs.alias
        return reading is not None and reading.error is None and reading.version == version

    # ---------------------------------------------------------------- gates

    def _gate_from_result(self, name: str) -> tuple[GateStatus, str, str, GateResult | None]:
        result = next((g for g in self.obs.gates if g.name == name), None)
        if result is None:
            return GateStatus.PENDING, "NotReported", "no result reported yet", None
        if result.status is GateStatus.WAIVED:
            expires = result.waiver_expires_at
            if expires is None or self.now < expires:
                self.wake(expires)
                return GateStatus.WAIVED, "Waived", result.message, result
            underlying = result.underlying or GateStatus.PENDING
            if underlying is GateStatus.WAIVED:
                underlying = GateStatus.PENDING
            return underlying, "WaiverExpired", result.message, result
        if result.recheck_at is not None and result.recheck_at > self.now:
            self.wake(result.recheck_at)
        return result.status, result.status.value, result.message, result

    def _approvals_gate(self) -> tuple[GateStatus, str, str, datetime | None]:
        spec = self.spec
        if spec.change.type is ChangeType.STANDARD and self.obs.digest_previously_approved:
            return (
                GateStatus.PASSED,
                "PreApproved",
                "standard change: this artifact digest was approved before; no approvals needed",
                None,
            )
        filled, notes = self._valid_approvals()
        required = list(required_roles(spec, self.rules))
        missing = [r for r in required if r not in filled]
        given = ", ".join(f"{r}: {filled[r].user}" for r in required if r in filled)
        if missing:
            message = "waiting for approval by " + ", ".join(missing)
            if given:
                message += f" (approved by {given})"
            status, reason = GateStatus.PENDING, "AwaitingApproval"
        else:
            message = f"approved by {given}" if given else "no approvals required"
            status, reason = GateStatus.PASSED, "Approved"
        notes.extend(v.describe() for v in self.obs.voided_approvals if v.role in required)
        if notes:
            message += "; ignored: " + "; ".join(notes)
        times = [filled[r].at for r in required if r in filled]
        return status, reason, message, max(times) if times else None

    def _voided_events(self) -> None:
        """One ``ApprovalVoided`` Warning per approval found void (remembered in status)."""
        voided = {v.key: v for v in self.obs.voided_approvals}
        for key in sorted(set(voided) - set(self.prev.voided_approvals)):
            found = voided[key]
            self.emit(
                R.APPROVAL_VOIDED,
                role=found.role,
                user=found.user,
                fields=", ".join(found.fields) or "the release's content (recorded unbound)",
            )
        self.update(voided_approvals=sorted(voided))

    def _valid_approvals(self) -> tuple[dict[str, Approval], list[str]]:
        """Approvals that count, by role: for this version, not by who set the version, one
        role per person (earliest first), plus why the others do not count."""
        required = set(required_roles(self.spec, self.rules))
        filled: dict[str, Approval] = {}
        users: set[str] = set()
        notes: list[str] = []
        for a in sorted(self.obs.approvals, key=lambda a: (a.at, a.role, a.user)):
            if a.role not in required:
                continue
            if a.version != self.spec.version:
                notes.append(f"{a.role} by {a.user} is for version {a.version}")
            elif self.obs.version_set_by is not None and a.user == self.obs.version_set_by:
                notes.append(f"{a.role} by {a.user} who set the version")
            elif a.role in filled:
                continue
            elif a.user in users:
                notes.append(f"{a.role} by {a.user} who already approved another role")
            else:
                filled[a.role] = a
                users.add(a.user)
        return filled, notes

    def _executive(self) -> Approval | None:
        for a in sorted(self.obs.approvals, key=lambda a: (a.at, a.user)):
            if (
                a.role == EXECUTIVE_ROLE
                and a.version == self.spec.version
                and a.user != self.obs.version_set_by
            ):
                return a
        return None

    def _evaluate_gates(self) -> None:
        records: list[GateRecord] = []
        for name in all_gates(self.spec, self.rules):
            result: GateResult | None = None
            if name == GATE_APPROVALS:
                status, reason, message, checked = self._approvals_gate()
                expires = None
            else:
                status, reason, message, result = self._gate_from_result(name)
                checked = result.checked_at if result is not None else None
                expires = result.waiver_expires_at if result is not None else None
                if status is GateStatus.FAILED:
                    status, reason, message = self._override_gate(reason, message)
            old = self.prev.gate(name)
            since = (
                old.last_transition_time
                if old is not None and old.status is status and old.reason == reason
                else self.now
            )
            rec = GateRecord(
                name=name,
                status=status,
                reason=reason,
                message=clip(message),
                checked_at=checked,
                waiver_expires_at=expires,
                last_transition_time=since,
            )
            records.append(rec)
            passing = status in (GateStatus.PASSED, GateStatus.WAIVED)
            self.gates[name] = _Gate(rec, passing)
            self._gate_events(name, rec, old)
        self.update(gates=records)
        self._voided_events()

    def _override_gate(self, reason: str, message: str) -> tuple[GateStatus, str, str]:
        """A failed gate under a promote override: Waived (``Overridden``) once a second
        person confirmed it, else unchanged (still Failed) and the override waits."""
        override = self.obs.override
        if override is None or override.decision != OVERRIDE_PROMOTE:
            return GateStatus.FAILED, reason, message
        if not override.confirmed:
            self.override_note = (
                f"promote override by {override.user} waits for a second person's "
                f"confirmation: {override.confirm_hint}"
            )
            return GateStatus.FAILED, reason, message
        text = (
            f"overridden by {override.user}, confirmed by {override.confirmed_by} "
            f"(override {override.id}): {override.reason}; gate's own result: Failed"
            + (f": {message}" if message else "")
        )
        return GateStatus.WAIVED, OVERRIDDEN, text

    def _override_rollback(self, override: ReleaseOverride) -> None:
        """Traffic off this version and the alias back as for a revoke, but RolledBack: the
        version is not entered in the revocation ledger and may be released again."""
        stage = self.stage
        cause = f"override {override.id} by {override.user}: {override.reason}"
        self.serving(traffic_off=self._traffic_off_mode(stage), failure=cause)
        self.transition(
            Stage.ROLLED_BACK,
            R.ROLLED_BACK,
            override.user,
            version=self.spec.version,
            stage=stage.value,
            cause=cause,
        )

    def _gate_events(self, name: str, rec: GateRecord, old: GateRecord | None) -> None:
        old_status = old.status if old is not None else None
        old_reason = old.reason if old is not None else None
        detail = rec.message or rec.status.value
        if rec.reason == "WaiverExpired" and old_reason != "WaiverExpired":
            expires = format_time(rec.waiver_expires_at) if rec.waiver_expires_at else "?"
            self.emit(
                R.WAIVER_EXPIRED,
                gate=name,
                expires=expires,
                status=rec.status.value,
                detail=detail,
            )
            return
        if rec.reason == OVERRIDDEN and old_reason != OVERRIDDEN:
            self.emit(R.GATE_OVERRIDDEN, gate=name, detail=detail)
            return
        if rec.status is GateStatus.WAIVED and old_status is not GateStatus.WAIVED:
            expires = format_time(rec.waiver_expires_at) if rec.waiver_expires_at else "never"
            self.emit(R.GATE_WAIVED, gate=name, expires=expires, detail=detail)
            return
        if name == GATE_FREEZE:
            return
        if rec.status is GateStatus.FAILED and old_status is not GateStatus.FAILED:
            if self.stage is Stage.PRODUCTION:
                self.emit(
                    R.GATE_REGRESSED,
                    version=self.spec.version,
                    gate=name,
                    status=rec.status.value,
                    detail=detail,
                )
            else:
                self.emit(R.GATE_FAILED, gate=name, detail=detail)

    def _blocking(self, names: tuple[str, ...]) -> list[str]:
        out = []
        for name in names:
            gate = self.gates.get(name)
            if gate is None or not gate.passing:
                status = gate.record.status.value if gate is not None else "Pending"
                text = gate.record.message if gate is not None else ""
                out.append(f"{name} {status}" + (f" ({text})" if text else ""))
        return out

    # ---------------------------------------------------------------- stages

    def _candidate(self) -> None:
        blocker = self.obs.blocking_release
        model, alias = self.spec.model, self.spec.alias.name
        if blocker:
            if self.s.queued_behind != blocker:
                self.emit(R.QUEUED, blocker=blocker, model=model, alias=alias)
            self.update(queued_behind=blocker)
            self.wait(f"Queued behind {blocker}")
            return
        if self.s.queued_behind is not None:
            self.emit(R.UNQUEUED, model=model, alias=alias)
            self.update(queued_behind=None)
        blocking = self._blocking(pre_staging_gates(self.spec, self.rules))
        if blocking:
            self.wait("waiting for gates before Staging: " + "; ".join(blocking))
            return
        gates = ", ".join(pre_staging_gates(self.spec, self.rules))
        self.transition(
            Stage.STAGING,
            R.STAGED,
            version=self.spec.version,
            why=f"gates passed ({gates}); canary starting",
        )
        self._start_serving()

    def _start_serving(self) -> None:
        if self.backend == BACKEND_TEMPLATE:
            child = self.obs.child
            rev = child_revision(self.spec)
            previous = None
            if (
                child is not None
                and child.exists
                and child.template is not None
                and revision_of(child.template) != rev
            ):
                previous = dict(child.template)
            self.update(
                serving=ServingStatus(
                    backend=BACKEND_TEMPLATE,
                    name=child_rollout_name(self.spec),
                    revision=rev,
                    step_started_at=self.now,
                    previous_template=previous,
                    # A new child Rollout serves this version alone from its first pass:
                    # nothing to canary against, so the release analyses it by itself.
                    solo=child is None or not child.exists,
                )
            )
            return
        ref = self.spec.serving.inference_service_ref
        isvc = self.obs.inference_service
        previous_uri = None
        if isvc is not None and isvc.exists and isvc.storage_uri != self.spec.artifact.uri:
            previous_uri = isvc.storage_uri
        self.update(
            serving=ServingStatus(
                backend=BACKEND_KSERVE,
                name=ref.name if ref is not None else "",
                step_started_at=self.now,
                previous_storage_uri=previous_uri,
            )
        )
        self._enter_step(0)

    def _staging(self) -> None:
        sv = self.s.serving
        if sv is None:
            self._start_serving()
            sv = self.s.serving
        if sv is not None and not sv.passed:
            if self.backend == BACKEND_TEMPLATE:
                self._follow_child()
            else:
                self._kserve()
        sv = self.s.serving
        if sv is None or self.stage is not Stage.STAGING:
            return
        if sv.failure is not None:
            return
        if not sv.passed:
            return
        needed = (*pre_staging_gates(self.spec, self.rules), GATE_APPROVALS)
        blocking = self._blocking(needed)
        if blocking:
            self.wait("canary passed; waiting for " + "; ".join(blocking))
            return
        filled, _ = self._valid_approvals()
        approvals = [
            ApprovalRecord(role=r, user=filled[r].user, at=filled[r].at)
            for r in required_roles(self.spec, self.rules)
            if r in filled
        ]
        self.update(approvals=approvals)
        approvals_gate = self.gates.get(GATE_APPROVALS)
        why = approvals_gate.record.message if approvals_gate is not None else ""
        users = sorted({a.user for a in approvals})
        self.update(approved_content=self.content)
        self.transition(
            Stage.APPROVED,
            R.APPROVED,
            ", ".join(users) if users else None,
            version=self.spec.version,
            why=f"canary passed; {why}",
        )

    def _content_changed(self) -> bool:
        """Whether what decides what runs changed since the release was approved; reported
        once per distinct set of fields. A release approved before approvals were bound to
        content records its content now."""
        approved = self.s.approved_content
        if approved is None:
            self.update(approved_content=self.content)
            return False
        fields = changed_fields(approved, self.content)
        if list(fields) != self.s.content_changed:
            if fields:
                self.emit(R.CONTENT_CHANGED, fields=", ".join(fields), version=self.spec.version)
            self.update(content_changed=list(fields))
        self.changed_since_approval = fields
        return bool(fields)

    def _approved(self) -> None:
        if self._content_changed():
            self.wait(
                f"approved; {', '.join(self.changed_since_approval)} changed after approval: "
                "promotion held and the approved content keeps serving; revert the change or "
                "release it as a new ModelRelease"
            )
            return
        blocking = self._blocking((*pre_staging_gates(self.spec, self.rules), GATE_APPROVALS))
        if blocking:
            self.wait("approved; promotion to Production blocked by " + "; ".join(blocking))
            return
        freeze = self.gates.get(GATE_FREEZE)
        bypass_by: str | None = None
        if freeze is None or not freeze.passing:
            executive = self._executive()
            frozen = freeze is not None and freeze.record.status is GateStatus.FAILED
            detail = freeze.record.message if freeze is not None else "no result"
            if frozen and self.spec.change.type is ChangeType.EMERGENCY and executive is not None:
                bypass_by = executive.user
            else:
                if frozen:
                    old = self.prev.gate(GATE_FREEZE)
                    was_frozen = (
                        self.prev.stage is Stage.APPROVED
                        and old is not None
                        and old.status is GateStatus.FAILED
                    )
                    if not was_frozen:
                        self.emit(R.PROMOTION_FROZEN, detail=detail)
                    self.wait(f"approved; promotion to Production held by freeze window: {detail}")
                else:
                    self.wait(f"approved; waiting for the freeze-window gate ({detail})")
                return
        version = self.spec.version
        alias = self.s.alias or AliasStatus(name=self.spec.alias.name)
        if self._alias_shows(version):
            self.alias(last_error=None, flip_requested=True)
            self.transition(
                Stage.PRODUCTION,
                R.PROMOTED_TO_PRODUCTION,
                alias=self.spec.alias.name,
                model=self.spec.model,
                version=version,
                previous=alias.previous_version or "none",
            )
            return
        self.flip_allowed = True
        if not alias.flip_requested:
            if bypass_by is not None:
                detail = self.gates[GATE_FREEZE].record.message
                self.emit(R.FREEZE_BYPASSED, detail=detail, user=bypass_by)
            self.alias(flip_requested=True)
        reading = self.obs.alias
        error = reading.error if reading is not None else None
        if error is not None and alias.last_error != error:
            self.emit(
                R.ALIAS_FLIP_PENDING,
                alias=self.spec.alias.name,
                model=self.spec.model,
                version=version,
                detail=error,
            )
        self.alias(last_error=error)
        if reading is None:
            shown = "not read yet"
        elif error is not None:
            shown = f"store error: {error}"
        else:
            shown = f"reads {reading.version or 'nothing'}"
        self.cluster_wait(
            f"approved; flipping alias {self.spec.alias.name} to {version} ({shown}); "
            "Production once the alias reads back this version"
        )

    def _production(self) -> None:
        version = self.spec.version
        if self._alias_shows(version):
            self.message = (
                f"version {version} in Production: alias {self.spec.alias.name} points at it"
            )
        else:
            reading = self.obs.alias
            alias = self.s.alias
            if (
                reading is not None
                and reading.error is None
                and reading.version is not None
                and alias is not None
                and alias.held
            ):
                # The alias held this version and has since moved on (a later release):
                # this release is done, and it never flips the alias back by itself.
                self.superseded = True
                self.message = (
                    f"version {version} was superseded: alias {self.spec.alias.name} now "
                    f"points at version {reading.version}"
                )
                return
            shown = "unreadable" if reading is None or reading.error else reading.version
            self.message = (
                f"version {version} in Production; alias {self.spec.alias.name} reads {shown}"
            )
            self.poll(GATE_POLL_SECONDS)

    # ---------------------------------------------------------------- child Rollout

    def _follow_child(self) -> None:
        sv = self.s.serving
        if sv is None:
            return
        rev = sv.revision
        child = self.obs.child
        if child is None or not child.exists:
            self.cluster_wait(f"waiting for child Rollout {sv.name}")
            return
        if rev is not None and child.rolled_back_revision == rev:
            cause = child.message or "the child Rollout rolled the canary back"
            self.serving(failure=cause, traffic_off="none", weight=0)
            self._rolled_back(cause)
            return
        if (
            child.phase is Phase.HEALTHY
            and child.stable_revision == rev
            and child.canary_revision is None
        ):
            if sv.solo and self._has_checks():
                self._solo()
                return
            detail = f"child Rollout {sv.name} serves revision {rev} at 100%"
            if sv.solo:
                detail += "; first release: nothing to compare with, and the canary has no analysis"
            self.serving(passed=True, weight=100, step_index=self.n)
            self.emit(R.CANARY_PASSED, version=self.spec.version, detail=detail)
            return
        if child.canary_revision == rev:
            step = (child.current_step_index or 0) + 1
            self.serving(weight=child.canary_weight, step_index=child.current_step_index or 0)
            self.cluster_wait(
                f"canary running in child Rollout {sv.name}: step {min(step, self.n)}/{self.n}, "
                f"weight {child.canary_weight}%"
            )
            return
        self.cluster_wait(f"waiting for child Rollout {sv.name} to pick up revision {rev}")

    def _has_checks(self) -> bool:
        return any(
            checks_for(self.steps, self.spec.canary.analysis, i) is not None for i in range(self.n)
        )

    def _solo(self) -> None:
        """The first release through a new child Rollout: it serves the new version alone at
        100%, so the canary's steps run without moving traffic: each step's analysis measures
        the new version by itself (pauses are kept as bake time), and any failure rolls the
        release back (the child Rollout is scaled to zero: nothing served before it)."""
        sv = self.s.serving
        if sv is None:
            return
        if sv.solo_started_at is None:
            self.emit(
                R.CANARY_WITHOUT_BASELINE, version=self.spec.version, name=sv.name, steps=self.n
            )
            self.serving(solo_started_at=self.now)
            self._enter_step(0)
            self.serving(weight=100)
        self._record_measurements()
        for _ in range(self.n + 2):
            sv = self.s.serving
            if sv is None or sv.failure is not None or self.stage is not Stage.STAGING:
                return
            index = sv.step_index
            if index >= self.n:
                self.serving(passed=True, weight=100)
                self.emit(
                    R.CANARY_PASSED,
                    version=self.spec.version,
                    detail=(
                        f"child Rollout {sv.name} serves revision {sv.revision} at 100%; "
                        "first release: its analysis ran on this version alone"
                    ),
                )
                return
            step = self.steps[index]
            head = f"canary step {index + 1}/{self.n} ({_step_what(step)}; no baseline)"
            if step.pause is not None:
                done = self._pause(step.pause.duration or "0s", head)
            else:
                done = self._analysis_gate(index, head)
            if not done:
                return
            following = (
                f"now at step {index + 2}/{self.n}" if index + 1 < self.n else "all steps done"
            )
            self.emit(
                R.CANARY_STEP,
                step=index + 1,
                steps=self.n,
                what=f"{_step_what(step)} complete (no baseline); {following}",
            )
            self._enter_step(index + 1)
            self.serving(weight=100)

    # ---------------------------------------------------------------- KServe canary

    def _enter_step(self, index: int) -> None:
        sv = self.s.serving
        if sv is None:
            return
        weight = sv.weight
        run: AnalysisRun | None = None
        if index < self.n:
            step = self.steps[index]
            if step.set_weight is not None:
                weight = step.set_weight
            elif step.analysis is not None:
                checks = checks_for(self.steps, self.spec.canary.analysis, index)
                if checks is not None:
                    run = new_run(index, sv.revision or "", checks, self.now)
        # The previous step's finished run stays visible until this step starts its own.
        update: dict[str, Any] = {
            "step_index": index,
            "weight": weight,
            "step_started_at": self.now,
        }
        if run is not None:
            update["analysis"] = run
        self.serving(**update)

    def _kserve(self) -> None:
        self._record_measurements()
        sv = self.s.serving
        if sv is None or sv.failure is not None:
            return
        isvc = self.obs.inference_service
        if isvc is None or not isvc.exists:
            self.cluster_wait(f"waiting for InferenceService {sv.name}")
            return
        for _ in range(self.n + 2):
            sv = self.s.serving
            if sv is None or sv.failure is not None or self.stage is not Stage.STAGING:
                return
            index = sv.step_index
            if index >= self.n:
                self._kserve_complete(isvc)
                return
            step = self.steps[index]
            head = f"canary step {index + 1}/{self.n} ({_step_what(step)})"
            if step.set_weight is not None:
                done = self._kserve_weight(isvc, index, step.set_weight, head)
            elif step.pause is not None:
                done = self._pause(step.pause.duration or "0s", head)
            else:
                done = self._analysis_gate(index, head)
            if not done:
                return
            following = (
                f"now at step {index + 2}/{self.n}" if index + 1 < self.n else "all steps done"
            )
            self.emit(
                R.CANARY_STEP,
                step=index + 1,
                steps=self.n,
                what=f"{_step_what(step)} complete; {following}",
            )
            self._enter_step(index + 1)

    def _revision_ready(self, isvc: InferenceServiceState) -> str | None:
        if not isvc.observed_current or isvc.storage_uri != self.spec.artifact.uri:
            return None
        ready = isvc.latest_ready_revision
        if ready is None or ready != isvc.latest_created_revision:
            return None
        return ready

    def _kserve_weight(
        self, isvc: InferenceServiceState, index: int, weight: int, head: str
    ) -> bool:
        sv = self.s.serving
        if sv is None:
            return False
        ready = self._revision_ready(isvc)
        if ready is None:
            self.cluster_wait(f"{head}: waiting for the new revision of {sv.name} to be ready")
            return False
        if sv.revision != ready:
            stable = isvc.latest_rolledout_revision
            self.serving(revision=ready, stable_revision=stable if stable != ready else None)
            run = sv.analysis
            if run is not None and run.revision != ready:
                self.serving(analysis=run.model_copy(update={"revision": ready}))
        first = sv.previous_storage_uri is None
        if isvc.latest_percent != weight and not (first and isvc.latest_percent == 100):
            shown = "unknown" if isvc.latest_percent is None else f"{isvc.latest_percent}%"
            self.cluster_wait(f"{head}: waiting for KServe to report {weight}% ({shown})")
            return False
        return self._analysis_gate(index, head)

    def _pause(self, duration: str, head: str) -> bool:
        sv = self.s.serving
        if sv is None:
            return False
        try:
            seconds = parse_seconds(duration)
        except InvalidDuration:
            seconds = 0.0
        started = sv.step_started_at or self.now
        end = add_seconds(started, seconds)
        if self.now >= end:
            return True
        self.wake(end)
        left = format_seconds((end - self.now).total_seconds())
        self.message = f"{head}: paused, {left} left"
        return False

    def _analysis_gate(self, index: int, head: str) -> bool:
        checks = checks_for(self.steps, self.spec.canary.analysis, index)
        sv = self.s.serving
        if checks is None or sv is None:
            return True
        run = sv.analysis
        if run is None or run.step_index != index:
            run = new_run(index, sv.revision or "", checks, self.now)
            self.serving(analysis=run)
        if run.verdict is Verdict.PASS:
            return True
        if run.verdict is Verdict.INCONCLUSIVE or any_inconclusive(run):
            self.wait(
                f"{head}: analysis inconclusive; held (never promoted nor rolled back on "
                "missing data; revoke to stop)"
            )
            return False
        summary = ", ".join(
            f"{m.name} {(run.metric(m.name) or MetricRun(name=m.name)).taken}/{m.count}"
            for m in checks.metrics
        )
        self.message = f"{head}: analysis running ({summary})"
        return False

    def _record_measurements(self) -> None:
        active = _active_run(self.spec, self.s)
        if active is None or not self.obs.measurements:
            return
        checks, run = active
        due = {d.metric.name for d in release_due_metrics(self.spec, self.s, self.now)}
        metrics: list[MetricRun] = []
        failure = ""
        for metric in checks.metrics:
            metric_run = run.metric(metric.name) or MetricRun(name=metric.name)
            measurement = self.obs.measurements.get(metric.name)
            if metric.name not in due or measurement is None:
                metrics.append(metric_run)
                continue
            # Recorded at ``now`` so that the schedule depends on the decision's clock only.
            rec = record(
                checks,
                metric,
                metric_run,
                Measurement(value=measurement.value, at=self.now, error=measurement.error),
            )
            metrics.append(rec.run)
            if rec.run.verdict is Verdict.FAIL and rec.decided:
                failure = f"{rec.assessment.message} ({rec.run.message})"
        updated = run.model_copy(update={"metrics": metrics})
        verdict = run_verdict(checks, updated)
        updated = updated.model_copy(
            update={"verdict": verdict, "message": failure if verdict is Verdict.FAIL else ""}
        )
        self.serving(analysis=updated)
        if verdict is Verdict.FAIL:
            step = run.step_index + 1
            cause = f"canary step {step}/{self.n}: {failure or 'analysis failed'}"
            off = "pin" if self.backend == BACKEND_KSERVE else "revert"
            self.serving(failure=cause, traffic_off=off, weight=0)
            self._rolled_back(cause)

    def _kserve_complete(self, isvc: InferenceServiceState) -> None:
        sv = self.s.serving
        if sv is None:
            return
        if sv.revision is None:
            ready = self._revision_ready(isvc)
            if ready is not None:
                self.serving(revision=ready)
                sv = self.s.serving
                if sv is None:
                    return
        rolled_out = (
            isvc.observed_current
            and isvc.canary_traffic_percent is None
            and isvc.storage_uri == self.spec.artifact.uri
            and sv.revision is not None
            and isvc.latest_rolledout_revision == sv.revision
        )
        if not rolled_out:
            self.cluster_wait(
                f"all canary steps done: waiting for KServe to roll revision "
                f"{sv.revision or '?'} of {sv.name} out to 100%"
            )
            return
        self.serving(passed=True, weight=100)
        last = sv.analysis
        detail = f"InferenceService {sv.name} serves revision {sv.revision} at 100%"
        if last is not None and last.metrics:
            values = []
            for m in last.metrics:
                shown = measured_text(m.measurements[-1]) if m.measurements else "not measured"
                values.append(f"{m.name} {shown}")
            detail += " (last analysis: " + ", ".join(values) + ")"
        self.emit(R.CANARY_PASSED, version=self.spec.version, detail=detail)

    # ---------------------------------------------------------------- terminal stages

    def _rolled_back(self, cause: str) -> None:
        self.transition(
            Stage.ROLLED_BACK,
            R.ROLLED_BACK,
            version=self.spec.version,
            stage=self.stage.value,
            cause=cause,
        )

    def _revoke(self) -> None:
        request = self.obs.revoke
        if request is None:
            return
        stage = self.stage
        traffic_off = self._traffic_off_mode(stage)
        self.serving(traffic_off=traffic_off)
        self.update(
            revoked=RevokeRecord(
                request=request.id,
                reason=request.reason,
                user=request.user,
                at=request.at,
                from_stage=stage,
            )
        )
        self.transition(
            Stage.REVOKED,
            R.REVOKED,
            request.user,
            version=self.spec.version,
            stage=stage.value,
            by=request.user or "unknown",
            why=request.reason or "no reason given",
        )

    def _traffic_off_mode(self, stage: Stage) -> str:
        sv = self.s.serving
        if stage is Stage.ROLLED_BACK and sv is not None and sv.traffic_off is not None:
            return sv.traffic_off
        if stage is Stage.CANDIDATE or sv is None:
            return "none"
        if sv.backend == BACKEND_TEMPLATE:
            return "revert"
        isvc = self.obs.inference_service
        rolled_out = sv.passed or (
            isvc is not None
            and sv.revision is not None
            and isvc.latest_rolledout_revision == sv.revision
        )
        if not rolled_out:
            return "pin"
        return "revert" if sv.previous_storage_uri is not None else "none"

    def _held_alias(self) -> bool:
        """Whether this version holds (or may hold) the alias: a flip was issued or the
        alias was seen on it."""
        alias = self.s.alias
        if alias is not None and (alias.flip_requested or alias.held):
            return True
        return self._alias_shows(self.spec.version)

    def _needs_flip_back(self) -> bool:
        """This version may hold the alias, it is not restored yet, and there is a rollback
        target other than this version (a status claiming this version as its own previous
        one is corrupt: nothing sensible to flip back to)."""
        alias = self.s.alias
        if alias is not None and alias.previous_version == self.spec.version:
            return False
        return self._held_alias() and not (alias is not None and alias.restored)

    def _terminal(self) -> None:
        alias = self.s.alias or AliasStatus(name=self.spec.alias.name)
        what = "revoked" if self.stage is Stage.REVOKED else "rolled back"
        base = f"version {self.spec.version} {what}"
        if self.stage is Stage.REVOKED and self.s.revoked is not None:
            base += f" by {self.s.revoked.user or 'unknown'}: {self.s.revoked.reason}"
        elif self.s.serving is not None and self.s.serving.failure:
            base += f": {self.s.serving.failure}"
        if self._needs_flip_back():
            previous = alias.previous_version
            if self._alias_shows(previous):
                self.alias(restored=True)
                # Only news when the alias had moved to this version; a flip that never took
                # effect leaves nothing to restore.
                if alias.held:
                    self.emit(
                        R.ALIAS_RESTORED,
                        alias=self.spec.alias.name,
                        model=self.spec.model,
                        previous=previous or "nothing",
                    )
            else:
                self.cluster_wait(
                    f"{base}; restoring alias {self.spec.alias.name} to {previous or 'nothing'}"
                )
                return
        sv = self.s.serving
        if (
            sv is not None
            and sv.traffic_off == "none"
            and self.stage is Stage.REVOKED
            and sv.backend == BACKEND_KSERVE
            and sv.passed
        ):
            base += "; no previous model to serve: the InferenceService still serves it"
        self.message = base

    def _refuse(self) -> None:
        self.refused = True
        cond = self.prev.condition(ReleaseConditionType.INVALID_SPEC)
        if (
            cond is None
            or cond.status is not ConditionStatus.TRUE
            or cond.reason != (R.VERSION_REVOKED.name)
        ):
            self.emit(R.VERSION_REVOKED, model=self.spec.model, version=self.spec.version)
        self.message = R.VERSION_REVOKED.format(model=self.spec.model, version=self.spec.version)

    # ---------------------------------------------------------------- conditions and phase

    def _required_so_far(self) -> tuple[str, ...]:
        stage = self.stage
        if stage is Stage.CANDIDATE:
            return pre_staging_gates(self.spec, self.rules)
        if stage is Stage.STAGING:
            return (*pre_staging_gates(self.spec, self.rules), GATE_APPROVALS)
        return all_gates(self.spec, self.rules)

    def _finish(self) -> None:
        stage = self.stage
        gen = self.obs.generation
        true, false = ConditionStatus.TRUE, ConditionStatus.FALSE
        ready = stage is Stage.PRODUCTION and self._alias_shows(self.spec.version)
        if self.refused or stage.terminal:
            phase = ReleasePhase.DEGRADED
        elif stage is Stage.PRODUCTION:
            phase = ReleasePhase.HEALTHY if ready or self.superseded else ReleasePhase.PROGRESSING
        elif self.s.queued_behind is not None and stage is Stage.CANDIDATE:
            phase = ReleasePhase.QUEUED
        elif self.waiting:
            phase = ReleasePhase.WAITING
        else:
            phase = ReleasePhase.PROGRESSING
        message = self.message or f"stage {stage.value}"
        override = self.obs.override
        if (
            override is not None
            and override.decision == OVERRIDE_PROMOTE
            and not stage.terminal
            and stage is not Stage.PRODUCTION
        ):
            approvals = self.gates.get(GATE_APPROVALS)
            if approvals is not None and not approvals.passing:
                note = "approvals cannot be overridden (four eyes)"
                self.override_note = f"{self.override_note}; {note}" if self.override_note else note
        if self.override_note:
            message = f"{message}; {self.override_note}"
        message = clip(message)
        invalid = (true, R.VERSION_REVOKED.name, message) if self.refused else (false, "Valid", "")
        if stage.terminal or self.refused:
            progressing = (false, stage.value if not self.refused else "Refused", message)
        elif stage is Stage.PRODUCTION:
            done = "Completed" if ready else "Superseded" if self.superseded else "VerifyingAlias"
            progressing = (false, done, message)
        else:
            progressing = (
                true,
                phase.value if phase is not ReleasePhase.PROGRESSING else stage.value,
                message,
            )
        if self.gates:
            blocking = self._blocking(self._required_so_far())
            gates_passed = (
                (false, "GatesBlocking", "; ".join(blocking))
                if blocking
                else (true, "AllPassed", "")
            )
        else:
            old = self.prev.condition(ReleaseConditionType.GATES_PASSED)
            gates_passed = (
                (old.status, old.reason, old.message)
                if old is not None
                else (ConditionStatus.UNKNOWN, "NotEvaluated", "")
            )
        queued = self.s.queued_behind is not None and stage is Stage.CANDIDATE
        degraded_reason = (
            R.VERSION_REVOKED.name if self.refused else stage.value if stage.terminal else ""
        )
        conditions = [
            (
                ReleaseConditionType.READY,
                true if ready else false,
                "InProduction" if ready else "Superseded" if self.superseded else stage.value,
                message,
            ),
            (ReleaseConditionType.PROGRESSING, *progressing),
            (ReleaseConditionType.GATES_PASSED, *gates_passed),
            (
                ReleaseConditionType.QUEUED,
                true if queued else false,
                "QueuedBehind" if queued else "NotQueued",
                f"Queued behind {self.s.queued_behind}" if queued else "",
            ),
            (
                ReleaseConditionType.DEGRADED,
                true if degraded_reason else false,
                degraded_reason or "NotDegraded",
                message if degraded_reason else "",
            ),
            (ReleaseConditionType.INVALID_SPEC, *invalid),
        ]
        for type_, value, reason, text in conditions:
            self.s = self.s.with_condition(
                type_, value, reason=reason, message=clip(text), now=self.now, generation=gen
            )
        self.update(phase=phase, message=message, history=self.s.history[-MAX_HISTORY:])
        self._wake_analysis()

    def _wake_analysis(self) -> None:
        active = _active_run(self.spec, self.s)
        if active is None:
            return
        checks, run = active
        times = [t for m in checks.metrics if (t := next_due(checks, m, run)) is not None]
        if times:
            self.wake(min(times))

    # ---------------------------------------------------------------- actions and requeue

    def _actions(self) -> list[ReleaseAction]:
        if self.refused:
            return []
        stage = self.stage
        actions: list[ReleaseAction] = []
        if stage.terminal:
            actions.extend(self._traffic_off_actions())
            actions.extend(self._flip_back_actions())
            return actions
        if self.changed_since_approval or (
            stage is Stage.PRODUCTION
            and self.s.approved_content is not None
            and changed_fields(self.s.approved_content, self.content)
        ):
            # Nothing of a change made after approval is ever applied, nor written into the
            # release manifest as if it had been approved.
            return actions
        # Serving is asserted until Production only: from then on the next release of the
        # same model and alias owns the child Rollout or the InferenceService.
        if stage in (Stage.STAGING, Stage.APPROVED):
            actions.extend(self._serving_actions())
        if stage in (Stage.APPROVED, Stage.PRODUCTION) and not self.obs.manifest_written:
            actions.append(self._manifest())
        alias = self.s.alias
        # Only while nothing blocks the promotion: a gate that regresses or a freeze window
        # that opens after the first attempt stops the retries too.
        if (
            stage is Stage.APPROVED
            and self.flip_allowed
            and alias is not None
            and not self._alias_shows(self.spec.version)
        ):
            actions.append(
                FlipAlias(
                    model=self.spec.model,
                    alias=self.spec.alias.name,
                    version=self.spec.version,
                    uri=self.spec.artifact.uri,
                    digest=self.spec.artifact.digest,
                    expected_current=alias.previous_version,
                )
            )
        return actions

    def _serving_actions(self) -> list[ReleaseAction]:
        sv = self.s.serving
        if sv is None:
            return []
        if sv.backend == BACKEND_TEMPLATE:
            child = child_rollout_spec(self.spec)
            if self.held:
                # Held: the child Rollout pauses too (no step advances, nothing measured).
                child["paused"] = True
            return [EnsureChildRollout(sv.name, child)]
        uri = SetPredictorStorageUri(sv.name, self.spec.artifact.uri)
        if sv.step_index >= self.n or sv.passed:
            return [uri, RemoveCanaryTrafficPercent(sv.name)]
        return [SetCanaryTrafficPercent(sv.name, sv.weight), uri]

    def _traffic_off_actions(self) -> list[ReleaseAction]:
        sv = self.s.serving
        if sv is None or sv.traffic_off in (None, "none"):
            return []
        if sv.backend == BACKEND_TEMPLATE:
            return [RevertChildRollout(sv.name, sv.previous_template)]
        if sv.traffic_off == "pin" or sv.previous_storage_uri is None:
            return [SetCanaryTrafficPercent(sv.name, 0)]
        return [
            RemoveCanaryTrafficPercent(sv.name),
            SetPredictorStorageUri(sv.name, sv.previous_storage_uri),
        ]

    def _flip_back_actions(self) -> list[ReleaseAction]:
        alias = self.s.alias
        if alias is None or not self._needs_flip_back():
            return []
        return [
            FlipAlias(
                model=self.spec.model,
                alias=self.spec.alias.name,
                version=alias.previous_version,
                uri=alias.previous_uri,
                digest=alias.previous_digest,
                expected_current=self.spec.version,
            )
        ]

    def _manifest(self) -> WriteReleaseManifest:
        return WriteReleaseManifest(
            name=f"{self.obs.name}-manifest", content=release_manifest(self.spec, self.s)
        )

    def _requeue(self) -> float | None:
        if not self.wakes:
            return None
        return max((min(self.wakes) - self.now).total_seconds(), 0.0)


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


__all__ = [
    "CONTENT_FIELDS",
    "AliasReading",
    "Approval",
    "ChildRolloutState",
    "EnsureChildRollout",
    "FlipAlias",
    "GateResult",
    "InferenceServiceState",
    "ReleaseAction",
    "ReleaseDecision",
    "ReleaseObservations",
    "RemoveCanaryTrafficPercent",
    "RevertChildRollout",
    "RevokeRequest",
    "SetCanaryTrafficPercent",
    "SetPredictorStorageUri",
    "VoidedApproval",
    "WriteReleaseManifest",
    "changed_fields",
    "child_revision",
    "child_rollout_name",
    "child_rollout_spec",
    "decide_release",
    "inject_model_env",
    "load_release_spec",
    "parse_release_spec",
    "release_content",
    "release_due_metrics",
    "release_event",
    "release_manifest",
    "release_query_context",
    "required_roles",
    "validate_rules",
]
