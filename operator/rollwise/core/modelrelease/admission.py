"""The admission webhook's decision on a ModelRelease write (:func:`admit`).

Given the identity the API server authenticated, it either refuses the write (one sentence
saying why and what to do) or returns the annotations patch that removes the request
annotations (``rollwise.dev/approve``, ``revoke``, ``waive``) and appends the signed record
annotations (:mod:`rollwise.core.modelrelease.governance` describes the records and reads
them back).

Pure: no clock (``now`` is an argument), no environment, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rollwise.core.durations import InvalidDuration, add_seconds, format_seconds, parse_seconds
from rollwise.core.modelrelease.governance import (
    APPROVALS,
    APPROVE,
    MAX_WAIVER_SECONDS,
    MAX_WAIVERS,
    RECORD_ANNOTATIONS,
    REQUEST_ANNOTATIONS,
    REVOCATION,
    REVOKE,
    VERSION_SET_BY,
    WAIVABLE_GATES,
    WAIVE,
    WAIVERS,
    Malformed,
    as_list,
    as_object,
    content_of,
    loads,
)
from rollwise.core.signing import (
    MAX_ID,
    MAX_REASON,
    Admission,
    create_subject,
    sign,
    verify,
)
from rollwise.core.status_model import format_time


class Refused(Exception):
    """A request the webhook refuses; the message is one sentence for the user."""


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _request(name: str, text: str) -> Mapping[str, Any]:
    try:
        obj = as_object(loads(text))
    except Malformed as exc:
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
        items = as_list(text)
    except Malformed:
        return [], []
    return items, [i for i in items if isinstance(i, dict) and verify(i, subject, key)]


def _signed_one(text: str | None, subject: str, key: bytes) -> Mapping[str, Any] | None:
    if text is None:
        return None
    try:
        item = as_object(loads(text))
    except Malformed:
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
            if record.get("version") != self.version or content_of(record) != self.content:
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


__all__ = ["Refused", "admit"]
