"""Web metric provider: one HTTP request to an endpoint that answers JSON → one float.

For metric backends other than Prometheus (Datadog, New Relic, an SLO service, an ML
evaluation service): a small endpoint that answers JSON is enough. The endpoint's base URL and
its headers (API keys) are the operator's settings (``webProviders``), never the spec's: a
spec names the provider and adds a ``path`` (and, with POST, a ``body``) to the base URL, and a
``jsonPath`` that selects the value. The "query" this provider receives is the canonical JSON
that :func:`rollwise.core.analysis.web_query` renders.

Answers, with the same meaning as Prometheus' (``adapters.metrics.base``):

- one JSONPath match that is a number (or a string holding one) → its value (NaN and ±Inf as
  they are: the core makes them INCONCLUSIVE); ``null`` → None (no data);
- no match → None (no data, INCONCLUSIVE);
- several matches, or a value that is not a number → ``QueryError``;
- 4xx other than 429 → ``QueryError`` naming the status (the request is wrong);
- 429, 5xx, timeouts, connection failures, an answer larger than the bound or not JSON →
  ``ProviderUnavailable`` (retryable).

No answer body is repeated in an error: errors reach status and events, which tenants read.
A path cannot leave the provider's base URL (no ``..``, no host, no user info), and redirects
are not followed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from rollwise.adapters.bounded_http import (
    DEFAULT_MAX_BYTES,
    AnswerTooLarge,
    AnswerTooSlow,
    RedirectRefused,
    bounded_session,
)
from rollwise.adapters.errors import ProviderUnavailable, QueryError
from rollwise.core.analysis import compile_json_path


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise QueryError(f"the jsonPath selected a boolean ({value}), not a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise QueryError("the jsonPath selected a string that is not a number") from None
    raise QueryError(f"the jsonPath selected a {type(value).__name__}, not a number")


def value_at(document: Any, json_path: str) -> float | None:
    """The one number ``json_path`` selects in ``document`` (pure); None when it selects
    nothing or ``null``."""
    try:
        matches = [match.value for match in compile_json_path(json_path).find(document)]
    except ValueError as exc:
        raise QueryError(f"jsonPath {json_path!r} does not parse: {exc}") from exc
    except Exception as exc:  # evaluating a filter on odd data raises the library's own errors
        raise QueryError(f"jsonPath {json_path!r} could not be evaluated") from exc
    if not matches:
        return None
    if len(matches) > 1:
        raise QueryError(
            f"jsonPath {json_path!r} selected {len(matches)} values; it must select one"
        )
    if matches[0] is None:
        return None
    return _number(matches[0])


def join_path(base: str, path: str) -> str:
    """``path`` appended to ``base``; refuses a path that would leave the base URL."""
    if path and not path.startswith(("/", "?")):
        raise QueryError("a web provider's path must start with '/' or '?'")
    if ".." in path.split("?", 1)[0] or "\\" in path or "@" in path.split("?", 1)[0]:
        raise QueryError("a web provider's path may not contain '..', '@' or '\\'")
    url = base.rstrip("/") + path if path.startswith("/") else base + path
    joined, origin = urlsplit(url), urlsplit(base)
    if (joined.scheme, joined.netloc) != (origin.scheme, origin.netloc):
        raise QueryError("a web provider's path may not change its host")
    return url


class WebMetricProvider:
    """Requests to one endpoint (``base_url``) with the operator's ``headers``."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        online_timeout_s: float = 5.0,
    ) -> None:
        self.base_url = base_url
        self.headers = dict(headers or {})
        self.online_timeout_s = online_timeout_s
        self._session = bounded_session(max_bytes)

    def close(self) -> None:
        self._session.close()

    def query(self, query: str, timeout_s: float) -> float | None:
        if not timeout_s > 0 or not math.isfinite(timeout_s):
            raise ValueError(f"timeout_s must be a positive number, got {timeout_s}")
        try:
            request = json.loads(query)
            method, path = str(request["method"]), str(request["path"])
            body, json_path = request.get("body"), str(request["jsonPath"])
        except (ValueError, KeyError, TypeError) as exc:
            raise QueryError("not a web provider request") from exc
        url = join_path(self.base_url, path)
        headers = {"Accept": "application/json", **self.headers}
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
        try:
            answer = self._session.request(
                method,
                url,
                data=body.encode("utf-8") if isinstance(body, str) else None,
                headers=headers,
                timeout=timeout_s,
            )
        except RedirectRefused as exc:
            raise QueryError(f"web provider at {self.base_url}: {exc}") from exc
        except (AnswerTooLarge, AnswerTooSlow) as exc:
            raise ProviderUnavailable(f"web provider at {self.base_url}: {exc}") from exc
        except requests.Timeout as exc:
            raise ProviderUnavailable(
                f"web provider at {self.base_url} did not answer within {timeout_s:g}s"
            ) from exc
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise ProviderUnavailable(f"web provider at {self.base_url} unreachable") from exc
        return self._value(answer, json_path)

    def _value(self, answer: requests.Response, json_path: str) -> float | None:
        status = answer.status_code
        if status == 429 or status >= 500:
            raise ProviderUnavailable(f"web provider at {self.base_url} answered {status}")
        if status >= 400:
            raise QueryError(f"web provider at {self.base_url} refused the request ({status})")
        try:
            document = json.loads(answer.content)
        except ValueError as exc:
            raise ProviderUnavailable(
                f"web provider at {self.base_url} sent an answer that is not JSON"
            ) from exc
        return value_at(document, json_path)

    def parse(self, query: str, timeout_s: float) -> None:
        """Nothing to ask the endpoint: a web provider's jsonPath is checked with the spec."""

    def is_online(self) -> bool:
        try:
            answer = self._session.get(self.base_url, timeout=self.online_timeout_s)
        except RedirectRefused:
            return True  # it answered
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
            return False
        return answer.status_code < 500


__all__ = ["WebMetricProvider", "join_path", "value_at"]
