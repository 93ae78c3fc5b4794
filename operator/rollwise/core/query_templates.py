"""Query templates: the ``{{ placeholder }}`` texts of a metric, which placeholders each may
use, and rendering them over a canary's context.

A threshold metric's query and its ``sampleGuard`` query use :data:`QUERY_PLACEHOLDERS`. A
``compare`` query adds ``{{revision}}`` (the canary's revision when run for the canary, the
control's when run for the control: :func:`compare_contexts`); an ``sloBurnRate`` query adds
``{{window}}`` (the window a count is taken over, a PromQL duration such as ``3600s``).
"""

from __future__ import annotations

import json
import re

from rollwise.core.spec import Metric

#: Placeholders a query may use.
QUERY_PLACEHOLDERS = frozenset(
    {
        "namespace",
        "name",
        "stableRevision",
        "canaryRevision",
        "baselineRevision",
        "stableService",
        "canaryService",
    }
)
#: The revision a ``compare`` query is run for (canary, then control).
REVISION_PLACEHOLDER = "revision"
#: The window an ``sloBurnRate`` query counts over.
WINDOW_PLACEHOLDER = "window"
COMPARE_PLACEHOLDERS = QUERY_PLACEHOLDERS | {REVISION_PLACEHOLDER}
BURN_RATE_PLACEHOLDERS = QUERY_PLACEHOLDERS | {WINDOW_PLACEHOLDER}

#: ``{{`` + anything but braces + ``}}``; the name is the content stripped of white space.
#: One greedy class and no optional parts: linear in the template's length whatever it holds
#: (an unclosed ``{{`` followed by thousands of spaces included), so a spec cannot make the
#: operator spin on it.
_PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")


class QueryTemplateError(ValueError):
    """A query uses a placeholder that does not exist."""


def placeholders_of(template: str) -> list[str]:
    """Placeholder names in ``template``, in order of appearance."""
    return [match.group(1).strip() for match in _PLACEHOLDER.finditer(template)]


def unknown_placeholders(template: str, allowed: frozenset[str] = QUERY_PLACEHOLDERS) -> list[str]:
    return [p for p in placeholders_of(template) if p not in allowed]


def render_query(
    template: str, context: dict[str, str], allowed: frozenset[str] = QUERY_PLACEHOLDERS
) -> str:
    """``template`` with every ``{{ name }}`` replaced from ``context``.

    Raises :class:`QueryTemplateError` for a placeholder that is not one of ``allowed``
    or that ``context`` lacks.
    """
    unknown = unknown_placeholders(template, allowed)
    if unknown:
        raise QueryTemplateError(f"unknown placeholder {{{{{unknown[0]}}}}}")

    def replace(match: re.Match[str]) -> str:
        key = match.group(1).strip()
        if key not in context:
            raise QueryTemplateError(f"no value for placeholder {{{{{key}}}}}")
        return context[key]

    return _PLACEHOLDER.sub(replace, template)


def query_templates(metric: Metric) -> list[tuple[str, str, frozenset[str]]]:
    """Every templated text of a metric, each with its field (a path under the metric) and
    the placeholders it may use: a Prometheus query or a web provider's path and body, a
    ``sampleGuard`` query, a ``compare`` query, an ``sloBurnRate``'s queries."""
    source = metric.provider
    texts: list[tuple[str, str, frozenset[str]]] = []
    if source.prometheus is not None and source.prometheus.query is not None:
        texts.append(("provider.prometheus.query", source.prometheus.query, QUERY_PLACEHOLDERS))
    if source.web is not None:
        texts.append(("provider.web.path", source.web.path, QUERY_PLACEHOLDERS))
        if source.web.body is not None:
            texts.append(("provider.web.body", source.web.body, QUERY_PLACEHOLDERS))
    if metric.sample_guard is not None:
        texts.append(("sampleGuard.query", metric.sample_guard.query, QUERY_PLACEHOLDERS))
    if metric.compare is not None:
        texts.append(("compare.query", metric.compare.query, COMPARE_PLACEHOLDERS))
    slo = metric.slo_burn_rate
    if slo is not None:
        for field, text in (
            ("goodQuery", slo.good_query),
            ("badQuery", slo.bad_query),
            ("totalQuery", slo.total_query),
        ):
            if text is not None:
                texts.append((f"sloBurnRate.{field}", text, BURN_RATE_PLACEHOLDERS))
    return texts


def timeout_text(metric: Metric) -> tuple[str, str]:
    """The metric's query timeout as written, with its field under ``provider``."""
    source = metric.provider
    if source.web is not None:
        return "web.timeout", source.web.timeout
    if source.prometheus is not None:
        return "prometheus.timeout", source.prometheus.timeout
    return "timeout", "10s"


def web_query(metric: Metric, context: dict[str, str]) -> str:
    """A web provider's request, rendered over ``context``, as the provider's query text: the
    canonical JSON of method, path, body and jsonPath (``adapters.metrics.web`` reads it)."""
    web = metric.provider.web
    if web is None:
        raise QueryTemplateError(f"metric {metric.name} has no web provider")
    request = {
        "method": web.method.value,
        "path": render_query(web.path, context),
        "body": render_query(web.body, context) if web.body is not None else None,
        "jsonPath": web.json_path,
    }
    return json.dumps(request, sort_keys=True, separators=(",", ":"))


def render_sample_query(metric: Metric, context: dict[str, str]) -> str | None:
    """The metric's ``sampleGuard`` count query rendered over ``context``; None without a
    guard."""
    if metric.sample_guard is None:
        return None
    return render_query(metric.sample_guard.query, context)


def render_metric(metric: Metric, context: dict[str, str]) -> str:
    """The query a threshold metric's provider runs now: the Prometheus query or the web
    request."""
    if metric.provider.web is not None:
        return web_query(metric, context)
    prometheus = metric.provider.prometheus
    if prometheus is not None and prometheus.query is not None:
        return render_query(prometheus.query, context)
    raise QueryTemplateError(f"metric {metric.name} has no provider query")


def control_revision(context: dict[str, str]) -> tuple[str, str]:
    """The control a ``compare`` query's canary samples are judged against, as the evidence
    names it, with its revision: the baseline while one runs beside the canary
    (``{{baselineRevision}}`` is then its own revision), else the stable revision."""
    stable = context.get("stableRevision", "")
    baseline = context.get("baselineRevision", "")
    if baseline and baseline != stable:
        return "baseline", baseline
    return "stable", stable


def compare_contexts(context: dict[str, str]) -> tuple[dict[str, str], dict[str, str], str]:
    """The contexts a ``compare`` query is rendered in, for the canary and for the control,
    and the control's name (:func:`control_revision`)."""
    control, revision = control_revision(context)
    canary = {**context, REVISION_PLACEHOLDER: context.get("canaryRevision", "")}
    return canary, {**context, REVISION_PLACEHOLDER: revision}, control


def render_window(template: str, context: dict[str, str], window: str) -> str:
    """An ``sloBurnRate`` query rendered over ``context`` with ``{{window}}`` set to ``window``
    (a PromQL duration)."""
    return render_query(template, {**context, WINDOW_PLACEHOLDER: window}, BURN_RATE_PLACEHOLDERS)


__all__ = [
    "BURN_RATE_PLACEHOLDERS",
    "COMPARE_PLACEHOLDERS",
    "QUERY_PLACEHOLDERS",
    "REVISION_PLACEHOLDER",
    "WINDOW_PLACEHOLDER",
    "QueryTemplateError",
    "compare_contexts",
    "control_revision",
    "placeholders_of",
    "query_templates",
    "render_metric",
    "render_query",
    "render_sample_query",
    "render_window",
    "timeout_text",
    "unknown_placeholders",
    "web_query",
]
