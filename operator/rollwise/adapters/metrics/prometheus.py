"""Prometheus metric provider: one instant query (``/api/v1/query``) → one float, and one
range query (``/api/v1/query_range``) → the samples of one series (``compare`` metrics).

Built on ``prometheus_api_client.PrometheusConnect`` (synchronous, ``requests``); the runtime
calls it from a worker thread. Result shapes:

- a vector with exactly one sample, or a scalar → its value (NaN and ±Inf included: the core
  makes them INCONCLUSIVE);
- an empty vector → None (no data, INCONCLUSIVE);
- several samples → ``QueryError``: the query is ambiguous, aggregate it (``sum(...)``);
- a range vector or a string → ``QueryError``.

Failures: a 400 or 422 answer (syntax error, execution error) → ``QueryError`` carrying
Prometheus's own error text; connection refused, timeouts, 429 and 5xx (a query that hit its
``timeout`` is a 503) → ``ProviderUnavailable`` (retryable); any other status →
``ProviderUnavailable`` naming it. ``timeout_s`` is sent as the query's ``timeout`` parameter
(Prometheus stops evaluating) and, with one second of slack for the answer to travel, as the
HTTP timeout. The client itself never retries: retries are the runtime's, with backoff.

Range queries (:meth:`PrometheusProvider.query_range`) answer the values of exactly one
series (none: an empty list; several: ``QueryError``, aggregate it), at most
:data:`MAX_RANGE_POINTS` of them (a larger range is refused before it is sent: widen the
step), with errors mapped as for an instant query. The provider only fetches numbers; every
judgement is the core's.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import requests
import urllib3
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from rollwise.adapters.bounded_http import (
    DEFAULT_MAX_BYTES,
    AnswerTooLarge,
    AnswerTooSlow,
    BoundedAdapter,
    RedirectRefused,
    bounded_session,
)
from rollwise.adapters.errors import ProviderUnavailable, QueryError, QueryRefused

#: Seconds added to a query's timeout for the HTTP request (the answer must still arrive).
HTTP_SLACK_S = 1.0

#: Longest part of Prometheus' own error message kept (it names the problem and the position;
#: answer bodies themselves are never repeated: they reach status and events, which tenants
#: read).
MAX_ERROR_TEXT = 300

_STATUS_MESSAGE = re.compile(r"^HTTP Status Code (\d+) \((.*)\)$", re.DOTALL)


def _error_text(content: str) -> str:
    """Prometheus's ``error`` from the body ``PrometheusApiClientException`` quotes (as the
    ``repr`` of bytes), else the body itself."""
    try:
        raw = ast.literal_eval(content)
        body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    except (ValueError, SyntaxError):
        body = content
    try:
        parsed = json.loads(body)
    except ValueError:
        return f"an answer that is not Prometheus' JSON ({len(body)} bytes)"
    if isinstance(parsed, dict) and parsed.get("error"):
        kind = parsed.get("errorType")
        text = f"{kind}: {parsed['error']}" if kind else str(parsed["error"])
        return text[:MAX_ERROR_TEXT]
    return f"an answer without an error message ({len(body)} bytes)"


def error_from_client(
    exc: PrometheusApiClientException, query: str
) -> QueryError | ProviderUnavailable:
    """The adapter error for a non-200 answer of Prometheus."""
    match = _STATUS_MESSAGE.match(str(exc))
    if match is None:
        return ProviderUnavailable(f"Prometheus query failed: {exc}")
    status = int(match.group(1))
    text = _error_text(match.group(2))
    if status in (400, 422):
        return QueryError(f"Prometheus refused the query {query!r}: {text}")
    return ProviderUnavailable(f"Prometheus answered {status} to {query!r}: {text}")


def status_of(exc: PrometheusApiClientException) -> int | None:
    """The HTTP status of a non-200 answer (None when the exception does not say)."""
    match = _STATUS_MESSAGE.match(str(exc))
    return int(match.group(1)) if match is not None else None


def _number(value: Any, query: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise QueryError(f"query {query!r} returned a non-numeric value {value!r}") from None


def value_of(result: Any, query: str) -> float | None:
    """The single value of a ``data.result`` (pure). Scalars and strings come as a
    ``[timestamp, "value"]`` pair, vectors and matrices as a list of series."""
    if not isinstance(result, list):
        raise QueryError(f"query {query!r} returned an unexpected result ({type(result).__name__})")
    if len(result) == 2 and not isinstance(result[0], dict):
        return _number(result[1], query)
    if not result:
        return None
    if len(result) > 1:
        # The series' labels are not repeated: they are another tenant's data as often as not.
        raise QueryError(
            f"query {query!r} returned {len(result)} series; "
            "it must return one: aggregate it, e.g. with sum(...)"
        )
    sample = result[0]
    if not isinstance(sample, dict) or "value" not in sample:
        raise QueryError(
            f"query {query!r} returned a range vector; use an instant vector (e.g. rate(...[5m]))"
        )
    pair = sample["value"]
    if not isinstance(pair, list) or len(pair) != 2:
        raise QueryError(f"query {query!r} returned a malformed sample")
    return _number(pair[1], query)


#: Most points a range query may ask for (Prometheus itself refuses more than 11,000 per
#: series).
MAX_RANGE_POINTS = 11_000


def samples_of(result: Any, query: str) -> list[float]:
    """The values of a range query's single series (pure): ``[]`` for no series."""
    if not isinstance(result, list):
        raise QueryError(f"query {query!r} returned an unexpected result ({type(result).__name__})")
    if not result:
        return []
    if len(result) > 1:
        raise QueryError(
            f"query {query!r} returned {len(result)} series; "
            "it must return one: aggregate it, e.g. with sum(...)"
        )
    series = result[0]
    if not isinstance(series, dict) or not isinstance(series.get("values"), list):
        raise QueryError(f"query {query!r} returned no range of values")
    values: list[float] = []
    for pair in series["values"]:
        if not isinstance(pair, list) or len(pair) != 2:
            raise QueryError(f"query {query!r} returned a malformed sample")
        values.append(_number(pair[1], query))
    return values


class PrometheusProvider:
    """Instant queries against one Prometheus (``url``: ``http://host:9090``)."""

    def __init__(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        disable_ssl: bool = False,
        online_timeout_s: float = 5.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.url = url.rstrip("/")
        self.online_timeout_s = online_timeout_s
        no_retries = Retry(total=0, connect=False, read=False, raise_on_status=False)
        session = bounded_session(max_bytes)
        session.verify = not disable_ssl
        self._client = PrometheusConnect(
            url=self.url,
            headers=headers,
            disable_ssl=disable_ssl,
            retry=no_retries,
            timeout=online_timeout_s,
            session=session,
        )
        # The client mounts a plain adapter for its URL; answers are read within bounds.
        session.mount(self.url, BoundedAdapter(max_bytes, max_retries=no_retries))
        self._session = session

    def close(self) -> None:
        self._client.close()

    def query(self, query: str, timeout_s: float) -> float | None:
        if not timeout_s > 0 or not math.isfinite(timeout_s):
            raise ValueError(f"timeout_s must be a positive number, got {timeout_s}")
        with self._answered(timeout_s, query):
            try:
                result = self._client.custom_query(
                    query, params={"timeout": f"{timeout_s:g}s"}, timeout=timeout_s + HTTP_SLACK_S
                )
            except PrometheusApiClientException as exc:
                raise error_from_client(exc, query) from exc
        return value_of(result, query)

    def query_range(
        self, query: str, start: datetime, end: datetime, step_s: float, timeout_s: float
    ) -> list[float]:
        """The samples of ``query``'s single series from ``start`` to ``end`` every ``step_s``
        seconds; ``[]`` when it matched nothing."""
        if not timeout_s > 0 or not math.isfinite(timeout_s):
            raise ValueError(f"timeout_s must be a positive number, got {timeout_s}")
        if not step_s > 0 or not math.isfinite(step_s):
            raise ValueError(f"step_s must be a positive number, got {step_s}")
        if end < start:
            raise ValueError(f"the range ends ({end}) before it starts ({start})")
        points = (end - start).total_seconds() / step_s + 1
        if points > MAX_RANGE_POINTS:
            raise QueryError(
                f"range query {query!r} would return {int(points)} points per series, "
                f"more than {MAX_RANGE_POINTS}: widen its step"
            )
        with self._answered(timeout_s, query):
            try:
                result = self._client.custom_query_range(
                    query,
                    start_time=start,
                    end_time=end,
                    step=f"{step_s:g}s",
                    params={"timeout": f"{timeout_s:g}s"},
                    timeout=timeout_s + HTTP_SLACK_S,
                )
            except PrometheusApiClientException as exc:
                raise error_from_client(exc, query) from exc
        return samples_of(result, query)

    def parse(self, query: str, timeout_s: float) -> None:
        """An instant query evaluated at the Unix epoch: Prometheus parses it like any other
        query (and answers 400 ``bad_data`` naming the position when it cannot), but holds no
        data that old, so nothing of weight is evaluated. A 422 is an execution error: the
        query parsed."""
        if not timeout_s > 0 or not math.isfinite(timeout_s):
            raise ValueError(f"timeout_s must be a positive number, got {timeout_s}")
        with self._answered(timeout_s):
            try:
                self._client.custom_query(
                    query,
                    params={"time": "1", "timeout": f"{timeout_s:g}s"},
                    timeout=timeout_s + HTTP_SLACK_S,
                )
            except PrometheusApiClientException as exc:
                status = status_of(exc)
                if status == 422:
                    return
                error = error_from_client(exc, query)
                if status == 400:
                    match = _STATUS_MESSAGE.match(str(exc))
                    text = _error_text(match.group(2)) if match is not None else str(exc)
                    raise QueryRefused(text) from exc
                raise error from exc

    @contextlib.contextmanager
    def _answered(self, timeout_s: float, query: str | None = None) -> Iterator[None]:
        """Maps what can go wrong on the way to Prometheus and back (not the API's own error
        answers, which each call maps) to ``ProviderUnavailable``, naming ``query`` when
        given."""
        asked = f" {query!r}" if query is not None else ""
        try:
            yield
        except (requests.JSONDecodeError, KeyError, TypeError) as exc:
            # A 200 whose body is not the API's JSON: a proxy or something else answered.
            to = f" to{asked}" if asked else ""
            raise ProviderUnavailable(
                f"Prometheus at {self.url} sent an unreadable answer{to}: {exc!r}"
            ) from exc
        except (AnswerTooLarge, AnswerTooSlow, RedirectRefused) as exc:
            raise ProviderUnavailable(f"Prometheus at {self.url}: {exc}") from exc
        except requests.Timeout as exc:
            raise ProviderUnavailable(
                f"Prometheus at {self.url} did not answer{asked} within {timeout_s:g}s"
            ) from exc
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            # Without client retries urllib3 may raise its own connection errors unwrapped.
            raise ProviderUnavailable(f"Prometheus at {self.url} unreachable: {exc}") from exc

    def is_online(self) -> bool:
        """Prometheus' own health endpoint answers 200 (no redirect is followed)."""
        try:
            answer = self._session.get(f"{self.url}/-/healthy", timeout=self.online_timeout_s)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
            return False
        return answer.status_code == 200


__all__ = [
    "MAX_RANGE_POINTS",
    "PrometheusProvider",
    "error_from_client",
    "samples_of",
    "status_of",
    "value_of",
]
