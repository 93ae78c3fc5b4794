"""Approval steps (go/no-go) of a Rollout: the records, the webhook's decision, what counts.

A canary step ``approval: {roles: [product, security], timeout: 24h}`` holds the Rollout until
distinct people, one per role, approved the canary revision. People write a request; the
operator's mutating admission webhook, given the identity the API server authenticated, turns
it into a signed record (:mod:`rollwise.core.signing`, bound to the Rollout's uid), as it does
for a ModelRelease's approvals:

* request ``rollwise.dev/approve``: ``{"id", "role", "step"}`` (``kubectl rollwise approve
  rollout/NAME --role R``; ``step`` is the 0-based index of the approval step) appends to
  the record list ``rollwise.dev/approvals`` an entry ``{"id", "role", "user", "revision",
  "step", "at", "kid", "sig"}``, ``revision`` being the revision of the template the write
  stores;
* record ``rollwise.dev/template-set-by``: ``{"user", "revision", "at"}``, written by every
  write that changes the pod template (its revision) of a Rollout with approval steps: who
  changed it.

The webhook refuses (one sentence saying why and what to do): a role the person does not
hold (a group of the operator's role mapping, ``ROLLWISE_ROLE_GROUPS``, as for ModelRelease
approvals), a step that is not an approval step asking for that role, the person who changed
the template (four eyes; refused too when who changed it is not recorded), a person who
approved as another role already (distinct people), and a role someone else approved. Only the
webhook writes the records: a write that changes or removes them is refused. A template change
drops the approvals given for other revisions: an approval covers exactly what was approved.

:func:`read_approval_records` is what the reconcile reads (signed records only; anything else
is named in ``rejected``), and :func:`count_approvals` what an approval step counts: the
first approval per role for the canary revision at that step, from distinct people, none from
the template's author (a record the webhook would have refused is not counted either).

Pure: no clock (``now`` is an argument), no environment, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rollwise.core.observations import StepApproval, TemplateAuthor
from rollwise.core.signing import MAX_ID, PREFIX, Admission, sign, verify
from rollwise.core.status_model import format_time

#: The request annotation a person writes (``kubectl rollwise approve``).
APPROVE = PREFIX + "approve"
#: Record annotations only the webhook writes.
APPROVALS = PREFIX + "approvals"
TEMPLATE_SET_BY = PREFIX + "template-set-by"
RECORD_ANNOTATIONS = (APPROVALS, TEMPLATE_SET_BY)
#: Most approval records kept on one Rollout (they are for the current revision only).
MAX_APPROVALS = 64
#: The operator setting that maps roles to groups (named in refusals).
ROLE_SETTING = "ROLLWISE_ROLE_GROUPS"


def approve_hint(name: str, role: str) -> str:
    """The command that approves as ``role``."""
    return f"kubectl rollwise approve rollout/{name} --role {role}"


# --------------------------------------------------------------------------------------------
# Reading the records


@dataclass(frozen=True)
class ApprovalRecords:
    """The signed approval records of one Rollout; ``rejected``: one message per record
    ignored."""

    approvals: tuple[StepApproval, ...] = ()
    template_author: TemplateAuthor | None = None
    rejected: tuple[str, ...] = ()


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _approval(item: Mapping[str, Any]) -> StepApproval | None:
    role, user, revision = _text(item.get("role")), _text(item.get("user")), item.get("revision")
    step, at = item.get("step"), _time(item.get("at"))
    if role is None or user is None or not isinstance(revision, str) or at is None:
        return None
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        return None
    return StepApproval(role=role, user=user, revision=revision, step=step, at=at)


def _author(item: Mapping[str, Any]) -> TemplateAuthor | None:
    user, revision, at = _text(item.get("user")), item.get("revision"), _time(item.get("at"))
    if user is None or not isinstance(revision, str) or at is None:
        return None
    return TemplateAuthor(user=user, revision=revision, at=at)


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def read_approval_records(
    annotations: Mapping[str, str], uid: str, key: bytes | None
) -> ApprovalRecords:
    """The approval records on ``annotations`` whose signatures are valid for ``uid``; ``key``
    None (no record key configured) trusts none."""
    present = [name for name in RECORD_ANNOTATIONS if name in annotations]
    if key is None:
        return ApprovalRecords(
            rejected=tuple(f"{name} ignored: no record key configured" for name in present)
        )
    rejected: list[str] = []
    author: TemplateAuthor | None = None
    if TEMPLATE_SET_BY in annotations:
        item = _loads(annotations[TEMPLATE_SET_BY])
        if not isinstance(item, dict) or not verify(item, uid, key):
            rejected.append(f"{TEMPLATE_SET_BY} ignored: missing or bad signature")
        else:
            author = _author(item)
            if author is None:
                rejected.append(f"{TEMPLATE_SET_BY} ignored: missing or malformed fields")
    approvals: list[StepApproval] = []
    if APPROVALS in annotations:
        items = _loads(annotations[APPROVALS])
        if not isinstance(items, list):
            rejected.append(f"{APPROVALS} ignored: not a JSON list")
            items = []
        for index, item in enumerate(items):
            where = f"{APPROVALS}[{index}]"
            if not isinstance(item, dict) or not verify(item, uid, key):
                rejected.append(
                    f"{where} ignored: missing or bad signature (not written by this "
                    "operator's webhook)"
                )
                continue
            parsed = _approval(item)
            if parsed is None:
                rejected.append(f"{where} ignored: missing or malformed fields")
                continue
            approvals.append(parsed)
    return ApprovalRecords(
        approvals=tuple(approvals), template_author=author, rejected=tuple(rejected)
    )


# --------------------------------------------------------------------------------------------
# What an approval step counts


@dataclass(frozen=True)
class Counted:
    """An approval step's approvals for one revision: ``granted`` (role -> the approval that
    counts), ``refused`` (one sentence per approval that does not), ``author`` (who changed the
    template, None: not recorded for this revision)."""

    granted: Mapping[str, StepApproval] = field(default_factory=dict)
    refused: tuple[str, ...] = ()
    author: str | None = None


def count_approvals(
    approvals: Sequence[StepApproval],
    author: TemplateAuthor | None,
    *,
    roles: Sequence[str],
    revision: str,
    step: int,
) -> Counted:
    """What the approval step of index ``step`` asking for ``roles`` counts for ``revision``:
    in the order given, the first approval per role, one role per person, none by the
    template's author. Without a record of who changed the template to ``revision`` nothing
    counts (four eyes cannot be checked)."""
    setter = author.user if author is not None and author.revision == revision else None
    mine = [a for a in approvals if a.revision == revision and a.step == step and a.role in roles]
    if setter is None:
        refused = tuple(
            f"{a.user} as {a.role}: who changed the template to revision {revision} is not "
            "recorded, so four eyes cannot be checked"
            for a in mine
        )
        return Counted(refused=refused)
    granted: dict[str, StepApproval] = {}
    people: dict[str, str] = {}
    refused_list: list[str] = []
    for approval in mine:
        if approval.user == setter:
            refused_list.append(
                f"{approval.user} as {approval.role}: changed the template (revision "
                f"{revision}) and may not approve it"
            )
        elif approval.role in granted:
            if granted[approval.role].user != approval.user:
                refused_list.append(
                    f"{approval.user} as {approval.role}: {approval.role} already approved by "
                    f"{granted[approval.role].user}"
                )
        elif approval.user in people:
            refused_list.append(
                f"{approval.user} as {approval.role}: already approved as "
                f"{people[approval.user]} (one role per person)"
            )
        else:
            granted[approval.role] = approval
            people[approval.user] = approval.role
    return Counted(granted=granted, refused=tuple(refused_list), author=setter)


# --------------------------------------------------------------------------------------------
# Admission


class Refused(Exception):
    """An approval request the webhook refuses; the message is one sentence for the user."""


@dataclass(frozen=True)
class ApprovalRefusal:
    """A refused approval request, for the Warning event the webhook posts: who asked, as
    which role, and why not."""

    user: str
    role: str
    message: str


@dataclass(frozen=True)
class ApprovalAdmission:
    """The webhook's answer on the approval records of one write: the admission (its patch, or
    its refusal) and, for a refused approval request, what the Warning event says."""

    admission: Admission
    refusal: ApprovalRefusal | None = None


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _request(text: str) -> tuple[str, str, int]:
    obj = _loads(text)
    if not isinstance(obj, dict):
        raise Refused(f"{APPROVE} is not a JSON object; use kubectl rollwise approve")
    request_id = obj.get("id")
    if not isinstance(request_id, str) or not request_id.strip() or len(request_id) > MAX_ID:
        raise Refused(
            f"{APPROVE} needs an 'id' string of 1-{MAX_ID} characters; use kubectl rollwise approve"
        )
    role = obj.get("role")
    if not isinstance(role, str) or not role.strip() or len(role) > MAX_ID:
        raise Refused(f"{APPROVE} needs a non-empty 'role'; use kubectl rollwise approve")
    step = obj.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise Refused(
            f"{APPROVE} needs 'step', the 0-based index of the approval step; use kubectl "
            "rollwise approve"
        )
    return request_id, role, step


def _signed_items(text: str | None, uid: str, key: bytes) -> list[dict[str, Any]]:
    items = _loads(text)
    if not isinstance(items, list):
        return []
    return [i for i in items if isinstance(i, dict) and verify(i, uid, key)]


def _refuse(message: str) -> ApprovalAdmission:
    return ApprovalAdmission(Admission(allowed=False, message=message))


def admit_approvals(
    *,
    operation: str,
    old_annotations: Mapping[str, str] | None,
    new_annotations: Mapping[str, str] | None,
    old_revision: str | None,
    revision: str,
    approval_steps: Mapping[int, Sequence[str]],
    uid: str,
    name: str,
    user: str,
    groups: Sequence[str],
    role_map: Mapping[str, tuple[str, ...]],
    key: bytes,
    now: datetime,
) -> ApprovalAdmission:
    """The webhook's decision on the approval records of one CREATE or UPDATE of a Rollout.

    ``old_revision``: the revision of the stored template (None on CREATE), ``revision`` that
    of the template the write stores, ``approval_steps`` the approval steps of the spec it
    stores (index -> roles), ``user`` and ``groups`` the API server's ``userInfo``,
    ``role_map`` which groups hold which role. A request is handled only when this write
    changed it; the records are written by the webhook alone.
    """
    old = dict(old_annotations or {})
    new = dict(new_annotations or {})
    if operation == "CREATE":
        for record in RECORD_ANNOTATIONS:
            if record in new:
                return _refuse(
                    f"{record} is written by the operator's webhook; remove it from the manifest"
                )
        if APPROVE in new:
            return _refuse(
                f"{APPROVE} applies to a Rollout at an approval step; create it first, then "
                "use kubectl rollwise approve"
            )
        return ApprovalAdmission(Admission(allowed=True))
    if operation != "UPDATE":
        return ApprovalAdmission(Admission(allowed=True))
    for record in RECORD_ANNOTATIONS:
        if record in old and record not in new:
            return _refuse(
                f"{record} is written by the operator's webhook and cannot be removed; keep it "
                "when replacing the rollout"
            )
        if new.get(record) != old.get(record):
            return _refuse(
                f"{record} is written by the operator's webhook; use kubectl rollwise approve"
            )
    if not uid:
        return _refuse("the rollout has no metadata.uid; retry")
    patch: dict[str, str | None] = {}
    at = format_time(now)
    author_text = new.get(TEMPLATE_SET_BY)
    stored = _signed_items(new.get(APPROVALS), uid, key)
    # Only a Rollout with approval steps (or one recorded before) carries the record: the others
    # keep their annotations as their manifests have them.
    tracked = bool(approval_steps) or TEMPLATE_SET_BY in new
    if tracked and old_revision is not None and old_revision != revision:
        # The template changed: this person is its author, and approvals of other revisions
        # no longer cover what runs.
        author_text = _dumps(sign({"user": user, "revision": revision, "at": at}, uid, key))
        patch[TEMPLATE_SET_BY] = author_text
        kept = [i for i in stored if i.get("revision") == revision]
        if len(kept) != len(stored) or (APPROVALS in new and not kept):
            patch[APPROVALS] = _dumps(kept) if kept else None
        stored = kept
    text = new.get(APPROVE)
    if text is None or text == old.get(APPROVE):
        return ApprovalAdmission(Admission(allowed=True, patch=patch))
    role = ""
    try:
        request_id, role, step = _request(text)
        entry = _approve(
            request_id,
            role,
            step,
            revision=revision,
            approval_steps=approval_steps,
            author=_author_of(author_text, uid, key),
            stored=stored,
            name=name,
            user=user,
            groups=groups,
            role_map=role_map,
        )
    except Refused as exc:
        refusal = ApprovalRefusal(user=user, role=role, message=str(exc))
        return ApprovalAdmission(Admission(allowed=False, message=str(exc)), refusal)
    patch[APPROVE] = None
    if entry is not None:
        body = {**entry, "at": at}
        patch[APPROVALS] = _dumps([*stored, sign(body, uid, key)][-MAX_APPROVALS:])
    return ApprovalAdmission(Admission(allowed=True, patch=patch))


def _author_of(text: str | None, uid: str, key: bytes) -> TemplateAuthor | None:
    item = _loads(text)
    if not isinstance(item, dict) or not verify(item, uid, key):
        return None
    return _author(item)


def _approve(
    request_id: str,
    role: str,
    step: int,
    *,
    revision: str,
    approval_steps: Mapping[int, Sequence[str]],
    author: TemplateAuthor | None,
    stored: Sequence[Mapping[str, Any]],
    name: str,
    user: str,
    groups: Sequence[str],
    role_map: Mapping[str, tuple[str, ...]],
) -> dict[str, Any] | None:
    """The record of an approval (None: the same approval again, nothing to add); raises
    :class:`Refused`."""
    roles = approval_steps.get(step)
    if roles is None:
        found = ", ".join(str(i + 1) for i in sorted(approval_steps)) or "none"
        raise Refused(
            f"step {step + 1} of rollout {name} is not an approval step (approval steps: {found})"
        )
    if role not in roles:
        raise Refused(
            f"step {step + 1} of rollout {name} asks for approval by {', '.join(roles)}, not {role}"
        )
    allowed = set(role_map.get(role, ()))
    if not allowed & set(groups):
        mapped = ", ".join(sorted(allowed)) or f"no group (operator setting {ROLE_SETTING})"
        raise Refused(f"{user} may not approve as {role}: the role is given to members of {mapped}")
    if author is None or author.revision != revision:
        raise Refused(
            f"who changed the template of rollout {name} to revision {revision} is not recorded "
            "(changed while the operator's webhook was not answering), so four eyes cannot be "
            "checked; re-apply the change with the webhook up"
        )
    if author.user == user:
        raise Refused(
            f"{user} changed the template of rollout {name} (revision {revision}) and may not "
            f"approve it; ask someone else holding {role}: {approve_hint(name, role)}"
        )
    for item in stored:
        if item.get("revision") != revision or item.get("step") != step:
            continue
        if item.get("role") == role and item.get("user") == user:
            return None  # the same approval again (a retried request)
        if item.get("role") == role:
            raise Refused(f"{role} already approved revision {revision} by {item.get('user')}")
        if item.get("user") == user:
            raise Refused(
                f"{user} already approved revision {revision} as {item.get('role')}; another "
                f"person must approve as {role}"
            )
    return {"id": request_id, "role": role, "user": user, "revision": revision, "step": step}


__all__ = [
    "APPROVALS",
    "APPROVE",
    "MAX_APPROVALS",
    "RECORD_ANNOTATIONS",
    "TEMPLATE_SET_BY",
    "ApprovalAdmission",
    "ApprovalRecords",
    "ApprovalRefusal",
    "Counted",
    "Refused",
    "admit_approvals",
    "approve_hint",
    "count_approvals",
    "read_approval_records",
]
