"""Typed spec of the ``Rollout`` and the pieces both custom resources share (steps, analysis,
metrics, templates, traffic routing); the ``ModelRelease``'s own models are in
:mod:`rollwise.core.spec_release`.

These pydantic models mirror the CRD schemas in ``crds/`` field by field (a test compares
them). Field names are snake_case in Python and camelCase on the wire (``by_alias``). Unknown
fields are refused: the API server prunes them before the operator sees an object, so an
unknown field here means the CRD and the models drifted apart.

The models check shapes and single-field bounds. Cross-field rules (non-decreasing weights,
one traffic router, ...) are CEL rules in the CRDs and are checked again, with the same
messages, by :mod:`rollwise.core.validation`, because an API server without CEL support (or an
object written before a rule existed) must not make the operator act on a bad spec.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

#: A Go-style duration as Kubernetes users write them: ``30s``, ``5m``, ``1h30m``, ``250ms``.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
#: Longest duration string accepted. The CRDs' CEL rules on durations need a bound: without
#: one, kube-apiserver estimates a rule's cost from the largest string a request may carry and
#: refuses the CRD as over its cost budget.
DURATION_MAX_LENGTH = 32

Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=DURATION_MAX_LENGTH)]
Weight = Annotated[int, Field(ge=0, le=100)]

#: Longest metric query and condition (the CRD's maxLength): a spec is tenant input, and
#: everything the operator does with it must stay cheap.
MAX_QUERY_LENGTH = 4096
#: Fewest events a burn-rate window needs to count as evidence (``sloBurnRate.minEvents``):
#: at a 99.9% objective one bad event in fewer than 70 already burns above the workbook's
#: 14.4, so a window of a handful of requests would page on a single stray error.
DEFAULT_MIN_EVENTS = 100
#: Largest ``minEvents``: a bound for the CRD, far above any real window's count.
MAX_MIN_EVENTS = 1_000_000
MAX_CONDITION_LENGTH = 512
MAX_JSON_PATH_LENGTH = 256
Sha256Digest = Annotated[str, Field(pattern=r"^sha256:[a-f0-9]{64}$")]


class Model(BaseModel):
    """Base of every spec model: camelCase on the wire, unknown fields refused, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


# --------------------------------------------------------------------------------------------
# Shared pieces


class LabelSelectorRequirement(Model):
    key: str
    operator: str = Field(pattern=r"^(In|NotIn|Exists|DoesNotExist)$")
    values: list[str] | None = None


class LabelSelector(Model):
    match_labels: dict[str, str] | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None


class PrometheusProvider(Model):
    """A PromQL query, templated over the rollout's context.

    Placeholders use ``{{ ... }}``: ``namespace``, ``name``, ``stableRevision``,
    ``canaryRevision``, ``baselineRevision``, ``stableService``, ``canaryService``. A threshold
    metric needs the ``query``; a ``compare`` or ``sloBurnRate`` metric carries its queries in
    its own block and uses the provider only for the address and timeout.
    """

    address: str | None = None
    query: str | None = Field(default=None, min_length=1, max_length=MAX_QUERY_LENGTH)
    timeout: Duration = "10s"


class WebMethod(StrEnum):
    GET = "GET"
    POST = "POST"


class WebProvider(Model):
    """An HTTP endpoint that answers JSON, one of the web providers the operator's settings
    name (``name``: its base URL and headers are the cluster admin's, never the spec's).

    ``path`` is appended to the provider's base URL and ``body`` is sent with POST, both
    templated like a Prometheus query; ``jsonPath`` selects the one number in the answer
    (``$.data.value``)."""

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    path: str = Field(default="", max_length=MAX_QUERY_LENGTH)
    method: WebMethod = WebMethod.GET
    body: str | None = Field(default=None, max_length=MAX_QUERY_LENGTH)
    json_path: str = Field(min_length=1, max_length=MAX_JSON_PATH_LENGTH)
    timeout: Duration = "10s"


class MetricProvider(Model):
    """Exactly one of ``prometheus`` or ``web`` for a threshold metric; a ``compare`` or
    ``sloBurnRate`` metric may leave it out (the operator's default Prometheus) or name a
    Prometheus without a query."""

    prometheus: PrometheusProvider | None = None
    web: WebProvider | None = None


class ThresholdRange(Model):
    min: float | None = None
    max: float | None = None


#: Largest ``sampleGuard.minSamples``: a bound for the CRD, far above any real window's count.
MAX_MIN_SAMPLES = 1_000_000


class SampleGuard(Model):
    """How much evidence a measurement needs before its value may be judged.

    ``query`` counts what the metric's value is computed from (typically the canary's requests
    in the query's window); it runs on the metric's Prometheus provider, templated like the
    metric's query. A count below ``minSamples``, or no count at all, makes the measurement
    Inconclusive whatever the value: a ratio over a handful of requests never passes."""

    query: str = Field(min_length=1, max_length=MAX_QUERY_LENGTH)
    min_samples: int = Field(ge=1, le=MAX_MIN_SAMPLES)


class Direction(StrEnum):
    """Which way a change of a compared metric is bad."""

    #: Higher is worse: latency, error ratio, CPU.
    INCREASE = "increase"
    #: Lower is worse: throughput, success ratio, conversion.
    DECREASE = "decrease"
    #: Any change beyond the tolerance is bad (two-sided test).
    EITHER = "either"


class Compare(Model):
    """A ``compare`` metric: one PromQL expression range-queried over the step's window for
    the canary and for the control (the stable revision, or a baseline), the two sample
    arrays judged by Mann-Whitney U (:mod:`rollwise.core.compare`, whose ``CompareRule``
    these fields after ``query`` and ``step`` are)."""

    #: Templated like a threshold query; ``{{revision}}`` is the canary's revision in the
    #: canary's query and the control's in the control's (``{{canaryRevision}}`` and
    #: ``{{stableRevision}}`` keep their meaning in both).
    query: str = Field(min_length=1, max_length=MAX_QUERY_LENGTH)
    #: The range query's resolution (one sample per step); default 15s.
    step: Duration | None = None
    direction: Direction = Direction.INCREASE
    tolerance: float = Field(default=0.1, ge=0, le=1000, allow_inf_nan=False)
    significance: float = Field(default=0.01, gt=0, le=0.5)
    min_samples: int = Field(default=10, ge=5, le=MAX_MIN_SAMPLES)
    critical: bool = False
    weight: float = Field(default=1.0, gt=0, le=1000, allow_inf_nan=False)


class PairSeverity(StrEnum):
    """What a firing burn-rate pair means: ``critical`` rolls back, ``warning`` holds."""

    CRITICAL = "critical"
    WARNING = "warning"


class BurnRatePair(Model):
    """A long and a short window and the burn rate both must exceed for the pair to fire
    (:class:`rollwise.core.burnrate.BurnWindowPair`, which checks the windows)."""

    long: Duration
    short: Duration
    rate: float = Field(gt=0, le=1_000_000, allow_inf_nan=False)
    severity: PairSeverity = PairSeverity.CRITICAL


class SloBurnRate(Model):
    """An ``sloBurnRate`` metric: the canary's error-budget burn over window pairs
    (:mod:`rollwise.core.burnrate`). ``totalQuery`` and exactly one of ``goodQuery`` or
    ``badQuery`` count events over a window: each must contain ``[{{window}}]`` (or
    ``{{window}}`` inside a range selector), replaced by the window to count over."""

    objective: float = Field(gt=0, lt=1)
    good_query: str | None = Field(default=None, min_length=1, max_length=MAX_QUERY_LENGTH)
    bad_query: str | None = Field(default=None, min_length=1, max_length=MAX_QUERY_LENGTH)
    total_query: str = Field(min_length=1, max_length=MAX_QUERY_LENGTH)
    #: None: the SRE workbook's 1h/5m at 14.4 (critical) and 6h/30m at 6 (warning).
    pairs: list[BurnRatePair] | None = None
    period: Duration = "720h"
    #: Fewest events (the total query's count) a window needs to be judged; fewer is no data.
    min_events: int = Field(default=DEFAULT_MIN_EVENTS, ge=1, le=MAX_MIN_EVENTS)


class MetricKind(StrEnum):
    """How a metric judges: a threshold on one value, a comparison with a control, or an SLO's
    burn rate."""

    THRESHOLD = "threshold"
    COMPARE = "compare"
    SLO_BURN_RATE = "sloBurnRate"


class Metric(Model):
    """One SLO check of exactly one kind: the threshold style (successCondition,
    failureCondition or thresholdRange: CEL expressions or bounds over ``result``, a number,
    measured by ``provider``), ``compare`` or ``sloBurnRate``."""

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    interval: Duration | None = None
    count: int = Field(default=1, ge=1)
    success_condition: str | None = Field(default=None, max_length=MAX_CONDITION_LENGTH)
    failure_condition: str | None = Field(default=None, max_length=MAX_CONDITION_LENGTH)
    threshold_range: ThresholdRange | None = None
    sample_guard: SampleGuard | None = None
    compare: Compare | None = None
    slo_burn_rate: SloBurnRate | None = None
    provider: MetricProvider = Field(default_factory=MetricProvider)

    @property
    def kinds(self) -> list[MetricKind]:
        """Every kind the metric sets (validation asks for exactly one)."""
        found = []
        if (
            self.success_condition is not None
            or self.failure_condition is not None
            or self.threshold_range is not None
        ):
            found.append(MetricKind.THRESHOLD)
        if self.compare is not None:
            found.append(MetricKind.COMPARE)
        if self.slo_burn_rate is not None:
            found.append(MetricKind.SLO_BURN_RATE)
        return found

    @property
    def kind(self) -> MetricKind:
        """The metric's kind (a threshold when it sets none or several: validation says so)."""
        kinds = self.kinds
        return kinds[0] if len(kinds) == 1 else MetricKind.THRESHOLD


class Scoring(Model):
    """The compare metrics' score thresholds (Kayenta's ``scoreThresholds``,
    :class:`rollwise.core.scoring.ScoreThresholds`)."""

    passing: float = Field(default=95.0, ge=0, le=100, alias="pass")
    marginal: float = Field(default=75.0, ge=0, le=100)
    max_inconclusive: float = Field(default=0.25, ge=0, le=1)


class DecisionMode(StrEnum):
    """``auto`` acts on its decisions; ``advisory`` only recommends them and holds at every
    gate until a human promotes or aborts."""

    AUTO = "auto"
    ADVISORY = "advisory"


# --------------------------------------------------------------------------------------------
# Analysis templates (AnalysisTemplate, ClusterAnalysisTemplate) and references to them

#: Longest arg value (the CRDs also bound lists: at most 32 args and 8 references).
MAX_ARG_VALUE_LENGTH = 1024
ArgName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
TemplateName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
    ),
]


class ArgType(StrEnum):
    STRING = "string"
    NUMBER = "number"


class TemplateArg(Model):
    """An arg a template's metrics use as ``{{args.NAME}}``. A ``required`` arg must be given
    by every reference; an optional one falls back to ``default`` (empty without one)."""

    name: ArgName
    default: str | None = Field(default=None, max_length=MAX_ARG_VALUE_LENGTH)
    required: bool = False
    type: ArgType = ArgType.STRING


class AnalysisTemplateSpec(Model):
    """The spec of an ``AnalysisTemplate`` or ``ClusterAnalysisTemplate``: metrics, with args."""

    args: list[TemplateArg] | None = None
    metrics: list[Metric]


class ArgValue(Model):
    """A value given to a template's arg by a reference."""

    name: ArgName
    value: str = Field(max_length=MAX_ARG_VALUE_LENGTH)


class TemplateRef(Model):
    """A reference to an ``AnalysisTemplate`` in the referrer's namespace or, with
    ``clusterScope``, to a ``ClusterAnalysisTemplate``; its metrics join the inline ones."""

    template_name: TemplateName
    cluster_scope: bool = False
    args: list[ArgValue] | None = None


class AnalysisSpec(Model):
    """Analysis that gates each step of the canary (background analysis)."""

    interval: Duration = "30s"
    failure_limit: int = Field(default=0, ge=0)
    inconclusive_limit: int = Field(default=0, ge=0)
    consecutive_error_limit: int = Field(default=4, ge=0)
    metrics: list[Metric] = Field(default_factory=list)
    templates: list[TemplateRef] | None = None
    scoring: Scoring | None = None


class StepAnalysis(Model):
    """An analysis step: blocks the rollout until its metrics have taken ``count``
    measurements each. Unset fields fall back to the canary's ``analysis``."""

    interval: Duration | None = None
    failure_limit: int | None = Field(default=None, ge=0)
    inconclusive_limit: int | None = Field(default=None, ge=0)
    consecutive_error_limit: int | None = Field(default=None, ge=0)
    metrics: list[Metric] | None = None
    templates: list[TemplateRef] | None = None
    scoring: Scoring | None = None


class PauseStep(Model):
    """Pause the rollout; without ``duration`` it waits for a promote or resume."""

    duration: Duration | None = None


class HeaderValue(Model):
    """Exactly one of ``exact``, ``prefix`` or ``regex``."""

    exact: str | None = Field(default=None, max_length=1024)
    prefix: str | None = Field(default=None, max_length=1024)
    regex: str | None = Field(default=None, max_length=1024)


#: An HTTP header or cookie name (an RFC 9110 token).
TOKEN_PATTERN = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"


class CookieMatch(Model):
    name: str = Field(min_length=1, max_length=256, pattern=TOKEN_PATTERN)
    value: str = Field(max_length=1024)


class HeaderRouteMatch(Model):
    """Either a header (``headerName`` and ``headerValue``) or a ``cookie``."""

    header_name: str | None = Field(
        default=None, min_length=1, max_length=256, pattern=TOKEN_PATTERN
    )
    header_value: HeaderValue | None = None
    cookie: CookieMatch | None = None


class HeaderRouteStep(Model):
    """Requests matching every entry of ``match`` go to the canary whatever the weight; without
    ``match`` the step removes the route of that name."""

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    match: list[HeaderRouteMatch] | None = None


class MirrorRouteStep(Model):
    """``percentage`` of the requests the router sends on (stable's traffic at weight 0) are
    copied to the canary, its responses discarded; ``percentage: 0`` removes the mirror of that
    name."""

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    percentage: int = Field(ge=0, le=100)


#: A role an approval step asks for (a key of the operator's ROLLWISE_ROLE_GROUPS).
ROLE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: Most roles one approval step asks for.
MAX_APPROVAL_ROLES = 8


class ApprovalStep(Model):
    """A go/no-go: the Rollout holds at this step until distinct people, one per role, each
    holding the role (a group of the operator's role mapping), approved the canary revision;
    the person who changed the template approves none of it. Past ``timeout`` (none: no
    limit) it keeps holding, with a Warning."""

    #: 1 to :data:`MAX_APPROVAL_ROLES`, each once (checked by the validation, as the CRD does).
    roles: list[Annotated[str, Field(min_length=1, max_length=63, pattern=ROLE_PATTERN)]]
    timeout: Duration | None = None


class Step(Model):
    """Exactly one of ``setWeight``, ``pause``, ``analysis``, ``setHeaderRoute``,
    ``setMirrorRoute`` or ``approval``."""

    set_weight: Weight | None = None
    pause: PauseStep | None = None
    analysis: StepAnalysis | None = None
    set_header_route: HeaderRouteStep | None = None
    set_mirror_route: MirrorRouteStep | None = None
    approval: ApprovalStep | None = None


def default_steps() -> list[Step]:
    return [Step(set_weight=5), Step(set_weight=25), Step(set_weight=100)]


# --------------------------------------------------------------------------------------------
# Rollout


class HTTPRouteRef(Model):
    name: str = Field(min_length=1)
    rule_index: int | None = Field(default=None, ge=0)


class GatewayAPIRouting(Model):
    http_route: HTTPRouteRef


class VirtualServiceRef(Model):
    name: str = Field(min_length=1)
    routes: list[str] | None = None


class IstioRouting(Model):
    virtual_service: VirtualServiceRef


class TrafficRouting(Model):
    """At most one router; none means weights are approximated by replica counts."""

    gateway_api: GatewayAPIRouting | None = Field(default=None, alias="gatewayAPI")
    istio: IstioRouting | None = None


class RegressionAction(StrEnum):
    """What a confirmed post-promotion regression does: ``rollback`` moves all traffic back to
    the previous revision at once, ``hold`` blocks further changes, ``alert`` only records
    and notifies."""

    ROLLBACK = "rollback"
    HOLD = "hold"
    ALERT = "alert"


class KpiSeverity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class OnRegression(Model):
    """The action a confirmed regression takes, per severity."""

    critical: RegressionAction = RegressionAction.ROLLBACK
    warning: RegressionAction = RegressionAction.HOLD
    info: RegressionAction = RegressionAction.ALERT


class WatchWindows(Model):
    """The windows a watched metric is evaluated over (``{{window}}`` in its query)."""

    short: Duration = "1h"
    long: Duration = "24h"


class WatchedKpi(Model):
    """How one of the watch's metrics is read as a KPI: its severity, its reason code (by
    default from its name), its target and which way is worse."""

    metric: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    severity: KpiSeverity = KpiSeverity.CRITICAL
    reason: str | None = Field(default=None, max_length=63, pattern=r"^[a-z][a-z0-9_]*$")
    target: float | None = Field(default=None, allow_inf_nan=False)
    direction: Direction = Direction.INCREASE


class PostPromotion(Model):
    """The regression watch after a promotion: the promoted revision's KPIs evaluated every
    ``interval`` for ``duration`` over two windows, the previous revision kept warm at
    ``previousRevisionReplicas`` percent of its replicas (:mod:`rollwise.core.postpromotion`)."""

    duration: Duration = "24h"
    interval: Duration = "5m"
    windows: WatchWindows = Field(default_factory=WatchWindows)
    confirm_after: int = Field(default=3, ge=1, le=100)
    clear_after: int = Field(default=3, ge=1, le=100)
    confirm_when_windows_agree: bool = False
    attention_band: float = Field(default=0.1, ge=0, le=100, allow_inf_nan=False)
    previous_revision_replicas: int = Field(default=100, ge=0, le=100)
    on_regression: OnRegression = Field(default_factory=OnRegression)
    kpis: list[WatchedKpi] | None = None
    metrics: list[Metric] = Field(default_factory=list)
    templates: list[TemplateRef] | None = None


#: Seconds a replaced stable revision keeps running by default (``scaleDownDelaySeconds``).
DEFAULT_SCALE_DOWN_DELAY = 30


#: A Kubernetes object name (DNS-1123 subdomain) and a namespace name (DNS-1123 label).
OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class WebhookType(StrEnum):
    """Where a gating webhook is called (:mod:`rollwise.core.rollout.webhooks`)."""

    CONFIRM_ROLLOUT = "confirm-rollout"
    PRE_ROLLOUT = "pre-rollout"
    CONFIRM_PROMOTION = "confirm-promotion"
    ROLLBACK = "rollback"


class Webhook(Model):
    """A gating webhook: a POST of the documented JSON body to ``url``; a 2xx answer within
    ``timeout`` lets its gate pass (docs/webhooks.md)."""

    name: str = Field(min_length=1, max_length=63, pattern=NAMESPACE_PATTERN)
    type: WebhookType
    url: str = Field(min_length=1, max_length=2048, pattern=r"^https?://")
    timeout: Duration = "10s"
    metadata: dict[str, Annotated[str, Field(max_length=1024)]] = Field(default_factory=dict)


class CanaryStrategy(Model):
    """``baseline``: run the stable template in fresh pods beside the canary, with the
    canary's replica count and weight, so analysis compares like with like;
    ``baselineService`` selects them for a traffic router (required with one);
    ``webhooks``: the gating webhooks, called around the steps;
    ``scaleDownDelayReplicas``: the percent of ``replicas`` a replaced stable revision keeps
    until ``scaleDownDelaySeconds`` removes it (None: the replicas it had)."""

    steps: list[Step] = Field(default_factory=default_steps)
    stable_service: str = Field(min_length=1)
    canary_service: str = Field(min_length=1)
    baseline: bool = False
    baseline_service: str | None = Field(default=None, min_length=1)
    traffic_routing: TrafficRouting | None = None
    analysis: AnalysisSpec | None = None
    scale_down_delay_seconds: int = Field(default=DEFAULT_SCALE_DOWN_DELAY, ge=0)
    scale_down_delay_replicas: int | None = Field(default=None, ge=0, le=100)
    decision_mode: DecisionMode = DecisionMode.AUTO
    post_promotion: PostPromotion | None = None
    webhooks: list[Webhook] = Field(default_factory=list)


class BlueGreenStrategy(Model):
    """Blue-green: the new revision runs beside the active one at ``previewReplicaCount``
    pods, reachable through ``previewService``; ``prePromotionAnalysis`` judges it there; a
    promotion (automatic unless ``autoPromotionEnabled`` is false, after
    ``autoPromotionSeconds`` when set) scales it to full and switches the ``activeService``'s
    selector to it in one write; ``postPromotionAnalysis`` then judges it while the previous
    revision still runs (a failure switches back), and the previous revision keeps running for
    ``scaleDownDelaySeconds`` after that. No mesh: the Services' selectors carry the
    traffic."""

    active_service: str = Field(min_length=1)
    preview_service: str | None = Field(default=None, min_length=1)
    #: None: the preview runs ``spec.replicas`` pods.
    preview_replica_count: int | None = Field(default=None, ge=1)
    pre_promotion_analysis: StepAnalysis | None = None
    post_promotion_analysis: StepAnalysis | None = None
    auto_promotion_enabled: bool = True
    auto_promotion_seconds: int | None = Field(default=None, ge=1)
    scale_down_delay_seconds: int = Field(default=30, ge=0)


def blue_green_steps(blue_green: BlueGreenStrategy) -> list[Step]:
    """A blue-green strategy's stages, as the canary steps the Rollout pass runs: the
    pre-promotion analysis, the wait for promotion (until promoted when
    ``autoPromotionEnabled`` is false, ``autoPromotionSeconds`` when set, none otherwise), the
    switch (``setWeight: 100``: the active Service selects the new revision), then the
    post-promotion analysis."""
    steps: list[Step] = []
    if blue_green.pre_promotion_analysis is not None:
        steps.append(Step(analysis=blue_green.pre_promotion_analysis))
    if not blue_green.auto_promotion_enabled:
        steps.append(Step(pause=PauseStep()))
    elif blue_green.auto_promotion_seconds is not None:
        steps.append(Step(pause=PauseStep(duration=f"{blue_green.auto_promotion_seconds}s")))
    steps.append(Step(set_weight=100))
    if blue_green.post_promotion_analysis is not None:
        steps.append(Step(analysis=blue_green.post_promotion_analysis))
    return steps


class Strategy(Model):
    """Exactly one of ``canary`` or ``blueGreen`` (a CEL rule, and validation)."""

    canary_strategy: CanaryStrategy | None = Field(default=None, alias="canary")
    blue_green: BlueGreenStrategy | None = None

    @property
    def canary(self) -> CanaryStrategy:
        """The strategy as the Rollout pass runs it. A blue-green strategy is a canary without
        traffic weights: its stages are the steps (:func:`blue_green_steps`), the active
        Service is the stable one, the preview Service the canary one (the active one when
        there is no preview: the pass then never points it at the preview) and the switch is
        the step to weight 100: the active Service then selects the canary revision."""
        if self.canary_strategy is not None:
            return self.canary_strategy
        blue_green = self.blue_green
        if blue_green is None:
            # Neither is set: validation refuses the spec; the pass never runs on it.
            return CanaryStrategy(stable_service="-", canary_service="-", steps=[])
        return CanaryStrategy(
            steps=blue_green_steps(blue_green),
            stable_service=blue_green.active_service,
            canary_service=blue_green.preview_service or blue_green.active_service,
            scale_down_delay_seconds=blue_green.scale_down_delay_seconds,
        )


class UpstreamRollout(Model):
    """A Rollout that must have run the same pod template Healthy for ``soak`` before this
    one's canary of it starts (:mod:`rollwise.core.rollout.upstream`)."""

    namespace: str = Field(min_length=1, max_length=63, pattern=NAMESPACE_PATTERN)
    rollout: str = Field(min_length=1, max_length=253, pattern=OBJECT_NAME_PATTERN)
    soak: Duration = "0s"


class Promotion(Model):
    """``after``: the upstream Rollouts a new revision must have soaked in first."""

    after: list[UpstreamRollout] = Field(default_factory=list)


class RolloutSpec(Model):
    replicas: int = Field(default=1, ge=0)
    selector: LabelSelector
    template: dict[str, Any]
    strategy: Strategy
    progress_deadline_seconds: int = Field(default=600, ge=1)
    paused: bool = False
    promotion: Promotion | None = None


def step_what(step: Step) -> str:
    """A step as events and messages name it."""
    if step.set_weight is not None:
        return f"setWeight {step.set_weight}%"
    if step.pause is not None:
        return f"pause {step.pause.duration}" if step.pause.duration else "pause"
    if step.set_header_route is not None:
        verb = "setHeaderRoute" if step.set_header_route.match else "remove header route"
        return f"{verb} {step.set_header_route.name}"
    if step.set_mirror_route is not None:
        mirror = step.set_mirror_route
        if mirror.percentage == 0:
            return f"remove mirror route {mirror.name}"
        return f"setMirrorRoute {mirror.name} {mirror.percentage}%"
    if step.approval is not None:
        return f"approval by {', '.join(step.approval.roles)}"
    return "analysis"
