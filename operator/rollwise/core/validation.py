"""The operator's own validation of a Rollout spec.

The CRD carries the same rules as CEL ``x-kubernetes-validations`` with the same message
texts (the constants below); they are checked again here because an object may have bypassed
them (an API server without CEL, an object stored before a rule existed). An
invalid spec makes the operator stand still with an ``InvalidSpec`` condition, never act.

Rules that need more than CEL in the API server can do (CEL conditions compile and yield a
bool, query placeholders exist, durations parse) are only checked here.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from rollwise.core.analysis import (
    check_condition,
    check_json_path,
    query_templates,
    timeout_text,
    unknown_placeholders,
)
from rollwise.core.durations import InvalidDuration, parse_seconds
from rollwise.core.judging import kind_problems
from rollwise.core.spec import (
    MAX_APPROVAL_ROLES,
    AnalysisSpec,
    BlueGreenStrategy,
    HeaderRouteStep,
    LabelSelector,
    Metric,
    MetricKind,
    RolloutSpec,
    Scoring,
    Step,
    StepAnalysis,
    TemplateRef,
    Webhook,
)

MSG_STEP_ONE_KIND = (
    "each step must set exactly one of setWeight, pause, analysis, setHeaderRoute, "
    "setMirrorRoute or approval"
)
#: A ModelRelease canary's steps have no setHeaderRoute.
MSG_CANARY_STEP_ONE_KIND = "each step must set exactly one of setWeight, pause or analysis"
MSG_HEADER_ROUTE_ROUTER = (
    "setHeaderRoute needs a trafficRouting router (gatewayAPI or istio): without one the "
    "weight is carried by replica counts behind one Service, which cannot send requests to a "
    "revision by their headers"
)
MSG_HEADER_ROUTE_MODELRELEASE = "setHeaderRoute is a Rollout step; a ModelRelease canary has none"
MSG_MIRROR_ROUTE_ROUTER = (
    "setMirrorRoute needs a trafficRouting router (gatewayAPI or istio): without one the "
    "weight is carried by replica counts behind one Service, which cannot copy requests to "
    "the canary"
)
MSG_MIRROR_ROUTE_MODELRELEASE = "setMirrorRoute is a Rollout step; a ModelRelease canary has none"
MSG_APPROVAL_MODELRELEASE = (
    "approval is a Rollout step; a ModelRelease is approved through its own approvals "
    "(spec.approvals)"
)
MSG_APPROVAL_ROLES_UNIQUE = "an approval step names each role once"
MSG_APPROVAL_ROLES_COUNT = f"an approval step names 1 to {MAX_APPROVAL_ROLES} roles"
MSG_MIRROR_ONE = (
    "one mirror at a time: remove a setMirrorRoute (percentage 0) before a step sets one of "
    "another name (a VirtualService route carries a single mirror)"
)
MSG_HEADER_MATCH_ONE = "each match must set exactly one of headerName (with headerValue) or cookie"
MSG_HEADER_VALUE_ONE = "headerValue must set exactly one of exact, prefix or regex"
MSG_HEADER_REGEX = "headerValue.regex is not a valid regular expression"
MSG_HEADER_NAME = "headerName must be an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)"
MSG_WEIGHTS_NON_DECREASING = "setWeight must not decrease from one step to the next"
MSG_LAST_WEIGHT_100 = "the last setWeight step must set weight 100"
MSG_ONE_ROUTER = "trafficRouting must set exactly one of gatewayAPI or istio"
MSG_SERVICES_DIFFER = "stableService and canaryService must differ"
MSG_BASELINE_NEEDS_SERVICE = "baseline with a trafficRouting router needs baselineService"
MSG_BASELINE_SERVICE_DIFFERS = "baselineService must differ from stableService and canaryService"
MSG_UNIQUE_METRICS = "metric names must be unique within an analysis"
MSG_METRIC_KIND = (
    "each metric needs exactly one kind: thresholdRange, successCondition or "
    "failureCondition; compare; or sloBurnRate"
)
MSG_SCORING_ORDER = "marginal must not exceed pass"
MSG_THRESHOLD_QUERY = "a threshold metric's prometheus provider needs a query"
MSG_ONE_PROVIDER = "provider must set exactly one of prometheus or web"
MSG_BODY_NEEDS_POST = "body is sent only with method POST"
MSG_GUARD_NEEDS_PROMETHEUS = "sampleGuard needs a prometheus provider (it runs its query there)"
MSG_RANGE_EXCLUSIVE = "thresholdRange cannot be combined with successCondition or failureCondition"
MSG_RANGE_BOUNDS = "thresholdRange needs min or max, and min must not exceed max"
MSG_ANALYSIS_STEP_METRICS = (
    "an analysis step needs metrics or templates, its own or strategy.canary.analysis's"
)
MSG_ONE_STRATEGY = "strategy must set exactly one of canary or blueGreen"
MSG_PREVIEW_SERVICE_DIFFERS = "previewService must differ from activeService"
MSG_PRE_PROMOTION_METRICS = "prePromotionAnalysis needs metrics or templates"
MSG_POST_PROMOTION_METRICS = "postPromotionAnalysis needs metrics or templates"
MSG_UNIQUE_ARGS = "arg names must be unique"
MSG_SELECTOR_MATCHES = "selector must match template.metadata.labels"
MSG_SELECTOR_EMPTY = "selector must set matchLabels or matchExpressions"


def parse_rollout_spec(raw: dict[str, Any]) -> RolloutSpec | list[str]:
    """``raw`` (the wire form, camelCase) as a :class:`RolloutSpec`, or the reasons it is not
    one, one message per problem, located like ``spec.strategy.canary.steps[0].setWeight``."""
    try:
        return RolloutSpec.model_validate(raw)
    except ValidationError as exc:
        return [f"{_location(err['loc'])}: {err['msg']}" for err in exc.errors()]


def _location(loc: tuple[int | str, ...]) -> str:
    out = "spec"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def load_rollout_spec(raw: dict[str, Any] | RolloutSpec) -> tuple[RolloutSpec | None, list[str]]:
    """Parse (when given the wire form) and validate: the spec when usable, and all problems."""
    spec = raw if isinstance(raw, RolloutSpec) else parse_rollout_spec(raw)
    if isinstance(spec, list):
        return None, spec
    errors = validate_rollout(spec)
    return (None if errors else spec), errors


def validate_rollout(spec: RolloutSpec) -> list[str]:
    """Every cross-field problem of ``spec``; empty when it is valid."""
    strategy = spec.strategy
    if (strategy.canary_strategy is None) == (strategy.blue_green is None):
        return [f"spec.strategy: {MSG_ONE_STRATEGY}", *_selector(spec.selector, spec.template)]
    if strategy.blue_green is not None:
        return [
            *validate_blue_green("spec.strategy.blueGreen", strategy.blue_green),
            *_selector(spec.selector, spec.template),
        ]
    canary = spec.strategy.canary
    base = "spec.strategy.canary"
    errors = validate_steps(base, canary.steps, canary.analysis, header_routes=True)

    routing = canary.traffic_routing
    if routing is None and any(step.set_header_route is not None for step in canary.steps):
        errors.append(f"{base}.steps: {MSG_HEADER_ROUTE_ROUTER}")
    if routing is None and any(step.set_mirror_route is not None for step in canary.steps):
        errors.append(f"{base}.steps: {MSG_MIRROR_ROUTE_ROUTER}")
    if routing is not None and (routing.gateway_api is None) == (routing.istio is None):
        errors.append(f"{base}.trafficRouting: {MSG_ONE_ROUTER}")
    if canary.stable_service == canary.canary_service:
        errors.append(f"{base}: {MSG_SERVICES_DIFFER}")
    if canary.baseline and routing is not None and canary.baseline_service is None:
        errors.append(f"{base}: {MSG_BASELINE_NEEDS_SERVICE}")
    if canary.baseline_service in (canary.stable_service, canary.canary_service):
        errors.append(f"{base}: {MSG_BASELINE_SERVICE_DIFFERS}")
    if canary.analysis is not None:
        errors.extend(validate_analysis(base, canary.analysis))
    errors.extend(validate_webhooks(f"{base}.webhooks", canary.webhooks))

    errors.extend(_selector(spec.selector, spec.template))
    return errors


#: The longest a gating webhook may take to answer: a call holds its Rollout's pass.
MAX_WEBHOOK_TIMEOUT_SECONDS = 60.0
MSG_UNIQUE_WEBHOOKS = "webhook names must be unique"


def validate_webhooks(base: str, webhooks: list[Webhook]) -> list[str]:
    """Problems of the gating webhooks: names unique, a timeout above 0
    and at most :data:`MAX_WEBHOOK_TIMEOUT_SECONDS` (where the URL may point is the operator's
    settings' business, checked by the runtime)."""
    errors: list[str] = []
    names = [hook.name for hook in webhooks]
    if len(set(names)) != len(names):
        errors.append(f"{base}: {MSG_UNIQUE_WEBHOOKS}")
    for i, hook in enumerate(webhooks):
        where = f"{base}[{i}]"
        found = _duration(f"{where}.timeout", hook.timeout)
        if not found and parse_seconds(hook.timeout) > MAX_WEBHOOK_TIMEOUT_SECONDS:
            found = [f"{where}.timeout: at most {MAX_WEBHOOK_TIMEOUT_SECONDS:g}s"]
        errors.extend(found)
    return errors


def validate_blue_green(base: str, blue_green: BlueGreenStrategy) -> list[str]:
    """Problems of a blue-green strategy (located under ``base``)."""
    errors: list[str] = []
    if blue_green.preview_service == blue_green.active_service:
        errors.append(f"{base}: {MSG_PREVIEW_SERVICE_DIFFERS}")
    for name, analysis, message in (
        ("prePromotionAnalysis", blue_green.pre_promotion_analysis, MSG_PRE_PROMOTION_METRICS),
        ("postPromotionAnalysis", blue_green.post_promotion_analysis, MSG_POST_PROMOTION_METRICS),
    ):
        if analysis is not None:
            errors.extend(_step_analysis(f"{base}.{name}", analysis, None, message))
    return errors


def validate_steps(
    base: str, steps: list[Step], analysis: AnalysisSpec | None, *, header_routes: bool = False
) -> list[str]:
    """Problems of a canary's ``steps`` (located under ``base``), shared by the Rollout and the
    ModelRelease's canary: one kind per step, non-decreasing weights ending at 100, analysis
    steps with metrics, valid durations and metrics, header routes and mirrors (a Rollout's
    only: ``header_routes``) with well-formed matches, one mirror at a time."""
    errors: list[str] = []
    last_weight: int | None = None
    mirrors: dict[str, int] = {}  # name -> percentage in effect after each step
    for i, step in enumerate(steps):
        where = f"{base}.steps[{i}]"
        kinds = sum(
            x is not None
            for x in (
                step.set_weight,
                step.pause,
                step.analysis,
                step.set_header_route,
                step.set_mirror_route,
                step.approval,
            )
        )
        if kinds != 1:
            one_kind = MSG_STEP_ONE_KIND if header_routes else MSG_CANARY_STEP_ONE_KIND
            errors.append(f"{where}: {one_kind}")
        if step.set_header_route is not None:
            if not header_routes:
                errors.append(f"{where}.setHeaderRoute: {MSG_HEADER_ROUTE_MODELRELEASE}")
            errors.extend(_header_route(f"{where}.setHeaderRoute", step.set_header_route))
        if step.set_mirror_route is not None:
            if not header_routes:
                errors.append(f"{where}.setMirrorRoute: {MSG_MIRROR_ROUTE_MODELRELEASE}")
            else:
                mirrors[step.set_mirror_route.name] = step.set_mirror_route.percentage
                if sum(p > 0 for p in mirrors.values()) > 1:
                    errors.append(f"{where}.setMirrorRoute: {MSG_MIRROR_ONE}")
        if step.approval is not None:
            if not header_routes:
                errors.append(f"{where}.approval: {MSG_APPROVAL_MODELRELEASE}")
            if not 1 <= len(step.approval.roles) <= MAX_APPROVAL_ROLES:
                errors.append(f"{where}.approval.roles: {MSG_APPROVAL_ROLES_COUNT}")
            if len(set(step.approval.roles)) != len(step.approval.roles):
                errors.append(f"{where}.approval.roles: {MSG_APPROVAL_ROLES_UNIQUE}")
            if step.approval.timeout is not None:
                errors.extend(_duration(f"{where}.approval.timeout", step.approval.timeout))
        if step.set_weight is not None:
            if last_weight is not None and step.set_weight < last_weight:
                errors.append(f"{where}.setWeight: {MSG_WEIGHTS_NON_DECREASING}")
            last_weight = step.set_weight
        if step.pause is not None and step.pause.duration is not None:
            errors.extend(_duration(f"{where}.pause.duration", step.pause.duration, zero_ok=True))
        if step.analysis is not None:
            errors.extend(
                _step_analysis(
                    f"{where}.analysis", step.analysis, analysis, MSG_ANALYSIS_STEP_METRICS
                )
            )
    if last_weight is not None and last_weight != 100:
        errors.append(f"{base}.steps: {MSG_LAST_WEIGHT_100}")
    return errors


def _step_analysis(
    where: str, own: StepAnalysis, background: AnalysisSpec | None, no_checks: str
) -> list[str]:
    """Problems of one step-shaped analysis (located at ``where``): it needs metrics or
    templates (its own, else ``background``'s; ``no_checks`` says so), valid ones."""
    errors: list[str] = []
    checks: list[object] = [*(own.templates or [])]
    if own.metrics is not None:
        checks.extend(own.metrics)
    elif not checks and background is not None:
        checks.extend([*background.metrics, *(background.templates or [])])
    if not checks:
        errors.append(f"{where}: {no_checks}")
    if own.interval is not None:
        errors.extend(_duration(f"{where}.interval", own.interval))
    if own.metrics is not None:
        errors.extend(validate_metrics(where, own.metrics))
    errors.extend(validate_refs(where, own.templates))
    errors.extend(_scoring(f"{where}.scoring", own.scoring))
    return errors


_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


def _header_route(where: str, route: HeaderRouteStep) -> list[str]:
    errors: list[str] = []
    for j, match in enumerate(route.match or []):
        at = f"{where}.match[{j}]"
        header = match.header_name is not None or match.header_value is not None
        if header == (match.cookie is not None) or (
            header and (match.header_name is None or match.header_value is None)
        ):
            errors.append(f"{at}: {MSG_HEADER_MATCH_ONE}")
            continue
        if match.header_name is not None and not _HEADER_NAME.match(match.header_name):
            errors.append(f"{at}.headerName: {MSG_HEADER_NAME}")
        value = match.header_value
        if value is None:
            continue
        if sum(v is not None for v in (value.exact, value.prefix, value.regex)) != 1:
            errors.append(f"{at}.headerValue: {MSG_HEADER_VALUE_ONE}")
        elif value.regex is not None:
            try:
                re.compile(value.regex)
            except re.error as exc:
                errors.append(f"{at}: {MSG_HEADER_REGEX} ({exc})")
    return errors


def validate_analysis(base: str, analysis: AnalysisSpec) -> list[str]:
    """Problems of a canary's background ``analysis`` (located under ``base``)."""
    return [
        *_duration(f"{base}.analysis.interval", analysis.interval),
        *validate_metrics(f"{base}.analysis", analysis.metrics),
        *validate_refs(f"{base}.analysis", analysis.templates),
        *_scoring(f"{base}.analysis.scoring", analysis.scoring),
    ]


def _scoring(where: str, scoring: Scoring | None) -> list[str]:
    if scoring is not None and scoring.marginal > scoring.passing:
        return [f"{where}: {MSG_SCORING_ORDER}"]
    return []


def validate_refs(where: str, refs: list[TemplateRef] | None) -> list[str]:
    """Problems of an analysis' template references that need no template to find: an arg
    given twice (whether each template exists and takes the args is
    :mod:`rollwise.core.templates`' part, every pass)."""
    errors: list[str] = []
    for i, ref in enumerate(refs or []):
        names = [arg.name for arg in ref.args or []]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            errors.append(
                f"{where}.templates[{i}].args: {MSG_UNIQUE_ARGS} (duplicated: "
                f"{', '.join(duplicated)})"
            )
    return errors


def _duration(where: str, text: str, *, zero_ok: bool = False) -> list[str]:
    try:
        seconds = parse_seconds(text)
    except InvalidDuration as exc:
        return [f"{where}: {exc}"]
    if seconds <= 0 and not zero_ok:
        return [f"{where}: duration must be greater than 0"]
    return []


def validate_metrics(
    where: str, metrics: list[Metric], extra: frozenset[str] = frozenset()
) -> list[str]:
    """Problems of an analysis' ``metrics`` (located under ``where``); ``extra``: the
    placeholders their queries may use beyond their kind's (a post-promotion watch's
    ``{{window}}`` and ``{{revision}}``)."""
    errors: list[str] = []
    names = [m.name for m in metrics]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        errors.append(
            f"{where}.metrics: {MSG_UNIQUE_METRICS} (duplicated: {', '.join(duplicates)})"
        )
    for i, metric in enumerate(metrics):
        at = f"{where}.metrics[{i}]"
        conditions = [
            (field, expr)
            for field, expr in (
                ("successCondition", metric.success_condition),
                ("failureCondition", metric.failure_condition),
            )
            if expr is not None
        ]
        kinds = metric.kinds
        if len(kinds) != 1:
            errors.append(f"{at}: {MSG_METRIC_KIND}")
        if metric.threshold_range is not None:
            if conditions:
                errors.append(f"{at}: {MSG_RANGE_EXCLUSIVE}")
            low, high = metric.threshold_range.min, metric.threshold_range.max
            if (low is None and high is None) or (
                low is not None and high is not None and low > high
            ):
                errors.append(f"{at}.thresholdRange: {MSG_RANGE_BOUNDS}")
        for field, expr in conditions:
            problem = check_condition(expr)
            if problem is not None:
                errors.append(
                    f"{at}.{field}: '{expr}' must be a CEL bool expression over result "
                    f"(a double): {problem}"
                )
        source = metric.provider
        threshold = kinds == [MetricKind.THRESHOLD]
        if threshold and (source.prometheus is None) == (source.web is None):
            errors.append(f"{at}.provider: {MSG_ONE_PROVIDER}")
        if threshold and source.prometheus is not None and source.prometheus.query is None:
            errors.append(f"{at}.provider.prometheus.query: {MSG_THRESHOLD_QUERY}")
        for field, template, kind_allows in query_templates(metric):
            allowed = kind_allows | extra
            for name in unknown_placeholders(template, allowed):
                known = ", ".join(sorted(allowed))
                errors.append(f"{at}.{field}: unknown placeholder {{{{{name}}}}} (known: {known})")
        if metric.sample_guard is not None and source.prometheus is None and threshold:
            errors.append(f"{at}.sampleGuard: {MSG_GUARD_NEEDS_PROMETHEUS}")
        errors.extend(kind_problems(at, metric))
        if source.web is not None:
            problem = check_json_path(source.web.json_path)
            if problem is not None:
                errors.append(f"{at}.provider.web.jsonPath: {problem}")
            if source.web.body is not None and source.web.method.value != "POST":
                errors.append(f"{at}.provider.web.body: {MSG_BODY_NEEDS_POST}")
        if metric.interval is not None:
            errors.extend(_duration(f"{at}.interval", metric.interval))
        field, timeout = timeout_text(metric)
        errors.extend(_duration(f"{at}.provider.{field}", timeout))
    return errors


def _selector(selector: LabelSelector, template: dict[str, Any]) -> list[str]:
    where = "spec.selector"
    if not selector.match_labels and not selector.match_expressions:
        return [f"{where}: {MSG_SELECTOR_EMPTY}"]
    metadata = template.get("metadata")
    labels_raw = metadata.get("labels") if isinstance(metadata, dict) else None
    labels = labels_raw if isinstance(labels_raw, dict) else {}
    if not selector_matches(selector, labels):
        return [f"{where}: {MSG_SELECTOR_MATCHES}"]
    return []


def selector_matches(selector: LabelSelector, labels: dict[str, Any]) -> bool:
    """Kubernetes label selector semantics over ``labels``."""
    for key, value in (selector.match_labels or {}).items():
        if labels.get(key) != value:
            return False
    for req in selector.match_expressions or []:
        present = req.key in labels
        values = req.values or []
        if req.operator == "In" and not (present and labels[req.key] in values):
            return False
        if req.operator == "NotIn" and present and labels[req.key] in values:
            return False
        if req.operator == "Exists" and not present:
            return False
        if req.operator == "DoesNotExist" and present:
            return False
    return True


def selector_string(selector: LabelSelector) -> str:
    """The selector in the string form the scale subresource reports (``a=b,c in (d,e)``)."""
    parts = [f"{k}={v}" for k, v in sorted((selector.match_labels or {}).items())]
    for req in selector.match_expressions or []:
        values = ",".join(req.values or [])
        if req.operator == "In":
            parts.append(f"{req.key} in ({values})")
        elif req.operator == "NotIn":
            parts.append(f"{req.key} notin ({values})")
        elif req.operator == "Exists":
            parts.append(req.key)
        else:
            parts.append(f"!{req.key}")
    return ",".join(parts)
