"""Rego policies at the release's decision points, evaluated by the real interpreter (regopy):
allow and deny, undefined packages, broken bundles, the input document, and the evaluator
binding the evaluated bundle to ``spec.policyDigest``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from rollwise.adapters.gates.policy import policy_digest
from rollwise.adapters.gates.rego import Bundle, decision_input, evaluate, judge
from rollwise.core.modelrelease.observations import (
    GATE_POLICY_ACCEPT,
    GATE_POLICY_CANARY,
    GATE_POLICY_PROMOTE,
    Approval,
    GateResult,
)
from rollwise.core.modelrelease.status import GateRecord, GateStatus, ModelReleaseStatus
from rollwise.core.spec_release import ModelReleaseSpec
from tests.unit.adapters.test_gates_http import evaluator

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

REGISTRY = """
package registry.accept
import rego.v1

default allow := false
allow if count(deny) == 0

deny contains msg if {
    not startswith(input.change.ticket, "CHG-")
    msg := sprintf("change ticket %v is not a CHG ticket", [input.change.ticket])
}

deny contains msg if {
    some g in input.gates
    g.status == "Waived"
    g.name == "sbom"
    msg := "an SBOM waiver is not accepted here"
}
"""

PROMOTE = """
package registry.promote
import rego.v1

default allow := false
allow if {
    count(deny) == 0
    input.canary.passed
}

deny contains msg if {
    input.change.type == "emergency"
    not executive_approved
    msg := "an emergency change needs an executive approval"
}

deny contains msg if {
    input.release.spec.model in data.frozen_models
    msg := sprintf("model %s is frozen by the model-risk board", [input.release.spec.model])
}

executive_approved if {
    some a in input.approvals
    a.role == "executive"
}
"""


def spec(**extra: Any) -> ModelReleaseSpec:
    body: dict[str, Any] = {
        "model": "fraud",
        "version": "7",
        "artifact": {"uri": "s3://m/7", "digest": "sha256:" + "a" * 64},
        "change": {"ticket": "CHG-1"},
        "serving": {"inferenceServiceRef": {"name": "fraud"}},
        **extra,
    }
    return ModelReleaseSpec.model_validate(body)


def document(point: str, release: ModelReleaseSpec, **kw: Any) -> dict[str, Any]:
    return decision_input(
        point,
        namespace="ml",
        name="fraud-7",
        spec=release,
        status=kw.get("status"),
        gates=kw.get("gates", ()),
        approvals=kw.get("approvals", ()),
        now=NOW,
    )


BUNDLE = Bundle.from_data(
    {
        "registry.rego": REGISTRY,
        "promote.rego": PROMOTE,
        "frozen.json": '{"frozen_models": ["legacy-scorer"]}',
        "README": "not a module",
    }
)


def test_bundle_keeps_modules_and_data_and_digests_everything() -> None:
    assert [name for name, _ in BUNDLE.modules] == ["promote.rego", "registry.rego"]
    assert [name for name, _ in BUNDLE.data] == ["frozen.json"]
    assert BUNDLE.digest == policy_digest(
        {
            "registry.rego": REGISTRY,
            "promote.rego": PROMOTE,
            "frozen.json": '{"frozen_models": ["legacy-scorer"]}',
            "README": "not a module",
        }
    )


def test_accept_allows_a_clean_release() -> None:
    outcome = judge(BUNDLE, "accept", document("accept", spec()), "ops/policy")
    assert outcome.status is GateStatus.PASSED
    assert outcome.message == f"policy bundle ops/policy ({BUNDLE.digest[:19]}) allows accept"


def test_accept_denies_with_every_message() -> None:
    release = spec(change={"ticket": "JIRA-9"})
    gates = (GateResult("sbom", GateStatus.WAIVED, "waived by bob"),)
    outcome = judge(BUNDLE, "accept", document("accept", release, gates=gates), "ops/policy")
    assert outcome.status is GateStatus.FAILED
    assert outcome.message == (
        f"policy bundle ops/policy ({BUNDLE.digest[:19]}) denies accept: "
        "an SBOM waiver is not accepted here; change ticket JIRA-9 is not a CHG ticket"
    )


def test_promote_reads_approvals_canary_and_data() -> None:
    emergency = spec(change={"ticket": "CHG-2", "type": "emergency"})
    denied = evaluate(BUNDLE, "promote", document("promote", emergency))
    assert denied.defined
    assert denied.deny == ("an emergency change needs an executive approval",)
    executive = (Approval("executive", "dave", NOW, "7"),)
    not_passed = evaluate(BUNDLE, "promote", document("promote", emergency, approvals=executive))
    assert not_passed.deny == ()
    assert not not_passed.allow  # the canary has not passed
    outcome = judge(BUNDLE, "promote", document("promote", spec()), "p")
    assert outcome.status is GateStatus.FAILED
    assert "does not allow promote (data.registry.promote.allow is not true)" in outcome.message
    frozen = evaluate(BUNDLE, "promote", document("promote", spec(model="legacy-scorer")))
    assert "model legacy-scorer is frozen by the model-risk board" in frozen.deny


def test_a_point_the_bundle_does_not_define_passes_saying_so() -> None:
    only_accept = Bundle.from_data({"registry.rego": REGISTRY})
    outcome = judge(only_accept, "promote", document("promote", spec()), "p")
    assert outcome.status is GateStatus.PASSED
    assert outcome.message.endswith("has no rule at promote (data.registry.promote)")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        pytest.param(
            {"a.rego": "package registry.accept\nallow if {"},
            "at accept: a.rego: this is unclosed;",
            id="parse",
        ),
        pytest.param(
            {"a.rego": "package registry.accept\nimport rego.v1\nallow if nope(1)\n"},
            "at accept: query: Function not found: nope;",
            id="unknown-function",
        ),
        pytest.param(
            {"a.rego": "package registry.accept\nimport rego.v1\nallow := true\nallow := false\n"},
            "could not evaluate data.registry.accept (conflicting rules",
            id="conflict",
        ),
        pytest.param({"d.json": "{not json"}, "d.json is not JSON", id="bad-json"),
        pytest.param({"d.json": "[1]"}, "d.json is not a JSON object", id="json-array"),
        pytest.param(
            {"a.rego": "package registry\nimport rego.v1\naccept := 3\n"},
            "data.registry.accept is not a package",
            id="not-a-package",
        ),
    ],
)
def test_a_broken_bundle_fails_the_gate(
    data: dict[str, str], problem: str, capfd: pytest.CaptureFixture[str]
) -> None:
    outcome = judge(Bundle.from_data(data), "accept", document("accept", spec()), "p")
    # Nothing reaches the process's output (the operator's JSON log), not even natively.
    assert capfd.readouterr() == ("", "")
    assert outcome.status is GateStatus.FAILED
    assert "cannot be evaluated at accept" in outcome.message
    assert problem in outcome.message
    assert outcome.message.endswith("no evidence, no promotion")


def test_input_document_shape() -> None:
    doc = document(
        "promote",
        spec(),
        gates=(
            GateResult("sbom", GateStatus.PASSED, "ok"),
            GateResult(GATE_POLICY_ACCEPT, GateStatus.PASSED, "own"),
        ),
        approvals=(Approval("security", "bob", NOW, "7"),),
    )
    assert doc["point"] == "promote"
    assert doc["release"]["stage"] == "Candidate"
    assert doc["release"]["spec"]["model"] == "fraud"
    assert doc["change"] == {"type": "normal", "ticket": "CHG-1"}
    assert doc["gates"] == [{"name": "sbom", "status": "Passed", "message": "ok"}]
    assert doc["approvals"] == [
        {"role": "security", "user": "bob", "at": "2026-11-22T12:00:00Z", "version": "7"}
    ]
    assert doc["canary"] == {
        "started": False,
        "passed": False,
        "failure": None,
        "weight": 0,
        "verdicts": [],
    }


class StubConfigMaps:
    """The evaluator's ConfigMap reads, answered from a dict (the reads themselves are tested
    against a real API server in the lab)."""

    def __init__(self, found: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.found = found

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.found.get((namespace, name))


def test_evaluator_binds_the_evaluated_bundle_to_the_policy_digest() -> None:
    data = {"registry.rego": REGISTRY}
    gates = evaluator(policy_configmap=("ops", "policy"))
    gates.configmaps = StubConfigMaps({("ops", "policy"): {"data": data}})  # type: ignore[assignment]
    bound = spec(policyDigest=policy_digest(data))
    results = gates.evaluate_policies(
        "ml", "fraud-7", bound, status=None, gates=(), approvals=(), now=NOW
    )
    assert [(r.name, r.status) for r in results] == [
        (GATE_POLICY_ACCEPT, GateStatus.PASSED),
        (GATE_POLICY_PROMOTE, GateStatus.PASSED),
        # The canary point judges only a canary running in Staging.
        (GATE_POLICY_CANARY, GateStatus.PENDING),
    ]
    assert results[0].message.endswith("allows accept")
    assert results[1].message.endswith("has no rule at promote (data.registry.promote)")

    stale = spec(policyDigest="sha256:" + "c" * 64)
    refused = gates.evaluate_policies(
        "ml", "fraud-7", stale, status=None, gates=(), approvals=(), now=NOW
    )
    assert all(r.status is GateStatus.FAILED for r in refused)
    assert "not the bound sha256:cccccccccccc: not evaluated" in refused[0].message

    missing = evaluator(policy_configmap=("ops", "gone"))
    missing.configmaps = StubConfigMaps({})  # type: ignore[assignment]
    pending = missing.evaluate_policies(
        "ml", "fraud-7", bound, status=None, gates=(), approvals=(), now=NOW
    )
    assert [r.status for r in pending] == [GateStatus.PENDING] * 3
    assert "ops/gone does not exist" in pending[0].message


CANARY = """
package runtime.canary
import rego.v1

default proceed := false
proceed if count(deny) == 0

deny contains msg if {
    some v in input.canary.verdicts
    v.failed > 0
    msg := sprintf("metric %v failed a measurement at weight %v", [v.metric, input.canary.weight])
}
"""


def running(stage: str = "Staging", **serving: Any) -> ModelReleaseStatus:
    """A release whose KServe canary runs at 25%, its analysis so far in ``serving``."""
    return ModelReleaseStatus.model_validate(
        {
            "stage": stage,
            "serving": {"backend": "inferenceService", "name": "fraud", "weight": 25, **serving},
        }
    )


def analysis(failed: int) -> dict[str, Any]:
    return {
        "stepIndex": 1,
        "revision": "fraud-2",
        "startedAt": "2026-11-22T11:59:00Z",
        "metrics": [{"name": "error-ratio", "successful": 3, "failed": failed}],
    }


def test_canary_point_proceeds_on_clean_verdicts_and_denies_with_the_policy_words() -> None:
    bundle = Bundle.from_data({"canary.rego": CANARY})
    clean = judge(
        bundle, "canary", document("canary", spec(), status=running(analysis=analysis(0))), "p"
    )
    assert clean.status is GateStatus.PASSED, clean.message
    assert clean.message.endswith("allows canary")
    denied = judge(
        bundle, "canary", document("canary", spec(), status=running(analysis=analysis(1))), "p"
    )
    assert denied.status is GateStatus.FAILED
    assert denied.message.endswith(
        "denies canary: metric error-ratio failed a measurement at weight 25"
    )


def test_canary_point_needs_proceed_not_allow() -> None:
    allow_only = Bundle.from_data(
        {"c.rego": "package runtime.canary\nimport rego.v1\nallow := true\n"}
    )
    outcome = judge(allow_only, "canary", document("canary", spec(), status=running()), "p")
    assert outcome.status is GateStatus.FAILED
    assert "(data.runtime.canary.proceed is not true)" in outcome.message


def test_evaluator_judges_the_canary_only_while_it_runs_in_staging() -> None:
    data = {"canary.rego": CANARY}
    gates = evaluator(policy_configmap=("ops", "policy"))
    gates.configmaps = StubConfigMaps({("ops", "policy"): {"data": data}})  # type: ignore[assignment]
    bound = spec(policyDigest=policy_digest(data))

    def canary_gate(status: ModelReleaseStatus | None) -> tuple[GateStatus, str]:
        results = gates.evaluate_policies(
            "ml", "fraud-7", bound, status=status, gates=(), approvals=(), now=NOW
        )
        [found] = [r for r in results if r.name == GATE_POLICY_CANARY]
        return found.status, found.message

    assert canary_gate(None)[0] is GateStatus.PENDING
    assert canary_gate(running(analysis=analysis(0)))[0] is GateStatus.PASSED
    status, message = canary_gate(running(analysis=analysis(2)))
    assert status is GateStatus.FAILED
    assert "metric error-ratio failed a measurement" in message
    # After Staging the last verdict recorded stands: a policy edited later (or a canary that
    # failed later measurements) does not judge a canary that has ended.
    ended = running("Production", passed=True, analysis=analysis(5))
    record = GateRecord(name=GATE_POLICY_CANARY, status=GateStatus.PASSED, reason="Passed")
    assert canary_gate(ended.model_copy(update={"gates": [record]}))[0] is GateStatus.PASSED
    assert canary_gate(ended)[0] is GateStatus.PENDING
