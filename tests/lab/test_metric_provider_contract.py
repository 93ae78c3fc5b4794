"""The contract every metric provider meets, run against real servers: the lab's Prometheus
through the Prometheus provider, and Prometheus' own JSON API through the web provider (a
real server answering JSON, with the value picked by a jsonPath). The same situation gives
the same answer, and the core turns it into the same three-valued verdict."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from hack.lab.prometheus import PrometheusServer
from rollwise.adapters.errors import ProviderUnavailable, QueryError
from rollwise.adapters.metrics import MetricProvider, PrometheusProvider
from rollwise.adapters.metrics.web import WebMetricProvider
from rollwise.core.analysis import assess, web_query
from rollwise.core.observations import Measurement
from rollwise.core.runs import Verdict
from rollwise.core.spec import Metric

pytestmark = pytest.mark.lab

TWO_SERIES = 'vector(1) or label_replace(vector(2), "a", "b", "", "")'


@dataclass(frozen=True)
class Subject:
    """One provider under the contract, and how it asks a PromQL expression."""

    name: str
    provider: MetricProvider
    ask: Callable[[str], str]
    metric: Callable[[str], Metric]


def _prometheus_metric(query: str) -> Metric:
    return Metric.model_validate(
        {
            "name": "m",
            "successCondition": "result < 5",
            "provider": {"prometheus": {"query": query}},
        }
    )


def _web_metric(query: str, json_path: str = "$.data.result[0].value[1]") -> Metric:
    return Metric.model_validate(
        {
            "name": "m",
            "successCondition": "result < 5",
            "provider": {
                "web": {
                    "name": "prom-json",
                    "path": "/api/v1/query?query=" + quote(query, safe=""),
                    "jsonPath": json_path,
                }
            },
        }
    )


@pytest.fixture(params=["prometheus", "web"])
def subject(request: pytest.FixtureRequest, prometheus: PrometheusServer) -> Iterator[Subject]:
    if request.param == "prometheus":
        provider: PrometheusProvider | WebMetricProvider = PrometheusProvider(prometheus.url)
        yield Subject("prometheus", provider, lambda q: q, _prometheus_metric)
    else:
        provider = WebMetricProvider(prometheus.url)
        yield Subject(
            "web",
            provider,
            lambda q: web_query(_web_metric(q), {}),
            _web_metric,
        )
    provider.close()


def verdict_of(subject: Subject, query: str) -> tuple[float | None, Verdict, bool]:
    """The provider's answer and the core's verdict on it (error: the provider failed)."""
    now = datetime.now(UTC)
    try:
        value = subject.provider.query(subject.ask(query), 5.0)
        measurement = Measurement(value=value, at=now)
    except (QueryError, ProviderUnavailable) as exc:
        value = None
        measurement = Measurement(value=None, at=now, error=exc.message)
    assessment = assess(subject.metric(query), measurement)
    return value, assessment.verdict, assessment.error


@pytest.mark.parametrize(
    ("query", "value", "verdict"),
    [
        pytest.param("vector(3)", 3.0, Verdict.PASS, id="a-value-that-passes"),
        pytest.param("vector(7)", 7.0, Verdict.FAIL, id="a-value-that-fails"),
        pytest.param("rollwise_no_such_series", None, Verdict.INCONCLUSIVE, id="no-data"),
    ],
)
def test_the_same_situation_gives_the_same_answer_and_verdict(
    subject: Subject, query: str, value: float | None, verdict: Verdict
) -> None:
    got, judged, error = verdict_of(subject, query)
    assert got == value
    assert judged is verdict
    assert not error


def test_nan_is_a_value_the_core_never_passes(subject: Subject) -> None:
    got, judged, error = verdict_of(subject, "vector(0) / 0")
    assert got is not None
    assert math.isnan(got)
    assert judged is Verdict.INCONCLUSIVE
    assert not error


def test_an_ambiguous_answer_is_a_query_error(subject: Subject) -> None:
    if subject.name == "web":
        many = web_query(_web_metric(TWO_SERIES, "$.data.result[*].value[1]"), {})
    else:
        many = TWO_SERIES
    with pytest.raises(QueryError):
        subject.provider.query(many, 5.0)


def test_a_query_the_backend_refuses_is_a_query_error_not_an_outage(subject: Subject) -> None:
    got, judged, error = verdict_of(subject, "sum(rate(x[5m]")
    assert got is None
    assert judged is Verdict.INCONCLUSIVE
    assert error
    with pytest.raises(QueryError):
        subject.provider.query(subject.ask("sum(rate(x[5m]"), 5.0)


def test_an_unreachable_backend_is_retryable(subject: Subject) -> None:
    closed: MetricProvider
    if subject.name == "web":
        closed = WebMetricProvider("http://127.0.0.1:9")
    else:
        closed = PrometheusProvider("http://127.0.0.1:9")
    with pytest.raises(ProviderUnavailable) as failed:
        closed.query(subject.ask("vector(1)"), 1.0)
    assert failed.value.retryable
    assert not closed.is_online()
    assert subject.provider.is_online()
