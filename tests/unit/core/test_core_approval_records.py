"""The approval records of a Rollout's approval steps: the webhook's decision on a write
(:func:`admit_approvals`, identity from the API server's ``userInfo``) and what the reconcile
reads back (:func:`read_approval_records`, signed records only)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from rollwise.core.observations import StepApproval, TemplateAuthor
from rollwise.core.rollout.approvals import (
    APPROVALS,
    APPROVE,
    TEMPLATE_SET_BY,
    admit_approvals,
    read_approval_records,
)
from rollwise.core.signing import Keyring, sign

KEY = b"k" * 32
UID = "uid-1"
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
ROLES = {"product": ("pm",), "security": ("sec-team",)}
STEPS = {1: ("product", "security")}


def author(user: str = "alice", revision: str = "r2") -> str:
    record = {"user": user, "revision": revision, "at": "2026-01-01T11:00:00Z"}
    return json.dumps(sign(record, UID, KEY))


def given(role: str, user: str, *, revision: str = "r2", step: int = 1) -> dict[str, Any]:
    record = {
        "id": f"{role}-{user}",
        "role": role,
        "user": user,
        "revision": revision,
        "step": step,
        "at": "2026-01-01T11:30:00Z",
    }
    return sign(record, UID, KEY)


def request(role: str, step: int = 1, request_id: str = "a1") -> str:
    return json.dumps({"id": request_id, "role": role, "step": step})


def admit(
    old: Mapping[str, str],
    new: Mapping[str, str],
    *,
    user: str = "bob",
    groups: tuple[str, ...] = ("pm",),
    old_revision: str | None = "r2",
    revision: str = "r2",
    operation: str = "UPDATE",
    steps: Mapping[int, tuple[str, ...]] = STEPS,
) -> Any:
    return admit_approvals(
        operation=operation,
        old_annotations=old,
        new_annotations=new,
        old_revision=old_revision,
        revision=revision,
        approval_steps=steps,
        uid=UID,
        name="web",
        user=user,
        groups=groups,
        role_map=ROLES,
        key=KEY,
        now=NOW,
    )


BASE = {TEMPLATE_SET_BY: author()}


@pytest.mark.parametrize(
    ("old", "new", "kwargs", "message"),
    [
        pytest.param(
            BASE,
            {**BASE, APPROVE: request("product")},
            {"user": "alice"},
            "alice changed the template of rollout web (revision r2) and may not approve it; "
            "ask someone else holding product: kubectl rollwise approve rollout/web --role "
            "product",
            id="self-approval",
        ),
        pytest.param(
            BASE,
            {**BASE, APPROVE: request("security")},
            {},
            "bob may not approve as security: the role is given to members of sec-team",
            id="role-not-held",
        ),
        pytest.param(
            BASE,
            {**BASE, APPROVE: request("product", step=0)},
            {},
            "step 1 of rollout web is not an approval step (approval steps: 2)",
            id="not-an-approval-step",
        ),
        pytest.param(
            BASE,
            {**BASE, APPROVE: request("qa")},
            {"groups": ("pm", "qa")},
            "step 2 of rollout web asks for approval by product, security, not qa",
            id="role-not-asked",
        ),
        pytest.param(
            {},
            {APPROVE: request("product")},
            {},
            "who changed the template of rollout web to revision r2 is not recorded",
            id="author-unknown",
        ),
        pytest.param(
            {TEMPLATE_SET_BY: author(revision="r1")},
            {TEMPLATE_SET_BY: author(revision="r1"), APPROVE: request("product")},
            {},
            "to revision r2 is not recorded",
            id="author-of-another-revision",
        ),
        pytest.param(
            {**BASE, APPROVALS: json.dumps([given("product", "carol")])},
            {
                **BASE,
                APPROVALS: json.dumps([given("product", "carol")]),
                APPROVE: request("product"),
            },
            {},
            "product already approved revision r2 by carol",
            id="role-taken",
        ),
        pytest.param(
            {**BASE, APPROVALS: json.dumps([given("product", "bob")])},
            {
                **BASE,
                APPROVALS: json.dumps([given("product", "bob")]),
                APPROVE: request("security"),
            },
            {"groups": ("pm", "sec-team")},
            "bob already approved revision r2 as product; another person must approve as security",
            id="one-role-per-person",
        ),
        pytest.param(
            BASE,
            {TEMPLATE_SET_BY: author(user="bob")},
            {},
            f"{TEMPLATE_SET_BY} is written by the operator's webhook",
            id="record-forged",
        ),
        pytest.param(
            BASE,
            {},
            {},
            f"{TEMPLATE_SET_BY} is written by the operator's webhook and cannot be removed",
            id="record-removed",
        ),
        pytest.param(
            BASE,
            {**BASE, APPROVE: "not json"},
            {},
            f"{APPROVE} is not a JSON object",
            id="malformed",
        ),
        pytest.param(
            {},
            {APPROVE: request("product")},
            {"operation": "CREATE", "old_revision": None},
            f"{APPROVE} applies to a Rollout at an approval step; create it first",
            id="create-with-request",
        ),
    ],
)
def test_refused(
    old: Mapping[str, str], new: Mapping[str, str], kwargs: dict[str, Any], message: str
) -> None:
    answer = admit(old, new, **kwargs)
    assert not answer.admission.allowed
    assert message in answer.admission.message
    assert answer.admission.patch == {}


def test_self_approval_refusal_names_who_and_role() -> None:
    answer = admit(BASE, {**BASE, APPROVE: request("product")}, user="alice")
    assert answer.refusal is not None
    assert (answer.refusal.user, answer.refusal.role) == ("alice", "product")
    assert answer.refusal.message == answer.admission.message


def test_approval_recorded_signed_with_identity() -> None:
    answer = admit(BASE, {**BASE, APPROVE: request("product")})
    assert answer.admission.allowed
    patch = answer.admission.patch
    assert patch[APPROVE] is None
    records = read_approval_records({**BASE, APPROVALS: str(patch[APPROVALS])}, UID, KEY)
    assert records.approvals == (
        StepApproval(role="product", user="bob", revision="r2", step=1, at=NOW),
    )
    assert records.template_author is not None
    assert records.template_author.user == "alice"
    assert records.rejected == ()


def test_same_approval_again_is_a_retry() -> None:
    stored = {**BASE, APPROVALS: json.dumps([given("product", "bob")])}
    answer = admit(stored, {**stored, APPROVE: request("product")})
    assert answer.admission.allowed
    assert answer.admission.patch == {APPROVE: None}


def test_a_request_left_from_before_is_not_handled_again() -> None:
    stored = {**BASE, APPROVE: request("product")}
    answer = admit(stored, stored, user="alice")
    assert answer.admission.allowed
    assert answer.admission.patch == {}


def test_template_change_records_its_author_and_drops_other_approvals() -> None:
    stored = {**BASE, APPROVALS: json.dumps([given("product", "bob")])}
    answer = admit(stored, stored, user="dave", old_revision="r2", revision="r3")
    assert answer.admission.allowed
    patch = answer.admission.patch
    assert patch[APPROVALS] is None
    records = read_approval_records({TEMPLATE_SET_BY: str(patch[TEMPLATE_SET_BY])}, UID, KEY)
    assert records.template_author == TemplateAuthor(user="dave", revision="r3", at=NOW)


def test_a_rollout_without_approval_steps_gets_no_record() -> None:
    answer = admit({}, {}, user="dave", old_revision="r2", revision="r3", steps={})
    assert answer.admission.allowed
    assert answer.admission.patch == {}


def test_template_change_and_own_approval_in_one_write_refused() -> None:
    answer = admit(
        BASE, {**BASE, APPROVE: request("product")}, user="dave", old_revision="r2", revision="r3"
    )
    assert not answer.admission.allowed
    assert "dave changed the template of rollout web (revision r3)" in answer.admission.message


def test_records_not_signed_for_this_object_are_rejected() -> None:
    foreign = sign({"user": "alice", "revision": "r2", "at": "2026-01-01T11:00:00Z"}, "x", KEY)
    forged = {**given("product", "bob"), "user": "mallory"}
    records = read_approval_records(
        {TEMPLATE_SET_BY: json.dumps(foreign), APPROVALS: json.dumps([forged])}, UID, KEY
    )
    assert records.template_author is None
    assert records.approvals == ()
    assert len(records.rejected) == 2


def test_no_key_trusts_nothing() -> None:
    records = read_approval_records(
        {**BASE, APPROVALS: json.dumps([given("product", "bob")])}, UID, None
    )
    assert records.approvals == ()
    assert records.template_author is None
    assert len(records.rejected) == 2


def test_records_of_a_rotated_key_still_verify() -> None:
    ring = Keyring(b"n" * 32, [KEY])
    records = read_approval_records(
        {**BASE, APPROVALS: json.dumps([given("product", "bob")])}, UID, ring
    )
    assert [a.user for a in records.approvals] == ["bob"]
