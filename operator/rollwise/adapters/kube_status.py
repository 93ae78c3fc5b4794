"""What the API server's answers mean: every failure of a Kubernetes request mapped to the
``adapters.errors`` hierarchy (the table is in :mod:`rollwise.adapters.kube`), keeping the
server's own sentence and the object a 404 names. Used by ``KubeAPI`` and by the adapters that
still call the client's typed API classes (the operator's own objects, notification Secrets).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from rollwise.adapters.errors import (
    Conflict,
    Forbidden,
    Invalid,
    KubeError,
    NotFound,
    Unavailable,
)


def _status_body(exc: ApiException) -> tuple[dict[str, Any], str]:
    """The API server's Status body (empty when it sent none) and the body as text."""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    text = body if isinstance(body, str) else ""
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    return (parsed if isinstance(parsed, dict) else {}), text


def _status_message(exc: ApiException) -> str:
    """The ``message`` of the API server's Status body, else the HTTP reason."""
    parsed, text = _status_body(exc)
    if parsed.get("message"):
        return str(parsed["message"])
    if text and not parsed:
        return text.strip()[:500]
    return str(exc.reason or "no reason given")


def _answer(exc: ApiException) -> str:
    """The server's own sentence: ``Status.message``, else the body's first line."""
    parsed, text = _status_body(exc)
    if parsed.get("message"):
        return str(parsed["message"])
    text = text.strip()
    return text.splitlines()[0][:300] if text else str(exc.reason or "no reason given")


def _named(exc: ApiException) -> str:
    """The object a Status names (``details.name``): empty for a resource type not served."""
    details = _status_body(exc)[0].get("details")
    return str(details.get("name") or "") if isinstance(details, dict) else ""


def _retry_after(exc: ApiException) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def error_from_status(
    status: int | None,
    message: str,
    retry_after: float | None = None,
    *,
    answer: str = "",
    named: str = "",
) -> KubeError:
    """The ``KubeError`` subclass for an HTTP status of the API server."""
    if status == 404:
        return NotFound(message, status=status, answer=answer, named=named)
    if status == 409:
        return Conflict(message, status=status, answer=answer, named=named)
    if status in (401, 403):
        return Forbidden(message, status=status, answer=answer, named=named)
    if status in (400, 422):
        return Invalid(message, status=status, answer=answer, named=named)
    if status is not None and (status == 429 or status >= 500):
        return Unavailable(message, status=status, retry_after=retry_after, answer=answer)
    return KubeError(message, status=status, answer=answer, named=named)


def translate(exc: BaseException, what: str) -> KubeError | None:
    """The adapter error for a client exception raised while doing ``what`` (None: not a
    client failure, let it propagate as the bug it is)."""
    if isinstance(exc, ApiException):
        status = exc.status if isinstance(exc.status, int) and exc.status > 0 else None
        return error_from_status(
            status,
            f"{what}: {_status_message(exc)} ({status})",
            _retry_after(exc),
            answer=_answer(exc),
            named=_named(exc),
        )
    if unreachable(exc):
        return Unavailable(f"{what}: API server unreachable: {exc}")
    return None


def unreachable(exc: BaseException) -> bool:
    """Whether a client exception means the API server could not be reached (connection,
    TLS, timeout), as opposed to an answer of the server."""
    return isinstance(exc, urllib3.exceptions.HTTPError | OSError | TimeoutError)


@contextmanager
def kube_errors(what: str) -> Iterator[None]:
    """Translates client exceptions raised inside the block (``what`` names the operation)."""
    try:
        yield
    except Exception as exc:
        mapped = translate(exc, what)
        if mapped is None:
            raise
        raise mapped from exc


def discard(response: Any) -> None:
    """Reads and drops the body of a ``_preload_content=False`` answer. Unread, the answer
    keeps its pooled connection, which is then closed when the answer is collected: every such
    call would open a new TCP connection to the API server."""
    _ = getattr(response, "data", None)  # reading ``data`` consumes the body to its end
    release = getattr(response, "release_conn", None)
    if callable(release):
        release()


__all__ = ["discard", "error_from_status", "kube_errors", "translate", "unreachable"]
