"""Every event reason the ModelRelease core emits, with its event type and message template.

The same rules as :mod:`rollwise.core.reasons` (whose :class:`Reason` type this module reuses):
one reason per meaning, ``Warning`` for anything a human should look at, messages that name
the stage, gate, version and alias involved. The decision core appends the change ticket to
every message (``... [change CHG-1]``), so templates do not carry it. Kept apart from the
Rollout's reasons because the two kinds share no happening; :data:`ALL_RELEASE_REASONS` lists
them for documentation.
"""

from __future__ import annotations

from rollwise.core.reasons import EventType, Reason

_N = EventType.NORMAL
_W = EventType.WARNING

RELEASE_CREATED = Reason(
    "ReleaseCreated",
    _N,
    "A new ModelRelease entered stage Candidate: its gates are evaluated before any traffic "
    "reaches the version.",
    "model {model} version {version} is a Candidate (change type {change_type})",
)
EMERGENCY_CHANGE = Reason(
    "EmergencyChange",
    _W,
    "The release is an emergency change: audited, and it may pass a freeze window only with an "
    "approval by the executive role.",
    "emergency change for model {model} version {version}",
)
QUEUED = Reason(
    "Queued",
    _N,
    "Another ModelRelease of the same model and alias is in progress: this one waits in "
    "Candidate until it finishes.",
    "queued behind {blocker} (model {model}, alias {alias})",
)
UNQUEUED = Reason(
    "Unqueued",
    _N,
    "The release that blocked this one finished: it proceeds.",
    "no longer queued (model {model}, alias {alias})",
)
GATE_FAILED = Reason(
    "GateFailed",
    _W,
    "A gate failed: promotion is blocked until it passes again or is waived.",
    "gate {gate} failed: {detail}",
)
GATE_WAIVED = Reason(
    "GateWaived",
    _W,
    "A gate is waived (recorded with identity and expiry): it counts as passed until the "
    "waiver expires. A Warning because evidence was bypassed: audits look for it.",
    "gate {gate} waived until {expires}: {detail}",
)
GATE_OVERRIDDEN = Reason(
    "GateOverridden",
    _W,
    "A failed gate passes for this version by a promote override that a second person "
    "confirmed (both named). A Warning because evidence was bypassed: audits look for it.",
    "gate {gate} overridden: {detail}",
)
WAIVER_EXPIRED = Reason(
    "WaiverExpired",
    _W,
    "A gate's waiver expired: the gate is evaluated as its own result again and blocks "
    "promotion if that result is not Passed.",
    "waiver of gate {gate} expired at {expires}; gate is {status} again: {detail}",
)
PROMOTION_FROZEN = Reason(
    "PromotionFrozen",
    _N,
    "A freeze window holds the promotion to Production; it proceeds after the window.",
    "promotion to Production held by a freeze window: {detail}",
)
FREEZE_BYPASSED = Reason(
    "FreezeBypassed",
    _W,
    "An emergency change passed a freeze window on the strength of an executive approval.",
    "emergency change passes freeze window ({detail}) with executive approval by {user}",
)
STAGED = Reason(
    "Staged",
    _N,
    "Candidate → Staging: the gates that apply before Staging passed; the canary starts.",
    "version {version} moved to Staging: {why}",
)
CANARY_STEP = Reason(
    "CanaryStep",
    _N,
    "The release's own canary (KServe backend) moved to a new step.",
    "canary step {step}/{steps}: {what}",
)
CANARY_WITHOUT_BASELINE = Reason(
    "CanaryWithoutBaseline",
    _N,
    "The first release of a model (nothing served before it): there is nothing to compare "
    "the new version with, so the canary's analysis runs on the new version alone, at 100%, "
    "before the release can be Approved.",
    "version {version} is the first release served by {name}: nothing to compare it with; "
    "the canary analysis runs on this version alone ({steps} step(s)) before Approved",
)
CANARY_PASSED = Reason(
    "CanaryPassed",
    _N,
    "The canary reached 100% and passed its analysis; the version serves all traffic.",
    "canary of version {version} passed: {detail}",
)
APPROVED = Reason(
    "ReleaseApproved",
    _N,
    "Staging → Approved: the canary passed and the approvals (four-eyes) are complete; the "
    "release manifest is written and the alias flip may start.",
    "version {version} approved: {why}",
)
ALIAS_FLIP_PENDING = Reason(
    "AliasFlipPending",
    _W,
    "The alias flip was requested but reading the alias back did not show the version (the "
    "store was unreachable or refused the write); it is retried and the stage stays Approved.",
    "alias {alias} of model {model} does not show version {version} yet: {detail}",
)
PROMOTED_TO_PRODUCTION = Reason(
    "PromotedToProduction",
    _N,
    "Approved → Production: the alias was read back pointing at this version.",
    "alias {alias} of model {model} now points at version {version} (previous {previous})",
)
ROLLED_BACK = Reason(
    "ReleaseRolledBack",
    _W,
    "The canary failed, or a rollback override was recorded: traffic back to the previous "
    "version and stage RolledBack; the alias is unchanged (or flipped back if this version "
    "held it). Unlike a revoke, the version may be released again.",
    "version {version} rolled back at stage {stage}: {cause}",
)
REVOKED = Reason(
    "ReleaseRevoked",
    _W,
    "The release was revoked: traffic off the version, alias back to the previous version if "
    "this one held it, stage Revoked for good. The version can never be promoted again.",
    "version {version} revoked at stage {stage} by {by}: {why}",
)
ALIAS_RESTORED = Reason(
    "AliasRestored",
    _N,
    "After a rollback or revoke, the alias was read back pointing at the previous version again.",
    "alias {alias} of model {model} points at {previous} again",
)
VERSION_REVOKED = Reason(
    "VersionRevoked",
    _W,
    "The version was revoked by an earlier release: it can never be promoted again, so this "
    "release takes no action.",
    "model {model} version {version} was revoked before and cannot be promoted again; "
    "release a new version",
)
GATE_REGRESSED = Reason(
    "GateRegressed",
    _W,
    "A gate stopped passing for a version already in Production (e.g. the cluster's policy "
    "changed): the version keeps serving, a human should look.",
    "version {version} in Production: gate {gate} is {status}: {detail}",
)
REVALIDATION_DUE = Reason(
    "RevalidationDue",
    _W,
    "The version's spec.revalidateBy date has passed: it may not be promoted further (an "
    "Approved version stays out of Production) until it is revalidated and the date moved "
    "forward. A version already in Production keeps serving.",
    "version {version} ({stage}) was due for revalidation at {due}: {detail}",
)
INVALID_SPEC = Reason(
    "InvalidSpec",
    _W,
    "The spec breaks a rule: the operator takes no action until it is fixed.",
    "invalid spec: {errors}",
)
SPEC_CORRECTED = Reason(
    "SpecCorrected",
    _N,
    "A previously invalid spec is valid again; the release continues.",
    "spec is valid again",
)
RECORD_REJECTED = Reason(
    "RecordRejected",
    _W,
    "A governance record on the release (approval, waiver, revocation, who set the version) "
    "was ignored: its signature does not verify, so the operator's admission webhook did not "
    "write it. It never counts; a human should find out who wrote it.",
    "ignored a governance record: {detail}",
)
APPROVAL_VOIDED = Reason(
    "ApprovalVoided",
    _W,
    "An approval no longer counts: what decides what runs (model, version, artifact, serving, "
    "gates, alias) changed after it was given. Approvals are bound to the content the "
    "approvers saw; approve the new content again, or revert the change.",
    "approval as {role} by {user} no longer counts: {fields} changed since it was given",
)
CONTENT_CHANGED = Reason(
    "ContentChangedAfterApproval",
    _W,
    "The spec changed after the release was approved: the operator keeps serving what was "
    "approved and holds the promotion until the change is reverted (a new content is a new "
    "release, with its own canary and approvals).",
    "{fields} changed after version {version} was approved: promotion held, the approved "
    "content keeps serving; revert the change or release it as a new ModelRelease",
)
RELEASE_ACTION_FAILED = Reason(
    "ActionFailed",
    _W,
    "The operator could not apply a change (child Rollout, InferenceService, alias store, "
    "release manifest); it retries with backoff and the release does not move on until the "
    "change is observed in effect.",
    "{action} failed: {error}",
)

DECISION_CHANGED = Reason(
    "DecisionChanged",
    _N,
    "The decision on the release's own canary step (status.decision: a KServe canary, or a "
    "first release analysed alone) changed: its action, confidence or reasons. Posted once "
    "per change, not every pass.",
    "canary step {step}/{steps}: decision {action} at {confidence} confidence [{codes}]: {message}",
)

WATCH_STARTED = Reason(
    "PostPromotionWatchStarted",
    _N,
    "The version in Production is watched for regressions (canary.postPromotion) against the "
    "version the alias pointed at before.",
    "version {version} watched for {duration} (every {interval}, windows {short}/{long}) "
    "against previous version {previous}",
)
REGRESSION_DETECTED = Reason(
    "RegressionDetected",
    _W,
    "A watched KPI of the version in Production turned bad: a regression episode starts. "
    "Posted once per episode, however long it lasts.",
    "version {version}: {code} ({severity}) detected: {detail}",
)
REGRESSION_CONFIRMED = Reason(
    "RegressionConfirmed",
    _W,
    "A detected regression was confirmed (confirmAfter consecutive bad evaluations, or both "
    "windows bad): the action onRegression maps its severity to is taken. Once per episode.",
    "version {version}: {code} ({severity}) confirmed after {bad} bad evaluation(s): "
    "{detail}; action {action}",
)
REGRESSION_CLEARED = Reason(
    "RegressionCleared",
    _N,
    "A regression episode ended: clearAfter consecutive good evaluations. A false positive "
    "when it was never confirmed.",
    "version {version}: {code} cleared ({how}): {detail}",
)
REGRESSION_ROLLBACK = Reason(
    "RegressionRollback",
    _W,
    "The fast track: a confirmed regression moves the alias back to the previous version and "
    "the serving traffic back to what served before; the release is RolledBack (not entered "
    "in the revocation ledger).",
    "version {version} rolled back to previous version {previous} after a confirmed "
    "regression ({reasons}): alias {alias} and serving traffic move back",
)
ROLLBACK_UNAVAILABLE = Reason(
    "RegressionRollbackUnavailable",
    _W,
    "A confirmed regression asked for a rollback but there is no previous version to go back "
    "to (the alias pointed at nothing before): the version keeps serving; a human decides.",
    "version {version}: regression confirmed but alias {alias} had no previous version; "
    "no rollback",
)
WATCH_PASSED = Reason(
    "PostPromotionPassed",
    _N,
    "The watch period ended (or a later version took the alias): with no confirmed "
    "regression the version passed.",
    "version {version}: post-promotion watch ended ({outcome})",
)

ALL_RELEASE_REASONS: tuple[Reason, ...] = (
    RELEASE_CREATED,
    EMERGENCY_CHANGE,
    QUEUED,
    UNQUEUED,
    GATE_FAILED,
    GATE_WAIVED,
    GATE_OVERRIDDEN,
    WAIVER_EXPIRED,
    PROMOTION_FROZEN,
    FREEZE_BYPASSED,
    STAGED,
    CANARY_STEP,
    CANARY_WITHOUT_BASELINE,
    CANARY_PASSED,
    APPROVED,
    ALIAS_FLIP_PENDING,
    PROMOTED_TO_PRODUCTION,
    ROLLED_BACK,
    REVOKED,
    ALIAS_RESTORED,
    VERSION_REVOKED,
    GATE_REGRESSED,
    REVALIDATION_DUE,
    INVALID_SPEC,
    SPEC_CORRECTED,
    RECORD_REJECTED,
    APPROVAL_VOIDED,
    CONTENT_CHANGED,
    RELEASE_ACTION_FAILED,
    DECISION_CHANGED,
    WATCH_STARTED,
    REGRESSION_DETECTED,
    REGRESSION_CONFIRMED,
    REGRESSION_CLEARED,
    REGRESSION_ROLLBACK,
    ROLLBACK_UNAVAILABLE,
    WATCH_PASSED,
)
