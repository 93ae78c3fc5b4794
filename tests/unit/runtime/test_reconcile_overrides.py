"""The Rollout pass under overrides, with the in-memory fakes: signed override records on the
Rollout are read, the one in effect for the current revision reaches the core, and its effects
show in the fake cluster (no step, no query while held; the abort of a rollback; a promote that
waits for a second person, then retries and promotes)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from rollwise.core import overrides as o
from rollwise.core.signing import sign
from tests.unit.runtime.fakes import World, world
from tests.unit.runtime.test_reconcile import at_weight, healthy, revision

KEY = b"0123456789abcdef-record-key"
UID = "uid-1"


def keyed() -> World:
    w = world()
    w.ports = replace(w.ports, record_key=KEY)
    return w


def record(
    w: World,
    id_: str,
    decision: str,
    *,
    target: str,
    confirmed_by: str | None = None,
    key: bytes = KEY,
) -> None:
    """Writes an override record as the webhook would (replacing one of the same id)."""
    assert w.cluster.body is not None
    annotations: dict[str, Any] = w.cluster.body["metadata"]["annotations"]
    entries = [e for e in json.loads(annotations.get(o.OVERRIDES, "[]")) if e["id"] != id_]
    entry: dict[str, Any] = {
        "id": id_,
        "decision": decision,
        "reason": "because",
        "user": "alice",
        "at": "2026-01-01T12:00:00Z",
        "target": target,
    }
    if confirmed_by is not None:
        entry |= {"confirmedBy": confirmed_by, "confirmedAt": "2026-01-01T12:01:00Z"}
    annotations[o.OVERRIDES] = json.dumps([*entries, sign(entry, UID, key)])


def test_a_hold_stops_steps_and_queries_until_a_newer_override() -> None:
    w = keyed()
    healthy(w)
    new = revision("demo:2")
    w.cluster.edit_image("demo:2")
    at_weight(w, 5)
    record(w, "o1", "hold", target=new)
    w.run()
    assert w.status["phase"] == "Paused"
    assert "held by alice (override o1): because" in w.status["message"]
    asked = len(w.provider().queries)
    for _ in range(4):
        w.clock.advance(30)
        w.run()
    assert len(w.provider().queries) == asked, "nothing is measured while held"
    assert w.router.weight == 5
    assert w.status["currentStepIndex"] == 0
    assert "Paused" in w.cluster.reasons
    record(w, "o2", "promote", target=new)
    w.settle(lambda r: w.status.get("stableRevision") == new)
    assert "Resumed" in w.cluster.reasons
    assert "PromotedFull" in w.cluster.reasons


def test_a_rollback_override_aborts_once() -> None:
    w = keyed()
    healthy(w)
    new = revision("demo:2")
    w.cluster.edit_image("demo:2")
    at_weight(w, 5)
    record(w, "o1", "rollback", target=new)
    w.settle(lambda r: w.status.get("phase") == "Degraded")
    assert w.router.weight == 0
    assert w.status["aborted"] is True
    assert w.status["handledRequests"] == {"override": "o1"}
    for _ in range(3):
        w.clock.advance(30)
        w.run()
    assert w.cluster.reasons.count("Aborted") == 1


def test_a_promote_past_a_failed_analysis_waits_for_its_confirmation() -> None:
    w = keyed()
    healthy(w)
    new = revision("demo:2")
    w.provider().values[f'error_ratio{{revision="{new}"}}'] = 0.2
    w.cluster.edit_image("demo:2")
    w.settle(lambda r: w.status.get("rolledBackRevision") == new)
    record(w, "o1", "promote", target=new)
    for _ in range(3):
        w.clock.advance(30)
        w.run()
    assert w.status["rolledBackRevision"] == new
    assert w.router.weight == 0
    assert (
        "promote override by alice waits for a second person's confirmation: "
        "kubectl rollwise override rollout/demo --confirm o1"
    ) in w.status["message"]
    record(w, "o1", "promote", target=new, confirmed_by="bob")
    w.settle(lambda r: w.status.get("stableRevision") == new)
    assert "RetryRequested" in w.cluster.reasons
    assert "PromotedFull" in w.cluster.reasons


def test_records_of_another_revision_or_key_are_ignored() -> None:
    w = keyed()
    healthy(w)
    new = revision("demo:2")
    record(w, "o1", "hold", target=revision("demo:1"))
    record(w, "o2", "hold", target=new, key=b"another-key-0123456789")
    w.cluster.edit_image("demo:2")
    w.settle(lambda r: w.status.get("stableRevision") == new)
    assert "Paused" not in w.cluster.reasons
