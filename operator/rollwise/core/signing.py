"""Signed records: the HMAC scheme both kinds' identity and override records use.

Every record carries ``"sig"``: the hex HMAC-SHA256, with the operator's record key, of
``"<subject>\\n<canonical JSON of the record without sig>"`` (:func:`canonical`), where the
subject is the object's ``metadata.uid``, so a record cannot be typed by hand nor copied to
another object; and ``"kid"``, the id of the key that signed it (:func:`key_id`). A
:class:`Keyring` signs with its new key and still verifies what its earlier keys signed.
:class:`Admission` is the webhook's answer to a request, for either kind.

Pure: no clock, no environment, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The prefix of every annotation the operator reads or writes.
PREFIX = "rollwise.dev/"
#: Longest request id and reason accepted (annotations share a 256 KiB budget per object).
MAX_ID = 128
MAX_REASON = 500

_SIG = "sig"
_KID = "kid"


class Keyring(bytes):
    """The record key and the earlier keys still accepted (a rotation's overlap).

    Its bytes are the key that signs, so it goes wherever a key does; ``previous`` holds the
    keys that verify only."""

    previous: tuple[bytes, ...]

    def __new__(cls, key: bytes, previous: Sequence[bytes] = ()) -> Keyring:
        ring = super().__new__(cls, key)
        ring.previous = tuple(bytes(k) for k in previous if bytes(k) != bytes(key))
        return ring


def key_id(key: bytes) -> str:
    """A short public id of ``key`` (recorded as ``kid``: which key signed, never the key)."""
    return hashlib.sha256(b"rollwise record key\n" + bytes(key)).hexdigest()[:12]


def _keys(key: bytes) -> tuple[bytes, ...]:
    return (bytes(key), *getattr(key, "previous", ()))


def canonical(record: Mapping[str, Any]) -> str:
    """The record's canonical JSON without its signature: what the signature covers."""
    body = {k: v for k, v in record.items() if k != _SIG}
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def signature(record: Mapping[str, Any], subject: str, key: bytes) -> str:
    """Hex HMAC-SHA256 of ``record`` bound to ``subject`` (the object's uid)."""
    message = f"{subject}\n{canonical(record)}".encode()
    return hmac.new(bytes(key), message, hashlib.sha256).hexdigest()


def sign(record: Mapping[str, Any], subject: str, key: bytes) -> dict[str, Any]:
    """``record`` with the id of the signing key (``kid``) and its ``sig``."""
    body = {k: v for k, v in record.items() if k != _SIG}
    body[_KID] = key_id(key)
    return {**body, _SIG: signature(body, subject, key)}


def verify(record: Mapping[str, Any], subject: str, key: bytes) -> bool:
    """Whether ``record`` carries a valid signature for ``subject``, by ``key`` or (for a
    :class:`Keyring`) one of the earlier keys it still accepts."""
    sig = record.get(_SIG)
    if not isinstance(sig, str) or not subject:
        return False
    kid = record.get(_KID)
    candidates = [k for k in _keys(key) if kid is None or key_id(k) == kid]
    return any(hmac.compare_digest(sig, signature(record, subject, k)) for k in candidates)


def create_subject(namespace: str, name: str) -> str:
    """What a record written on CREATE is bound to, before the API server assigns the uid."""
    return f"create:{namespace}/{name}"


@dataclass(frozen=True)
class Admission:
    """The webhook's answer: ``patch`` (annotation -> new value, None removes it) when
    allowed, else ``message`` says why the request is refused and what to do."""

    allowed: bool
    patch: Mapping[str, str | None] = field(default_factory=dict)
    message: str = ""
