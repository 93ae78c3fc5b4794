"""The cluster policy in the ModelRelease pass: registries named by the operator's settings,
model ownership, roles and gates the policy requires, and approvals bound to what runs.

Same in-memory world as ``test_release.py``; approvals are records signed the way the webhook
signs them (``core.governance.sign``), bound to the content of the spec the approver saw.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rollwise.adapters.registry.base import AliasStore
from rollwise.core.modelrelease.governance import APPROVALS, VERSION_SET_BY
from rollwise.core.modelrelease.policy import ApprovalRule, ClusterPolicy
from rollwise.core.modelrelease.spec import release_content
from rollwise.core.signing import sign
from rollwise.core.spec_release import ModelReleaseSpec
from tests.unit.runtime.test_release import NS, World, release_body, stage

KEY = b"k" * 32


def approved(body: dict[str, Any], *roles_users: tuple[str, str]) -> None:
    """Signs approvals of the body's current spec (and who set its version) onto it."""
    uid = body["metadata"]["uid"]
    content = release_content(ModelReleaseSpec.model_validate(body["spec"]))
    records = [
        sign(
            {
                "role": role,
                "user": user,
                "version": body["spec"]["version"],
                "at": "2026-11-02T08:30:00Z",
                "content": content,
            },
            uid,
            KEY,
        )
        for role, user in roles_users
    ]
    annotations = body["metadata"]["annotations"]
    annotations[APPROVALS] = json.dumps(records)
    setter = {"user": "alice", "version": body["spec"]["version"], "at": "2026-11-02T08:00:00Z"}
    annotations[VERSION_SET_BY] = json.dumps(sign(setter, uid, KEY))


def world(policy: ClusterPolicy) -> World:
    w = World()
    w.ports.record_key = KEY
    w.ports.policy = policy
    return w


def condition(w: World, kind: str) -> dict[str, Any]:
    return next(c for c in w.status().get("conditions", []) if c["type"] == kind)


# ------------------------------------------------------------------ registries and owners


@pytest.mark.parametrize(
    ("store", "message"),
    [
        pytest.param(
            {"registry": "other"},
            "spec.alias.store.mlflow.registry: unknown registry 'other' (the operator's "
            "settings name: main)",
            id="unknown-registry",
        ),
        pytest.param(
            {"trackingURI": "http://internal-svc/admin#"},
            "spec.alias.store.mlflow.trackingURI: trackingURI is not accepted",
            id="an-address",
        ),
        pytest.param({}, "spec.alias.store.mlflow: registry is required", id="no-registry"),
    ],
)
def test_an_mlflow_store_outside_the_settings_is_invalid_and_never_built(
    store: dict[str, Any], message: str
) -> None:
    w = world(ClusterPolicy(registries=frozenset({"main"}), model_owners=(("fraud", NS),)))
    built: list[object] = []

    def never(spec: ModelReleaseSpec, namespace: str) -> AliasStore:
        built.append(spec)
        raise AssertionError("no store is built for an invalid spec")

    w.ports.alias_store_for = never
    w.add(release_body(alias={"store": {"mlflow": store}}))
    for _ in range(3):
        w.run()
    invalid = condition(w, "InvalidSpec")
    assert invalid["status"] == "True"
    assert message in invalid["message"]
    assert w.cluster.reasons("fraud-7") == ["InvalidSpec"]
    assert built == []
    assert w.objects.children == {}, "nothing was done"


@pytest.mark.parametrize(
    ("owners", "message"),
    [
        pytest.param(
            (("fraud*", "team-b"),),
            "spec.model: model 'fraud' is owned by namespace team-b",
            id="owned-elsewhere",
        ),
        pytest.param((), "spec.model: no namespace owns model 'fraud'", id="owned-by-nobody"),
    ],
)
def test_only_the_namespace_owning_a_model_moves_its_alias_in_a_shared_registry(
    owners: tuple[tuple[str, str], ...], message: str
) -> None:
    w = world(ClusterPolicy(registries=frozenset({"main"}), model_owners=owners))
    w.add(release_body(alias={"store": {"mlflow": {"registry": "main"}}}))
    w.run()
    assert message in condition(w, "InvalidSpec")["message"]
    assert w.objects.children == {}
    assert w.store.writes == []


def test_the_owning_namespace_releases_through_its_registry() -> None:
    w = world(ClusterPolicy(registries=frozenset({"main"}), model_owners=(("fraud*", NS),)))
    body = release_body(alias={"store": {"mlflow": {"registry": "main"}}})
    w.add(body)
    w.settle(lambda: stage(w) == "Staging")
    w.child_serves("fraud-production", body)
    w.settle(lambda: stage(w) == "Production")


# ------------------------------------------------------------------ roles and approvals


def test_the_cluster_policy_requires_roles_the_spec_leaves_out() -> None:
    w = world(
        ClusterPolicy(
            required_roles=("security",),
            namespaces={"sandbox": ApprovalRule(required_roles=())},
        )
    )
    body = release_body(approvals={"requiredRoles": []})
    w.add(body)
    w.settle(lambda: stage(w) == "Staging")
    w.child_serves("fraud-production", body)
    for _ in range(4):
        w.run()
    assert stage(w) == "Staging", "requiredRoles: [] does not pass the approvals gate"
    gate = next(g for g in w.status()["gates"] if g["name"] == "approvals")
    assert gate["message"] == "waiting for approval by security"
    approved(body, ("security", "bob"))
    w.settle(lambda: stage(w) == "Production")


def test_a_change_after_approval_is_never_applied_and_voids_the_approvals() -> None:
    w = world(ClusterPolicy(required_roles=("security",)))
    body = release_body()
    w.add(body)
    w.settle(lambda: stage(w) == "Staging")
    w.child_serves("fraud-production", body)
    approved(body, ("security", "bob"))
    w.store.down = True  # the flip fails: the release waits in Approved
    w.settle(lambda: stage(w) == "Approved")
    child = w.objects.children["fraud-production"]
    approved_image = child["spec"]["template"]["spec"]["containers"][0]["image"]
    assert approved_image == "srv:1"

    # After the approvers looked, someone swaps the image.
    body["spec"]["serving"]["template"]["spec"]["containers"][0]["image"] = "evil:1"
    body["metadata"]["generation"] = 2
    w.store.down = False
    for _ in range(4):
        w.run()
    assert stage(w) == "Approved"
    assert child["spec"]["template"]["spec"]["containers"][0]["image"] == "srv:1"
    assert w.store.writes == [], "the alias was not flipped"
    reasons = w.cluster.reasons("fraud-7")
    assert reasons.count("ContentChangedAfterApproval") == 1
    assert reasons.count("ApprovalVoided") == 1
    events = {e.reason.name: e.message for _, e in w.cluster.events}
    assert (
        "spec.serving.template changed after version 7 was approved"
        in (events["ContentChangedAfterApproval"])
    )
    assert (
        "approval as security by bob no longer counts: spec.serving.template changed"
        in (events["ApprovalVoided"])
    )
    assert "spec.serving.template changed after approval" in w.status()["message"]

    # Reverting the change restores what was approved: the release goes on.
    body["spec"]["serving"]["template"]["spec"]["containers"][0]["image"] = "srv:1"
    body["metadata"]["generation"] = 3
    w.settle(lambda: stage(w) == "Production")
    assert child["spec"]["template"]["spec"]["containers"][0]["image"] == "srv:1"


def test_approvals_of_earlier_content_do_not_count_before_approval_either() -> None:
    w = world(ClusterPolicy(required_roles=("security",)))
    body = release_body()
    w.add(body)
    w.settle(lambda: stage(w) == "Staging")
    approved(body, ("security", "bob"))
    body["spec"]["artifact"]["uri"] = "file:///models/fraud/7-rebuilt"
    body["metadata"]["generation"] = 2
    w.child_serves("fraud-production", body)
    for _ in range(4):
        w.run()
    assert stage(w) == "Staging"
    gate = next(g for g in w.status()["gates"] if g["name"] == "approvals")
    assert "ignored: security by bob (given before spec.artifact changed)" in gate["message"]
    assert w.cluster.reasons("fraud-7").count("ApprovalVoided") == 1


def test_the_cluster_policy_adds_the_gates_it_requires() -> None:
    w = world(ClusterPolicy(required_roles=(), required_gates=("sbom", "policy-digest")))
    w.add(release_body())
    w.run()
    names = [g["name"] for g in w.status()["gates"]]
    assert names == [
        "artifact-digest",
        "sbom",
        "policy-digest",
        "policy-accept",
        "approvals",
        "policy-promote",
        "policy-canary",
        "freeze-window",
    ]
