"""Every manifest in ``examples/`` is one a newcomer can apply: each example directory passes
``kubectl apply --dry-run=server`` on the lab cluster (the real API server's schemas and CEL
rules, the third-party CRDs the lab installs), and its custom resources, as the API server
would store them (defaulted), keep every field written and parse into the operator's spec
models and its own checks."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from hack.cluster import Cluster
from hack.lab.testing.cluster_fixtures import Kubectl
from rollwise.core.notification import NotificationPolicySpec
from rollwise.core.spec import AnalysisTemplateSpec, RolloutSpec
from rollwise.core.spec_release import ModelReleaseSpec
from rollwise.core.validation import load_rollout_spec

pytestmark = pytest.mark.lab

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODELS: dict[str, tuple[str, type[BaseModel]]] = {
    "Rollout": ("rollouts", RolloutSpec),
    "ModelRelease": ("modelreleases", ModelReleaseSpec),
    "NotificationPolicy": ("notificationpolicies", NotificationPolicySpec),
    "AnalysisTemplate": ("analysistemplates", AnalysisTemplateSpec),
}
DIRECTORIES = sorted(
    p for p in EXAMPLES.iterdir() if p.is_dir() and any(p.glob("*.yaml")) and p.name != "argocd"
)


@pytest.mark.parametrize("directory", [pytest.param(d, id=d.name) for d in DIRECTORIES])
def test_example_applies(directory: Path, kubectl: Kubectl, namespace: str) -> None:
    applied = kubectl(
        "apply", "--dry-run=server", "-f", str(directory), namespace=namespace, check=True
    )
    documents = [
        d for f in directory.glob("*.yaml") for d in yaml.safe_load_all(f.read_text()) if d
    ]
    assert applied.stdout.count("(server dry run)") == len(documents), applied.stdout


def custom_documents() -> list[Any]:
    params = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc and doc["kind"] in MODELS:
                params.append(pytest.param(doc, id=f"{path.relative_to(EXAMPLES)}#{index}"))
    return params


@pytest.mark.parametrize("doc", custom_documents())
def test_custom_resource_is_stored_as_written_and_parses(
    doc: dict[str, Any], lab_cluster: Cluster, namespace: str
) -> None:
    plural, model = MODELS[doc["kind"]]
    session = lab_cluster.admin_session()
    answer = session.post(
        f"{lab_cluster.server}/apis/rollwise.dev/v1alpha1/namespaces/{namespace}/{plural}",
        json=copy.deepcopy(doc),
        params={"dryRun": "All"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    stored = answer.json()
    assert _survives(doc["spec"], stored["spec"]), "a field of the example was pruned"
    model.model_validate(stored["spec"])
    if doc["kind"] == "Rollout":
        # The operator's own checks (CEL conditions compile, placeholders exist) pass too.
        assert load_rollout_spec(stored["spec"])[1] == []


def _survives(written: Any, admitted: Any) -> bool:
    """Every field written in the example survives admission unchanged (nothing was pruned)."""
    if isinstance(written, dict):
        return isinstance(admitted, dict) and all(
            k in admitted and _survives(v, admitted[k]) for k, v in written.items()
        )
    if isinstance(written, list):
        return (
            isinstance(admitted, list)
            and len(written) == len(admitted)
            and all(_survives(w, a) for w, a in zip(written, admitted, strict=True))
        )
    return bool(written == admitted)
