"""The ModelRelease pass under overrides: signed override records on the release are read,
the one in effect for its version is handed to the core, and its effects reach the fakes
(child Rollout paused while held, alias restored on rollback without the revocation ledger).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from rollwise.adapters.registry.base import AliasTarget
from rollwise.core import overrides as o
from rollwise.core.observations import RequestKind
from rollwise.core.signing import sign
from tests.unit.runtime.test_release import World, release_body, stage

KEY = b"0123456789abcdef-record-key"
UID = "uid-fraud-7"


def keyed() -> World:
    w = World()
    w.ports = replace(w.ports, record_key=KEY)
    return w


def record(w: World, id_: str, decision: str, *, key: bytes = KEY, version: str = "7") -> None:
    """Appends an override record as the webhook would write it."""
    annotations: dict[str, Any] = w.cluster.bodies["fraud-7"]["metadata"]["annotations"]
    entries = json.loads(annotations.get(o.OVERRIDES, "[]"))
    entry = {
        "id": id_,
        "decision": decision,
        "reason": "because",
        "user": "alice",
        "at": "2026-11-02T09:00:00Z",
        "target": version,
    }
    annotations[o.OVERRIDES] = json.dumps([*entries, sign(entry, UID, key)])


def in_production(w: World) -> dict[str, Any]:
    w.store.aliases[("fraud", "production")] = AliasTarget("6", "file:///models/fraud/6", None)
    body = release_body()
    w.add(body)
    w.settle(lambda: stage(w) == "Staging")
    w.child_serves("fraud-production", body)
    w.settle(lambda: stage(w) == "Production")
    return body


def test_a_rollback_override_restores_the_alias_without_revoking_the_version() -> None:
    w = keyed()
    in_production(w)
    record(w, "o1", "rollback")
    w.settle(
        lambda: (
            stage(w) == "RolledBack"
            and (alias := w.store.get("fraud", "production")) is not None
            and alias.version == "6"
        )
    )
    assert ("fraud", "7") not in w.objects.ledger
    assert "override o1 by alice: because" in w.status()["message"]
    assert "ReleaseRolledBack" in w.cluster.reasons("fraud-7")


def test_a_hold_pauses_the_child_rollout_and_the_stage_until_a_newer_override() -> None:
    w = keyed()
    body = release_body()
    w.add(body)
    w.settle(lambda: stage(w) == "Staging")
    record(w, "o1", "hold")
    w.run()
    child = w.objects.children["fraud-production"]
    assert child["spec"]["paused"] is True
    w.child_serves("fraud-production", body)
    for _ in range(4):
        w.run()
    assert stage(w) == "Staging"
    assert w.status()["phase"] == "Waiting"
    assert "held at stage Staging by alice (override o1)" in w.status()["message"]
    record(w, "o2", "promote")
    w.settle(lambda: stage(w) == "Approved")
    assert "paused" not in w.objects.children["fraud-production"]["spec"]


def test_an_override_of_another_version_or_key_is_ignored() -> None:
    w = keyed()
    body = release_body()
    w.add(body)
    w.settle(lambda: stage(w) == "Staging")
    record(w, "o1", "rollback", version="6")
    record(w, "o2", "rollback", key=b"another-key-0123456789")
    w.child_serves("fraud-production", body)
    w.settle(lambda: stage(w) == "Approved")
    assert w.cluster.reasons("fraud-7").count("RecordRejected") == 1


def record_signed(w: World, *decisions: tuple[str, str]) -> str:
    """Writes a signed override list (as the webhook does) and returns it."""
    annotations: dict[str, Any] = w.cluster.bodies["fraud-7"]["metadata"]["annotations"]
    entries = [
        sign(
            {
                "id": id_,
                "decision": decision,
                "reason": "because",
                "user": "carol",
                "at": "2026-11-02T09:00:00Z",
                "target": "7",
                "n": n,
            },
            UID,
            KEY,
        )
        for n, (id_, decision) in enumerate(decisions, start=1)
    ]
    annotations[o.OVERRIDES] = o.signed_list(entries, len(entries), UID, KEY)
    return str(annotations[o.OVERRIDES])


def test_a_hold_dropped_from_the_signed_list_still_holds() -> None:
    w = keyed()
    body = release_body()
    w.add(body)
    w.settle(lambda: stage(w) == "Staging")
    held = record_signed(w, ("o1", "promote"), ("o2", "hold"))
    w.run()
    assert w.status()["overridesSeq"] == 2
    # A write the webhook did not see drops the hold from the list.
    stored = json.loads(held)
    stored["entries"] = stored["entries"][:1]
    body["metadata"]["annotations"][o.OVERRIDES] = json.dumps(stored)
    w.child_serves("fraud-production", body)
    for _ in range(4):
        w.run()
    assert stage(w) == "Staging", "still held"
    assert "the list's signature does not verify" in w.status()["message"]
    assert w.objects.children["fraud-production"]["spec"]["paused"] is True
    assert w.cluster.reasons("fraud-7").count("RecordRejected") == 1


def test_an_older_signed_list_put_back_still_holds() -> None:
    w = keyed()
    body = release_body()
    w.add(body)
    w.settle(lambda: stage(w) == "Staging")
    older = record_signed(w, ("o1", "promote"))
    w.run()
    record_signed(w, ("o1", "promote"), ("o2", "hold"))
    w.run()
    assert w.status()["overridesSeq"] == 2
    body["metadata"]["annotations"][o.OVERRIDES] = older  # valid, but older than seen
    w.child_serves("fraud-production", body)
    for _ in range(4):
        w.run()
    assert stage(w) == "Staging"
    assert "is older than one already seen (2)" in w.status()["message"]


def test_the_operators_revert_of_a_child_rollout_is_signed_for_the_webhook() -> None:
    w = keyed()
    w.store.aliases[("fraud", "production")] = AliasTarget("6", "file:///models/fraud/6", None)
    body = release_body()
    w.add(body)
    w.objects.children["fraud-production"] = {
        "metadata": {"annotations": {}},
        "spec": {"template": {"metadata": {"labels": {"app": "fraud"}}, "spec": {}}},
        "status": {"phase": "Healthy", "stableRevision": "old"},
    }
    w.settle(lambda: stage(w) == "Staging")
    w.child_serves("fraud-production", body)
    w.settle(lambda: stage(w) == "Production")
    body["metadata"]["annotations"]["rollwise.dev/revoke"] = '{"id": "r1", "reason": "bias"}'
    w.settle(lambda: stage(w) == "Revoked")
    value = w.objects.children["fraud-production"]["metadata"]["annotations"][
        RequestKind.PROMOTE_FULL.annotation
    ]
    assert o.signed_request(RequestKind.PROMOTE_FULL, value, "ml/fraud-production", KEY)
    assert not o.signed_request(RequestKind.PROMOTE_FULL, value, "ml/another-rollout", KEY)
