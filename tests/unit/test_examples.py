"""Every manifest in ``examples/`` is one a newcomer can apply: the custom resources pass the
CRD schemas (with their CEL rules) and, once defaulted, parse into the operator's spec models;
every other document is at least a well-formed Kubernetes object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from hack.lab.kube.schema import StructuralSchema, admit_custom_resource
from rollwise.core.notification import NotificationPolicySpec
from rollwise.core.spec import ModelReleaseSpec, RolloutSpec
from rollwise.core.validation import load_rollout_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _schema(plural: str) -> StructuralSchema:
    crd = yaml.safe_load((ROOT / "crds" / f"{plural}.rollwise.dev.yaml").read_text())
    return StructuralSchema(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


CUSTOM_KINDS: dict[str, tuple[StructuralSchema, type[BaseModel]]] = {
    "Rollout": (_schema("rollouts"), RolloutSpec),
    "ModelRelease": (_schema("modelreleases"), ModelReleaseSpec),
    "NotificationPolicy": (_schema("notificationpolicies"), NotificationPolicySpec),
}


def documents() -> list[Any]:
    params = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc is None:
                continue
            name = f"{path.relative_to(EXAMPLES)}#{index}"
            params.append(pytest.param(doc, id=name))
    return params


DOCUMENTS = documents()


def test_examples_cover_every_scenario() -> None:
    directories = {p.name for p in EXAMPLES.iterdir() if p.is_dir()}
    assert directories >= {
        "rollout-gateway-api",
        "rollout-replica-ratio",
        "rollout-istio",
        "modelrelease-template",
        "modelrelease-kserve",
        "modelrelease-mlflow",
    }
    kinds = {doc.values[0]["kind"] for doc in DOCUMENTS}
    assert kinds >= {"Rollout", "ModelRelease", "Service", "HTTPRoute", "VirtualService"}
    assert "InferenceService" in kinds


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_example_document(doc: dict[str, Any]) -> None:
    assert isinstance(doc.get("apiVersion"), str)
    assert doc["apiVersion"]
    assert isinstance(doc.get("kind"), str)
    assert doc["kind"]
    assert doc.get("metadata", {}).get("name")
    # Examples are applied into whatever namespace the user picks.
    assert "namespace" not in doc["metadata"]
    if doc["kind"] not in CUSTOM_KINDS:
        return
    assert doc["apiVersion"] == "rollwise.dev/v1alpha1"
    schema, model = CUSTOM_KINDS[doc["kind"]]
    admitted, errors = admit_custom_resource(schema, doc)
    assert [str(e) for e in errors] == []
    assert _survives(doc["spec"], admitted["spec"]), "a field of the example was pruned"
    model.model_validate(admitted["spec"])
    if doc["kind"] == "Rollout":
        # The operator's own checks (CEL conditions compile, placeholders exist) pass too.
        assert load_rollout_spec(admitted["spec"])[1] == []


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


def test_rollout_examples_reference_their_services_and_routes() -> None:
    """The Services, HTTPRoute and VirtualService a Rollout names are in the same example."""
    for directory in sorted(p for p in EXAMPLES.iterdir() if p.name.startswith("rollout-")):
        docs = [d for f in directory.glob("*.yaml") for d in yaml.safe_load_all(f.read_text())]
        named = {(d["kind"], d["metadata"]["name"]) for d in docs}
        (rollout,) = [d for d in docs if d["kind"] == "Rollout"]
        canary = rollout["spec"]["strategy"]["canary"]
        assert ("Service", canary["stableService"]) in named, directory.name
        assert ("Service", canary["canaryService"]) in named, directory.name
        routing = canary.get("trafficRouting", {})
        if "gatewayAPI" in routing:
            assert ("HTTPRoute", routing["gatewayAPI"]["httpRoute"]["name"]) in named
        if "istio" in routing:
            assert ("VirtualService", routing["istio"]["virtualService"]["name"]) in named
        labels = rollout["spec"]["template"]["metadata"]["labels"]
        assert labels["app"] == "demo"
