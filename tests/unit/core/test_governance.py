"""Identity records: signing, reading, waivers and the webhook's admission decisions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rollwise.core import signing
from rollwise.core.modelrelease import admission as adm
from rollwise.core.modelrelease import governance as g
from rollwise.core.modelrelease.observations import (
    GATE_APPROVALS,
    GATE_ARTIFACT,
    GATE_FREEZE,
    GATE_SBOM,
    Approval,
    GateResult,
    RevokeRequest,
    VoidedApproval,
)
from rollwise.core.modelrelease.status import GateStatus

KEY = b"record-key"
UID = "0b6f0a52-uid"
NS, NAME = "models", "fraud-7"
NOW = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
#: What the release's spec decides runs (``release_content``), as the webhook saw it.
CONTENT = {"spec.model": "sha256:" + "1" * 64, "spec.serving.template": "sha256:" + "2" * 64}
ROLES: Mapping[str, tuple[str, ...]] = {
    "security": ("sec-team",),
    "product": ("pm",),
    "executive": ("cto",),
}


def dumps(value: Any) -> str:
    return json.dumps(value)


def signed(record: Mapping[str, Any], subject: str = UID, key: bytes = KEY) -> dict[str, Any]:
    return signing.sign(record, subject, key)


def created_by(user: str = "alice", version: str = "7") -> dict[str, str]:
    """The annotations the webhook leaves after alice created the release and its first
    UPDATE bound the record to the uid."""
    record = {"user": user, "version": version, "at": "2026-11-22T09:00:00Z"}
    return {g.VERSION_SET_BY: dumps(signed(record))}


def approval(
    role: str, user: str, version: str = "7", content: Mapping[str, str] = CONTENT
) -> dict[str, Any]:
    return signed(
        {
            "role": role,
            "user": user,
            "version": version,
            "at": "2026-11-22T09:30:00Z",
            "content": dict(content),
        }
    )


def update(
    old: Mapping[str, str],
    new: Mapping[str, str],
    *,
    user: str = "bob",
    groups: tuple[str, ...] = ("sec-team", "system:authenticated"),
    version: str = "7",
    old_version: str | None = "7",
    uid: str = UID,
    content: Mapping[str, str] | None = CONTENT,
) -> signing.Admission:
    return adm.admit(
        operation="UPDATE",
        old_annotations=old,
        new_annotations=new,
        spec_version=version,
        old_spec_version=old_version,
        uid=uid,
        namespace=NS,
        name=NAME,
        user=user,
        groups=groups,
        role_map=ROLES,
        key=KEY,
        now=NOW,
        content=content,
    )


def request(old: Mapping[str, str], name: str, body: Any) -> dict[str, str]:
    return {**old, name: body if isinstance(body, str) else dumps(body)}


# --------------------------------------------------------------------------------------------
# Signing


def test_signature_covers_every_field_and_the_uid() -> None:
    record = signed({"role": "security", "user": "bob", "version": "7", "at": "t"})
    assert signing.verify(record, UID, KEY)
    assert not signing.verify({**record, "user": "mallory"}, UID, KEY)
    assert not signing.verify(record, "another-uid", KEY)
    assert not signing.verify(record, UID, b"another-key")
    assert not signing.verify({k: v for k, v in record.items() if k != "sig"}, UID, KEY)
    assert not signing.verify(record, "", KEY), "an empty subject is never trusted"


def test_records_name_their_key_and_a_keyring_accepts_the_earlier_one() -> None:
    old_key, new_key = b"the key of last year", b"the key of this year"
    before = signed({"role": "security", "user": "bob", "version": "7", "at": "t"}, key=old_key)
    assert before["kid"] == signing.key_id(old_key) != signing.key_id(new_key)
    assert signing.key_id(old_key) not in old_key.hex(), "the id says which key, never the key"
    ring = signing.Keyring(new_key, previous=[old_key])
    assert signing.verify(before, UID, ring), "during the overlap the earlier key still verifies"
    after = signing.sign({"role": "product", "user": "carol", "version": "7", "at": "t"}, UID, ring)
    assert after["kid"] == signing.key_id(new_key), "new records are signed with the new key"
    assert signing.verify(after, UID, ring)
    assert not signing.verify({**after, "kid": signing.key_id(old_key)}, UID, ring), "kid is signed"
    # Once the earlier key is dropped its records no longer count: nothing fails open.
    assert not signing.verify(before, UID, signing.Keyring(new_key))
    annotations = {**created_by(), g.APPROVALS: dumps([approval("security", "bob")])}
    assert (
        g.read_records(
            annotations, UID, signing.Keyring(b"another key entirely"), content=CONTENT
        ).approvals
        == ()
    )


def test_canonical_form_ignores_key_order_and_the_signature() -> None:
    a = {"b": 1, "a": "x", "sig": "zz"}
    assert signing.canonical(a) == '{"a":"x","b":1}'
    assert signing.signature({"a": "x", "b": 1}, UID, KEY) == signing.signature(a, UID, KEY)


# --------------------------------------------------------------------------------------------
# read_records


def test_read_records_returns_signed_records_as_observations() -> None:
    waiver = signed(
        {
            "gate": "sbom",
            "reason": "scanner down",
            "user": "carol",
            "at": "2026-11-22T09:00:00Z",
            "expiresAt": "2026-11-23T09:00:00Z",
        }
    )
    revocation = signed({"id": "r1", "reason": "bad", "user": "dave", "at": "2026-11-22T09:10:00Z"})
    annotations = {
        **created_by(),
        g.APPROVALS: dumps([approval("security", "bob"), approval("product", "carol")]),
        g.WAIVERS: dumps([waiver]),
        g.REVOCATION: dumps(revocation),
    }
    records = g.read_records(annotations, UID, KEY, content=CONTENT)
    assert records.rejected == ()
    assert records.version_set_by == "alice"
    assert records.approvals == (
        Approval("security", "bob", datetime(2026, 11, 22, 9, 30, tzinfo=UTC), "7"),
        Approval("product", "carol", datetime(2026, 11, 22, 9, 30, tzinfo=UTC), "7"),
    )
    assert records.waivers == (
        g.Waiver(
            "sbom",
            "scanner down",
            "carol",
            datetime(2026, 11, 22, 9, tzinfo=UTC),
            datetime(2026, 11, 23, 9, tzinfo=UTC),
        ),
    )
    assert records.revoke == RevokeRequest(
        "r1", "bad", "dave", datetime(2026, 11, 22, 9, 10, tzinfo=UTC)
    )


FORGED = {"role": "security", "user": "bob", "version": "7", "at": "2026-11-22T09:30:00Z"}


@pytest.mark.parametrize(
    ("annotations", "rejected"),
    [
        pytest.param(
            {g.APPROVALS: dumps([FORGED])}, "rollwise.dev/approvals[0] ignored", id="unsigned"
        ),
        pytest.param(
            {g.APPROVALS: dumps([{**FORGED, "sig": "00" * 32}])},
            "rollwise.dev/approvals[0] ignored",
            id="forged-signature",
        ),
        pytest.param(
            {g.APPROVALS: dumps([signed(FORGED, key=b"someone-else")])},
            "rollwise.dev/approvals[0] ignored",
            id="other-key",
        ),
        pytest.param(
            {g.APPROVALS: dumps([signed(FORGED, subject="other-uid")])},
            "rollwise.dev/approvals[0] ignored",
            id="copied-from-another-object",
        ),
        pytest.param(
            {g.APPROVALS: dumps([{**signed(FORGED), "user": "mallory"}])},
            "rollwise.dev/approvals[0] ignored",
            id="edited-after-signing",
        ),
        pytest.param({g.APPROVALS: "[not json"}, "is not valid JSON", id="bad-json"),
        pytest.param({g.APPROVALS: "{}"}, "is not a JSON list", id="not-a-list"),
        pytest.param(
            {g.APPROVALS: dumps([signed({"role": "security", "user": "bob"})])},
            "needs a non-empty string 'at'",
            id="signed-but-incomplete",
        ),
        pytest.param(
            {g.VERSION_SET_BY: dumps(signed({"user": "a", "version": "7", "at": "t"}, "create:x"))},
            "rollwise.dev/version-set-by ignored",
            id="version-set-by-not-yet-bound-to-uid",
        ),
    ],
)
def test_records_without_a_valid_signature_are_ignored_and_named(
    annotations: dict[str, str], rejected: str
) -> None:
    records = g.read_records(annotations, UID, KEY, content=CONTENT)
    assert records.approvals == ()
    assert records.version_set_by is None
    assert len(records.rejected) == 1
    assert rejected in records.rejected[0]


def test_a_forged_entry_does_not_hide_the_signed_ones() -> None:
    annotations = {g.APPROVALS: dumps([FORGED, approval("product", "carol")])}
    records = g.read_records(annotations, UID, KEY, content=CONTENT)
    assert [a.user for a in records.approvals] == ["carol"]
    assert records.rejected == (
        "rollwise.dev/approvals[0] ignored: missing or bad signature "
        "(not written by this operator's webhook)",
    )


def test_without_a_key_no_record_counts() -> None:
    annotations = {**created_by(), g.APPROVALS: dumps([approval("security", "bob")])}
    records = g.read_records(annotations, UID, None, content=CONTENT)
    assert records.approvals == ()
    assert records.version_set_by is None
    assert records.rejected == (
        "rollwise.dev/version-set-by ignored: no record key configured",
        "rollwise.dev/approvals ignored: no record key configured",
    )


def test_a_raw_revoke_request_counts_with_an_unknown_user() -> None:
    annotations = {g.REVOKE: dumps({"id": "r9", "reason": "leak"})}
    records = g.read_records(annotations, UID, None, content=CONTENT, now=NOW)
    assert records.revoke == RevokeRequest("r9", "leak", None, NOW)
    assert g.read_records(annotations, UID, KEY, content=CONTENT).revoke == RevokeRequest(
        "r9", "leak", None, datetime(1970, 1, 1, tzinfo=UTC)
    )


def test_a_signed_revocation_wins_over_a_raw_request() -> None:
    revocation = signed({"id": "r1", "reason": "bad", "user": "dave", "at": "2026-11-22T09:10:00Z"})
    annotations = {g.REVOCATION: dumps(revocation), g.REVOKE: dumps({"id": "r2", "reason": "x"})}
    revoke = g.read_records(annotations, UID, KEY, content=CONTENT).revoke
    assert revoke is not None
    assert (revoke.id, revoke.user) == ("r1", "dave")


def test_a_malformed_raw_revoke_is_rejected() -> None:
    records = g.read_records({g.REVOKE: "yes please"}, UID, KEY, content=CONTENT)
    assert records.revoke is None
    assert records.rejected == ("rollwise.dev/revoke request ignored: is not valid JSON",)


# --------------------------------------------------------------------------------------------
# apply_waivers


def waiver(gate: str, hours: float, *, at_hours: float = 0.0, user: str = "carol") -> g.Waiver:
    at = NOW + timedelta(hours=at_hours)
    return g.Waiver(gate, "scanner down", user, at, at + timedelta(hours=hours))


@pytest.mark.parametrize(
    ("status", "waivers", "expected"),
    [
        pytest.param(GateStatus.FAILED, [waiver(GATE_SBOM, 24)], GateStatus.WAIVED, id="failed"),
        pytest.param(GateStatus.PENDING, [waiver(GATE_SBOM, 24)], GateStatus.WAIVED, id="pending"),
        pytest.param(GateStatus.PASSED, [waiver(GATE_SBOM, 24)], GateStatus.PASSED, id="passing"),
        pytest.param(GateStatus.FAILED, [waiver(GATE_ARTIFACT, 24)], GateStatus.FAILED, id="other"),
        pytest.param(GateStatus.FAILED, [], GateStatus.FAILED, id="none"),
    ],
)
def test_a_waiver_applies_to_its_gate_when_not_passing(
    status: GateStatus, waivers: list[g.Waiver], expected: GateStatus
) -> None:
    [result] = g.apply_waivers([GateResult(GATE_SBOM, status, "no sbom")], waivers, NOW)
    assert result.status is expected
    if expected is GateStatus.WAIVED:
        assert result.underlying is status
        assert result.waiver_expires_at == NOW + timedelta(hours=24)
        assert result.message.startswith("waived by carol until 2026-11-23T10:00:00Z")
        assert result.message.endswith(f"gate's own result: {status.value}: no sbom")


def test_the_latest_waiver_of_a_gate_counts_even_when_expired() -> None:
    waivers = [waiver(GATE_SBOM, 48, user="old"), waiver(GATE_SBOM, 1, at_hours=-5, user="new")]
    later = sorted(waivers, key=lambda w: w.at)[-1]
    [result] = g.apply_waivers([GateResult(GATE_SBOM, GateStatus.FAILED, "x")], waivers, NOW)
    assert result.waiver_expires_at == later.expires_at
    assert result.status is GateStatus.WAIVED
    assert "old" in result.message, "the waiver given last is the one that counts"
    expired = g.apply_waivers(
        [GateResult(GATE_SBOM, GateStatus.FAILED, "x")], waivers, NOW + timedelta(hours=49)
    )[0]
    assert expired.message.startswith("waiver by old expired at")
    assert expired.underlying is GateStatus.FAILED


@pytest.mark.parametrize(
    ("now", "head"),
    [
        pytest.param(
            NOW + timedelta(hours=24, seconds=-1),
            "waived by carol until 2026-11-23T10:00:00Z: scanner down",
            id="one-second-before-expiry-waived",
        ),
        pytest.param(
            NOW + timedelta(hours=24),
            "waiver by carol expired at 2026-11-23T10:00:00Z (scanner down)",
            id="at-the-expiry-instant-expired",
        ),
    ],
)
def test_a_waiver_is_worded_expired_from_its_expiry_instant(now: datetime, head: str) -> None:
    [result] = g.apply_waivers(
        [GateResult(GATE_SBOM, GateStatus.FAILED, "x")], [waiver(GATE_SBOM, 24)], now
    )
    assert result.message.startswith(f"{head}; gate's own result: Failed")


def test_waivers_never_cover_approvals() -> None:
    w = g.Waiver(GATE_APPROVALS, "r", "u", NOW, NOW + timedelta(hours=1))
    result = GateResult(GATE_APPROVALS, GateStatus.PENDING)
    assert g.apply_waivers([result], [w], NOW) == (result,)


# --------------------------------------------------------------------------------------------
# admit: CREATE


def create(annotations: Mapping[str, str], *, name: str = NAME) -> signing.Admission:
    return adm.admit(
        operation="CREATE",
        old_annotations=None,
        new_annotations=annotations,
        spec_version="7",
        old_spec_version=None,
        uid="",
        namespace=NS,
        name=name,
        user="alice",
        groups=("ml",),
        role_map=ROLES,
        key=KEY,
        now=NOW,
        content=CONTENT,
        generate_name="fraud-",
    )


def test_create_stamps_who_set_the_version_and_the_next_update_binds_it_to_the_uid() -> None:
    created = create({})
    assert created.allowed
    stored = {k: v for k, v in created.patch.items() if v is not None}
    record = json.loads(stored[g.VERSION_SET_BY])
    assert {k: record[k] for k in ("user", "version", "at")} == {
        "user": "alice",
        "version": "7",
        "at": "2026-11-22T10:00:00Z",
    }
    assert g.read_records(stored, UID, KEY, content=CONTENT).version_set_by is None, (
        "not yet bound to the uid"
    )
    pending = g.read_records(stored, UID, KEY, content=CONTENT, namespace=NS, name=NAME)
    assert (pending.version_set_by, pending.rejected) == (None, ()), "known, not forged"
    elsewhere = g.read_records(stored, UID, KEY, content=CONTENT, namespace=NS, name="another")
    assert len(elsewhere.rejected) == 1
    bound = update(stored, stored, user="system:serviceaccount:rollwise:operator")
    assert bound.allowed
    after = {**stored, **{k: v for k, v in bound.patch.items() if v is not None}}
    assert g.read_records(after, UID, KEY, content=CONTENT).version_set_by == "alice"


def test_a_generated_name_is_bound_through_generate_name() -> None:
    stored = {k: v for k, v in create({}, name="").patch.items() if v is not None}
    bound = adm.admit(
        operation="UPDATE",
        old_annotations=stored,
        new_annotations=stored,
        spec_version="7",
        old_spec_version="7",
        uid=UID,
        namespace=NS,
        name="fraud-x8k2p",
        generate_name="fraud-",
        user="op",
        groups=(),
        role_map=ROLES,
        key=KEY,
        now=NOW,
        content=CONTENT,
    )
    after = {**stored, **{k: v for k, v in bound.patch.items() if v is not None}}
    assert g.read_records(after, UID, KEY, content=CONTENT).version_set_by == "alice"


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        pytest.param(
            {g.APPROVALS: "[]"},
            "rollwise.dev/approvals is written by the operator's webhook; remove it",
            id="record",
        ),
        pytest.param(
            {g.VERSION_SET_BY: dumps({"user": "bob"})},
            "rollwise.dev/version-set-by is written by the operator's webhook",
            id="version-set-by",
        ),
        pytest.param(
            {g.APPROVE: dumps({"id": "1", "role": "security", "version": "7"})},
            "rollwise.dev/approve applies to an existing ModelRelease",
            id="request",
        ),
    ],
)
def test_create_refuses_records_and_requests(annotations: dict[str, str], message: str) -> None:
    answer = create(annotations)
    assert not answer.allowed
    assert message in answer.message


# --------------------------------------------------------------------------------------------
# admit: UPDATE


def test_an_approval_is_recorded_with_the_user_and_the_request_removed() -> None:
    old = created_by()
    answer = update(old, request(old, g.APPROVE, {"id": "a1", "role": "security", "version": "7"}))
    assert answer.allowed, answer.message
    assert answer.patch[g.APPROVE] is None
    [record] = json.loads(str(answer.patch[g.APPROVALS]))
    assert signing.verify(record, UID, KEY)
    assert {k: v for k, v in record.items() if k != "sig"} == {
        "role": "security",
        "user": "bob",
        "version": "7",
        "at": "2026-11-22T10:00:00Z",
        "content": CONTENT,
        "kid": signing.key_id(KEY),
    }


def test_approvals_append_and_keep_what_was_there() -> None:
    old = {**created_by(), g.APPROVALS: dumps([approval("product", "carol")])}
    answer = update(old, request(old, g.APPROVE, {"id": "a2", "role": "security", "version": "7"}))
    assert answer.allowed, answer.message
    after = {**old, g.APPROVALS: str(answer.patch[g.APPROVALS])}
    assert [
        (a.role, a.user) for a in g.read_records(after, UID, KEY, content=CONTENT).approvals
    ] == [
        ("product", "carol"),
        ("security", "bob"),
    ]


def test_the_same_approval_again_is_accepted_without_a_second_record() -> None:
    old = {**created_by(), g.APPROVALS: dumps([approval("security", "bob")])}
    answer = update(old, request(old, g.APPROVE, {"id": "a3", "role": "security", "version": "7"}))
    assert answer.allowed
    assert answer.patch == {g.APPROVE: None}


APPROVE_SEC = {"id": "a1", "role": "security", "version": "7"}
#: The content after someone changed the serving template.
CHANGED = {**CONTENT, "spec.serving.template": "sha256:" + "3" * 64}


@pytest.mark.parametrize(
    ("given_for", "counts", "voided"),
    [
        pytest.param(CONTENT, True, (), id="same-content"),
        pytest.param(
            CHANGED,
            False,
            (VoidedApproval("security", "bob", ("spec.serving.template",)),),
            id="template-changed",
        ),
        pytest.param(
            {**CONTENT, "spec.artifact": "sha256:" + "4" * 64},
            False,
            (VoidedApproval("security", "bob", ("spec.artifact",)),),
            id="field-added",
        ),
        pytest.param(None, False, (VoidedApproval("security", "bob"),), id="unbound-record"),
    ],
)
def test_an_approval_counts_only_for_the_content_it_was_given_for(
    given_for: Mapping[str, str] | None, counts: bool, voided: tuple[VoidedApproval, ...]
) -> None:
    record = approval("security", "bob", content=given_for or {})
    if given_for is None:
        record = signed({k: v for k, v in record.items() if k not in ("sig", "content")})
    annotations = {**created_by(), g.APPROVALS: dumps([record])}
    records = g.read_records(annotations, UID, KEY, content=CONTENT)
    assert bool(records.approvals) is counts
    assert records.voided == voided
    assert records.rejected == (), "a voided approval is genuine: it is not a rejected record"
    unusable = g.read_records(annotations, UID, KEY, content=None)
    assert unusable.approvals == (), "no approval counts for a spec that cannot be read"


def test_a_changed_release_is_approved_again_and_the_old_approval_holds_no_role() -> None:
    old = {**created_by(), g.APPROVALS: dumps([approval("security", "bob")])}
    again = update(old, request(old, g.APPROVE, APPROVE_SEC), content=CHANGED)
    assert again.allowed, again.message
    assert len(json.loads(str(again.patch[g.APPROVALS]))) == 2, "recorded for the new content"
    other = update(
        old,
        request(old, g.APPROVE, APPROVE_SEC),
        user="carol",
        groups=("sec-team",),
        content=CHANGED,
    )
    assert other.allowed, "bob's approval of other content does not hold the security role"
    after = {**old, g.APPROVALS: str(other.patch[g.APPROVALS])}
    records = g.read_records(after, UID, KEY, content=CHANGED)
    assert [(a.role, a.user) for a in records.approvals] == [("security", "carol")]


def test_an_approval_of_a_spec_that_cannot_be_read_is_refused() -> None:
    old = created_by()
    answer = update(old, request(old, g.APPROVE, APPROVE_SEC), content=None)
    assert not answer.allowed
    assert "the release's spec is not valid" in answer.message


def test_the_person_who_set_the_version_may_not_waive_its_gates() -> None:
    old = created_by(user="carol")
    answer = update(old, request(old, g.WAIVE, WAIVE_SBOM), user="carol", groups=("pm",))
    assert not answer.allowed
    assert "carol set version 7 and may not waive its gates" in answer.message
    unknown = update({}, request({}, g.WAIVE, WAIVE_SBOM))
    assert not unknown.allowed, "without who set the version, four eyes cannot be checked"


def test_a_waiver_by_the_person_who_set_the_version_never_counts() -> None:
    mine = signed(
        {
            "gate": "sbom",
            "reason": "trust me",
            "user": "alice",
            "at": "2026-11-22T09:00:00Z",
            "expiresAt": "2026-11-23T09:00:00Z",
        }
    )
    records = g.read_records({**created_by(), g.WAIVERS: dumps([mine])}, UID, KEY, content=CONTENT)
    assert records.waivers == ()
    assert records.rejected == (
        f"{g.WAIVERS}[0] ignored: alice set the version and may not waive its gates (four eyes)",
    )


@pytest.mark.parametrize(
    ("old", "body", "kwargs", "message"),
    [
        pytest.param(
            created_by(user="bob"),
            APPROVE_SEC,
            {},
            "bob set version 7 and may not approve it",
            id="self-approval",
        ),
        pytest.param(
            created_by(),
            {**APPROVE_SEC, "role": "product"},
            {},
            "bob may not approve as product: the role is given to members of pm",
            id="role-not-mapped",
        ),
        pytest.param(
            created_by(),
            {**APPROVE_SEC, "role": "legal"},
            {},
            "bob may not approve as legal",
            id="unknown-role",
        ),
        pytest.param(
            {**created_by(), g.APPROVALS: dumps([approval("product", "bob")])},
            APPROVE_SEC,
            {},
            "bob already approved as product; another person must approve as security",
            id="four-eyes",
        ),
        pytest.param(
            {**created_by(), g.APPROVALS: dumps([approval("security", "carol")])},
            APPROVE_SEC,
            {},
            "security already approved by carol",
            id="role-twice",
        ),
        pytest.param(
            created_by(),
            {**APPROVE_SEC, "version": "6"},
            {},
            "this approval is for version 6 but the release is version 7",
            id="other-version",
        ),
        pytest.param({}, APPROVE_SEC, {}, "who set this version is not recorded", id="no-setter"),
        pytest.param(
            {
                g.VERSION_SET_BY: dumps(
                    signed({"user": "carol", "version": "7", "at": "t"}, "other-uid")
                )
            },
            APPROVE_SEC,
            {},
            "who set this version is not recorded",
            id="copied-setter",
        ),
        pytest.param(
            created_by(), "{not json", {}, "rollwise.dev/approve is not valid JSON", id="json"
        ),
        pytest.param(created_by(), [1], {}, "rollwise.dev/approve is not a JSON object", id="list"),
        pytest.param(
            created_by(), {"role": "security", "version": "7"}, {}, "needs an 'id'", id="no-id"
        ),
        pytest.param(
            created_by(), {"id": "1", "version": "7"}, {}, "needs a non-empty 'role'", id="no-role"
        ),
    ],
)
def test_refused_approvals(
    old: dict[str, str], body: Any, kwargs: dict[str, Any], message: str
) -> None:
    answer = update(old, request(old, g.APPROVE, body), **kwargs)
    assert not answer.allowed
    assert message in answer.message
    assert answer.patch == {}


@pytest.mark.parametrize(
    ("record", "hint"),
    [
        pytest.param(g.VERSION_SET_BY, "(it records who created the release)", id="version-set-by"),
        pytest.param(g.APPROVALS, "approve", id="approvals"),
        pytest.param(g.REVOCATION, "revoke", id="revocation"),
        pytest.param(g.WAIVERS, "waive", id="waivers"),
    ],
)
def test_editing_or_removing_a_record_directly_is_refused(record: str, hint: str) -> None:
    old = {**created_by(), record: dumps(approval("security", "bob"))}
    edited = update(old, {**old, record: dumps([FORGED])})
    assert not edited.allowed
    assert edited.message == (
        f"{record} is written by the operator's webhook; use kubectl rollwise {hint}"
    )
    removed = update(old, {k: v for k, v in old.items() if k != record})
    assert not removed.allowed
    assert removed.message == (
        f"{record} is written by the operator's webhook and cannot be removed; "
        "keep it when replacing the ModelRelease"
    )


def test_a_request_left_unchanged_is_not_attributed_to_this_user() -> None:
    old = {**created_by(), g.APPROVE: dumps(APPROVE_SEC)}
    answer = update(old, dict(old))
    assert answer.allowed
    assert answer.patch == {}


def test_a_waiver_is_recorded_with_its_expiry() -> None:
    old = created_by()
    body = {"id": "w1", "gate": "sbom", "reason": "scanner down", "for": "24h"}
    answer = update(old, request(old, g.WAIVE, body), user="carol", groups=("pm",))
    assert answer.allowed, answer.message
    assert answer.patch[g.WAIVE] is None
    after = {**old, g.WAIVERS: str(answer.patch[g.WAIVERS])}
    assert g.read_records(after, UID, KEY, content=CONTENT).waivers == (
        g.Waiver("sbom", "scanner down", "carol", NOW, NOW + timedelta(hours=24)),
    )


WAIVE_SBOM = {"id": "w1", "gate": "sbom", "reason": "scanner down", "for": "24h"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            {**WAIVE_SBOM, "gate": "approvals"}, "gate 'approvals' cannot be waived", id="approvals"
        ),
        pytest.param(
            {**WAIVE_SBOM, "gate": "lint"},
            "gate 'lint' cannot be waived; waivable gates: artifact-digest, sbom, policy-digest, "
            "model-card, security-decision, signature, attestation, revalidate-by, freeze-window",
            id="unknown",
        ),
        pytest.param({**WAIVE_SBOM, "reason": " "}, "needs a non-empty 'reason'", id="no-reason"),
        pytest.param({**WAIVE_SBOM, "for": "1d"}, "invalid duration '1d'", id="bad-duration"),
        pytest.param({**WAIVE_SBOM, "for": "169h"}, "at most 168h", id="too-long"),
        pytest.param({**WAIVE_SBOM, "for": "0s"}, "more than 0s", id="zero"),
        pytest.param({**WAIVE_SBOM, "reason": "x" * 501}, "longer than 500", id="long-reason"),
    ],
)
def test_refused_waivers(body: dict[str, Any], message: str) -> None:
    old = created_by()
    answer = update(old, request(old, g.WAIVE, body))
    assert not answer.allowed
    assert message in answer.message


def with_stored_waivers(count: int) -> dict[str, str]:
    """The annotations of a release that already carries ``count`` signed waiver records."""
    entry = {"gate": "sbom", "user": "carol", "at": "2026-11-22T09:00:00Z"}
    records = [
        signed({**entry, "reason": f"waiver {i}", "expiresAt": "2026-11-22T09:30:00Z"})
        for i in range(count)
    ]
    return {**created_by(), g.WAIVERS: dumps(records)}


@pytest.mark.parametrize(
    ("stored", "allowed"),
    [
        pytest.param(49, True, id="49-stored-the-50th-is-recorded"),
        pytest.param(50, False, id="50-stored-the-51st-is-refused"),
    ],
)
def test_a_release_keeps_at_most_50_waivers(stored: int, allowed: bool) -> None:
    old = with_stored_waivers(stored)
    answer = update(old, request(old, g.WAIVE, WAIVE_SBOM), user="carol", groups=("pm",))
    assert answer.allowed is allowed, answer.message
    if allowed:
        assert len(json.loads(str(answer.patch[g.WAIVERS]))) == 50
    else:
        assert answer.message.endswith("already has 50 waivers; release a new version")
        assert g.WAIVERS not in answer.patch


@pytest.mark.parametrize(
    ("duration", "allowed"),
    [
        pytest.param("168h", True, id="7-days-exactly-allowed"),
        pytest.param("604801s", False, id="7-days-and-1s-refused"),
        pytest.param("1s", True, id="1s-allowed"),
    ],
)
def test_a_waiver_lasts_at_most_7_days(duration: str, allowed: bool) -> None:
    old = created_by()
    body = {**WAIVE_SBOM, "for": duration}
    answer = update(old, request(old, g.WAIVE, body), user="carol", groups=("pm",))
    assert answer.allowed is allowed, answer.message


def test_a_revoke_is_recorded_with_its_user_and_is_idempotent() -> None:
    old = created_by()
    body = {"id": "r1", "reason": "bias found"}
    answer = update(old, request(old, g.REVOKE, body), user="dave", groups=())
    assert answer.allowed, answer.message
    after = {**old, g.REVOCATION: str(answer.patch[g.REVOCATION])}
    assert g.read_records(after, UID, KEY, content=CONTENT).revoke == RevokeRequest(
        "r1", "bias found", "dave", NOW
    )
    again = update(after, request(after, g.REVOKE, body), user="erin")
    assert again.allowed
    assert again.patch == {g.REVOKE: None}
    other = update(after, request(after, g.REVOKE, {"id": "r2", "reason": "x"}))
    assert not other.allowed
    assert other.message == "already revoked by dave at 2026-11-22T10:00:00Z: bias found"


def test_a_version_change_restamps_who_set_it() -> None:
    old = created_by()
    answer = update(old, dict(old), version="8", old_version="7", user="carol")
    after = {**old, g.VERSION_SET_BY: str(answer.patch[g.VERSION_SET_BY])}
    assert g.read_records(after, UID, KEY, content=CONTENT).version_set_by == "carol"


def test_other_operations_pass_untouched() -> None:
    answer = adm.admit(
        operation="DELETE",
        old_annotations=created_by(),
        new_annotations=None,
        spec_version="7",
        old_spec_version="7",
        uid=UID,
        namespace=NS,
        name=NAME,
        user="bob",
        groups=(),
        role_map=ROLES,
        key=KEY,
        now=NOW,
        content=CONTENT,
    )
    assert answer == signing.Admission(allowed=True)


def _malformed_cases() -> list[Any]:
    cases = []
    for name, field in ((g.APPROVE, "role"), (g.WAIVE, "gate"), (g.REVOKE, "reason")):
        short = name.removeprefix("rollwise.dev/")
        cases += [
            pytest.param(
                name,
                "not json",
                f"{name} is not valid JSON; use kubectl rollwise",
                id=f"{short}-json",
            ),
            pytest.param(
                name,
                "[1]",
                f"{name} is not a JSON object; use kubectl rollwise",
                id=f"{short}-list",
            ),
            pytest.param(
                name,
                dumps({"reason": "x"}),
                f"{name} needs an 'id' string of 1-128 characters; use kubectl rollwise",
                id=f"{short}-no-id",
            ),
            pytest.param(
                name,
                dumps({"id": "x" * 129, "reason": "x"}),
                f"{name} needs an 'id' string of 1-128 characters; use kubectl rollwise",
                id=f"{short}-id-129",
            ),
            pytest.param(
                name,
                dumps({"id": "r1"}),
                f"{name} needs a non-empty {field!r}",
                id=f"{short}-no-{field}",
            ),
        ]
    cases.append(
        pytest.param(
            g.APPROVE,
            dumps({"id": "r1", "role": "security"}),
            f"{g.APPROVE} needs a non-empty 'version'",
            id="approve-no-version",
        )
    )
    return cases


@pytest.mark.parametrize(("name", "body", "message"), _malformed_cases())
def test_a_malformed_request_is_refused_naming_the_annotation(
    name: str, body: str, message: str
) -> None:
    old = created_by()
    answer = update(old, {**old, name: body}, user="carol", groups=("pm", "sec-team"))
    assert not answer.allowed
    assert answer.message == message
    assert answer.patch == {}


def test_records_are_stored_in_canonical_json() -> None:
    """Sorted keys, no spaces: the same records always serialize to the same annotation."""
    old = created_by()
    answer = update(old, request(old, g.WAIVE, WAIVE_SBOM), user="carol", groups=("pm",))
    stored = str(answer.patch[g.WAIVERS])
    assert stored == json.dumps(json.loads(stored), sort_keys=True, separators=(",", ":"))
    assert stored.startswith('[{"at":')


def test_every_record_annotation_has_its_refusal_case() -> None:
    assert set(g.RECORD_ANNOTATIONS) == {g.VERSION_SET_BY, g.APPROVALS, g.REVOCATION, g.WAIVERS}


def test_the_webhook_gates_list_matches_the_core() -> None:
    assert set(g.WAIVABLE_GATES) == {
        GATE_ARTIFACT,
        GATE_SBOM,
        "policy-digest",
        "model-card",
        "security-decision",
        "signature",
        "attestation",
        "revalidate-by",
        GATE_FREEZE,
    }
