"""The webhook records overrides on Rollouts with the identity the API server authenticated,
and refuses what two-person confirmation forbids.

The real kopf operator machinery runs the real handlers (``rollwise.runtime.admission``, wired
from settings exactly as ``main`` wires it) against the lab cluster's kube-apiserver, which
authenticates alice, bob and carol by token and calls kopf's managed mutating webhook over
HTTPS. Each person
acts with real kubectl; every effect is read back through the API and checked with
``rollwise.core.overrides.read_overrides`` and the record key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.lab.testing.cluster_fixtures import manifest
from rollwise.adapters.releases import RELEASE_LABEL
from rollwise.core import overrides as o
from rollwise.core.observations import revision_of
from rollwise.runtime.settings import WEBHOOK_CONFIGURATION
from tests.lab.test_admission_webhook import (
    ROOT,
    People,
    eventually,
    operator,
    people,  # noqa: F401 - the people of the test, as a fixture
)

pytestmark = pytest.mark.lab

EXAMPLE = ROOT / "examples" / "rollout-gateway-api" / "rollout.yaml"
ROLLOUT = "rollouts.rollwise.dev"
NAME = "demo"


def rollout_refused(proc: Any, message: str, *, guarded: bool = True) -> None:
    """Refused by the Rollout webhook: the guarded entry once the Rollout carries overrides."""
    assert proc.returncode != 0, f"expected a refusal, kubectl said: {proc.stdout}"
    hook = f"{'guarded-' if guarded else ''}rollout-records.{WEBHOOK_CONFIGURATION}"
    expected = f'admission webhook "{hook}" denied the request: {message}'
    assert expected in proc.stderr, proc.stderr


def annotate(where: People, user: str, key: str, value: Any, name: str = NAME) -> Any:
    text = value if isinstance(value, str) else json.dumps(value)
    return where.kubectl(user)(
        "annotate", ROLLOUT, name, f"{key}={text}", "--overwrite", namespace=where.namespace
    )


def get_rollout(where: People, name: str = NAME) -> dict[str, Any]:
    proc = where.kubectl("operator")("get", ROLLOUT, name, "-o", "json", namespace=where.namespace)
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


def test_overrides_on_a_rollout_are_recorded_with_identity_and_need_a_second_person(
    people: People,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    lab = people
    admin = lab.kubectl("operator")
    rollout = yaml.safe_load(EXAMPLE.read_text())
    rollout["metadata"]["namespace"] = lab.namespace
    op = operator(tmp_path, people)
    runner, key = op.runner, op.key
    with runner:
        config = eventually(
            lambda: (
                (
                    p := admin(
                        "get", "mutatingwebhookconfiguration", WEBHOOK_CONFIGURATION, "-o", "json"
                    )
                )
                and p.returncode == 0
                and len((c := json.loads(p.stdout)).get("webhooks") or []) == 3
                and c
            ),
            what="kopf's managed configuration with its three webhooks",
        )
        created = lab.kubectl("alice")(
            "create", "-f", "-", input=manifest(rollout), namespace=lab.namespace
        )
        assert created.returncode == 0, created.stderr
        plain = {**rollout, "metadata": {**rollout["metadata"], "name": "plain"}}
        made = lab.kubectl("alice")(
            "create", "-f", "-", input=manifest(plain), namespace=lab.namespace
        )
        assert made.returncode == 0, made.stderr
        before_overrides = get_rollout(lab)
        promote = annotate(
            lab, "alice", o.OVERRIDE, {"id": "o1", "decision": "promote", "reason": "noisy"}
        )
        self_confirm = annotate(lab, "alice", o.CONFIRM_OVERRIDE, {"id": "o1"})
        unknown = annotate(lab, "carol", o.CONFIRM_OVERRIDE, {"id": "o7"})
        confirm = annotate(lab, "bob", o.CONFIRM_OVERRIDE, {"id": "o1"})
        second_confirm = annotate(lab, "carol", o.CONFIRM_OVERRIDE, {"id": "o1"})
        hold = annotate(
            lab, "carol", o.OVERRIDE, {"id": "o2", "decision": "hold", "reason": "look first"}
        )
        no_reason = annotate(lab, "carol", o.OVERRIDE, {"id": "o3", "decision": "rollback"})
        forged = annotate(lab, "alice", o.OVERRIDES, "[]")
        recorded = get_rollout(lab)

    # With the operator gone, writes to a Rollout without overrides still pass (failurePolicy
    # Ignore) but nothing is recorded: the request stays a raw annotation, which the operator
    # never counts. A Rollout that carries overrides is guarded: its writes are refused, so
    # nobody can drop or reorder its overrides while the webhook cannot see it.
    unrecorded = annotate(
        lab, "alice", o.OVERRIDE, {"id": "o4", "decision": "rollback", "reason": "late"}, "plain"
    )
    after = get_rollout(lab, "plain")
    guarded_write = annotate(lab, "alice", "note", "while the webhook is down")
    untouched = get_rollout(lab)

    assert runner.exception is None
    hooks = {h["name"]: h for h in config["webhooks"]}
    rollout_hook = hooks[f"rollout-records.{WEBHOOK_CONFIGURATION}"]
    assert rollout_hook["failurePolicy"] == "Ignore"
    assert [r["resources"] for r in rollout_hook["rules"]] == [["rollouts"]]
    guarded_hook = hooks[f"guarded-rollout-records.{WEBHOOK_CONFIGURATION}"]
    assert guarded_hook["failurePolicy"] == "Fail"
    assert guarded_hook["objectSelector"] == {
        "matchExpressions": [{"key": o.GUARDED_LABEL, "operator": "Exists"}]
    }
    assert hooks[f"records.{WEBHOOK_CONFIGURATION}"]["failurePolicy"] == "Fail"
    assert o.GUARDED_LABEL not in (before_overrides["metadata"].get("labels") or {})
    assert recorded["metadata"]["labels"][o.GUARDED_LABEL] == "true", "guarded once it has some"

    assert promote.returncode == 0, promote.stderr
    rollout_refused(
        self_confirm, "alice made override o1 and may not confirm it; a second person must confirm"
    )
    rollout_refused(unknown, "no override o7 on this rollout")
    assert confirm.returncode == 0, confirm.stderr
    rollout_refused(second_confirm, "override o1 is already confirmed by bob")
    assert hold.returncode == 0, hold.stderr
    rollout_refused(no_reason, "rollwise.dev/override needs a non-empty 'reason'")
    rollout_refused(
        forged, "rollwise.dev/overrides is written by the operator's webhook; use kubectl rollwise"
    )

    annotations = recorded["metadata"]["annotations"]
    assert not set(o.OVERRIDE_REQUESTS) & set(annotations), "requests are removed"
    found = o.read_overrides(annotations, recorded["metadata"]["uid"], key)
    assert found.rejected == ()
    revision = revision_of(recorded["spec"]["template"])
    assert [
        (r.id, r.decision.value, r.user, r.confirmed_by, r.target) for r in found.overrides
    ] == [
        ("o1", "promote", "alice", "bob", revision),
        ("o2", "hold", "carol", None, revision),
    ]
    in_effect = o.in_effect(found.overrides, revision)
    assert in_effect is not None
    assert in_effect.id == "o2"

    assert unrecorded.returncode == 0, unrecorded.stderr
    left = after["metadata"]["annotations"]
    assert json.loads(left[o.OVERRIDE])["id"] == "o4"
    assert o.OVERRIDES not in left
    assert guarded_write.returncode != 0, "a guarded Rollout's writes fail closed"
    assert untouched["metadata"]["annotations"][o.OVERRIDES] == annotations[o.OVERRIDES]


def test_nobody_but_the_operator_promotes_a_releases_child_rollout(
    people: People,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    lab = people
    admin = lab.kubectl("operator")
    rollout = yaml.safe_load(EXAMPLE.read_text())
    rollout["metadata"] |= {
        "namespace": lab.namespace,
        "labels": {**rollout["metadata"].get("labels", {}), RELEASE_LABEL: "fraud-7"},
    }
    op = operator(tmp_path, people)
    with op.runner:
        eventually(
            lambda: (
                len(
                    json.loads(
                        admin(
                            "get",
                            "mutatingwebhookconfiguration",
                            WEBHOOK_CONFIGURATION,
                            "-o",
                            "json",
                        ).stdout
                        or "{}"
                    ).get("webhooks")
                    or []
                )
                == 3
            ),
            what="kopf's managed configuration with its three webhooks",
        )
        created = admin("create", "-f", "-", input=manifest(rollout), namespace=lab.namespace)
        assert created.returncode == 0, created.stderr
        child = get_rollout(lab)
        retry = annotate(lab, "alice", "rollwise.dev/retry", "again")
        full = annotate(lab, "bob", "rollwise.dev/promote-full", "now")
        abort = annotate(lab, "bob", "rollwise.dev/abort", "stop")
        unguard = lab.kubectl("alice")(
            "label", ROLLOUT, NAME, f"{o.GUARDED_LABEL}-", namespace=lab.namespace
        )
    assert op.runner.exception is None
    assert child["metadata"]["labels"][o.GUARDED_LABEL] == "true", "the webhook guards a child"
    how = "kubectl rollwise override modelrelease/fraud-7 --decision promote"
    release = "on the child Rollout of ModelRelease fraud-7 is the release's to decide"
    rollout_refused(retry, f"rollwise.dev/retry {release}")
    assert how in retry.stderr
    rollout_refused(full, f"rollwise.dev/promote-full {release}")
    assert abort.returncode == 0, "stopping is always allowed"
    rollout_refused(unguard, f"{o.GUARDED_LABEL} is kept by the operator's webhook", guarded=False)
