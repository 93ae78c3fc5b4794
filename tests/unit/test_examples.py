"""Every manifest in ``examples/`` is a well-formed Kubernetes object, applied into whatever
namespace the user picks, and the examples cover every scenario. That the API server admits
them (schemas, CEL rules, defaults) is ``tests/lab/test_examples_applied.py``'s business."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollwise.adapters.gates.signature import (
    PredicateChecks,
    VerificationKey,
    check_attestation,
    check_signature,
    load_key,
)
from rollwise.core.modelrelease.status import GateStatus
from rollwise.core.observations import TemplateKey, TemplateRead
from rollwise.core.templates import resolve_rollout, rollout_template_keys
from rollwise.core.validation import load_rollout_spec, validate_rollout

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
        "rollout-blue-green",
        "rollout-istio",
        "modelrelease-template",
        "modelrelease-kserve",
        "modelrelease-mlflow",
        "modelrelease-signed",
        "rollout-analysis-template",
    }
    kinds = {doc.values[0]["kind"] for doc in DOCUMENTS}
    assert kinds >= {
        "Rollout",
        "ModelRelease",
        "Service",
        "HTTPRoute",
        "VirtualService",
        "AnalysisTemplate",
    }
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
        blue_green = rollout["spec"]["strategy"].get("blueGreen")
        if blue_green is not None:
            assert ("Service", blue_green["activeService"]) in named, directory.name
            assert ("Service", blue_green["previewService"]) in named, directory.name
            continue
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


# -- every query selects its own workload ------------------------------------------------------

#: ``metric_name{matchers}`` in PromQL; a quoted value may hold braces (``"{{namespace}}"``).
SELECTOR = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{((?:[^{}"]|"[^"]*")*)\}')
#: The matchers that pin a series to one workload: its namespace, templated, and its service.
NAMESPACE_MATCHER = re.compile(r'\bnamespace\s*=\s*"\{\{namespace\}\}"')
SERVICE_MATCHER = re.compile(r'\bservice\s*=\s*"[^"{}]+"')


def _providers(node: Any, where: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(where, kind, provider) of every metric provider in a document."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for kind in ("prometheus", "web"):
            if isinstance(node.get(kind), dict) and where.endswith("provider"):
                found.append((where, kind, node[kind]))
        for key, value in node.items():
            found.extend(_providers(value, f"{where}.{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_providers(value, f"{where}[{index}]"))
    return found


#: A template's query may pin its service through a required ``service`` arg: every
#: reference then names the service (checked below with the reference's value).
SERVICE_ARG = re.compile(r"\{\{\s*args\.service\s*\}\}")


def _pinned_by_arg(doc: dict[str, Any], provider: dict[str, Any]) -> dict[str, Any]:
    """``provider`` with a required ``service`` arg of a template standing for a service."""
    if doc.get("kind") not in TEMPLATE_KINDS:
        return provider
    args = {a["name"]: a for a in doc["spec"].get("args", [])}
    if not args.get("service", {}).get("required"):
        return provider
    return {
        k: SERVICE_ARG.sub("given", v) if isinstance(v, str) else v for k, v in provider.items()
    }


TEMPLATE_KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate")


def example_queries() -> list[Any]:
    params = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            for where, kind, found in _providers(doc, ""):
                provider = _pinned_by_arg(doc, found)
                name = f"{path.relative_to(EXAMPLES)}#{index}{where}"
                params.append(pytest.param(kind, provider, id=name))
    return params


QUERIES = example_queries()


def workload_problems(promql: str) -> list[str]:
    """Selectors of ``promql`` that do not pin their series to one workload."""
    problems = []
    selectors = SELECTOR.findall(promql)
    if not selectors:
        problems.append("no selector with matchers")
    for metric, matchers in selectors:
        if not NAMESPACE_MATCHER.search(matchers):
            problems.append(f'{metric}: no namespace="{{{{namespace}}}}" matcher')
        if not SERVICE_MATCHER.search(matchers):
            problems.append(f"{metric}: no service matcher")
    return problems


def test_the_examples_have_queries() -> None:
    kinds = {param.values[0] for param in QUERIES}
    assert kinds == {"prometheus", "web"}
    assert len(QUERIES) >= 8


@pytest.mark.parametrize(("kind", "provider"), QUERIES)
def test_every_example_query_selects_its_own_workload(kind: str, provider: dict[str, Any]) -> None:
    """A revision hash depends only on the pod template: the same template in two namespaces
    (or under two names) is the same revision, so a query that selects by revision alone mixes
    two workloads' series (examples/README.md)."""
    if kind == "prometheus":
        assert workload_problems(provider["query"]) == []
    else:
        asked = f"{provider.get('path', '')} {provider.get('body', '')}"
        assert "{{namespace}}" in asked, asked
        assert re.search(r"service\W+\w", asked), asked


@pytest.mark.parametrize(
    ("promql", "problem"),
    [
        pytest.param(
            'sum(rate(http_requests_total{revision="{{canaryRevision}}"}[1m]))',
            "no service matcher",
            id="revision-only",
        ),
        pytest.param(
            'sum(rate(http_requests_total{service="demo",revision="{{canaryRevision}}"}[1m]))',
            "no namespace",
            id="no-namespace",
        ),
        pytest.param(
            'sum(rate(x{namespace="{{namespace}}",service="a"}[1m])) / sum(y{code="5"})',
            "y: no namespace",
            id="one-of-two-selectors",
        ),
        pytest.param("vector(1)", "no selector", id="no-selector"),
    ],
)
def test_a_query_without_its_workload_is_caught(promql: str, problem: str) -> None:
    assert any(problem in found for found in workload_problems(promql))


def test_rollout_examples_resolve_their_templates() -> None:
    """A Rollout example that references templates resolves them, as the operator would, with
    the templates of its own directory: every arg given, no name clash, valid metrics."""
    resolved = 0
    for directory in sorted(p for p in EXAMPLES.iterdir() if p.is_dir()):
        docs = [d for f in directory.glob("*.yaml") for d in yaml.safe_load_all(f.read_text()) if d]
        reads: dict[TemplateKey, TemplateRead | None] = {
            TemplateKey(d["kind"] == "ClusterAnalysisTemplate", d["metadata"]["name"]): d["spec"]
            for d in docs
            if d["kind"] in TEMPLATE_KINDS
        }
        for doc in docs:
            if doc["kind"] != "Rollout":
                continue
            spec, errors = load_rollout_spec(doc["spec"])
            assert errors == [], directory.name
            assert spec is not None
            if not rollout_template_keys(spec):
                continue
            resolved_spec, problems = resolve_rollout(spec, reads)
            assert problems == [], directory.name
            assert validate_rollout(resolved_spec) == [], directory.name
            resolved += 1
    assert resolved >= 1


def test_the_signed_example_verifies() -> None:
    """The signed example's bundles verify, offline, against its key for its artifact digest,
    exactly as the operator's signature and attestation gates check them; not for another."""
    directory = EXAMPLES / "modelrelease-signed"
    docs = [
        d for p in sorted(directory.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d
    ]
    data = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    [release] = [d["spec"] for d in docs if d["kind"] == "ModelRelease"]
    signature, attestation = release["gates"]["signature"], release["gates"]["attestation"]

    def read(ref: dict[str, str]) -> bytes:
        return str(data[ref["name"]][ref["key"]]).encode()

    def key(gate: dict[str, Any]) -> VerificationKey:
        return load_key(read(gate["verifier"]["publicKey"]["configMapKeyRef"]), "release.pub")

    checks = PredicateChecks(
        predicate_type=attestation["predicateType"],
        builder_id=attestation["builderId"],
        source_repository=attestation["sourceRepository"],
    )
    other = "sha256:" + "0" * 64
    for digest, status in ((release["artifact"]["digest"], GateStatus.PASSED), (other, None)):
        signed = check_signature(
            read(signature["configMapKeyRef"]), key(signature), digest, "model.sigstore.json"
        )
        attested = check_attestation(
            read(attestation["configMapKeyRef"]), key(attestation), digest, "provenance", checks
        )
        expected = status or GateStatus.FAILED
        assert (signed.status, attested.status) == (expected, expected), (signed, attested)
