"""Every event reason the Rollout core emits, with its event type and message template.

One reason per meaning (a user filtering ``kubectl get events --field-selector reason=...``
gets exactly one kind of happening), ``Warning`` for anything a human should look at, and a
message template naming the step, weight, metric, value and threshold involved. Nothing else
in the package builds a reason from a string: :class:`Reason` instances are the only values an
:class:`~rollwise.core.rollout.canary.Event` carries. :data:`ALL_REASONS` feeds the README table.
"""

from __future__ import annotations

from rollwise.core.reasons import EventType, Reason

_N = EventType.NORMAL
_W = EventType.WARNING

INITIALIZED = Reason(
    "Initialized",
    _N,
    "The first revision of a new Rollout is available and stable at 100%; there was nothing "
    "to canary against.",
    "revision {revision} is stable at 100% ({available}/{replicas} available)",
)
REVISION_DETECTED = Reason(
    "RevisionDetected",
    _N,
    "The pod template changed: a canary of the new revision starts at step 1.",
    "new revision {revision} detected (stable {stable}); starting canary at step 1/{steps}",
)
REVISION_REPLACED = Reason(
    "RevisionReplaced",
    _N,
    "The pod template changed while a canary was in progress: the running canary is dropped "
    "(traffic back to stable) and the new revision starts at step 1.",
    "new revision {revision} replaces canary {previous} at step {step}/{steps}; "
    "restarting at step 1/{steps}",
)
CANARY_CANCELLED = Reason(
    "CanaryCancelled",
    _N,
    "The pod template was changed back to the stable revision while a canary ran: the canary "
    "is dropped and all traffic stays on stable.",
    "template is the stable revision {stable} again; canary {canary} cancelled",
)
REVISION_SKIPPED = Reason(
    "RevisionSkipped",
    _W,
    "The spec changed but its template is a revision that was rolled back or aborted: it is "
    "not retried until the template changes or a retry is requested (a canary of another "
    "revision that was running is dropped: all traffic stays on stable).",
    "revision {revision} was {how}; not retried until the template changes or "
    "rollwise.dev/retry is set{dropped}",
)
AWAITING_UPSTREAM = Reason(
    "AwaitingUpstream",
    _N,
    "The pod template changed but spec.promotion.after names upstream Rollouts that have not "
    "yet run this revision Healthy for their soak time: the canary waits (a canary of an "
    "earlier revision that was running is dropped, all traffic stays on stable).",
    "new revision {revision} waits for upstream: {detail}{dropped}",
)
UPSTREAM_SOAKED = Reason(
    "UpstreamSoaked",
    _N,
    "Every upstream Rollout of spec.promotion.after has run the new revision Healthy for its "
    "soak time: the canary starts.",
    "revision {revision} soaked upstream ({detail}); starting canary",
)
AWAITING_CONFIRMATION = Reason(
    "AwaitingConfirmation",
    _N,
    "A confirm-rollout webhook (before a new revision's canary starts: nothing of it is "
    "scaled or routed) or a confirm-promotion webhook (before the switch to 100%) has not "
    "answered 2xx: the Rollout is paused and asks again; it is never rolled back for it.",
    "{what} waits for {type} webhook {names}",
)
WEBHOOK_PASSED = Reason(
    "WebhookPassed",
    _N,
    "A gating webhook answered 2xx within its timeout: its gate passes (for a rollback "
    "webhook: the receiver took the notice).",
    "{type} webhook {name} answered {code} for revision {revision}",
)
WEBHOOK_HELD = Reason(
    "WebhookHeld",
    _N,
    "A confirm-rollout or confirm-promotion webhook answered something other than 2xx, or "
    "nothing in time: the gate holds and the webhook is asked again.",
    "{type} webhook {name} holds revision {revision}: {detail}; asked again every {every}",
)
WEBHOOK_FAILED = Reason(
    "WebhookFailed",
    _W,
    "A pre-rollout webhook did not answer 2xx within its timeout (the canary is rolled back), "
    "or a rollback webhook did not (recorded only: it never blocks the rollback).",
    "{type} webhook {name} failed for revision {revision}: {detail}",
)
PRE_ROLLOUT_HOOK_FAILED = Reason(
    "PreRolloutHookFailed",
    _W,
    "The Degraded condition's reason when a pre-rollout webhook failed and the canary was "
    "rolled back before it got any traffic.",
    "revision {revision} rolled back: pre-rollout webhook {name} failed ({detail})",
)
WEIGHT_SET = Reason(
    "WeightSet",
    _N,
    "The canary is ready for the step's weight and the router was asked to send it that "
    "share of traffic.",
    "step {step}/{steps}: canary weight set to {weight}% ({split})",
)
HEADER_ROUTE_SET = Reason(
    "HeaderRouteSet",
    _N,
    "A setHeaderRoute step is in effect: the router sends the requests matching its headers "
    "to the canary whatever the weight (or, for a step without match, no longer does).",
    "step {step}/{steps}: header route {route}",
)
MIRROR_ROUTE_SET = Reason(
    "MirrorRouteSet",
    _N,
    "A setMirrorRoute step is in effect: the router copies the step's share of requests to "
    "the canary and discards its responses (or, for percentage 0, no longer does).",
    "step {step}/{steps}: mirror route {route}",
)
STEP_ADVANCED = Reason(
    "StepAdvanced",
    _N,
    "A step completed (weight verified and analysis passed, pause over, or analysis step "
    "passed) and the rollout moved to the next step.",
    "step {step}/{steps} ({what}) complete; {next}",
)
PAUSED = Reason(
    "Paused",
    _N,
    "The rollout paused: a pause step began, spec.paused was set, or a hold override took effect.",
    "{what}",
)
RESUMED = Reason(
    "Resumed",
    _N,
    "spec.paused was cleared or a hold override ended: the rollout continues.",
    "{what}; continuing at {where}",
)
APPROVAL_REQUESTED = Reason(
    "ApprovalRequested",
    _N,
    "The canary reached an approval step: it holds until distinct people holding the roles "
    "approved the revision (kubectl rollwise approve).",
    "step {step}/{steps}: revision {revision} waits for approval by {roles}{deadline}",
)
APPROVAL_GRANTED = Reason(
    "ApprovalGranted",
    _N,
    "A person holding one of an approval step's roles approved the canary revision (the "
    "webhook recorded and signed it).",
    "step {step}/{steps}: {user} approved revision {revision} as {role}; {left}",
)
APPROVAL_REFUSED = Reason(
    "ApprovalRefused",
    _W,
    "An approval was refused: its author changed the pod template (four eyes), does not hold "
    "the role, approved for another role already, or the role was approved by someone else.",
    "{detail}",
)
APPROVAL_TIMED_OUT = Reason(
    "ApprovalTimedOut",
    _W,
    "An approval step's timeout passed without every role approving: the rollout keeps "
    "holding at the step (no promotion, no rollback) until the approvals come or it is "
    "aborted.",
    "step {step}/{steps}: revision {revision} still waits for approval by {pending} after "
    "{timeout}; holding (approve, or abort to roll back)",
)
PAUSE_EXPIRED = Reason(
    "PauseExpired",
    _N,
    "A timed pause step ran out.",
    "step {step}/{steps}: pause of {duration} is over",
)
ANALYSIS_MEASURED = Reason(
    "AnalysisMeasured",
    _N,
    "A metric was measured and passed.",
    "step {step}/{steps}: {detail} ({taken}/{count})",
)
MEASUREMENT_FAILED = Reason(
    "MeasurementFailed",
    _W,
    "A metric measurement failed, but the metric is still within its failureLimit.",
    "step {step}/{steps}: {detail} (failures {failed} <= failureLimit {limit})",
)
MEASUREMENT_INCONCLUSIVE = Reason(
    "MeasurementInconclusive",
    _W,
    "A metric returned no usable value (no data, NaN or infinity) or too few samples for its "
    "sampleGuard, within inconclusiveLimit.",
    "step {step}/{steps}: {detail} (inconclusive {inconclusive} <= inconclusiveLimit {limit})",
)
MEASUREMENT_ERROR = Reason(
    "MeasurementError",
    _W,
    "The metric provider could not be queried, within consecutiveErrorLimit.",
    "step {step}/{steps}: metric {metric} query failed: {error} "
    "(consecutive errors {errors} <= consecutiveErrorLimit {limit})",
)
ANALYSIS_PASSED = Reason(
    "AnalysisPassed",
    _N,
    "Every metric of a step took its measurements and passed.",
    "step {step}/{steps}: analysis passed ({summary})",
)
ANALYSIS_FAILED = Reason(
    "AnalysisFailed",
    _W,
    "A metric failed more often than its failureLimit allows: the canary is rolled back.",
    "step {step}/{steps}: {detail} (failures {failed} > failureLimit {limit})",
)
ANALYSIS_INCONCLUSIVE = Reason(
    "AnalysisInconclusive",
    _W,
    "A metric was inconclusive more often than inconclusiveLimit allows: the rollout pauses "
    "(it is never promoted nor rolled back on missing data); a retry request re-runs the "
    "step's analysis, a promote request skips it.",
    "step {step}/{steps}: {detail} (inconclusive {inconclusive} > inconclusiveLimit {limit}); "
    "paused",
)
ANALYSIS_ERROR = Reason(
    "AnalysisError",
    _W,
    "A metric's provider failed more times in a row than consecutiveErrorLimit allows: the "
    "rollout pauses as inconclusive (a provider outage never promotes and never rolls back).",
    "step {step}/{steps}: metric {metric} query failed {errors} times in a row "
    "(> consecutiveErrorLimit {limit}), last error: {error}; paused",
)
ANALYSIS_RETRIED = Reason(
    "AnalysisRetried",
    _N,
    "A retry request restarted the current step's analysis after it stopped inconclusive.",
    "step {step}/{steps}: analysis restarted by request {request}",
)
ROLLED_BACK = Reason(
    "RolledBack",
    _W,
    "The canary was rolled back automatically: traffic to stable first, then the canary "
    "scaled to zero. The revision is not retried until the template changes or a retry.",
    "revision {revision} rolled back to stable {stable} at step {step}/{steps}: {cause}",
)
ABORTED = Reason(
    "Aborted",
    _W,
    "A user aborted the canary (rollwise.dev/abort): traffic to stable, canary scaled to zero.",
    "revision {revision} aborted by request {request} at step {step}/{steps}; "
    "traffic back to stable {stable}",
)
PROMOTED = Reason(
    "Promoted",
    _N,
    "A user promoted the rollout past the current step (rollwise.dev/promote), skipping its "
    "pause or analysis.",
    "step {step}/{steps} ({what}) skipped by promote request {request}",
)
PROMOTED_FULL = Reason(
    "PromotedFull",
    _W,
    "A user promoted the canary straight to 100% (rollwise.dev/promote-full), skipping every "
    "remaining step and analysis. A Warning because checks were bypassed: audits look for it.",
    "revision {revision} promoted to 100% by request {request} from step {step}/{steps}; "
    "remaining steps and analysis skipped",
)
ROLLOUT_COMPLETED = Reason(
    "RolloutCompleted",
    _N,
    "The canary finished its last step: it is the stable revision now; the old revision is "
    "removed after scaleDownDelaySeconds.",
    "revision {revision} is stable at 100%; previous revision {previous} removed after {delay}",
)
PREVIEW_READY = Reason(
    "PreviewReady",
    _N,
    "Blue-green: the new revision's preview pods are available behind the preview Service; "
    "its pre-promotion analysis and the wait for promotion start now.",
    "preview {revision} ready: {available}/{replicas} available{service}; active {active} "
    "serves all traffic",
)
AWAITING_PROMOTION = Reason(
    "AwaitingPromotion",
    _N,
    "Blue-green: the preview is ready and judged; the switch waits for a promotion "
    "(autoPromotionEnabled false) or for autoPromotionSeconds.",
    "preview {revision} awaits promotion ({how}); active {active} serves all traffic",
)
ACTIVE_SWITCHED = Reason(
    "ActiveSwitched",
    _N,
    "Blue-green: the new revision runs its full replica count and the active Service's "
    "selector was moved to it in one write (no pod restarted); the previous revision keeps "
    "running through the postPromotionAnalysis and scaleDownDelaySeconds.",
    "active Service {service} switched from {previous} to {revision} ({previous} still "
    "runs); {after}",
)
SWITCHED_BACK = Reason(
    "SwitchedBack",
    _W,
    "Blue-green: after the switch, the new revision was rolled back (postPromotionAnalysis "
    "failed) or aborted: the active Service's selector moved back to the previous revision, "
    "which still ran every pod.",
    "active Service {service} switched back from {revision} to {previous}",
)
REVISION_RETIRED = Reason(
    "RevisionRetired",
    _N,
    "An old stable revision's scale-down delay passed: its Deployment is removed.",
    "old revision {revision} removed after its scale-down delay",
)
RETRY_REQUESTED = Reason(
    "RetryRequested",
    _N,
    "A user asked to retry a rolled-back or aborted revision (rollwise.dev/retry): its canary "
    "starts again at step 1.",
    "revision {revision} retried by request {request}; starting canary at step 1/{steps}",
)
REQUEST_IGNORED = Reason(
    "RequestIgnored",
    _N,
    "A manual request (promote, promote-full, abort, retry) did not apply to the rollout's "
    "state; it is consumed so that it cannot fire later by surprise.",
    "{kind} request {request} ignored: {why}",
)
PROGRESS_DEADLINE_EXCEEDED = Reason(
    "ProgressDeadlineExceeded",
    _W,
    "A revision did not become ready (or the router did not report the weight) within "
    "progressDeadlineSeconds. The rollout is Degraded but not aborted: it continues as soon "
    "as progress resumes; abort it explicitly to go back to stable.",
    "{what} made no progress for {elapsed} (progressDeadlineSeconds {deadline})",
)
PROGRESS_RESUMED = Reason(
    "ProgressResumed",
    _N,
    "A rollout that had exceeded its progress deadline progressed again.",
    "progress resumed: {what}",
)
INVALID_SPEC = Reason(
    "InvalidSpec",
    _W,
    "The spec breaks a rule (the CRD's validation may have been bypassed): the operator "
    "takes no action until it is fixed.",
    "invalid spec: {errors}",
)
ACTION_FAILED = Reason(
    "ActionFailed",
    _W,
    "The operator could not apply a change to the cluster (create, scale or delete a "
    "revision, point a Service, set a weight); it retries with backoff and the rollout does "
    "not move on until the change is in effect.",
    "{action} failed: {error}",
)
ROUTE_NOT_ACCEPTED = Reason(
    "RouteNotAccepted",
    _W,
    "The routing object does not carry the canary weight as accepted: its Gateway did not "
    "accept the HTTPRoute, or Istio did not reconcile the VirtualService. The traffic split "
    "may not be what the status says until it is.",
    "{detail}",
)
SPEC_CORRECTED = Reason(
    "SpecCorrected",
    _N,
    "A previously invalid spec is valid again; reconciliation continues.",
    "spec is valid again",
)

WATCH_STARTED = Reason(
    "PostPromotionWatchStarted",
    _N,
    "The promoted revision is watched for regressions (strategy.canary.postPromotion); the "
    "previous revision is kept warm until the watch ends.",
    "revision {revision} watched for {duration} (every {interval}, windows {short}/{long}); "
    "previous revision {previous} kept warm at {warm}% of its replicas",
)
REGRESSION_DETECTED = Reason(
    "RegressionDetected",
    _W,
    "A watched KPI of the promoted revision turned bad: a regression episode starts. Posted "
    "once per episode, however long it lasts.",
    "revision {revision}: {code} ({severity}) detected: {detail}",
)
REGRESSION_CONFIRMED = Reason(
    "RegressionConfirmed",
    _W,
    "A detected regression was confirmed (confirmAfter consecutive bad evaluations, or both "
    "windows bad): the action onRegression maps its severity to is taken. Once per episode.",
    "revision {revision}: {code} ({severity}) confirmed after {bad} bad evaluation(s): "
    "{detail}; action {action}",
)
REGRESSION_CLEARED = Reason(
    "RegressionCleared",
    _N,
    "A regression episode ended: clearAfter consecutive good evaluations. A false positive "
    "when it was never confirmed.",
    "revision {revision}: {code} cleared ({how}): {detail}",
)
REGRESSION_ROLLBACK = Reason(
    "RegressionRollback",
    _W,
    "The fast track: a confirmed critical regression moved all traffic back to the previous "
    "revision in one write (no steps), its replicas restored; the regressed revision is not "
    "retried until the template changes or a retry.",
    "revision {revision} rolled back to previous revision {previous} after a confirmed "
    "regression ({reasons}); all traffic on {previous}",
)
REGRESSION_HOLD = Reason(
    "RegressionHold",
    _W,
    "A confirmed regression whose action is hold blocks changes: a new revision waits until "
    "the regression clears, a promote override of it is confirmed by a second person, or a "
    "promote request (rollwise.dev/promote) lifts the hold.",
    "revision {revision} waits: {why}",
)
REGRESSION_HOLD_LIFTED = Reason(
    "RegressionHoldLifted",
    _N,
    "A new revision held by a confirmed regression (action hold) proceeds: a promote "
    "override confirmed by a second person, or a promote request, lifted the hold; the "
    "revision goes through its canary. Recorded in status.postPromotion.holdLifted.",
    "revision {revision} proceeds past the confirmed regression of revision {regressed}: "
    "hold lifted by {by}",
)
ROLLBACK_UNAVAILABLE = Reason(
    "RegressionRollbackUnavailable",
    _W,
    "A confirmed regression asked for a rollback but the previous revision's Deployment is "
    "gone (deleted by hand): the regressed revision keeps serving; a human decides.",
    "revision {revision}: regression confirmed but previous revision {previous} is gone; "
    "no rollback",
)
WATCH_PASSED = Reason(
    "PostPromotionPassed",
    _N,
    "The watch period ended: with no confirmed regression the promoted revision passed; the "
    "previous revision is removed.",
    "revision {revision}: post-promotion watch ended ({outcome}); previous revision "
    "{previous} removed",
)

DECISION_CHANGED = Reason(
    "DecisionChanged",
    _N,
    "The decision on the canary's step (status.decision) changed: its action, confidence or "
    "reasons. Posted once per change, not every pass.",
    "step {step}/{steps}: decision {action} at {confidence} confidence [{codes}]: {message}",
)
AWAITING_DECISION = Reason(
    "AwaitingDecision",
    _N,
    "Advisory mode: the step reached its gate (its analysis finished, or its weight is "
    "served) and the rollout holds until a human promotes or aborts it.",
    "step {step}/{steps}: advisory mode holds here; auto mode would {recommended} "
    "(rollwise.dev/promote moves on, rollwise.dev/abort rolls back)",
)

ALL_REASONS: tuple[Reason, ...] = (
    INITIALIZED,
    REVISION_DETECTED,
    REVISION_REPLACED,
    CANARY_CANCELLED,
    REVISION_SKIPPED,
    AWAITING_UPSTREAM,
    UPSTREAM_SOAKED,
    AWAITING_CONFIRMATION,
    WEBHOOK_PASSED,
    WEBHOOK_HELD,
    WEBHOOK_FAILED,
    PRE_ROLLOUT_HOOK_FAILED,
    WEIGHT_SET,
    HEADER_ROUTE_SET,
    MIRROR_ROUTE_SET,
    STEP_ADVANCED,
    PAUSED,
    RESUMED,
    APPROVAL_REQUESTED,
    APPROVAL_GRANTED,
    APPROVAL_REFUSED,
    APPROVAL_TIMED_OUT,
    PAUSE_EXPIRED,
    ANALYSIS_MEASURED,
    MEASUREMENT_FAILED,
    MEASUREMENT_INCONCLUSIVE,
    MEASUREMENT_ERROR,
    ANALYSIS_PASSED,
    ANALYSIS_FAILED,
    ANALYSIS_INCONCLUSIVE,
    ANALYSIS_ERROR,
    ANALYSIS_RETRIED,
    ROLLED_BACK,
    ABORTED,
    PROMOTED,
    PROMOTED_FULL,
    ROLLOUT_COMPLETED,
    PREVIEW_READY,
    AWAITING_PROMOTION,
    ACTIVE_SWITCHED,
    SWITCHED_BACK,
    WATCH_STARTED,
    REGRESSION_DETECTED,
    REGRESSION_CONFIRMED,
    REGRESSION_CLEARED,
    REGRESSION_ROLLBACK,
    REGRESSION_HOLD,
    REGRESSION_HOLD_LIFTED,
    ROLLBACK_UNAVAILABLE,
    WATCH_PASSED,
    REVISION_RETIRED,
    RETRY_REQUESTED,
    REQUEST_IGNORED,
    PROGRESS_DEADLINE_EXCEEDED,
    PROGRESS_RESUMED,
    INVALID_SPEC,
    SPEC_CORRECTED,
    ACTION_FAILED,
    ROUTE_NOT_ACCEPTED,
    DECISION_CHANGED,
    AWAITING_DECISION,
)
