"""Identity records of a ModelRelease: who set the version, who approved, waived and revoked.

Users write REQUEST annotations (``rollwise.dev/approve``, ``rollwise.dev/revoke``,
``rollwise.dev/waive``, JSON objects, through ``kubectl rollwise ...``). The operator's mutating
admission webhook calls :func:`rollwise.core.modelrelease.admission.admit` with the identity
the API server authenticated; it returns either a refusal or the annotations patch that
removes the requests and appends RECORD annotations stamped with that identity:

* ``rollwise.dev/version-set-by``: ``{"user", "version", "at"}``, written on CREATE (and again
  should ``spec.version`` ever change);
* ``rollwise.dev/approvals``: a JSON list of ``{"role", "user", "version", "at", "content"}``,
  where ``content`` is :func:`rollwise.core.modelrelease.release.release_content` of the spec the
  approver saw (the hash of each part that decides what runs);
* ``rollwise.dev/revocation``: ``{"id", "reason", "user", "at"}``;
* ``rollwise.dev/waivers``: a JSON list of ``{"gate", "reason", "user", "at", "expiresAt"}``.

Every record carries ``"sig"``: the hex HMAC-SHA256, with the operator's record key, of
``"<uid>\\n<canonical JSON of the record without sig>"`` (:func:`canonical`), where ``uid`` is
the ModelRelease's ``metadata.uid``, so a record cannot be typed by hand nor copied to another
object; and ``"kid"``, the id of the key that signed it (:func:`key_id`), inside what is signed.
Keys rotate with an overlap: a :class:`Keyring` signs with its new key and still verifies what
its earlier keys signed; once an earlier key is dropped, its records no longer verify (an
approval stops counting, an override list holds: nothing fails open).

On CREATE the API server has not assigned the uid yet: the ``version-set-by`` record is then
signed for ``"create:<namespace>/<name>"`` (:func:`create_subject`) and re-signed for the
uid by the next UPDATE the webhook sees (the operator's own finalizer write comes seconds
later); :func:`read_records` only trusts uid-bound records.

:func:`read_records` is what the reconcile uses: signed records become
:class:`~rollwise.core.modelrelease.release.Approval`, :class:`Waiver` and
:class:`~rollwise.core.modelrelease.release.RevokeRequest` observations; anything unsigned,
forged or malformed is ignored and named in ``Records.rejected``. An approval counts only for the
content it was given for: one given before the spec changed is returned as voided
(:class:`~rollwise.core.modelrelease.release.VoidedApproval`, naming the changed fields). Four eyes
hold for waivers as for approvals: the person who set the version can neither approve it nor
waive its gates. A raw ``rollwise.dev/revoke`` request
(no webhook installed) still counts as a revoke by an unknown user: revoking is always safe.
:func:`apply_waivers` turns the gate results of waived gates into Waived results.

Pure: no clock (``now`` is an argument), no environment, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from rollwise.core.modelrelease.observations import (
    GATE_ARTIFACT,
    GATE_ATTESTATION,
    GATE_FREEZE,
    GATE_MODEL_CARD,
    GATE_POLICY,
    GATE_REVALIDATE,
    GATE_SBOM,
    GATE_SECURITY,
    GATE_SIGNATURE,
    Approval,
    GateResult,
    RevokeRequest,
    VoidedApproval,
)
from rollwise.core.modelrelease.spec import changed_fields
from rollwise.core.modelrelease.status import GateStatus
from rollwise.core.reasons import clip
from rollwise.core.signing import (
    PREFIX,
    create_subject,
    verify,
)
from rollwise.core.status_model import format_time

#: Request annotations a user writes.
APPROVE = PREFIX + "approve"
REVOKE = PREFIX + "revoke"
WAIVE = PREFIX + "waive"
REQUEST_ANNOTATIONS = (APPROVE, WAIVE, REVOKE)
#: Record annotations only the webhook writes.
VERSION_SET_BY = PREFIX + "version-set-by"
APPROVALS = PREFIX + "approvals"
REVOCATION = PREFIX + "revocation"
WAIVERS = PREFIX + "waivers"
RECORD_ANNOTATIONS = (VERSION_SET_BY, APPROVALS, REVOCATION, WAIVERS)

#: The gates a waiver may cover. Approvals cannot be waived: that would undo four eyes.
WAIVABLE_GATES = (
    GATE_ARTIFACT,
    GATE_SBOM,
    GATE_POLICY,
    GATE_MODEL_CARD,
    GATE_SECURITY,
    GATE_SIGNATURE,
    GATE_ATTESTATION,
    GATE_REVALIDATE,
    GATE_FREEZE,
)
#: Longest waiver: a waiver is a stopgap, not a new policy.
MAX_WAIVER_SECONDS = 7 * 24 * 3600.0
#: Most waiver records kept on one release (each needs a new request, so this is generous).
MAX_WAIVERS = 50

_T = TypeVar("_T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# Reading records


@dataclass(frozen=True)
class Waiver:
    """A gate waived by ``user`` until ``expires_at``, as the webhook recorded it."""

    gate: str
    reason: str
    user: str
    at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Records:
    """The signed records of one ModelRelease.

    ``revoke``: the signed revocation record, else an unsigned raw ``rollwise.dev/revoke``
    request (``user`` None). ``rejected``: one message per record ignored. ``voided``: signed
    approvals given for another content than the spec's current one.
    """

    approvals: tuple[Approval, ...] = ()
    version_set_by: str | None = None
    revoke: RevokeRequest | None = None
    waivers: tuple[Waiver, ...] = ()
    rejected: tuple[str, ...] = ()
    voided: tuple[VoidedApproval, ...] = ()


class Malformed(ValueError):
    """A record or request does not have the expected shape."""


def loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        raise Malformed("is not valid JSON") from None


def _text(obj: Mapping[str, Any], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value.strip():
        raise Malformed(f"needs a non-empty string {name!r}")
    return value


def _time(obj: Mapping[str, Any], name: str) -> datetime:
    text = _text(obj, name)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise Malformed(f"{name!r} is not an RFC 3339 time") from None
    if value.tzinfo is None:
        raise Malformed(f"{name!r} has no time zone")
    return value.astimezone(UTC)


def as_object(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise Malformed("is not a JSON object")
    return value


def as_list(text: str) -> list[Any]:
    value = loads(text)
    if not isinstance(value, list):
        raise Malformed("is not a JSON list")
    return value


def _unsigned(where: str) -> str:
    return f"{where} ignored: missing or bad signature (not written by this operator's webhook)"


def _approval(item: Any) -> Approval:
    obj = as_object(item)
    return Approval(
        role=_text(obj, "role"),
        user=_text(obj, "user"),
        at=_time(obj, "at"),
        version=_text(obj, "version"),
    )


def _waiver(item: Any) -> Waiver:
    obj = as_object(item)
    return Waiver(
        gate=_text(obj, "gate"),
        reason=_text(obj, "reason"),
        user=_text(obj, "user"),
        at=_time(obj, "at"),
        expires_at=_time(obj, "expiresAt"),
    )


def _revocation(item: Any) -> RevokeRequest:
    obj = as_object(item)
    return RevokeRequest(
        id=_text(obj, "id"),
        reason=_text(obj, "reason"),
        user=_text(obj, "user"),
        at=_time(obj, "at"),
    )


def _raw_revoke(text: str, now: datetime | None) -> RevokeRequest:
    obj = as_object(loads(text))
    reason = obj.get("reason")
    return RevokeRequest(
        id=_text(obj, "id"),
        reason=reason if isinstance(reason, str) else "",
        user=None,
        at=now if now is not None else _EPOCH,
    )


def _entries(
    annotations: Mapping[str, str], name: str, key: bytes | None, rejected: list[str]
) -> list[tuple[str, Any]]:
    """(where, entry) for each entry of the record list ``name``."""
    text = annotations.get(name)
    if text is None or key is None:
        return []
    try:
        items = as_list(text)
    except Malformed as exc:
        rejected.append(f"{name} ignored: {exc}")
        return []
    return [(f"{name}[{index}]", item) for index, item in enumerate(items)]


def _parsed(where: str, item: Any, parse: Callable[[Any], _T], rejected: list[str]) -> _T | None:
    try:
        return parse(item)
    except Malformed as exc:
        rejected.append(f"{where} ignored: {exc}")
        return None


def content_of(item: Any) -> Mapping[str, str] | None:
    content = item.get("content") if isinstance(item, dict) else None
    if not isinstance(content, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in content.items()
    ):
        return None
    return content


def read_records(
    annotations: Mapping[str, str],
    uid: str,
    key: bytes | None,
    *,
    content: Mapping[str, str] | None,
    now: datetime | None = None,
    namespace: str | None = None,
    name: str | None = None,
    generate_name: str | None = None,
) -> Records:
    """The records on a ModelRelease's ``annotations`` whose signatures are valid for ``uid``.

    ``key`` None (no record key configured) trusts no record. ``content``: the
    ``release_content`` of the spec now; an approval counts only when it was given for exactly
    that (None, an unusable spec: no approval counts). ``now`` is the time given to an
    unsigned raw revoke request (it has none of its own; default the Unix epoch). With the
    object's ``namespace`` and ``name`` (and ``generate_name``), a ``version-set-by`` record
    the webhook signed on CREATE and that no UPDATE has bound to the uid yet is recognised:
    it does not count yet, but it is not reported as rejected either.
    """
    rejected: list[str] = []
    present = [name for name in RECORD_ANNOTATIONS if name in annotations]
    if key is None:
        rejected += [f"{name} ignored: no record key configured" for name in present]

    def trusted(where: str, item: Any) -> bool:
        if key is None:
            return False
        if isinstance(item, dict) and verify(item, uid, key):
            return True
        rejected.append(_unsigned(where))
        return False

    version_set_by: str | None = None
    text = annotations.get(VERSION_SET_BY)
    if text is not None and key is not None:
        try:
            item = as_object(loads(text))
            pending = namespace is not None and any(
                candidate and verify(item, create_subject(namespace, candidate), key)
                for candidate in (name, generate_name)
            )
            if not pending and trusted(VERSION_SET_BY, item):
                version_set_by = _text(item, "user")
        except Malformed as exc:
            rejected.append(f"{VERSION_SET_BY} ignored: {exc}")

    approvals: list[Approval] = []
    voided: list[VoidedApproval] = []
    for where, item in _entries(annotations, APPROVALS, key, rejected):
        parsed = _parsed(where, item, _approval, rejected) if trusted(where, item) else None
        if parsed is None or content is None:
            continue
        given_for = content_of(item)
        if given_for is None:
            voided.append(VoidedApproval(parsed.role, parsed.user))
        elif changed := changed_fields(given_for, content):
            voided.append(VoidedApproval(parsed.role, parsed.user, changed))
        else:
            approvals.append(parsed)
    waivers: list[Waiver] = []
    for where, item in _entries(annotations, WAIVERS, key, rejected):
        waiver = _parsed(where, item, _waiver, rejected) if trusted(where, item) else None
        if waiver is None:
            continue
        if version_set_by is not None and waiver.user == version_set_by:
            rejected.append(
                f"{where} ignored: {waiver.user} set the version and may not waive its gates "
                "(four eyes)"
            )
            continue
        waivers.append(waiver)

    revoke: RevokeRequest | None = None
    text = annotations.get(REVOCATION)
    if text is not None and key is not None:
        try:
            item = as_object(loads(text))
            if trusted(REVOCATION, item):
                revoke = _revocation(item)
        except Malformed as exc:
            rejected.append(f"{REVOCATION} ignored: {exc}")
    raw = annotations.get(REVOKE)
    if revoke is None and raw is not None:
        try:
            revoke = _raw_revoke(raw, now)
        except Malformed as exc:
            rejected.append(f"{REVOKE} request ignored: {exc}")

    return Records(
        approvals=tuple(approvals),
        version_set_by=version_set_by,
        revoke=revoke,
        waivers=tuple(waivers),
        rejected=tuple(rejected),
        voided=tuple(voided),
    )


def apply_waivers(
    results: Sequence[GateResult], waivers: Sequence[Waiver], now: datetime
) -> tuple[GateResult, ...]:
    """``results`` with the latest waiver of each gate applied to a gate that is not Passed.

    A waived result is Waived with the gate's own status as ``underlying`` and the waiver's
    expiry; the core counts it as its own result again once expired (``now`` only words the
    message).
    """
    latest: dict[str, Waiver] = {}
    for waiver in sorted(waivers, key=lambda w: (w.at, w.expires_at)):
        if waiver.gate in WAIVABLE_GATES:
            latest[waiver.gate] = waiver
    out: list[GateResult] = []
    for result in results:
        found = latest.get(result.name)
        if found is None or result.status is GateStatus.PASSED:
            out.append(result)
            continue
        waiver = found
        underlying = result.underlying if result.status is GateStatus.WAIVED else result.status
        until = format_time(waiver.expires_at)
        if now < waiver.expires_at:
            head = f"waived by {waiver.user} until {until}: {waiver.reason}"
        else:
            head = f"waiver by {waiver.user} expired at {until} ({waiver.reason})"
        own = f"{underlying.value if underlying else 'Pending'}"
        message = f"{head}; gate's own result: {own}" + (
            f": {result.message}" if result.message else ""
        )
        out.append(
            GateResult(
                name=result.name,
                status=GateStatus.WAIVED,
                message=clip(message),
                checked_at=result.checked_at,
                waiver_expires_at=waiver.expires_at,
                underlying=underlying or GateStatus.PENDING,
            )
        )
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Admission


__all__ = [
    "APPROVALS",
    "APPROVE",
    "MAX_WAIVER_SECONDS",
    "RECORD_ANNOTATIONS",
    "REQUEST_ANNOTATIONS",
    "REVOCATION",
    "REVOKE",
    "VERSION_SET_BY",
    "WAIVABLE_GATES",
    "WAIVE",
    "WAIVERS",
    "Records",
    "Waiver",
    "apply_waivers",
    "read_records",
]
