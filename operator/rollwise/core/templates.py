"""Analysis templates: reusable metrics with typed args, resolved into a canary's analysis.

An ``AnalysisTemplate`` (namespaced) or ``ClusterAnalysisTemplate`` (cluster-scoped) holds
metrics whose texts may use ``{{args.NAME}}``. A canary's background ``analysis`` and each
analysis step reference templates by name with arg values (``templates``); resolving a
reference binds its args (the reference's value, else the arg's ``default``; a ``required`` arg
must be given), interpolates them into every text of the template's metrics (queries, the
sample guard's count query, a web provider's path and body, the conditions) and puts the
template's metrics, in reference order, before the inline ``metrics``. The other placeholders
(``{{canaryRevision}}``, ...) are left for the query rendering of :mod:`rollwise.core.analysis`.

Pure: the runtime reads the referenced templates' specs (:class:`TemplateKey` to the spec, None
when not found, a message when it could not be read) and hands them over in the observations;
everything here is a function of the spec and those reads. A missing template, a missing
required arg, an arg the template does not declare, a number arg given something else, and a
metric name defined twice after merging are spec errors, each naming the template and arg.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from rollwise.core.observations import TemplateKey, TemplateRead
from rollwise.core.spec import (
    AnalysisSpec,
    AnalysisTemplateSpec,
    ArgType,
    BlueGreenStrategy,
    Metric,
    RolloutSpec,
    Step,
    StepAnalysis,
    TemplateRef,
)
from rollwise.core.spec_release import ModelReleaseSpec
from rollwise.core.validation import MSG_UNIQUE_METRICS, validate_metrics

#: How a placeholder is written (the same shape :mod:`rollwise.core.analysis` renders): ``{{``,
#: anything but braces, ``}}``; an arg's placeholder is ``args.`` and its name, spaces ignored.
_PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")
ARGS_PREFIX = "args."
_NUMBER = re.compile(r"^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$")

#: Seconds after which a pass whose spec names a template that is not there looks again: a
#: template created after its Rollout is found without any change to the Rollout.
TEMPLATE_RECHECK_SECONDS = 15.0


def key_of(ref: TemplateRef) -> TemplateKey:
    return TemplateKey(cluster_scope=ref.cluster_scope, name=ref.template_name)


def describe(key: TemplateKey) -> str:
    """How messages name a template: ``AnalysisTemplate error-rate``."""
    return f"{key.kind} {key.name}"


def canary_template_keys(
    steps: Sequence[Step], analysis: AnalysisSpec | StepAnalysis | None
) -> tuple[TemplateKey, ...]:
    """Every template a canary references, each once, in spec order (what the runtime reads)."""
    refs: list[TemplateRef] = list(analysis.templates or []) if analysis is not None else []
    for step in steps:
        if step.analysis is not None:
            refs.extend(step.analysis.templates or [])
    return tuple(dict.fromkeys(key_of(ref) for ref in refs))


def rollout_template_keys(spec: RolloutSpec) -> tuple[TemplateKey, ...]:
    """The canary's templates, then the post-promotion watch's."""
    canary = spec.strategy.canary
    keys = canary_template_keys(canary.steps, canary.analysis)
    watch = canary.post_promotion
    if watch is None or not watch.templates:
        return keys
    return tuple(dict.fromkeys([*keys, *(key_of(ref) for ref in watch.templates)]))


def arg_placeholders(text: str) -> list[str]:
    """The arg names ``text`` uses as ``{{args.NAME}}``, in order of appearance."""
    names: list[str] = []
    for match in _PLACEHOLDER.finditer(text):
        inner = match.group(1).strip()
        if inner.startswith(ARGS_PREFIX):
            names.append(inner[len(ARGS_PREFIX) :].strip())
    return names


def interpolate(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``{{args.NAME}}`` whose name is in ``values`` replaced by its value;
    every other placeholder is kept as written."""

    def replace(match: re.Match[str]) -> str:
        inner = match.group(1).strip()
        if inner.startswith(ARGS_PREFIX):
            name = inner[len(ARGS_PREFIX) :].strip()
            if name in values:
                return values[name]
        return match.group(0)

    return _PLACEHOLDER.sub(replace, text)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _interpolated(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return interpolate(value, values)
    if isinstance(value, Mapping):
        return {k: _interpolated(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolated(v, values) for v in value]
    return value


def _is_number(text: str) -> bool:
    return bool(_NUMBER.match(text.strip())) and math.isfinite(float(text))


def bind_args(
    ref: TemplateRef, template: AnalysisTemplateSpec, at: str
) -> tuple[dict[str, str], list[str]]:
    """The value of each of ``template``'s args for ``ref``, and the problems (located at
    ``at``, the reference's path)."""
    what = describe(key_of(ref))
    declared = {arg.name: arg for arg in template.args or []}
    given: dict[str, str] = {}
    errors: list[str] = []
    for i, supplied in enumerate(ref.args or []):
        if supplied.name not in declared:
            known = ", ".join(declared) or "none"
            errors.append(
                f"{at}.args[{i}]: {what} has no arg '{supplied.name}' (its args: {known})"
            )
        elif supplied.name in given:
            errors.append(f"{at}.args[{i}]: arg '{supplied.name}' is given twice")
        else:
            given[supplied.name] = supplied.value
    values: dict[str, str] = {}
    for arg in template.args or []:
        if arg.name in given:
            value = given[arg.name]
        elif arg.required:
            errors.append(f"{at}.args: {what} needs arg '{arg.name}' (required, not given)")
            continue
        else:
            value = arg.default if arg.default is not None else ""
        if arg.type is ArgType.NUMBER and not _is_number(value):
            errors.append(f"{at}.args: {what} arg '{arg.name}' must be a number, got '{value}'")
            continue
        values[arg.name] = value
    return values, errors


def parse_template(read: Mapping[str, Any]) -> AnalysisTemplateSpec | list[str]:
    """A template's spec (wire form) as a model, or why it is not one."""
    try:
        return AnalysisTemplateSpec.model_validate(dict(read))
    except ValidationError as exc:
        return [
            ".".join(str(part) for part in err["loc"]) + f": {err['msg']}" for err in exc.errors()
        ]


def template_metrics(
    ref: TemplateRef, read: TemplateRead | None, at: str, extra: frozenset[str] = frozenset()
) -> tuple[list[Metric], list[str]]:
    """The metrics ``ref`` stands for, args interpolated, or the problems (none of them then)."""
    what = describe(key_of(ref))
    if read is None:
        where = "the cluster" if ref.cluster_scope else "the namespace"
        return [], [f"{at}: {what} not found in {where}"]
    if isinstance(read, str):
        return [], [f"{at}: {what} could not be read: {read}"]
    template = parse_template(read)
    if isinstance(template, list):
        return [], [f"{at}: {what} is invalid: {problem}" for problem in template]
    if not template.metrics:
        return [], [f"{at}: {what} has no metrics"]
    names = [arg.name for arg in template.args or []]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        return [], [f"{at}: {what} declares arg(s) twice: {', '.join(duplicated)}"]
    values, errors = bind_args(ref, template, at)
    if errors:
        return [], errors
    metrics: list[Metric] = []
    for metric in template.metrics:
        wire = metric.model_dump(mode="json", by_alias=True, exclude_none=True)
        undeclared = sorted(
            {name for text in _strings(wire) for name in arg_placeholders(text)} - set(names)
        )
        if undeclared:
            used = ", ".join("{{args." + name + "}}" for name in undeclared)
            errors.append(f"{at}: {what} metric {metric.name} uses {used}, not one of its args")
            continue
        try:
            metrics.append(Metric.model_validate(_interpolated(wire, values)))
        except ValidationError as exc:
            errors.extend(
                f"{at}: {what} metric {metric.name} with its args: "
                + ".".join(str(part) for part in err["loc"])
                + f": {err['msg']}"
                for err in exc.errors()
            )
    if errors:
        return [], errors
    problems = validate_metrics(f"{at}: {what}: spec", metrics, extra)
    return ([], problems) if problems else (metrics, [])


def merge(
    where: str,
    refs: Sequence[TemplateRef],
    inline: Sequence[Metric],
    reads: Mapping[TemplateKey, TemplateRead | None],
    extra: frozenset[str] = frozenset(),
) -> tuple[list[Metric], list[str]]:
    """The referenced templates' metrics (in reference order) then the inline ones, for the
    analysis at ``where``; or the problems. A metric name defined twice is an error naming
    where each came from. ``extra``: placeholders the metrics may use beyond their kind's."""
    merged: list[tuple[str, Metric]] = []
    errors: list[str] = []
    for i, ref in enumerate(refs):
        metrics, problems = template_metrics(
            ref, reads.get(key_of(ref)), f"{where}.templates[{i}]", extra
        )
        errors.extend(problems)
        merged.extend((describe(key_of(ref)), metric) for metric in metrics)
    merged.extend(("inline metrics", metric) for metric in inline)
    sources: dict[str, list[str]] = {}
    for source, metric in merged:
        sources.setdefault(metric.name, []).append(source)
    clashes = [
        f"{name} (from {' and '.join(found)})" for name, found in sources.items() if len(found) > 1
    ]
    if clashes:
        errors.append(f"{where}.metrics: {MSG_UNIQUE_METRICS} (duplicated: {', '.join(clashes)})")
    return [metric for _, metric in merged], errors


def resolve_canary(
    steps: Sequence[Step],
    analysis: AnalysisSpec | None,
    where: str,
    reads: Mapping[TemplateKey, TemplateRead | None],
) -> tuple[list[Step], AnalysisSpec | None, list[str]]:
    """A canary's steps and background analysis with every template reference replaced by the
    template's metrics (``templates`` then unset), and the problems found."""
    errors: list[str] = []
    if analysis is not None and analysis.templates:
        metrics, problems = merge(f"{where}.analysis", analysis.templates, analysis.metrics, reads)
        errors.extend(problems)
        analysis = analysis.model_copy(update={"metrics": metrics, "templates": None})
    resolved: list[Step] = []
    for s, step in enumerate(steps):
        own = step.analysis
        if own is not None and own.templates:
            metrics, problems = merge(
                f"{where}.steps[{s}].analysis", own.templates, own.metrics or [], reads
            )
            errors.extend(problems)
            own = own.model_copy(update={"metrics": metrics, "templates": None})
            resolved.append(step.model_copy(update={"analysis": own}))
        else:
            resolved.append(step)
    return resolved, analysis, errors


def resolve_rollout(
    spec: RolloutSpec, reads: Mapping[TemplateKey, TemplateRead | None]
) -> tuple[RolloutSpec, list[str]]:
    """``spec`` with its template references resolved, and the problems (the spec is invalid
    when there are any)."""
    canary = spec.strategy.canary
    if not rollout_template_keys(spec):
        return spec, []
    blue_green = spec.strategy.blue_green
    if blue_green is not None:
        return _resolve_blue_green(spec, blue_green, reads)
    steps, analysis, errors = resolve_canary(
        canary.steps, canary.analysis, "spec.strategy.canary", reads
    )
    canary = canary.model_copy(update={"steps": steps, "analysis": analysis})
    strategy = spec.strategy.model_copy(update={"canary_strategy": canary})
    return spec.model_copy(update={"strategy": strategy}), errors


def _resolve_blue_green(
    spec: RolloutSpec,
    blue_green: BlueGreenStrategy,
    reads: Mapping[TemplateKey, TemplateRead | None],
) -> tuple[RolloutSpec, list[str]]:
    """A blue-green spec's pre- and post-promotion analyses with their template references
    resolved."""
    errors: list[str] = []
    update: dict[str, StepAnalysis] = {}
    for field, name in (
        ("pre_promotion_analysis", "prePromotionAnalysis"),
        ("post_promotion_analysis", "postPromotionAnalysis"),
    ):
        own: StepAnalysis | None = getattr(blue_green, field)
        if own is None or not own.templates:
            continue
        where = f"spec.strategy.blueGreen.{name}"
        metrics, problems = merge(where, own.templates, own.metrics or [], reads)
        errors.extend(problems)
        update[field] = own.model_copy(update={"metrics": metrics, "templates": None})
    if not update:
        return spec, []
    blue_green = blue_green.model_copy(update=update)
    strategy = spec.strategy.model_copy(update={"blue_green": blue_green})
    return spec.model_copy(update={"strategy": strategy}), errors


def _release_canary_keys(spec: ModelReleaseSpec) -> tuple[TemplateKey, ...]:
    if spec.serving.inference_service_ref is None:
        return ()
    return canary_template_keys(spec.canary.steps, spec.canary.analysis)


def release_template_keys(spec: ModelReleaseSpec) -> tuple[TemplateKey, ...]:
    """The templates a ModelRelease resolves itself: those of its own canary, which runs only
    for a KServe InferenceService (a release served by a pod template hands its canary,
    references included, to its child Rollout, which resolves them on its own passes), then
    its post-promotion watch's, which runs on the release for either serving."""
    keys = _release_canary_keys(spec)
    watch = spec.canary.post_promotion
    if watch is None or not watch.templates:
        return keys
    return tuple(dict.fromkeys([*keys, *(key_of(ref) for ref in watch.templates)]))


def resolve_release(
    spec: ModelReleaseSpec, reads: Mapping[TemplateKey, TemplateRead | None]
) -> tuple[ModelReleaseSpec, list[str]]:
    """``spec`` with its own canary's template references resolved (see
    :func:`release_template_keys`), and the problems."""
    if not _release_canary_keys(spec):
        return spec, []
    steps, analysis, errors = resolve_canary(
        spec.canary.steps, spec.canary.analysis, "spec.canary", reads
    )
    canary = spec.canary.model_copy(update={"steps": steps, "analysis": analysis})
    return spec.model_copy(update={"canary": canary}), errors


def any_missing(
    keys: Iterable[TemplateKey], reads: Mapping[TemplateKey, TemplateRead | None]
) -> bool:
    """Whether a referenced template was not found or not read (a pass then looks again
    after :data:`TEMPLATE_RECHECK_SECONDS`)."""
    return any(not isinstance(reads.get(key), Mapping) for key in keys)


__all__ = [
    "ARGS_PREFIX",
    "TEMPLATE_RECHECK_SECONDS",
    "any_missing",
    "arg_placeholders",
    "bind_args",
    "canary_template_keys",
    "describe",
    "interpolate",
    "key_of",
    "merge",
    "parse_template",
    "release_template_keys",
    "resolve_canary",
    "resolve_release",
    "resolve_rollout",
    "rollout_template_keys",
    "template_metrics",
]
