"""Rego bundles fetched from a URL, pinned by digest: the policy snapshot ConfigMap may name
OPA bundles (``.tar.gz``, the format ``opa build`` writes) instead of, or besides, carrying
its modules inline.

A ``data`` key ending in ``.bundle`` holds a JSON object ``{"url": ..., "digest":
"sha256:<hex>"}``. The bundle is downloaded within a size and time bound, its SHA-256 must be
the digest (anything else is refused: the snapshot's digest, which ``spec.policyDigest``
binds, covers the reference and so, through the digest, the bundle's every byte), and its
contents join the snapshot's: each ``*.rego`` file is a module; each ``data.json`` is placed
at its directory's path under ``data`` (``a/b/data.json`` is ``data.a.b``), as OPA places it.
``.manifest``, ``.signatures.json`` and other files are ignored.

Bundles are content-addressed, so one fetched and checked is kept (a bounded cache by digest)
and never fetched again. The URL comes from the operator's own policy snapshot, which only
its administrators write: it is not a tenant's, and no evidence policy applies; redirects are
not followed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from rollwise.adapters.gates.fetch import Budget, http_get

#: The suffix of a snapshot key naming a bundle.
BUNDLE_SUFFIX = ".bundle"
#: A bundle's size bound (compressed, as downloaded) and the bound of its unpacked files.
MAX_BUNDLE_BYTES = 8 * 1024 * 1024
MAX_UNPACKED_BYTES = 32 * 1024 * 1024
#: Seconds one download may take.
BUNDLE_TIMEOUT = 30.0
#: Bundles kept after a check, by digest.
MAX_CACHED = 16


class BundleError(ValueError):
    """A bundle reference or a bundle that cannot be used (a verdict: Failed)."""


@dataclass(frozen=True)
class BundleRef:
    key: str
    url: str
    digest: str


@dataclass(frozen=True)
class Unpacked:
    """A bundle's modules (path, text) and data documents (name, JSON text of an object)."""

    modules: tuple[tuple[str, str], ...]
    data: tuple[tuple[str, str], ...]


def bundle_refs(data: Mapping[str, str]) -> list[BundleRef]:
    """The bundle references of a snapshot's ``data``, in key order."""
    refs = []
    for key in sorted(k for k in data if k.endswith(BUNDLE_SUFFIX)):
        try:
            raw: Any = json.loads(data[key])
        except ValueError:
            raise BundleError(
                f'{key} is not JSON ({{"url": ..., "digest": "sha256:..."}})'
            ) from None
        if not isinstance(raw, dict):
            raise BundleError(f'{key} is not a JSON object ({{"url": ..., "digest": ...}})')
        url, digest = raw.get("url"), raw.get("digest")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise BundleError(f"{key}: url must be an http(s) URL")
        if (
            not isinstance(digest, str)
            or not digest.startswith("sha256:")
            or len(digest) != 71
            or any(c not in "0123456789abcdef" for c in digest[7:])
        ):
            raise BundleError(f"{key}: digest must be sha256: and 64 lowercase hex digits")
        refs.append(BundleRef(key, url, digest))
    return refs


def unpack(blob: bytes, where: str) -> Unpacked:
    """The modules and data documents of an OPA bundle (a gzipped tar)."""
    modules: list[tuple[str, str]] = []
    data: list[tuple[str, str]] = []
    unpacked = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                path = member.name.lstrip("./").lstrip("/")
                name = path.rsplit("/", 1)[-1]
                if not (path.endswith(".rego") or name == "data.json"):
                    continue
                unpacked += member.size
                if unpacked > MAX_UNPACKED_BYTES:
                    raise BundleError(f"{where}: unpacks to more than {MAX_UNPACKED_BYTES} bytes")
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                text = handle.read().decode("utf-8")
                if path.endswith(".rego"):
                    modules.append((f"{where}:{path}", text))
                    continue
                try:
                    document: Any = json.loads(text)
                except ValueError as exc:
                    raise BundleError(f"{where}: {path} is not JSON: {exc}") from None
                for part in reversed([p for p in path.split("/")[:-1] if p]):
                    document = {part: document}
                if not isinstance(document, dict):
                    raise BundleError(f"{where}: the root {path} is not a JSON object")
                data.append((f"{where}:{path}", json.dumps(document)))
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, UnicodeDecodeError) as exc:
        raise BundleError(f"{where} is not a gzipped tar bundle: {exc}") from None
    return Unpacked(tuple(sorted(modules)), tuple(sorted(data)))


class BundleFetcher:
    """Downloads, checks and unpacks bundles; keeps the checked ones by digest."""

    def __init__(
        self,
        session: requests.Session | None = None,
        *,
        max_bytes: int = MAX_BUNDLE_BYTES,
        timeout: float = BUNDLE_TIMEOUT,
        get: Callable[[requests.Session, str, Budget], bytes] | None = None,
    ) -> None:
        self.session = session or requests.Session()
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._get = get or _download
        self._cache: OrderedDict[str, Unpacked] = OrderedDict()
        self._lock = threading.Lock()

    def fetch(self, ref: BundleRef) -> Unpacked:
        """The bundle ``ref`` names, checked against its digest. Raises ``BundleError`` for
        a bundle that is not the one pinned or cannot be unpacked, and
        ``rollwise.adapters.gates.fetch.EvidenceError`` when it cannot be read now."""
        with self._lock:
            found = self._cache.get(ref.digest)
            if found is not None:
                self._cache.move_to_end(ref.digest)
                return found
        budget = Budget(f"policy bundle {ref.key}", self.max_bytes, self.timeout)
        blob = self._get(self.session, ref.url, budget)
        actual = "sha256:" + hashlib.sha256(blob).hexdigest()
        if actual != ref.digest:
            raise BundleError(
                f"{ref.key}: the bundle at its url has digest {actual[:19]}, not the pinned "
                f"{ref.digest[:19]}"
            )
        unpacked = unpack(blob, ref.key)
        with self._lock:
            self._cache[ref.digest] = unpacked
            while len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)
        return unpacked


def _download(session: requests.Session, url: str, budget: Budget) -> bytes:
    parts: list[bytes] = []
    # The bytes as sent: the digest is over the stored bundle.
    http_get(session, url, parts.append, budget, decode=False)
    return b"".join(parts)


__all__ = [
    "BUNDLE_SUFFIX",
    "BundleError",
    "BundleFetcher",
    "BundleRef",
    "Unpacked",
    "bundle_refs",
    "unpack",
]
