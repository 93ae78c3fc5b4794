"""Overrides: reading signed records, which override is in effect, what it means for a
Rollout, and the webhook's decisions on override and confirmation requests."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from rollwise.core import overrides as o
from rollwise.core.modelrelease.overrides import release_override
from rollwise.core.observations import Hold, ManualRequest, RequestKind
from rollwise.core.postpromotion import PostPromotionStatus, WatchPhase
from rollwise.core.regression import KpiRecord, KpiState
from rollwise.core.rollout import overrides as ro
from rollwise.core.rollout.status import PauseReason, RolloutStatus
from rollwise.core.signing import Keyring, sign
from rollwise.core.spec import RegressionAction

KEY = b"record-key-0123456789"
UID = "uid-1"
NOW = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
AT = "2026-11-22T09:00:00Z"
REV, OLD_REV = "abcdef0123", "0123456789"


def entry(
    id_: str = "o1",
    decision: str = "promote",
    *,
    user: str = "alice",
    target: str = REV,
    confirmed_by: str | None = None,
    uid: str = UID,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": id_,
        "decision": decision,
        "reason": "metric is noisy",
        "user": user,
        "at": AT,
        "target": target,
    }
    if confirmed_by is not None:
        body |= {"confirmedBy": confirmed_by, "confirmedAt": AT}
    return sign(body, uid, KEY)


def records(*entries: Mapping[str, Any]) -> dict[str, str]:
    return {o.OVERRIDES: json.dumps(list(entries))}


def override(
    decision: o.OverrideDecision = o.OverrideDecision.PROMOTE,
    *,
    confirmed_by: str | None = None,
    target: str = REV,
) -> o.Override:
    return o.Override(
        id="o1",
        decision=decision,
        reason="why",
        user="alice",
        at=NOW,
        target=target,
        confirmed_by=confirmed_by,
        confirmed_at=NOW if confirmed_by else None,
    )


# ------------------------------------------------------------------ reading


@pytest.mark.parametrize(
    ("annotations", "key", "ids", "rejected"),
    [
        pytest.param({}, KEY, [], 0, id="none"),
        pytest.param(records(entry("o1"), entry("o2", "hold")), KEY, ["o1", "o2"], 0, id="signed"),
        pytest.param(records(entry("o1"), entry("o2", uid="other")), KEY, ["o1"], 1, id="copied"),
        pytest.param(
            records({**entry("o1"), "user": "mallory"}), KEY, [], 1, id="edited-after-signing"
        ),
        pytest.param(records(sign({"id": "o1"}, UID, KEY)), KEY, [], 1, id="signed-but-malformed"),
        pytest.param(records(entry("o1", "approve")), KEY, [], 1, id="signed-but-unknown-decision"),
        pytest.param({o.OVERRIDES: "{not json"}, KEY, [o.UNVERIFIED_ID], 1, id="not-json"),
        pytest.param(records(entry("o1")), None, [], 1, id="no-key"),
    ],
)
def test_read_overrides(
    annotations: dict[str, str], key: bytes | None, ids: list[str], rejected: int
) -> None:
    found = o.read_overrides(annotations, UID, key)
    assert [x.id for x in found.overrides] == ids
    assert len(found.rejected) == rejected


def test_read_overrides_keeps_the_confirmation() -> None:
    [one] = o.read_overrides(records(entry(confirmed_by="bob")), UID, KEY).overrides
    assert (one.decision, one.user, one.confirmed_by, one.confirmed) == (
        o.OverrideDecision.PROMOTE,
        "alice",
        "bob",
        True,
    )
    assert one.at == datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def test_a_self_confirmation_does_not_count() -> None:
    assert not override(confirmed_by="alice").confirmed


@pytest.mark.parametrize(
    ("targets", "target", "expected"),
    [
        pytest.param([], REV, None, id="none"),
        pytest.param([("o1", REV), ("o2", REV)], REV, "o2", id="newest-wins"),
        pytest.param([("o1", REV), ("o2", OLD_REV)], REV, "o1", id="other-target-ignored"),
        pytest.param([("o1", OLD_REV)], REV, None, id="only-older-revision"),
    ],
)
def test_in_effect(targets: list[tuple[str, str]], target: str, expected: str | None) -> None:
    overrides = tuple(
        o.Override(
            id=i,
            decision=o.OverrideDecision.HOLD,
            reason="r",
            user="u",
            at=NOW,
            target=t,
        )
        for i, t in targets
    )
    found = o.in_effect(overrides, target)
    assert (found.id if found else None) == expected


# ------------------------------------------------------------------ the Rollout's view

ROLLED_BACK = RolloutStatus(stable_revision=OLD_REV, rolled_back_revision=REV)
INCONCLUSIVE = RolloutStatus(
    stable_revision=OLD_REV,
    canary_revision=REV,
    current_step_index=1,
    pause_reason=PauseReason.ANALYSIS_INCONCLUSIVE,
)
RUNNING = RolloutStatus(stable_revision=OLD_REV, canary_revision=REV, current_step_index=1)
HANDLED = RUNNING.model_copy(update={"handled_requests": {o.HANDLED_KEY: "o1"}})


def _watch(action: RegressionAction, state: KpiState) -> PostPromotionStatus:
    return PostPromotionStatus(
        phase=WatchPhase.REGRESSED,
        revision=OLD_REV,
        previous_revision="older",
        started_at=NOW,
        ends_at=NOW,
        action=action,
        kpis=[KpiRecord(name="error-rate", reason="error_rate_regression", state=state)],
    )


#: A new revision (REV) waits on the confirmed regression of the stable one (OLD_REV).
REGRESSION_HELD = RolloutStatus(
    stable_revision=OLD_REV, post_promotion=_watch(RegressionAction.HOLD, KpiState.CONFIRMED)
)
#: The same regression, cleared: nothing holds any more.
REGRESSION_CLEARED = REGRESSION_HELD.model_copy(
    update={"post_promotion": _watch(RegressionAction.HOLD, KpiState.CLEARED)}
)
#: A regression confirmed with action alert holds nothing.
REGRESSION_ALERTED = REGRESSION_HELD.model_copy(
    update={"post_promotion": _watch(RegressionAction.ALERT, KpiState.CONFIRMED)}
)
WAITING = (
    "promote override by alice waits for a second person's confirmation: "
    "kubectl rollwise override rollout/web --confirm o1"
)
PROMOTE, HOLD, ROLLBACK = o.OverrideDecision


@pytest.mark.parametrize(
    ("found", "status", "expected"),
    [
        pytest.param(None, RUNNING, ro.RolloutOverride(), id="no-override"),
        pytest.param(
            override(HOLD),
            RUNNING,
            ro.RolloutOverride(hold=Hold(id="o1", user="alice", reason="why")),
            id="hold",
        ),
        pytest.param(
            override(HOLD),
            HANDLED,
            ro.RolloutOverride(hold=Hold(id="o1", user="alice", reason="why")),
            id="hold-lasts",
        ),
        pytest.param(
            override(ROLLBACK),
            RUNNING,
            ro.RolloutOverride(requests=(ManualRequest(RequestKind.ABORT, "o1"),)),
            id="rollback-aborts",
        ),
        pytest.param(override(ROLLBACK), HANDLED, ro.RolloutOverride(), id="rollback-once"),
        pytest.param(
            override(PROMOTE),
            RUNNING,
            ro.RolloutOverride(requests=(ManualRequest(RequestKind.PROMOTE_FULL, "o1"),)),
            id="promote-healthy-canary-at-once",
        ),
        pytest.param(
            override(PROMOTE),
            None,
            ro.RolloutOverride(requests=(ManualRequest(RequestKind.PROMOTE_FULL, "o1"),)),
            id="promote-no-status",
        ),
        pytest.param(
            override(PROMOTE),
            ROLLED_BACK,
            ro.RolloutOverride(waiting=WAITING),
            id="promote-after-failure-waits",
        ),
        pytest.param(
            override(PROMOTE),
            INCONCLUSIVE,
            ro.RolloutOverride(waiting=WAITING),
            id="promote-inconclusive-waits",
        ),
        pytest.param(
            override(PROMOTE, confirmed_by="alice"),
            ROLLED_BACK,
            ro.RolloutOverride(waiting=WAITING),
            id="self-confirmed-still-waits",
        ),
        pytest.param(
            override(PROMOTE, confirmed_by="bob"),
            ROLLED_BACK,
            ro.RolloutOverride(
                requests=(
                    ManualRequest(RequestKind.RETRY, "o1"),
                    ManualRequest(RequestKind.PROMOTE_FULL, "o1"),
                )
            ),
            id="confirmed-retries-and-promotes",
        ),
        pytest.param(
            override(PROMOTE, confirmed_by="bob"),
            ROLLED_BACK.model_copy(update={"handled_requests": {o.HANDLED_KEY: "o1"}}),
            ro.RolloutOverride(),
            id="confirmed-promote-once",
        ),
        pytest.param(
            override(HOLD, target=OLD_REV), RUNNING, ro.RolloutOverride(), id="other-revision"
        ),
        pytest.param(
            override(PROMOTE),
            REGRESSION_HELD,
            ro.RolloutOverride(waiting=WAITING),
            id="promote-past-regression-hold-waits",
        ),
        pytest.param(
            override(PROMOTE, confirmed_by="alice"),
            REGRESSION_HELD,
            ro.RolloutOverride(waiting=WAITING),
            id="regression-hold-self-confirmed-still-waits",
        ),
        pytest.param(
            override(PROMOTE, confirmed_by="bob"),
            REGRESSION_HELD,
            ro.RolloutOverride(
                requests=(
                    ManualRequest(RequestKind.PROMOTE, "o1", user="alice", confirmed_by="bob"),
                )
            ),
            id="confirmed-lifts-regression-hold",
        ),
        pytest.param(
            override(PROMOTE, confirmed_by="bob"),
            REGRESSION_HELD.model_copy(update={"handled_requests": {o.HANDLED_KEY: "o1"}}),
            ro.RolloutOverride(),
            id="regression-hold-lifted-once",
        ),
        pytest.param(
            override(PROMOTE),
            REGRESSION_CLEARED,
            ro.RolloutOverride(requests=(ManualRequest(RequestKind.PROMOTE_FULL, "o1"),)),
            id="cleared-regression-holds-nothing",
        ),
        pytest.param(
            override(PROMOTE),
            REGRESSION_ALERTED,
            ro.RolloutOverride(requests=(ManualRequest(RequestKind.PROMOTE_FULL, "o1"),)),
            id="alerted-regression-holds-nothing",
        ),
        pytest.param(
            override(HOLD),
            REGRESSION_HELD,
            ro.RolloutOverride(hold=Hold(id="o1", user="alice", reason="why")),
            id="hold-override-of-held-revision-is-a-hold",
        ),
    ],
)
def test_rollout_effect(
    found: o.Override | None, status: RolloutStatus | None, expected: ro.RolloutOverride
) -> None:
    assert ro.rollout_effect(found, name="web", template_hash=REV, status=status) == expected


# ------------------------------------------------------------------ admission


def admit(
    old: Mapping[str, str],
    new: Mapping[str, str],
    *,
    user: str = "bob",
    operation: str = "UPDATE",
    target: str = REV,
) -> o.Admission:
    return o.admit_overrides(
        kind=o.ROLLOUT,
        operation=operation,
        old_annotations=old,
        new_annotations=new,
        target=target,
        uid=UID,
        name="web",
        user=user,
        key=KEY,
        now=NOW,
    )


def request(body: Any) -> str:
    return body if isinstance(body, str) else json.dumps(body)


def overriding(body: Any, old: Mapping[str, str] | None = None) -> dict[str, str]:
    return {**(old or {}), o.OVERRIDE: request(body)}


def confirming(override_id: str, old: Mapping[str, str]) -> dict[str, str]:
    return {**old, o.CONFIRM_OVERRIDE: json.dumps({"id": override_id})}


HOLD_REQUEST = {"id": "o9", "decision": "hold", "reason": "checking a dashboard"}
PENDING = records(entry("o1"))


def test_an_override_is_recorded_with_identity_and_target() -> None:
    answer = admit({}, overriding(HOLD_REQUEST), user="carol")
    assert answer.allowed, answer.message
    assert answer.patch[o.OVERRIDE] is None
    [recorded] = o.read_overrides(dict(answer.patch), UID, KEY).overrides  # type: ignore[arg-type]
    assert (recorded.id, recorded.decision, recorded.user, recorded.target) == (
        "o9",
        o.OverrideDecision.HOLD,
        "carol",
        REV,
    )
    assert recorded.at == NOW


def test_a_confirmation_by_a_second_person_is_recorded() -> None:
    answer = admit(PENDING, confirming("o1", PENDING), user="bob")
    assert answer.allowed, answer.message
    assert answer.patch[o.CONFIRM_OVERRIDE] is None
    [one] = o.read_overrides(dict(answer.patch), UID, KEY).overrides  # type: ignore[arg-type]
    assert (one.user, one.confirmed_by, one.confirmed_at, one.confirmed) == (
        "alice",
        "bob",
        NOW,
        True,
    )


def test_the_oldest_records_go_first() -> None:
    old = records(*(entry(f"o{i}", "hold") for i in range(o.MAX_OVERRIDES)))
    answer = admit(old, overriding({**HOLD_REQUEST, "id": "new"}, old))
    assert answer.allowed, answer.message
    kept = json.loads(str(answer.patch[o.OVERRIDES]))["entries"]
    assert len(kept) == o.MAX_OVERRIDES
    assert [k["id"] for k in kept[:1]] == ["o1"]
    assert (kept[-1]["id"], kept[-1]["user"]) == ("new", "bob")


@pytest.mark.parametrize(
    ("old", "new", "user", "message"),
    [
        pytest.param(
            {},
            overriding({"id": "o2", "decision": "approve", "reason": "x"}),
            "bob",
            "rollwise.dev/override: 'decision' must be one of promote, hold, rollback, "
            "got 'approve'",
            id="unknown-decision",
        ),
        pytest.param(
            {},
            overriding({"id": "o2", "decision": "hold", "reason": " "}),
            "bob",
            "rollwise.dev/override needs a non-empty 'reason': say why, for the audit",
            id="no-reason",
        ),
        pytest.param(
            {},
            overriding({"id": "o2", "decision": "hold", "reason": "x" * 501}),
            "bob",
            "rollwise.dev/override: 'reason' is longer than 500 characters",
            id="long-reason",
        ),
        pytest.param(
            {},
            overriding("{bad"),
            "bob",
            "rollwise.dev/override is not valid JSON; use kubectl rollwise override",
            id="bad-json",
        ),
        pytest.param(
            {},
            overriding({"decision": "hold"}),
            "bob",
            "rollwise.dev/override needs an 'id' string of 1-128 characters; "
            "use kubectl rollwise override",
            id="no-id",
        ),
        pytest.param(
            PENDING,
            overriding({"id": "o1", "decision": "hold", "reason": "x"}, PENDING),
            "bob",
            "override id o1 is taken; use a new id",
            id="id-taken",
        ),
        pytest.param(
            PENDING,
            confirming("o1", PENDING),
            "alice",
            "alice made override o1 and may not confirm it; a second person must confirm",
            id="self-confirmation",
        ),
        pytest.param(
            PENDING,
            {**PENDING, o.CONFIRM_OVERRIDE: "{bad"},
            "bob",
            "rollwise.dev/confirm-override is not valid JSON; use kubectl rollwise override",
            id="confirm-bad-json",
        ),
        pytest.param(
            PENDING,
            confirming("o7", PENDING),
            "bob",
            "no override o7 on this rollout; kubectl rollwise status rollout/web lists the "
            "overrides",
            id="unknown-id",
        ),
        pytest.param(
            records(entry(confirmed_by="carol")),
            confirming("o1", records(entry(confirmed_by="carol"))),
            "bob",
            "override o1 is already confirmed by carol at 2026-11-22T09:00:00Z",
            id="already-confirmed",
        ),
        pytest.param(
            records(entry("o1", "hold")),
            confirming("o1", records(entry("o1", "hold"))),
            "bob",
            "override o1 is a hold, which takes effect without confirmation; only a promote "
            "is confirmed",
            id="confirming-a-hold",
        ),
        pytest.param(
            records(entry(target=OLD_REV)),
            confirming("o1", records(entry(target=OLD_REV))),
            "bob",
            f"override o1 was for revision {OLD_REV}, the rollout is now at revision {REV}; "
            "it no longer applies",
            id="confirming-an-old-revision",
        ),
        pytest.param(
            records(entry(uid="other")),
            confirming("o1", records(entry(uid="other"))),
            "bob",
            "no override o1 on this rollout; kubectl rollwise status rollout/web lists the "
            "overrides",
            id="confirming-a-forged-record",
        ),
        pytest.param(
            PENDING,
            records(entry(confirmed_by="bob")),
            "bob",
            "rollwise.dev/overrides is written by the operator's webhook; use kubectl "
            "rollwise override",
            id="editing-the-record",
        ),
        pytest.param(
            PENDING,
            {},
            "bob",
            "rollwise.dev/overrides is written by the operator's webhook and cannot be removed; "
            "keep it when replacing the rollout",
            id="removing-the-record",
        ),
    ],
)
def test_refused(old: dict[str, str], new: dict[str, str], user: str, message: str) -> None:
    answer = admit(old, new, user=user)
    assert not answer.allowed
    assert answer.message == message


@pytest.mark.parametrize(
    ("new", "message"),
    [
        pytest.param(
            overriding(HOLD_REQUEST),
            "rollwise.dev/override applies to an existing rollout; create it first",
            id="request",
        ),
        pytest.param(PENDING, "remove it from the manifest", id="record"),
    ],
)
def test_refused_on_create(new: dict[str, str], message: str) -> None:
    answer = admit({}, new, operation="CREATE")
    assert not answer.allowed
    assert message in answer.message


@pytest.mark.parametrize(
    ("old", "new", "user"),
    [
        pytest.param({}, {"app": "x"}, "bob", id="no-request"),
        pytest.param(
            overriding(HOLD_REQUEST), overriding(HOLD_REQUEST), "bob", id="request-left-unchanged"
        ),
        pytest.param(
            records(entry("o9", "hold", user="bob")),
            overriding(HOLD_REQUEST, records(entry("o9", "hold", user="bob"))),
            "bob",
            id="retried-override",
        ),
        pytest.param(
            records(entry(confirmed_by="bob")),
            confirming("o1", records(entry(confirmed_by="bob"))),
            "bob",
            id="retried-confirmation",
        ),
    ],
)
def test_nothing_recorded(old: dict[str, str], new: dict[str, str], user: str) -> None:
    answer = admit(old, new, user=user)
    assert answer.allowed, answer.message
    assert o.OVERRIDES not in answer.patch


def test_create_without_requests_is_allowed() -> None:
    assert admit({}, {"app": "x"}, operation="CREATE") == o.Admission(allowed=True)


# ------------------------------------------------------------------ the signed list


def numbered(id_: str, n: int, decision: str = "hold", **kwargs: Any) -> dict[str, Any]:
    """An entry as the webhook writes it in a signed list: numbered by its write."""
    plain = {k: v for k, v in entry(id_, decision, **kwargs).items() if k != "sig"}
    return sign({**plain, "n": n}, kwargs.get("uid", UID), KEY)


def signed_list(seq: int, *entries: dict[str, Any], uid: str = UID) -> dict[str, str]:
    return {o.OVERRIDES: o.signed_list(list(entries), seq, uid, KEY)}


HELD = signed_list(2, numbered("o1", 1, "promote"), numbered("o2", 2, "hold", user="carol"))


def _tampered_list(**change: Any) -> dict[str, str]:
    body = json.loads(HELD[o.OVERRIDES])
    body.update(change)
    return {o.OVERRIDES: json.dumps(body)}


def test_a_signed_list_is_read_in_the_order_of_its_counter() -> None:
    found = o.read_overrides(HELD, UID, KEY, last_seq=2)
    assert found.tampered == ""
    assert found.seq == 2
    assert [(x.id, x.n) for x in found.overrides] == [("o1", 1), ("o2", 2)]
    held = o.in_effect(found.overrides, REV)
    assert held is not None
    assert (held.id, held.decision) == ("o2", HOLD)
    # Order comes from the counters the webhook signed, not from where entries sit.
    swapped = signed_list(2, numbered("o2", 2, "hold"), numbered("o1", 1, "promote"))
    newest = o.in_effect(o.read_overrides(swapped, UID, KEY).overrides, REV)
    assert newest is not None
    assert newest.id == "o2"


@pytest.mark.parametrize(
    ("annotations", "last_seq", "reason"),
    [
        pytest.param(
            _tampered_list(entries=json.loads(HELD[o.OVERRIDES])["entries"][:1]),
            0,
            "the list's signature does not verify",
            id="hold-dropped",
        ),
        pytest.param(
            _tampered_list(entries=json.loads(HELD[o.OVERRIDES])["entries"][::-1]),
            0,
            "the list's signature does not verify",
            id="reordered",
        ),
        pytest.param(_tampered_list(seq=9), 0, "does not verify", id="counter-raised"),
        pytest.param(
            signed_list(1, numbered("o1", 1, "promote")),
            2,
            "the list (counter 1) is older than one already seen (2)",
            id="older-list-put-back",
        ),
        pytest.param(
            records(entry("o1", "promote")),
            2,
            "an unsigned list replaced the signed one",
            id="first-format-put-back",
        ),
        pytest.param({}, 2, "the override list (counter 2) was removed", id="removed"),
        pytest.param(
            {o.OVERRIDES: '{"version": 3}'}, 0, "it is not an override list", id="unknown-format"
        ),
        pytest.param(
            signed_list(2, numbered("o2", 2), uid="other-uid"),
            0,
            "does not verify",
            id="copied-from-another-object",
        ),
    ],
)
def test_a_list_that_does_not_verify_holds(
    annotations: dict[str, str], last_seq: int, reason: str
) -> None:
    found = o.read_overrides(annotations, UID, KEY, last_seq=last_seq)
    assert reason in found.tampered
    assert any(reason in r for r in found.rejected)
    effect = o.in_effect(found.overrides, REV)
    assert effect is not None
    assert effect.unverified
    assert effect.decision is HOLD
    rollout = ro.rollout_effect(effect, name="web", template_hash=REV, status=RUNNING)
    assert rollout.hold is not None
    assert rollout.hold.id == o.UNVERIFIED_ID
    assert rollout.requests == ()
    release = release_override(effect, name="fraud-7", version="7")
    assert release is not None
    assert release.decision == "hold"


def test_the_webhook_writes_a_signed_list_with_a_counter_above_every_one_seen() -> None:
    answer = o.admit_overrides(
        kind=o.MODELRELEASE,
        operation="UPDATE",
        old_annotations=HELD,
        new_annotations=overriding({**HOLD_REQUEST, "id": "o3"}, HELD),
        target=REV,
        uid=UID,
        name="fraud-7",
        user="bob",
        key=KEY,
        now=NOW,
        last_seq=5,
    )
    assert answer.allowed, answer.message
    stored = json.loads(str(answer.patch[o.OVERRIDES]))
    assert (stored["version"], stored["seq"]) == (o.LIST_VERSION, 6)
    found = o.read_overrides(dict(answer.patch), UID, KEY, last_seq=5)  # type: ignore[arg-type]
    assert found.tampered == ""
    assert [(x.id, x.n) for x in found.overrides] == [("o1", 1), ("o2", 2), ("o3", 6)]


def test_the_webhook_rewrites_the_first_format_numbered_by_position() -> None:
    old = records(entry("o1", "promote"), entry("o2", "hold"))
    answer = admit(old, overriding({**HOLD_REQUEST, "id": "o3"}, old))
    assert answer.allowed, answer.message
    found = o.read_overrides(dict(answer.patch), UID, KEY)  # type: ignore[arg-type]
    assert [(x.id, x.n) for x in found.overrides] == [("o1", 1), ("o2", 2), ("o3", 3)]
    assert found.seq == 3


def test_a_new_override_rebuilds_a_list_that_does_not_verify_from_its_signed_entries() -> None:
    broken = _tampered_list(entries=json.loads(HELD[o.OVERRIDES])["entries"][:1])
    answer = admit(broken, overriding({**HOLD_REQUEST, "id": "o3"}, broken))
    assert answer.allowed, answer.message
    found = o.read_overrides(dict(answer.patch), UID, KEY)  # type: ignore[arg-type]
    assert found.tampered == ""
    assert [x.id for x in found.overrides] == ["o1", "o3"]
    newest = o.in_effect(found.overrides, REV)
    assert newest is not None
    assert (newest.id, newest.user) == ("o3", "bob"), "recorded with the identity of who wrote"


# ------------------------------------------------------------------ a release's child Rollout

SUBJECT = "models/fraud-production"


@pytest.mark.parametrize(
    ("kind", "value", "pause", "allowed"),
    [
        pytest.param(RequestKind.RETRY, "r1", None, False, id="retry"),
        pytest.param(RequestKind.PROMOTE_FULL, "p1", None, False, id="promote-full"),
        pytest.param(
            RequestKind.PROMOTE, "p1", "AnalysisInconclusive", False, id="promote-past-analysis"
        ),
        pytest.param(RequestKind.PROMOTE, "p1", None, False, id="promote-a-running-step"),
        pytest.param(RequestKind.PROMOTE, "p1", "PauseStep", True, id="promote-a-pause-step"),
        pytest.param(RequestKind.ABORT, "a1", None, True, id="abort-is-always-safe"),
        pytest.param(
            RequestKind.PROMOTE_FULL,
            o.sign_request(RequestKind.PROMOTE_FULL, "revert-fraud-7", SUBJECT, KEY),
            None,
            True,
            id="the-operators-own-revert",
        ),
        pytest.param(
            RequestKind.RETRY,
            o.sign_request(RequestKind.PROMOTE_FULL, "revert-fraud-7", SUBJECT, KEY),
            None,
            False,
            id="a-signature-for-another-request",
        ),
        pytest.param(
            RequestKind.PROMOTE_FULL,
            o.sign_request(RequestKind.PROMOTE_FULL, "revert", "models/other-child", KEY),
            None,
            False,
            id="a-signature-for-another-rollout",
        ),
    ],
)
def test_requests_on_a_releases_child_rollout(
    kind: RequestKind, value: str, pause: str | None, allowed: bool
) -> None:
    answer = ro.admit_child_requests(
        old_annotations={},
        new_annotations={kind.annotation: value},
        pause_reason=pause,
        release="fraud-7",
        subject=SUBJECT,
        key=KEY,
    )
    assert answer.allowed is allowed
    if not allowed:
        assert "kubectl rollwise override modelrelease/fraud-7 --decision promote" in (
            answer.message
        )


def test_a_request_left_unchanged_on_a_child_is_not_this_writers() -> None:
    old = {RequestKind.RETRY.annotation: "r1"}
    answer = ro.admit_child_requests(
        old_annotations=old,
        new_annotations=dict(old),
        pause_reason=None,
        release="fraud-7",
        subject=SUBJECT,
        key=KEY,
    )
    assert answer.allowed


def test_a_list_signed_with_a_dropped_key_holds() -> None:
    """After a key rotation's overlap, what only the old key signed no longer verifies: the
    override list holds rather than losing its hold."""
    new_key = b"the record key after the rotation"
    rotating = o.read_overrides(HELD, UID, Keyring(new_key, previous=[KEY]))
    assert rotating.tampered == ""
    assert [x.id for x in rotating.overrides] == ["o1", "o2"]
    rotated = o.read_overrides(HELD, UID, Keyring(new_key))
    assert rotated.tampered
    held = o.in_effect(rotated.overrides, REV)
    assert held is not None
    assert (held.unverified, held.decision) == (True, HOLD)


def test_a_confirmation_for_an_older_version_of_a_release_is_refused_in_its_words() -> None:
    old = records(entry(target="7"))
    answer = o.admit_overrides(
        kind=o.MODELRELEASE,
        operation="UPDATE",
        old_annotations=old,
        new_annotations=confirming("o1", old),
        target="8",
        uid=UID,
        name="fraud-8",
        user="bob",
        key=KEY,
        now=NOW,
    )
    assert not answer.allowed
    assert answer.message == (
        "override o1 was for version 7, the modelrelease is now at version 8; it no longer applies"
    )


def test_the_record_is_stored_in_canonical_json() -> None:
    """Sorted keys, no spaces: the same records always serialize to the same annotation, so a
    re-applied manifest or a retried request changes nothing."""
    answer = admit(PENDING, confirming("o1", PENDING), user="bob")
    stored = str(answer.patch[o.OVERRIDES])
    assert stored == json.dumps(json.loads(stored), sort_keys=True, separators=(",", ":"))
    assert stored.startswith('{"entries":[{"at":')
