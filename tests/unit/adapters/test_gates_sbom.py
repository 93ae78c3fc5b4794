"""The SBOM gate on small, realistic CycloneDX JSON documents (1.4, 1.5, 1.6): severities,
VEX analysis, unknown severities, unusable documents, ConfigMap values."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from rollwise.adapters.gates.sbom import (
    NotCycloneDX,
    check_document,
    configmap_value,
    parse_sbom,
)
from rollwise.core.modelrelease.status import GateStatus

COMPONENTS: list[dict[str, Any]] = [
    {
        "type": "library",
        "bom-ref": "pkg:pypi/scikit-learn@1.3.0",
        "name": "scikit-learn",
        "version": "1.3.0",
        "purl": "pkg:pypi/scikit-learn@1.3.0",
    },
    {
        "type": "library",
        "bom-ref": "numpy-ref",
        "name": "numpy",
        "version": "1.24.0",
        "purl": "pkg:pypi/numpy@1.24.0",
    },
    {
        "type": "library",
        "bom-ref": "requests-ref",
        "name": "requests",
        "version": "2.19.0",
        "components": [
            {"type": "library", "bom-ref": "urllib3-ref", "name": "urllib3", "version": "1.23"}
        ],
    },
    {
        "type": "machine-learning-model",
        "bom-ref": "model-ref",
        "name": "fraud-detector",
        "version": "7",
    },
]


def bom(
    vulnerabilities: list[dict[str, Any]] | None = None, spec_version: str = "1.5"
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "$schema": f"http://cyclonedx.org/schema/bom-{spec_version}.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": spec_version,
        "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
        "version": 1,
        "metadata": {
            "timestamp": "2026-11-20T10:00:00Z",
            "component": {"type": "application", "name": "fraud-serving", "version": "7"},
        },
        "components": copy.deepcopy(COMPONENTS),
    }
    if spec_version == "1.4":
        # machine-learning-model is a component type from 1.5 on.
        doc["components"][-1]["type"] = "application"
    if vulnerabilities is not None:
        doc["vulnerabilities"] = vulnerabilities
    return doc


def vuln(
    ident: str, *severities: str, refs: tuple[str, ...] = (), state: str | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "bom-ref": f"vuln-{ident}",
        "id": ident,
        "source": {"name": "NVD", "url": f"https://nvd.nist.gov/vuln/detail/{ident}"},
        "ratings": [
            {"source": {"name": "NVD"}, "score": 7.5, "severity": s, "method": "CVSSv31"}
            for s in severities
        ],
        "affects": [{"ref": ref} for ref in refs],
    }
    if state is not None:
        entry["analysis"] = {"state": state, "justification": "code_not_reachable"}
    return entry


def raw(doc: Any) -> bytes:
    return json.dumps(doc).encode()


@pytest.mark.parametrize("spec_version", ["1.4", "1.5", "1.6"])
def test_clean_sbom_passes(spec_version: str) -> None:
    outcome = check_document(raw(bom([], spec_version)), "high", "cm/x")
    assert outcome.status is GateStatus.PASSED
    assert outcome.message == "SBOM cm/x: 5 components, no vulnerability at or above high"


def test_no_vulnerabilities_key_passes() -> None:
    assert check_document(raw(bom()), "high", "x").status is GateStatus.PASSED


@pytest.mark.parametrize(
    ("severities", "max_severity", "status"),
    [
        pytest.param(("critical",), "high", GateStatus.FAILED, id="critical-vs-high"),
        pytest.param(("high",), "high", GateStatus.FAILED, id="at-threshold"),
        pytest.param(("medium",), "high", GateStatus.PASSED, id="below"),
        pytest.param(("medium",), "medium", GateStatus.FAILED, id="medium-threshold"),
        pytest.param(("low", "critical"), "critical", GateStatus.FAILED, id="highest-rating"),
        pytest.param(("info",), "low", GateStatus.PASSED, id="info"),
        pytest.param(("none",), "low", GateStatus.PASSED, id="none"),
        pytest.param(("unknown",), "low", GateStatus.PASSED, id="unknown-does-not-fail"),
        pytest.param((), "low", GateStatus.PASSED, id="no-ratings-is-unknown"),
        pytest.param(("unknown", "high"), "high", GateStatus.FAILED, id="unknown-and-high"),
    ],
)
def test_severity_threshold(
    severities: tuple[str, ...], max_severity: str, status: GateStatus
) -> None:
    doc = bom([vuln("CVE-2026-0001", *severities, refs=("numpy-ref",))])
    assert check_document(raw(doc), max_severity, "x").status is status


def test_failed_message_lists_worst_first_with_components() -> None:
    doc = bom(
        [
            vuln("CVE-2026-1000", "high", refs=("requests-ref",)),
            vuln("CVE-2026-2000", "medium", refs=("numpy-ref",)),
            vuln("GHSA-abcd-efgh-ijkl", "critical", refs=("urllib3-ref", "requests-ref")),
            vuln("CVE-2026-0500", "high", refs=("pkg:pypi/scikit-learn@1.3.0",)),
        ]
    )
    outcome = check_document(raw(doc), "high", "ConfigMap ml/sbom key bom.json")
    assert outcome.status is GateStatus.FAILED
    assert outcome.message == (
        "SBOM ConfigMap ml/sbom key bom.json: 3 vulnerabilities at or above high: "
        "GHSA-abcd-efgh-ijkl (critical; requests@2.19.0, urllib3@1.23), "
        "CVE-2026-0500 (high; pkg:pypi/scikit-learn@1.3.0), "
        "CVE-2026-1000 (high; requests@2.19.0)"
    )
    assert "CVE-2026-2000" not in outcome.message


def test_long_listing_is_clipped() -> None:
    doc = bom([vuln(f"CVE-2026-{n:05d}", "critical", refs=("numpy-ref",)) for n in range(200)])
    outcome = check_document(raw(doc), "high", "x")
    assert outcome.status is GateStatus.FAILED
    assert outcome.message.startswith(
        "SBOM x: 200 vulnerabilities at or above high: CVE-2026-00000"
    )
    assert outcome.message.endswith(" and 190 more")
    assert len(outcome.message) < 1000


def test_unknown_and_lower_findings_are_mentioned_on_pass() -> None:
    doc = bom(
        [
            vuln("CVE-2026-3000", "unknown", refs=("numpy-ref",)),
            vuln("CVE-2026-3001", "low", refs=("numpy-ref",)),
            vuln("CVE-2026-3002", "critical", refs=("numpy-ref",), state="not_affected"),
            vuln("CVE-2026-3003", "high", refs=("numpy-ref",), state="in_triage"),
        ]
    )
    outcome = check_document(raw(doc), "critical", "x")
    assert outcome.status is GateStatus.PASSED
    assert outcome.message == (
        "SBOM x: 5 components, no vulnerability at or above critical; 2 below critical; "
        "1 of unknown severity: CVE-2026-3000 (unknown; pkg:pypi/numpy@1.24.0); "
        "1 not exploitable per its analysis"
    )


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        pytest.param(b"{not json", "not JSON", id="bad-json"),
        pytest.param(b"\xff\xfe", "not JSON", id="binary"),
        pytest.param(raw([1, 2]), "not a CycloneDX document", id="array"),
        pytest.param(raw({"spdxVersion": "SPDX-2.3"}), "not a CycloneDX document", id="spdx"),
        pytest.param(raw(bom([], "1.3")), "specVersion 1.3 is not supported", id="old-version"),
        pytest.param(
            raw({k: v for k, v in bom().items() if k != "specVersion"}),
            "specVersion (missing)",
            id="no-version",
        ),
        pytest.param(
            raw({**bom(), "vulnerabilities": {}}),
            "not valid against the CycloneDX 1.5 schema: {} is not of type 'array' "
            "(at /vulnerabilities)",
            id="vulns-object",
        ),
        pytest.param(
            raw({**bom(), "vulnerabilities": ["x"]}),
            "'x' is not of type 'object' (at /vulnerabilities/0)",
            id="vuln-str",
        ),
        pytest.param(
            raw(bom([vuln("CVE-2026-0001", "HIGH")])),
            "'HIGH' is not one of",
            id="severity-not-in-schema",
        ),
        pytest.param(
            raw({**bom(), "vulnerabilities": [{**vuln("CVE-2026-0001", "high"), "cvss": 9}]}),
            "Additional properties are not allowed ('cvss' was unexpected)",
            id="unknown-property",
        ),
        pytest.param(
            raw({**bom([], "1.4"), "components": copy.deepcopy(COMPONENTS)}),
            "'machine-learning-model' is not one of",
            id="type-newer-than-version",
        ),
    ],
)
def test_unusable_documents_fail(document: bytes, problem: str) -> None:
    outcome = check_document(document, "high", "x")
    assert outcome.status is GateStatus.FAILED
    assert problem in outcome.message
    assert outcome.message.endswith("no evidence, no promotion")
    with pytest.raises(NotCycloneDX):
        parse_sbom(document)


def test_parse_counts_nested_components_and_sorts() -> None:
    report = parse_sbom(
        raw(bom([vuln("B", "low"), vuln("A", "low"), vuln("C", "critical", "medium")], "1.6"))
    )
    assert report.components == 5
    assert report.spec_version == "1.6"
    assert [(f.id, f.severity) for f in report.findings] == [
        ("C", "critical"),
        ("A", "low"),
        ("B", "low"),
    ]


def test_configmap_value_data_and_binary_data() -> None:
    text = json.dumps(bom([]))
    assert configmap_value({"data": {"bom.json": text}}, "bom.json") == text.encode()
    encoded = base64.b64encode(text.encode()).decode()
    assert configmap_value({"binaryData": {"bom.json": encoded}}, "bom.json") == text.encode()
    assert configmap_value({"data": {"other": "x"}}, "bom.json") is None
    assert configmap_value({}, "bom.json") is None
    assert configmap_value({"binaryData": {"bom.json": "%%%"}}, "bom.json") == b""
