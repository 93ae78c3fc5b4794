"""Identity records of a ModelRelease: who set the version, who approved, waived and revoked.

Users write REQUEST annotations (``rollwise.dev/approve``, ``rollwise.dev/revoke``,
``rollwise.dev/waive``, JSON objects, through ``kubectl rollwise ...``). The operator's mutating
admission webhook calls :func:`admit` with the identity the API server authenticated; it
returns either a refusal or the annotations patch that removes the requests and appends
RECORD annotations stamped with that identity:

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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from rollwise.core.durations import InvalidDuration, add_seconds, format_seconds, parse_seconds
from rollwise.core.modelrelease.observations import (
    GATE_ARTIFACT,
    GATE_FREEZE,
    GATE_POLICY,
    GATE_SBOM,
    Approval,
    GateResult,
    RevokeRequest,
    VoidedApproval,
)
from rollwise.core.modelrelease.spec import changed_fields
from rollwise.core.modelrelease.status import GateStatus
from rollwise.core.reasons import clip
from rollwise.core.signing import (
    MAX_ID,
    MAX_REASON,
    PREFIX,
    Admission,
    create_subject,
    sign,
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
WAIVABLE_GATES = (GATE_ARTIFACT, GATE_SBOM, GATE_POLICY, GATE_FREEZE)
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


class _Malformed(ValueError):
    """A record or request does not have the expected shape."""


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        raise _Malformed("is not valid JSON") from None


def _text(obj: Mapping[str, Any], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _Malformed(f"needs a non-empty string {name!r}")
    return value


def _time(obj: Mapping[str, Any], name: str) -> datetime:
    text = _text(obj, name)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _Malformed(f"{name!r} is not an RFC 3339 time") from None
    if value.tzinfo is None:
        raise _Malformed(f"{name!r} has no time zone")
    return value.astimezone(UTC)


def _object(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Malformed("is not a JSON object")
    return value


def _list(text: str) -> list[Any]:
    value = _loads(text)
    if not isinstance(value, list):
        raise _Malformed("is not a JSON list")
    return value


def _unsigned(where: str) -> str:
    return f"{where} ignored: missing or bad signature (not written by this operator's webhook)"


def _approval(item: Any) -> Approval:
    obj = _object(item)
    return Approval(
        role=_text(obj, "role"),
        user=_text(obj, "user"),
        at=_time(obj, "at"),
        version=_text(obj, "version"),
    )


def _waiver(item: Any) -> Waiver:
    obj = _object(item)
    return Waiver(
        gate=_text(obj, "gate"),
        reason=_text(obj, "reason"),
        user=_text(obj, "user"),
        at=_time(obj, "at"),
        expires_at=_time(obj, "expiresAt"),
    )


def _revocation(item: Any) -> RevokeRequest:
    obj = _object(item)
    return RevokeRequest(
        id=_text(obj, "id"),
        reason=_text(obj, "reason"),
        user=_text(obj, "user"),
        at=_time(obj, "at"),
    )


def _raw_revoke(text: str, now: datetime | None) -> RevokeRequest:
    obj = _object(_loads(text))
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
        items = _list(text)
    except _Malformed as exc:
        rejected.append(f"{name} ignored: {exc}")
        return []
    return [(f"{name}[{index}]", item) for index, item in enumerate(items)]


def _parsed(where: str, item: Any, parse: Callable[[Any], _T], rejected: list[str]) -> _T | None:
    try:
        return parse(item)
    except _Malformed as exc:
        rejected.append(f"{where} ignored: {exc}")
        return None


def _content_of(item: Any) -> Mapping[str, str] | None:
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
            item = _object(_loads(text))
            pending = namespace is not None and any(
                candidate and verify(item, create_subject(namespace, candidate), key)
                for candidate in (name, generate_name)
            )
            if not pending and trusted(VERSION_SET_BY, item):
                version_set_by = _text(item, "user")
        except _Malformed as exc:
            rejected.append(f"{VERSION_SET_BY} ignored: {exc}")

    approvals: list[Approval] = []
    voided: list[VoidedApproval] = []
    for where, item in _entries(annotations, APPROVALS, key, rejected):
        parsed = _parsed(where, item, _approval, rejected) if trusted(where, item) else None
        if parsed is None or content is None:
            continue
        given_for = _content_of(item)
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
            item = _object(_loads(text))
            if trusted(REVOCATION, item):
                revoke = _revocation(item)
        except _Malformed as exc:
            rejected.append(f"{REVOCATION} ignored: {exc}")
    raw = annotations.get(REVOKE)
    if revoke is None and raw is not None:
        try:
            revoke = _raw_revoke(raw, now)
        except _Malformed as exc:
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


class Refused(Exception):
    """A request the webhook refuses; the message is one sentence for the user."""


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _request(name: str, text: str) -> Mapping[str, Any]:
    try:
        obj = _object(_loads(text))
    except _Malformed as exc:
        raise Refused(f"{name} {exc}; use kubectl rollwise") from None
    request_id = obj.get("id")
    if not isinstance(request_id, str) or not request_id.strip() or len(request_id) > MAX_ID:
        raise Refused(f"{name} needs an 'id' string of 1-{MAX_ID} characters; use kubectl rollwise")
    return obj


def _field(name: str, obj: Mapping[str, Any], key: str, *, limit: int = MAX_REASON) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise Refused(f"{name} needs a non-empty {key!r}")
    if len(value) > limit:
        raise Refused(f"{name}: {key!r} is longer than {limit} characters")
    return value


def _signed_list(text: str | None, subject: str, key: bytes) -> tuple[list[Any], list[Any]]:
    """(every entry as stored, the entries with a valid signature)."""
    if text is None:
        return [], []
    try:
        items = _list(text)
    except _Malformed:
        return [], []
    return items, [i for i in items if isinstance(i, dict) and verify(i, subject, key)]


def _signed_one(text: str | None, subject: str, key: bytes) -> Mapping[str, Any] | None:
    if text is None:
        return None
    try:
        item = _object(_loads(text))
    except _Malformed:
        return None
    return item if verify(item, subject, key) else None


@dataclass
class _Pass:
    """One admission computation: the inputs plus the patch being built."""

    old: Mapping[str, str]
    new: Mapping[str, str]
    version: str
    uid: str
    user: str
    groups: frozenset[str]
    role_map: Mapping[str, tuple[str, ...]]
    key: bytes
    at: str
    now: datetime
    content: Mapping[str, str] | None = None
    patch: dict[str, str | None] = field(default_factory=dict)

    def current(self, name: str) -> str | None:
        return self.patch[name] if name in self.patch else self.new.get(name)

    def version_setter(self) -> str | None:
        record = _signed_one(self.current(VERSION_SET_BY), self.uid, self.key)
        user = record.get("user") if record is not None else None
        return user if isinstance(user, str) else None

    def approve(self, text: str) -> None:
        obj = _request(APPROVE, text)
        role = _field(APPROVE, obj, "role", limit=MAX_ID)
        version = _field(APPROVE, obj, "version", limit=MAX_ID)
        if version != self.version:
            raise Refused(
                f"this approval is for version {version} but the release is version "
                f"{self.version}; approve version {self.version} or the release of {version}"
            )
        allowed = set(self.role_map.get(role, ()))
        if not allowed & self.groups:
            mapped = (
                ", ".join(sorted(allowed)) or "no group (operator setting ROLLWISE_ROLE_GROUPS)"
            )
            raise Refused(
                f"{self.user} may not approve as {role}: the role is given to members of {mapped}"
            )
        self.four_eyes("approve it", "approve")
        if self.content is None:
            raise Refused(
                "the release's spec is not valid, so what an approval would cover is unknown; "
                "fix the spec, then approve"
            )
        stored, valid = _signed_list(self.current(APPROVALS), self.uid, self.key)
        for record in valid:
            if record.get("version") != self.version or _content_of(record) != self.content:
                # Given for other content: it does not count, and does not hold the role.
                continue
            if record.get("role") == role and record.get("user") == self.user:
                return  # the same approval again (a retried request): nothing to add
            if record.get("role") == role:
                raise Refused(f"{role} already approved by {record.get('user')}")
            if record.get("user") == self.user:
                raise Refused(
                    f"{self.user} already approved as {record.get('role')}; "
                    f"another person must approve as {role}"
                )
        entry = {
            "role": role,
            "user": self.user,
            "version": self.version,
            "at": self.at,
            "content": dict(self.content),
        }
        self.patch[APPROVALS] = _dumps([*stored, sign(entry, self.uid, self.key)])

    def four_eyes(self, what: str, whom: str) -> None:
        """Refuses the person who set the version, or anyone when that person is unknown."""
        setter = self.version_setter()
        if setter is None:
            raise Refused(
                "who set this version is not recorded (the release was created without the "
                "webhook), so four eyes cannot be checked; recreate the ModelRelease"
            )
        if setter == self.user:
            raise Refused(
                f"{self.user} set version {self.version} and may not {what}; "
                f"ask someone else to {whom}"
            )

    def waive(self, text: str) -> None:
        obj = _request(WAIVE, text)
        gate = _field(WAIVE, obj, "gate", limit=MAX_ID)
        if gate not in WAIVABLE_GATES:
            raise Refused(
                f"gate {gate!r} cannot be waived; waivable gates: {', '.join(WAIVABLE_GATES)}"
            )
        reason = _field(WAIVE, obj, "reason")
        self.four_eyes("waive its gates", "waive the gate")
        duration = _field(WAIVE, obj, "for", limit=MAX_ID)
        try:
            seconds = parse_seconds(duration)
        except InvalidDuration as exc:
            raise Refused(f"{WAIVE}: {exc}") from None
        if not 0 < seconds <= MAX_WAIVER_SECONDS:
            raise Refused(
                f"a waiver lasts more than 0s and at most {format_seconds(MAX_WAIVER_SECONDS)}, "
                f"got {duration}"
            )
        stored, _ = _signed_list(self.current(WAIVERS), self.uid, self.key)
        if len(stored) >= MAX_WAIVERS:
            raise Refused(f"this release already has {MAX_WAIVERS} waivers; release a new version")
        entry = {
            "gate": gate,
            "reason": reason,
            "user": self.user,
            "at": self.at,
            "expiresAt": format_time(add_seconds(self.now, seconds)),
        }
        self.patch[WAIVERS] = _dumps([*stored, sign(entry, self.uid, self.key)])

    def revoke(self, text: str) -> None:
        obj = _request(REVOKE, text)
        request_id = str(obj["id"])
        reason = _field(REVOKE, obj, "reason")
        existing = _signed_one(self.current(REVOCATION), self.uid, self.key)
        if existing is not None:
            if existing.get("id") == request_id:
                return  # the same revoke again (a retried request)
            raise Refused(
                f"already revoked by {existing.get('user')} at {existing.get('at')}: "
                f"{existing.get('reason')}"
            )
        entry = {"id": request_id, "reason": reason, "user": self.user, "at": self.at}
        self.patch[REVOCATION] = _dumps(sign(entry, self.uid, self.key))


def _refused(message: str) -> Admission:
    return Admission(allowed=False, message=message)


def _record_edit(name: str) -> str:
    return (
        f"{name} is written by the operator's webhook; use kubectl rollwise "
        + {
            VERSION_SET_BY: "(it records who created the release)",
            APPROVALS: "approve",
            REVOCATION: "revoke",
            WAIVERS: "waive",
        }[name]
    )


def admit(
    *,
    operation: str,
    old_annotations: Mapping[str, str] | None,
    new_annotations: Mapping[str, str] | None,
    spec_version: str,
    old_spec_version: str | None,
    uid: str,
    namespace: str,
    name: str,
    user: str,
    groups: Sequence[str],
    role_map: Mapping[str, tuple[str, ...]],
    key: bytes,
    now: datetime,
    content: Mapping[str, str] | None,
    generate_name: str = "",
) -> Admission:
    """The webhook's decision on one CREATE or UPDATE of a ModelRelease.

    ``old_*`` describe the stored object (None/empty on CREATE), ``new_*`` the object as the
    request would store it, ``uid`` its ``metadata.uid`` (empty on CREATE), ``user`` and
    ``groups`` the API server's ``userInfo``, ``content`` the ``release_content`` of the spec
    the request would store (None: not a usable spec), which an approval is bound to.
    Requests are handled only when this request wrote them (a request left unchanged from the
    stored object is someone else's and is left alone); records may not be changed by anyone
    but the webhook.
    """
    old = dict(old_annotations or {})
    new = dict(new_annotations or {})
    at = format_time(now)
    if operation == "CREATE":
        for record_name in RECORD_ANNOTATIONS:
            if record_name in new:
                return _refused(
                    f"{record_name} is written by the operator's webhook; remove it from the "
                    "manifest"
                )
        for request_name in REQUEST_ANNOTATIONS:
            if request_name in new:
                return _refused(
                    f"{request_name} applies to an existing ModelRelease; create it first, "
                    "then use kubectl rollwise"
                )
        entry = {"user": user, "version": spec_version, "at": at}
        subject = create_subject(namespace, name or generate_name)
        return Admission(allowed=True, patch={VERSION_SET_BY: _dumps(sign(entry, subject, key))})
    if operation != "UPDATE":
        return Admission(allowed=True)
    if not uid:
        return _refused("the ModelRelease has no metadata.uid; retry the request")

    for record_name in RECORD_ANNOTATIONS:
        if record_name in old and record_name not in new:
            return _refused(
                f"{record_name} is written by the operator's webhook and cannot be removed; "
                "keep it when replacing the ModelRelease"
            )
        if new.get(record_name) != old.get(record_name):
            return _refused(_record_edit(record_name))

    state = _Pass(
        old=old,
        new=new,
        version=spec_version,
        uid=uid,
        user=user,
        groups=frozenset(groups),
        role_map=role_map,
        key=key,
        at=at,
        now=now,
        content=content,
    )
    if old_spec_version is not None and old_spec_version != spec_version:
        entry = {"user": user, "version": spec_version, "at": at}
        state.patch[VERSION_SET_BY] = _dumps(sign(entry, uid, key))
    else:
        _rebind_version_set_by(state, namespace, name, generate_name)

    handlers = {APPROVE: state.approve, WAIVE: state.waive, REVOKE: state.revoke}
    for request_name in REQUEST_ANNOTATIONS:
        text = new.get(request_name)
        if text is None or text == old.get(request_name):
            continue
        try:
            handlers[request_name](text)
        except Refused as exc:
            return _refused(str(exc))
        state.patch[request_name] = None
    return Admission(allowed=True, patch=state.patch)


def _rebind_version_set_by(state: _Pass, namespace: str, name: str, generate_name: str) -> None:
    """Re-sign a ``version-set-by`` record written on CREATE for the uid it now has."""
    text = state.old.get(VERSION_SET_BY)
    if text is None or _signed_one(text, state.uid, state.key) is not None:
        return
    for candidate in dict.fromkeys((name, generate_name)):
        record = _signed_one(text, create_subject(namespace, candidate), state.key)
        if candidate and record is not None:
            state.patch[VERSION_SET_BY] = _dumps(sign(record, state.uid, state.key))
            return


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
    "admit",
    "apply_waivers",
    "read_records",
]
