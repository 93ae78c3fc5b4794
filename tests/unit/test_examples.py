"""Every manifest in ``examples/`` is a well-formed Kubernetes object, applied into whatever
namespace the user picks, and the examples cover every scenario. That the API server admits
them (schemas, CEL rules, defaults) is ``tests/lab/test_examples_applied.py``'s business."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


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
    if doc["kind"] in ("Rollout", "ModelRelease"):
        assert doc["apiVersion"] == "rollwise.dev/v1alpha1"


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
