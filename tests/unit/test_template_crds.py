"""The analysis template CRDs: generated from the Rollout CRD's metric schema and current,
agreeing with ``AnalysisTemplateSpec`` field by field, complete for ``kubectl explain`` and
``kubectl get``; the ``templates`` references in the Rollout and ModelRelease CRDs are the one
schema ``hack/gen_template_crds.py`` defines. Admission by a real API server:
``tests/lab/test_crd_admission.py``."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hack import gen_template_crds as gen
from rollwise.core.spec import AnalysisTemplateSpec
from tests.unit.test_crds import (
    compare_model,
    load_crd,
    openapi,
    version_of,
    walk,
)

ANALYSIS_TEMPLATE_CRD = load_crd("analysistemplates")
CLUSTER_ANALYSIS_TEMPLATE_CRD = load_crd("clusteranalysistemplates")
CRDS = [
    pytest.param(ANALYSIS_TEMPLATE_CRD, "Namespaced", "AnalysisTemplate", ["rwat"], id="ns"),
    pytest.param(
        CLUSTER_ANALYSIS_TEMPLATE_CRD,
        "Cluster",
        "ClusterAnalysisTemplate",
        ["rwcat"],
        id="cluster",
    ),
]


def test_generated_files_and_reference_schemas_are_current() -> None:
    assert gen.main(["--check"]) == 0


def test_check_notices_a_drifted_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    drifted = copy.deepcopy(gen.TEMPLATE_REFS)
    drifted["maxItems"] = 9
    monkeypatch.setattr(gen, "TEMPLATE_REFS", drifted)
    assert len(gen.ref_drift()) == len(gen.REF_SITES)


@pytest.mark.parametrize(
    ("path", "field", "expected"),
    [
        pytest.param(
            ("spec", "canary", "postPromotion", "metrics", "[]"),
            "maxItems",
            "spec.canary.postPromotion.metrics.items differs from the analysis metric schema",
            id="watch-metric-schema",
        ),
        pytest.param(
            ("spec", "canary", "postPromotion"),
            "required",
            "spec.canary.postPromotion differs from the Rollout's",
            id="watch-spec",
        ),
        pytest.param(
            ("status", "postPromotion"),
            "required",
            "status.postPromotion differs from the Rollout's",
            id="watch-status",
        ),
    ],
)
def test_check_notices_a_drifted_modelrelease_watch(
    monkeypatch: pytest.MonkeyPatch, path: tuple[str, ...], field: str, expected: str
) -> None:
    real = gen.load
    drifted = copy.deepcopy(real("modelreleases"))
    gen.node_at(drifted, path)[field] = ["x"]
    monkeypatch.setattr(
        gen, "load", lambda plural: drifted if plural == "modelreleases" else real(plural)
    )
    problems = gen.ref_drift()
    assert [p for p in problems if expected in p], problems


def test_metric_schema_is_the_rollouts() -> None:
    rollout_metrics = gen.node_at(
        load_crd("rollouts"), ("spec", "strategy", "canary", "analysis", "metrics")
    )
    for crd in (ANALYSIS_TEMPLATE_CRD, CLUSTER_ANALYSIS_TEMPLATE_CRD):
        assert (
            openapi(crd)["properties"]["spec"]["properties"]["metrics"]["items"]
            == (rollout_metrics["items"])
        )


@pytest.mark.parametrize(("crd", "scope", "kind", "short_names"), CRDS)
def test_names_scope_and_columns(
    crd: dict[str, Any], scope: str, kind: str, short_names: list[str]
) -> None:
    spec = crd["spec"]
    assert (spec["group"], spec["scope"]) == ("rollwise.dev", scope)
    names = spec["names"]
    assert names["kind"] == kind
    assert names["singular"] == kind.lower()
    assert names["plural"] == kind.lower() + "s"
    assert names["shortNames"] == short_names
    assert names["categories"] == ["rollwise"]
    version = version_of(crd)
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    columns = [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"]]
    assert columns == [
        ("Metrics", ".spec.metrics[*].name"),
        ("Args", ".spec.args[*].name"),
        ("Age", ".metadata.creationTimestamp"),
    ]


@pytest.mark.parametrize(("crd", "scope", "kind", "short_names"), CRDS)
def test_every_property_is_described_and_typed(
    crd: dict[str, Any], scope: str, kind: str, short_names: list[str]
) -> None:
    schema = openapi(crd)
    assert kind in schema["description"]
    for path, node in walk(schema):
        assert node.get("type"), path
        for name, sub in node.get("properties", {}).items():
            if (path, name) != ("", "metadata"):
                assert str(sub.get("description", "")).strip(), f"{path}.{name}"


@pytest.mark.parametrize(("crd", "scope", "kind", "short_names"), CRDS)
def test_spec_matches_the_model(
    crd: dict[str, Any], scope: str, kind: str, short_names: list[str]
) -> None:
    problems: list[str] = []
    compare_model(AnalysisTemplateSpec, openapi(crd)["properties"]["spec"], "spec", problems)
    assert problems == []


def test_cel_rules_iterate_bounded_lists_and_strings() -> None:
    for path, node in walk(openapi(ANALYSIS_TEMPLATE_CRD)):
        rules = " ".join(r["rule"] for r in node.get("x-kubernetes-validations", []))
        if node.get("type") == "array" and "all(" in rules:
            assert isinstance(node.get("maxItems"), int), path
        if "matches(" in rules and node.get("type") == "object":
            for name in ("default",):
                if name in node.get("properties", {}):
                    assert isinstance(node["properties"][name].get("maxLength"), int)


def test_the_chart_carries_both() -> None:
    for plural in ("analysistemplates", "clusteranalysistemplates"):
        source = gen.CRDS / f"{plural}.rollwise.dev.yaml"
        copy_ = gen.ROOT / "charts" / "rollwise" / "crds" / source.name
        assert copy_.read_text() == source.read_text()
