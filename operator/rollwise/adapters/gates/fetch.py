"""Bounded reads of gate evidence: HTTP(S) downloads and local files, streamed in chunks.

Every read has a size bound and a time bound. A body larger than the bound raises
:class:`EvidenceTooLarge` as soon as the bound is crossed (or at once, from a
``Content-Length`` header), without reading the rest. A read that takes longer than its time
budget (a server that does not answer, or one that trickles bytes) raises
:class:`EvidenceUnavailable`, like a refused connection or an HTTP error status: the evidence
could not be read now, which is no verdict on the evidence itself.

Redirects are followed only to URLs the caller's ``check`` allows (the operator's evidence
policy, :mod:`rollwise.adapters.gates.access`), at most :data:`MAX_REDIRECTS` of them; without a
``check`` none is followed. Messages never carry what a server answered beyond its status code
and that code's standard phrase: a body (or a server's own reason phrase) could be a page of an
internal service, and messages end up in status and events.

Exceptions (all :class:`rollwise.adapters.errors.AdapterError`)::

    EvidenceError          False  the evidence could not be read (base)
    ├── EvidenceTooLarge   False  larger than the configured bound
    ├── EvidenceForbidden  False  the evidence policy does not allow reading it
    └── EvidenceUnavailable True  unreachable, HTTP error status, timeout, I/O error
"""

from __future__ import annotations

import time
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urljoin

import requests
import urllib3

from rollwise.adapters.errors import AdapterError

#: Bytes read per chunk.
CHUNK_BYTES = 1024 * 1024

#: Seconds to wait for a TCP connection, within the overall time budget.
CONNECT_TIMEOUT = 10.0

#: Redirects followed for one read (each one checked against the evidence policy).
MAX_REDIRECTS = 5

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class EvidenceError(AdapterError):
    """Gate evidence (an artifact, an SBOM) could not be read."""


class EvidenceTooLarge(EvidenceError):
    """The evidence is larger than the configured bound."""


class EvidenceForbidden(EvidenceError):
    """The operator's evidence policy does not allow reading this evidence."""


class EvidenceUnavailable(EvidenceError):
    """The evidence could not be read now: unreachable, an HTTP error status, a timeout."""

    retryable = True


Sink = Callable[[bytes], None]
#: Raises ``EvidenceForbidden`` for a URL the evidence may not be read from.
URLCheck = Callable[[str], None]


def status_text(code: int) -> str:
    """``HTTP 404 Not Found``: the status code and its standard phrase, never the server's."""
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = ""
    return f"HTTP {code} {phrase}".rstrip()


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def _too_large(what: str, max_bytes: int) -> EvidenceTooLarge:
    return EvidenceTooLarge(f"{what} is larger than the limit of {_size(max_bytes)}")


class Budget:
    """A size and time budget shared by the reads of one piece of evidence (a directory's
    files share one)."""

    def __init__(self, what: str, max_bytes: int, timeout: float) -> None:
        self.what = what
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.read = 0

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def take(self, count: int) -> None:
        """Counts ``count`` more bytes read; raises when a bound is crossed."""
        self.read += count
        if self.read > self.max_bytes:
            raise _too_large(self.what, self.max_bytes)
        if self.remaining() < 0:
            raise EvidenceUnavailable(
                f"{self.what}: reading took longer than {self.timeout:g}s ({_size(self.read)} read)"
            )


def read_file(path: Path, sink: Sink, budget: Budget) -> None:
    """Streams the file at ``path`` into ``sink`` within ``budget``."""
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                budget.take(len(chunk))
                sink(chunk)
    except OSError as exc:
        raise EvidenceUnavailable(f"{budget.what}: cannot read {path}: {exc}") from exc


def http_get(
    session: requests.Session,
    url: str,
    sink: Sink,
    budget: Budget,
    *,
    decode: bool,
    headers: dict[str, str] | None = None,
    check: URLCheck | None = None,
) -> None:
    """Streams the body of ``GET url`` into ``sink`` within ``budget``. ``decode`` False
    hands over the bytes as sent (a digest is over the stored object, not a decompressed
    rendering of it). A redirect is followed only when ``check`` allows its target."""
    what = budget.what
    request_headers = dict(headers or {})
    if not decode:
        request_headers["Accept-Encoding"] = "identity"
    current = url
    try:
        for _ in range(MAX_REDIRECTS + 1):
            read_timeout = max(budget.remaining(), 0.001)
            with session.get(
                current,
                stream=True,
                headers=request_headers,
                timeout=(min(CONNECT_TIMEOUT, read_timeout), read_timeout),
                allow_redirects=False,
            ) as response:
                if response.status_code in _REDIRECTS:
                    target = response.headers.get("Location")
                    if not target or check is None:
                        raise EvidenceUnavailable(
                            f"{what}: {status_text(response.status_code)}: redirect not followed"
                        )
                    current = urljoin(current, target)
                    check(current)
                    continue
                if response.status_code >= 400:
                    raise EvidenceUnavailable(f"{what}: {status_text(response.status_code)}")
                length = response.headers.get("Content-Length", "")
                if length.isdigit() and int(length) > budget.max_bytes:
                    raise _too_large(what, budget.max_bytes)
                # read1 returns what has arrived (up to a chunk), so the time budget is checked
                # while a slow server trickles bytes, not only after a full chunk.
                while chunk := response.raw.read1(CHUNK_BYTES, decode_content=decode):
                    budget.take(len(chunk))
                    sink(chunk)
                return
    except (requests.Timeout, urllib3.exceptions.TimeoutError) as exc:
        raise EvidenceUnavailable(f"{what}: no answer within {budget.timeout:g}s") from exc
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        # urllib3's own errors (ProtocolError...) come straight from ``raw.read1``.
        raise EvidenceUnavailable(f"{what}: unreachable: {exc}") from exc
    raise EvidenceUnavailable(f"{what}: more than {MAX_REDIRECTS} redirects")


def http_get_bytes(
    session: requests.Session,
    url: str,
    budget: Budget,
    headers: dict[str, str] | None = None,
    check: URLCheck | None = None,
) -> bytes:
    """The (decoded) body of ``GET url`` within ``budget``."""
    parts: list[bytes] = []
    http_get(session, url, parts.append, budget, decode=True, headers=headers, check=check)
    return b"".join(parts)


__all__ = [
    "CHUNK_BYTES",
    "MAX_REDIRECTS",
    "Budget",
    "EvidenceError",
    "EvidenceForbidden",
    "EvidenceTooLarge",
    "EvidenceUnavailable",
    "http_get",
    "http_get_bytes",
    "read_file",
    "status_text",
]
