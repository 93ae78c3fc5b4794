"""HTTP answers read with a size and a time bound, for clients built on ``requests``.

A client library that reads whole bodies (``prometheus_api_client`` does) gets a session whose
adapter streams each answer and stops as soon as it crosses ``max_bytes`` or its time budget:
a server that sends gigabytes, or trickles one byte a second, costs the operator a bounded
amount of memory and time. The answer then reaches the library as usual, body preloaded.

Raised from ``Session.request`` (both ``requests.RequestException`` subclasses, so that a
caller catching transport errors catches them too)::

    AnswerTooLarge      the body is larger than max_bytes (also from Content-Length, at once)
    AnswerTooSlow       the body did not arrive within the time budget
    RedirectRefused     the server answered with a redirect, which is never followed (the
                        operator talks to the host it was configured with, nowhere else)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter

#: Largest answer read by default (a Prometheus instant query answers a few KiB).
DEFAULT_MAX_BYTES = 4 * 1024 * 1024

#: Time budget of a body when the request names no read timeout.
DEFAULT_READ_SECONDS = 30.0

_CHUNK = 64 * 1024


class AnswerTooLarge(requests.RequestException):
    """The answer's body is larger than the bound."""


class AnswerTooSlow(requests.RequestException):
    """The answer's body did not arrive within its time budget."""


class RedirectRefused(requests.RequestException):
    """The server answered with a redirect; it is not followed."""


def _read_budget(timeout: Any) -> float:
    if isinstance(timeout, tuple):
        timeout = timeout[-1]
    if isinstance(timeout, int | float) and timeout > 0:
        return float(timeout)
    return DEFAULT_READ_SECONDS


class BoundedAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` that reads every body itself, within ``max_bytes`` and the request's
    read timeout taken as a budget for the whole body (not per socket read)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_bytes = max_bytes

    def send(  # noqa: PLR0917  # the signature requests defines
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        response = super().send(
            request, stream=True, timeout=timeout, verify=verify, cert=cert, proxies=proxies
        )
        if response.is_redirect:
            status = response.status_code
            response.close()
            raise RedirectRefused(f"the server answered {status} (a redirect, not followed)")
        deadline = time.monotonic() + _read_budget(timeout)
        try:
            declared = int(response.headers.get("Content-Length", "0") or 0)
        except ValueError:
            declared = 0
        if declared > self.max_bytes:
            response.close()
            raise AnswerTooLarge(
                f"the answer is {declared} bytes, more than the limit of {self.max_bytes}"
            )
        body = bytearray()
        try:
            for chunk in response.iter_content(_CHUNK):
                body += chunk
                if len(body) > self.max_bytes:
                    raise AnswerTooLarge(f"the answer is larger than {self.max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise AnswerTooSlow(
                        f"the answer did not arrive within {_read_budget(timeout):g}s"
                    )
        finally:
            response.close()
        # requests' own fields for a body it has read: the answer behaves as a preloaded one.
        response._content = bytes(body)
        setattr(response, "_content_consumed", True)  # noqa: B010  # not in the type stubs
        return response


def bounded_session(max_bytes: int = DEFAULT_MAX_BYTES) -> requests.Session:
    """A session whose http and https answers are read within ``max_bytes`` and their
    timeouts; it follows no redirects (a provider the operator was pointed at answers itself)."""
    session = requests.Session()
    adapter = BoundedAdapter(max_bytes)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


__all__ = [
    "DEFAULT_MAX_BYTES",
    "AnswerTooLarge",
    "AnswerTooSlow",
    "BoundedAdapter",
    "RedirectRefused",
    "bounded_session",
]
