"""Overrides: a person's recorded decision to promote, hold or roll back a Rollout or a
ModelRelease, and the second person's confirmation a risky promote needs.

Requests and records follow the identity-record scheme of
:mod:`rollwise.core.modelrelease.governance` (the webhook signs each record with the operator's
record key, bound to the object's uid):
* request ``rollwise.dev/override``: ``{"id", "decision", "reason"}`` (decision ``promote``,
  ``hold`` or ``rollback``) appends to the record list ``rollwise.dev/overrides`` an entry
  ``{"id", "decision", "reason", "user", "at", "target", "sig"}``. ``target`` is what the
  override applies to: the ModelRelease's ``spec.version``, or the Rollout's revision (the
  hash of its ``spec.template``, :func:`rollwise.core.observations.revision_of`).
* request ``rollwise.dev/confirm-override``: ``{"id": "<override id>"}`` adds
  ``{"confirmedBy", "confirmedAt"}`` to that entry (signed again). Refused for the override's
  own author (a second, distinct person confirms), for an unknown id, for an override that is
  not a promote or whose target is no longer current, and when someone else confirmed it
  already (the same person confirming again is a harmless retry).

The list is signed as a whole, with a counter (format version 2): the annotation holds
``{"version": 2, "seq": N, "entries": [...], "sig"}``, ``sig`` covering the uid, the counter and
every entry in order, and each entry carries ``"n"``, the counter of the write that added it.
Entries cannot be dropped or reordered without breaking the list's signature, and a reader that
remembers the highest counter it saw (a ModelRelease keeps it in ``status.overridesSeq``)
recognises an older list put back. A list that does not verify fails closed:
:func:`read_overrides` returns an unverified hold in its place (the object holds until someone
records a new override through the webhook, which rebuilds the list from the entries that still
verify one by one). Lists of the first format (a JSON array of signed entries) are read as
before, in their order, as long as no signed list was ever seen; the webhook rewrites them in
the signed format on the next override it records.

The newest override for the current target (highest ``n``) is the one in effect
(:func:`in_effect`); overrides of another target (an older revision or version) are history.
``hold`` and ``rollback`` act at once; ``promote`` past a failed or inconclusive analysis, or
past a failed gate, acts only once confirmed.
:func:`rollwise.core.rollout.overrides.rollout_effect` turns the override in effect into what
the Rollout core observes (a hold, manual requests, a waiting message);
:func:`rollwise.core.modelrelease.overrides.release_override` into what the ModelRelease core
observes.

Pure: no clock (``now`` is an argument), no environment, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from rollwise.core.observations import OVERRIDE_HANDLED_KEY, RequestKind
from rollwise.core.signing import MAX_ID, MAX_REASON, PREFIX, Admission, sign, signature, verify
from rollwise.core.status_model import format_time

#: Request annotations a user writes.
OVERRIDE = PREFIX + "override"
CONFIRM_OVERRIDE = PREFIX + "confirm-override"
OVERRIDE_REQUESTS = (OVERRIDE, CONFIRM_OVERRIDE)
#: The record list only the webhook writes.
OVERRIDES = PREFIX + "overrides"
#: Most override records kept on one object: the oldest go first (only the newest for the
#: current target ever counts, and annotations share a 256 KiB budget per object).
MAX_OVERRIDES = 20
#: ``status.handledRequests`` key of the Rollout override whose requests were applied.
HANDLED_KEY = OVERRIDE_HANDLED_KEY
#: The format of the signed override list.
LIST_VERSION = 2
#: The id and user of the hold that stands in for a list that does not verify.
UNVERIFIED_ID = "unverified-records"
UNVERIFIED_USER = "(unknown)"

ROLLOUT = "rollout"
MODELRELEASE = "modelrelease"


class OverrideDecision(StrEnum):
    """What an override decides."""

    PROMOTE = "promote"
    HOLD = "hold"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class Override:
    """One override record with a valid signature. ``confirmed_by`` is set once a second
    person confirmed it (never the author: such a confirmation is not counted)."""

    id: str
    decision: OverrideDecision
    reason: str
    user: str
    at: datetime
    target: str
    confirmed_by: str | None = None
    confirmed_at: datetime | None = None
    #: The list counter of the write that recorded it: what orders overrides.
    n: int = 0
    #: The hold that stands in for an override list that does not verify (any target).
    unverified: bool = False

    @property
    def confirmed(self) -> bool:
        return self.confirmed_by is not None and self.confirmed_by != self.user


@dataclass(frozen=True)
class OverrideRecords:
    """The signed overrides of one object, oldest first; ``rejected``: one message per entry
    ignored (bad signature, malformed). ``seq``: the verified list's counter (0: no list, or
    the first format). ``tampered``: why the list as a whole cannot be trusted (then
    ``overrides`` is the one unverified hold that stands in for it)."""

    overrides: tuple[Override, ...] = ()
    rejected: tuple[str, ...] = field(default=())
    seq: int = 0
    tampered: str = ""


# --------------------------------------------------------------------------------------------
# Reading


def _text(obj: Mapping[str, Any], name: str) -> str | None:
    value = obj.get(name)
    return value if isinstance(value, str) and value.strip() else None


def _time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.astimezone(UTC) if value.tzinfo is not None else None


def _override(item: Mapping[str, Any], position: int) -> Override | None:
    fields = {name: _text(item, name) for name in ("id", "decision", "reason", "user", "target")}
    at = _time(_text(item, "at"))
    if any(v is None for v in fields.values()) or at is None:
        return None
    try:
        decision = OverrideDecision(str(fields["decision"]))
    except ValueError:
        return None
    n = item.get("n")
    confirmed_by = _text(item, "confirmedBy")
    return Override(
        id=str(fields["id"]),
        decision=decision,
        reason=str(fields["reason"]),
        user=str(fields["user"]),
        at=at,
        target=str(fields["target"]),
        confirmed_by=confirmed_by,
        confirmed_at=_time(_text(item, "confirmedAt")) if confirmed_by else None,
        n=n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else position,
    )


@dataclass(frozen=True)
class _Stored:
    """An override annotation as stored: its entries, the counter it claims, whether it is a
    signed list (``signed``: the list's signature verifies) or the first format."""

    entries: list[Any]
    seq: int = 0
    listed: bool = False
    signed: bool = False


def _list_body(seq: int, entries: list[Any]) -> dict[str, Any]:
    return {"version": LIST_VERSION, "seq": seq, "entries": entries}


def _stored(text: str | None, uid: str, key: bytes) -> _Stored | None:
    """The stored list (None: the annotation is neither format)."""
    if text is None:
        return _Stored([])
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    if isinstance(value, list):
        return _Stored(value)
    if not isinstance(value, dict) or value.get("version") != LIST_VERSION:
        return None
    entries, seq = value.get("entries"), value.get("seq")
    if not isinstance(entries, list) or not isinstance(seq, int) or isinstance(seq, bool):
        return None
    signed = verify(value, uid, key) and set(value) <= {"version", "seq", "entries", "kid", "sig"}
    return _Stored(entries, seq, listed=True, signed=signed)


def _unverified(reason: str) -> OverrideRecords:
    """Fail closed: a list that cannot be trusted holds, whatever it claimed."""
    hold = Override(
        id=UNVERIFIED_ID,
        decision=OverrideDecision.HOLD,
        reason=f"{reason}; record a new override (kubectl rollwise override) to go on",
        user=UNVERIFIED_USER,
        at=datetime(1970, 1, 1, tzinfo=UTC),
        target="",
        unverified=True,
    )
    return OverrideRecords(
        overrides=(hold,), rejected=(f"{OVERRIDES} not trusted: {reason}",), tampered=reason
    )


def read_overrides(
    annotations: Mapping[str, str], uid: str, key: bytes | None, *, last_seq: int = 0
) -> OverrideRecords:
    """The overrides on ``annotations`` whose signatures are valid for ``uid``; ``key`` None
    (no record key configured) trusts none. ``last_seq``: the highest list counter seen on
    this object before (0: none); an older or unsigned list is then not trusted."""
    text = annotations.get(OVERRIDES)
    if text is None:
        if last_seq > 0:
            return _unverified(f"the override list (counter {last_seq}) was removed")
        return OverrideRecords()
    if key is None:
        return OverrideRecords(rejected=(f"{OVERRIDES} ignored: no record key configured",))
    stored = _stored(text, uid, key)
    if stored is None:
        return _unverified("it is not an override list")
    if stored.listed and not stored.signed:
        return _unverified("the list's signature does not verify (entries dropped or changed)")
    if not stored.listed and last_seq > 0:
        return _unverified("an unsigned list replaced the signed one")
    if stored.seq < last_seq:
        return _unverified(
            f"the list (counter {stored.seq}) is older than one already seen ({last_seq})"
        )
    found: list[Override] = []
    rejected: list[str] = []
    for index, item in enumerate(stored.entries):
        where = f"{OVERRIDES}[{index}]"
        if not isinstance(item, dict) or not verify(item, uid, key):
            rejected.append(
                f"{where} ignored: missing or bad signature (not written by this operator's "
                "webhook)"
            )
            continue
        parsed = _override(item, index + 1)
        if parsed is None:
            rejected.append(f"{where} ignored: missing or malformed fields")
            continue
        found.append(parsed)
    found.sort(key=lambda x: x.n)
    return OverrideRecords(overrides=tuple(found), rejected=tuple(rejected), seq=stored.seq)


def in_effect(overrides: tuple[Override, ...], target: str) -> Override | None:
    """The override in effect for ``target``: the unverified hold that stands in for a list
    that does not verify, else the newest (highest ``n``) override for ``target``."""
    for override in overrides:
        if override.unverified:
            return override
    newest: Override | None = None
    for override in overrides:
        # Equal numbers (the first format's tests of order) keep the later one.
        if override.target == target and (newest is None or override.n >= newest.n):
            newest = override
    return newest


def confirm_hint(kind: str, name: str, override_id: str) -> str:
    """The command that confirms an override."""
    return f"kubectl rollwise override {kind}/{name} --confirm {override_id}"


def waiting_message(override: Override, kind: str, name: str) -> str:
    """The status message part of a promote that waits for its confirmation."""
    return (
        f"promote override by {override.user} waits for a second person's confirmation: "
        f"{confirm_hint(kind, name, override.id)}"
    )


# --------------------------------------------------------------------------------------------
# Guarded Rollouts and the requests on a ModelRelease's child Rollout

#: Label on a Rollout whose writes the webhook must see (``failurePolicy: Fail`` through an
#: ``objectSelector``): one that carries overrides, and every ModelRelease's child Rollout. The
#: other Rollouts keep ``Ignore``, so the operator being down never blocks their writes.
GUARDED_LABEL = PREFIX + "guarded"

#: Requests a person may not write on a ModelRelease's child Rollout: each can promote a
#: revision past its canary's analysis, which for a ModelRelease is a promote override of the
#: release, confirmed by a second person. ``promote`` is allowed only to end a plain pause step.
CHILD_REQUESTS = (RequestKind.RETRY, RequestKind.PROMOTE_FULL, RequestKind.PROMOTE)
_SIGNED = "~"


def sign_request(kind: RequestKind, request_id: str, subject: str, key: bytes) -> str:
    """The value of a manual request annotation the operator itself writes on ``subject``
    (``namespace/name`` of a child Rollout): the id and its signature."""
    sig = signature({"request": kind.value, "id": request_id}, subject, key)
    return f"{request_id}{_SIGNED}{sig}"


def signed_request(kind: RequestKind, value: str, subject: str, key: bytes) -> bool:
    """Whether ``value`` is a request the operator signed (:func:`sign_request`)."""
    request_id, sep, sig = value.rpartition(_SIGNED)
    if not sep:
        return False
    return verify({"request": kind.value, "id": request_id, "sig": sig}, subject, key)


# --------------------------------------------------------------------------------------------
# Admission


class _Refused(Exception):
    """A request the webhook refuses; the message is one sentence for the user."""


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _request(name: str, text: str) -> Mapping[str, Any]:
    try:
        obj = json.loads(text)
    except (TypeError, ValueError):
        raise _Refused(f"{name} is not valid JSON; use kubectl rollwise override") from None
    if not isinstance(obj, dict):
        raise _Refused(f"{name} is not a JSON object; use kubectl rollwise override")
    request_id = obj.get("id")
    if not isinstance(request_id, str) or not request_id.strip() or len(request_id) > MAX_ID:
        raise _Refused(
            f"{name} needs an 'id' string of 1-{MAX_ID} characters; use kubectl rollwise override"
        )
    return obj


@dataclass
class _Pass:
    kind: str
    name: str
    target: str
    uid: str
    user: str
    key: bytes
    at: str
    entries: list[Any]
    #: The counter of the list this write stores.
    seq: int = 1

    def valid(self) -> list[tuple[int, Mapping[str, Any]]]:
        return [
            (i, e)
            for i, e in enumerate(self.entries)
            if isinstance(e, dict) and verify(e, self.uid, self.key)
        ]

    def override(self, text: str) -> bool:
        obj = _request(OVERRIDE, text)
        request_id = str(obj["id"])
        decision = obj.get("decision")
        choices = ", ".join(d.value for d in OverrideDecision)
        if decision not in {d.value for d in OverrideDecision}:
            raise _Refused(f"{OVERRIDE}: 'decision' must be one of {choices}, got {decision!r}")
        reason = obj.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise _Refused(f"{OVERRIDE} needs a non-empty 'reason': say why, for the audit")
        if len(reason) > MAX_REASON:
            raise _Refused(f"{OVERRIDE}: 'reason' is longer than {MAX_REASON} characters")
        for _, entry in self.valid():
            if entry.get("id") == request_id:
                if entry.get("user") == self.user and entry.get("decision") == decision:
                    return False  # the same override again (a retried request)
                raise _Refused(f"override id {request_id} is taken; use a new id")
        entry = {
            "id": request_id,
            "decision": decision,
            "reason": reason,
            "user": self.user,
            "at": self.at,
            "target": self.target,
            "n": self.seq,
        }
        self.entries = [*self.entries, sign(entry, self.uid, self.key)][-MAX_OVERRIDES:]
        return True

    def confirm(self, text: str) -> bool:
        obj = _request(CONFIRM_OVERRIDE, text)
        override_id = str(obj["id"])
        found = [(i, e) for i, e in self.valid() if e.get("id") == override_id]
        if not found:
            raise _Refused(
                f"no override {override_id} on this {self.kind}; "
                f"kubectl rollwise status {self.kind}/{self.name} lists the overrides"
            )
        index, entry = found[-1]
        author = entry.get("user")
        if entry.get("decision") != OverrideDecision.PROMOTE.value:
            raise _Refused(
                f"override {override_id} is a {entry.get('decision')}, which takes effect "
                "without confirmation; only a promote is confirmed"
            )
        if entry.get("target") != self.target:
            raise _Refused(
                f"override {override_id} was for {self._what(entry.get('target'))}, "
                f"the {self.kind} is now at {self._what(self.target)}; it no longer applies"
            )
        if author == self.user:
            raise _Refused(
                f"{self.user} made override {override_id} and may not confirm it; "
                "a second person must confirm"
            )
        confirmed_by = entry.get("confirmedBy")
        if confirmed_by == self.user:
            return False  # the same confirmation again (a retried request)
        if confirmed_by is not None:
            raise _Refused(
                f"override {override_id} is already confirmed by {confirmed_by} at "
                f"{entry.get('confirmedAt')}"
            )
        body = {**entry, "confirmedBy": self.user, "confirmedAt": self.at}
        entries = list(self.entries)
        entries[index] = sign(body, self.uid, self.key)
        self.entries = entries
        return True

    def _what(self, target: object) -> str:
        return f"{'version' if self.kind == MODELRELEASE else 'revision'} {target}"


def _rebuilt(stored: _Stored | None, uid: str, key: bytes, last_seq: int) -> tuple[list[Any], int]:
    """The entries a new list starts from, in order, each verified on its own (a list that
    does not verify as a whole keeps only those), with their ``n``; and the counter of the new
    list: above every counter seen (the old list's, its entries', ``last_seq``)."""
    items = stored.entries if stored is not None else []
    valid: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not verify(item, uid, key):
            continue
        n = item.get("n")
        numbered = isinstance(n, int) and not isinstance(n, bool) and n > 0
        # An entry of the first format gets its position as its number, signed anew.
        valid.append(item if numbered else sign({**item, "n": index + 1}, uid, key))
    valid.sort(key=lambda e: int(e["n"]))
    seen = [last_seq, stored.seq if stored is not None else 0, *(int(e["n"]) for e in valid)]
    return list(valid), max(seen) + 1


def signed_list(entries: list[Any], seq: int, uid: str, key: bytes) -> str:
    """The annotation value of a signed override list."""
    return _dumps(sign(_list_body(seq, entries), uid, key))


def admit_overrides(
    *,
    kind: str,
    operation: str,
    old_annotations: Mapping[str, str] | None,
    new_annotations: Mapping[str, str] | None,
    target: str,
    uid: str,
    name: str,
    user: str,
    key: bytes,
    now: datetime,
    last_seq: int = 0,
) -> Admission:
    """The webhook's decision on the override requests of one CREATE or UPDATE.

    ``kind`` is ``rollout`` or ``modelrelease`` (for messages), ``target`` the current version
    or revision of the object as the request would store it, ``last_seq`` the highest list
    counter the stored object's status remembers. Like
    :func:`rollwise.core.modelrelease.admission.admit`: a request is handled only when this
    write changed it, and the record list may be written by the webhook alone, always signed as a
    whole with a counter above every one seen.
    """
    old = dict(old_annotations or {})
    new = dict(new_annotations or {})
    if operation == "CREATE":
        if OVERRIDES in new:
            return Admission(
                allowed=False,
                message=f"{OVERRIDES} is written by the operator's webhook; remove it from the "
                "manifest",
            )
        for request in OVERRIDE_REQUESTS:
            if request in new:
                return Admission(
                    allowed=False,
                    message=f"{request} applies to an existing {kind}; create it first, then "
                    "use kubectl rollwise override",
                )
        return Admission(allowed=True)
    if operation != "UPDATE":
        return Admission(allowed=True)
    if OVERRIDES in old and OVERRIDES not in new:
        return Admission(
            allowed=False,
            message=f"{OVERRIDES} is written by the operator's webhook and cannot be removed; "
            f"keep it when replacing the {kind}",
        )
    if new.get(OVERRIDES) != old.get(OVERRIDES):
        return Admission(
            allowed=False,
            message=f"{OVERRIDES} is written by the operator's webhook; use kubectl rollwise "
            "override",
        )
    changed = [r for r in OVERRIDE_REQUESTS if r in new and new[r] != old.get(r)]
    if not changed:
        return Admission(allowed=True)
    if not uid:
        return Admission(allowed=False, message=f"the {kind} has no metadata.uid; retry")
    entries, seq = _rebuilt(_stored(old.get(OVERRIDES), uid, key), uid, key, last_seq)
    state = _Pass(
        kind=kind,
        name=name,
        target=target,
        uid=uid,
        user=user,
        key=key,
        at=format_time(now),
        entries=entries,
        seq=seq,
    )
    patch: dict[str, str | None] = {}
    wrote = False
    try:
        if OVERRIDE in changed:
            wrote = state.override(new[OVERRIDE]) or wrote
        if CONFIRM_OVERRIDE in changed:
            wrote = state.confirm(new[CONFIRM_OVERRIDE]) or wrote
    except _Refused as exc:
        return Admission(allowed=False, message=str(exc))
    for request in changed:
        patch[request] = None
    if wrote:
        patch[OVERRIDES] = signed_list(state.entries, state.seq, uid, key)
    return Admission(allowed=True, patch=patch)


__all__ = [
    "CHILD_REQUESTS",
    "CONFIRM_OVERRIDE",
    "GUARDED_LABEL",
    "HANDLED_KEY",
    "LIST_VERSION",
    "MAX_OVERRIDES",
    "MODELRELEASE",
    "OVERRIDE",
    "OVERRIDES",
    "OVERRIDE_REQUESTS",
    "ROLLOUT",
    "UNVERIFIED_ID",
    "UNVERIFIED_USER",
    "Admission",
    "Override",
    "OverrideDecision",
    "OverrideRecords",
    "admit_overrides",
    "confirm_hint",
    "in_effect",
    "read_overrides",
    "sign_request",
    "signed_list",
    "signed_request",
    "waiting_message",
]
