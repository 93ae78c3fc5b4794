"""The cluster policy of ModelReleases (pure): reading it from the settings, resolving it for
one release, what it refuses in a spec, and the content an approval is bound to."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rollwise.core.modelrelease.actions import EnsureChildRollout, FlipAlias
from rollwise.core.modelrelease.observations import ReleaseObservations
from rollwise.core.modelrelease.policy import (
    DEFAULT_REQUIRED_ROLES,
    ApprovalRule,
    ClusterPolicy,
    PolicyError,
    ReleaseRules,
    parse_cluster_policy,
)
from rollwise.core.modelrelease.release import decide_release
from rollwise.core.modelrelease.spec import changed_fields, release_content, validate_rules
from rollwise.core.modelrelease.status import ModelReleaseStatus, Stage
from rollwise.core.spec_release import ModelReleaseSpec
from tests.unit.core.modelrelease_builders import BASE_GATES, at, passed, raw_release

# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, ClusterPolicy(required_roles=DEFAULT_REQUIRED_ROLES), id="unset"),
        pytest.param({}, ClusterPolicy(required_roles=DEFAULT_REQUIRED_ROLES), id="empty"),
        pytest.param(
            {"requiredRoles": [], "requiredGates": ["sbom"]},
            ClusterPolicy(required_roles=(), required_gates=("sbom",)),
            id="roles-and-gates",
        ),
        pytest.param(
            {
                "namespaces": {"sandbox": {"requiredRoles": []}},
                "modelOwners": {"fraud-*": "team-a", "recommender": "team-b"},
            },
            ClusterPolicy(
                required_roles=DEFAULT_REQUIRED_ROLES,
                namespaces={"sandbox": ApprovalRule(required_roles=())},
                model_owners=(("fraud-*", "team-a"), ("recommender", "team-b")),
            ),
            id="namespaces-and-owners",
        ),
    ],
)
def test_parse_cluster_policy(value: Any, expected: ClusterPolicy) -> None:
    assert parse_cluster_policy(value, "policy") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param([], "policy must be a mapping", id="not-a-mapping"),
        pytest.param({"requiredRole": []}, "unknown key(s) requiredRole", id="typo"),
        pytest.param({"requiredRoles": "security"}, "must be a list of roles", id="roles-text"),
        pytest.param({"requiredRoles": ["Sec"]}, "'Sec' is not a valid role", id="role-case"),
        pytest.param(
            {"requiredGates": ["approvals"]}, "approvals cannot be required", id="gate-approvals"
        ),
        pytest.param(
            {"namespaces": {"team-a": {"requiredRoles": [], "x": 1}}},
            "policy.namespaces.team-a: unknown key(s) x",
            id="namespace-key",
        ),
        pytest.param(
            {"modelOwners": {"fraud": ["team-a", "team-b"]}},
            "is not one namespace name",
            id="two-owners",
        ),
    ],
)
def test_bad_cluster_policies_are_refused_naming_the_key(value: Any, message: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_cluster_policy(value, "policy")
    assert message in str(raised.value)


POLICY = ClusterPolicy(
    required_roles=("security", "product"),
    required_gates=("sbom",),
    namespaces={
        "sandbox": ApprovalRule(required_roles=()),
        "regulated": ApprovalRule(required_gates=("sbom", "policy-digest")),
    },
    registries=frozenset({"main"}),
    model_owners=(("fraud-*", "team-a"), ("fraud-eu", "team-eu")),
)


@pytest.mark.parametrize(
    ("namespace", "model", "expected"),
    [
        pytest.param(
            "team-a",
            "fraud-us",
            ReleaseRules("team-a", ("security", "product"), ("sbom",), POLICY.registries, "team-a"),
            id="cluster-default",
        ),
        pytest.param(
            "sandbox",
            "fraud-us",
            ReleaseRules("sandbox", (), ("sbom",), POLICY.registries, "team-a"),
            id="namespace-roles",
        ),
        pytest.param(
            "regulated",
            "other",
            ReleaseRules(
                "regulated",
                ("security", "product"),
                ("sbom", "policy-digest"),
                POLICY.registries,
                None,
            ),
            id="namespace-gates-no-owner",
        ),
        pytest.param(
            "team-a",
            "fraud-eu",
            ReleaseRules(
                "team-a", ("security", "product"), ("sbom",), POLICY.registries, "team-eu"
            ),
            id="exact-owner-before-pattern",
        ),
    ],
)
def test_rules_for_a_release(namespace: str, model: str, expected: ReleaseRules) -> None:
    assert POLICY.rules_for(namespace, model) == expected


# --------------------------------------------------------------------------- validation


def with_store(store: dict[str, Any]) -> ModelReleaseSpec:
    raw = raw_release()
    raw["alias"] = {"store": store}
    return ModelReleaseSpec.model_validate(raw)


OWNED = ReleaseRules("team-a", registries=frozenset({"main"}), model_owner="team-a")


@pytest.mark.parametrize(
    ("store", "rules", "errors"),
    [
        pytest.param({"configMap": {"name": "aliases"}}, ReleaseRules(), [], id="configmap"),
        pytest.param({"mlflow": {"registry": "main"}}, OWNED, [], id="owned-known-registry"),
        pytest.param(
            {"mlflow": {"registry": "main"}},
            ReleaseRules("team-a", model_owner="team-a"),
            [
                "spec.alias.store.mlflow.registry: unknown registry 'main' (the operator's "
                "settings name: none)"
            ],
            id="no-registry-configured",
        ),
        pytest.param(
            {"mlflow": {"trackingURI": "http://internal-svc/admin#", "registry": "main"}},
            OWNED,
            [
                "spec.alias.store.mlflow.trackingURI: trackingURI is not accepted; name a "
                "registry of the operator's settings with registry"
            ],
            id="tracking-uri",
        ),
        pytest.param(
            {"mlflow": {"registry": "main"}},
            ReleaseRules("team-b", registries=frozenset({"main"}), model_owner="team-a"),
            [
                "spec.model: model 'fraud' is owned by namespace team-a "
                "(releasePolicy.modelOwners); only its owner may move its alias in a shared "
                "registry"
            ],
            id="owned-elsewhere",
        ),
    ],
)
def test_validate_rules(store: dict[str, Any], rules: ReleaseRules, errors: list[str]) -> None:
    assert validate_rules(with_store(store), rules) == errors


# --------------------------------------------------------------------------- content


def changed(path: str, value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(raw_release())
    target = raw
    *parents, last = path.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value
    return raw


BASE = release_content(ModelReleaseSpec.model_validate(raw_release()))


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        pytest.param(raw_release(), (), id="same"),
        pytest.param(
            changed("serving.template.spec.containers", [{"name": "s", "image": "evil:1"}]),
            ("spec.serving.template",),
            id="image",
        ),
        pytest.param(changed("artifact.uri", "s3://other"), ("spec.artifact",), id="artifact"),
        pytest.param(changed("serving.replicas", 9), ("spec.serving.replicas",), id="replicas"),
        pytest.param(
            changed("gates.sbom", {"url": "https://x/sbom.json"}), ("spec.gates",), id="gates"
        ),
        pytest.param(
            changed("alias.store", {"configMap": {"name": "elsewhere"}}),
            ("spec.alias",),
            id="alias-store",
        ),
        pytest.param(changed("canary.steps", [{"setWeight": 100}]), (), id="canary-is-not-content"),
        pytest.param(changed("change.ticket", "CHG-9"), (), id="ticket-is-not-content"),
    ],
)
def test_release_content_names_what_decides_what_runs(
    raw: dict[str, Any], fields: tuple[str, ...]
) -> None:
    assert changed_fields(BASE, release_content(ModelReleaseSpec.model_validate(raw))) == fields


def test_a_release_approved_for_other_content_does_nothing_of_the_change() -> None:
    before = ModelReleaseSpec.model_validate(raw_release())
    after = changed("serving.template.spec.containers", [{"name": "s", "image": "evil:1"}])
    status = ModelReleaseStatus(stage=Stage.APPROVED, approved_content=release_content(before))
    obs = ReleaseObservations(name="fraud-7", generation=2, gates=(*BASE_GATES, *passed()))
    decision = decide_release(after, status, obs, at(10))
    assert not any(isinstance(a, EnsureChildRollout | FlipAlias) for a in decision.actions)
    assert [e.reason.name for e in decision.events] == ["ContentChangedAfterApproval"]
    assert decision.status.content_changed == ["spec.serving.template"]
    again = decide_release(after, decision.status, obs, at(20))
    assert again.events == (), "reported once"
