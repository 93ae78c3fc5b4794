"""The ``sbom`` gate: the model's software bill of materials, CycloneDX JSON 1.4 to 1.6, must
list no vulnerability at or above ``spec.gates.sbom.maxSeverity`` (default ``high``).

Source: a key of a ConfigMap in the release's namespace (``configMapKeyRef``; the key is read
from ``data``, or base64-decoded from ``binaryData``), or a URL (``http(s)://`` or
``file://``), read within a size and a time bound.

Reading a document (``cyclonedx-python-lib``):

* it must be a JSON object with ``bomFormat: CycloneDX`` and ``specVersion`` 1.4, 1.5 or 1.6,
  valid against that version's CycloneDX JSON schema (the library's bundled copy: nothing is
  fetched); anything else fails the gate (no evidence, no promotion);
* a vulnerability's severity is the highest ``ratings[].severity`` in the order none < info <
  low < medium < high < critical; a vulnerability without a known severity is *unknown*, which
  does not fail the gate but is named in its message;
* a vulnerability whose ``analysis.state`` is ``not_affected``, ``false_positive`` or
  ``resolved`` (a VEX statement) does not count;
* ``affects[].ref`` are shown as the affected component's purl (or ``name@version``) when
  the document lists it under that ``bom-ref``.

Failed messages list the worst findings first (id, severity, affected components), clipped.
The source could not be read (missing ConfigMap or key, unreachable URL, HTTP error, too
slow) → Pending; larger than the bound → Failed.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component
from cyclonedx.model.impact_analysis import ImpactAnalysisState
from cyclonedx.model.vulnerability import Vulnerability
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from rollwise.adapters.gates.outcome import Outcome

#: Severities in increasing order (CycloneDX ``severity`` values; ``unknown`` is apart).
SEVERITIES = ("none", "info", "low", "medium", "high", "critical")
UNKNOWN = "unknown"
SUPPORTED_SPEC_VERSIONS = ("1.4", "1.5", "1.6")
#: VEX analysis states that mean the vulnerability does not apply to this model.
NOT_EXPLOITABLE = frozenset(
    {
        ImpactAnalysisState.NOT_AFFECTED,
        ImpactAnalysisState.FALSE_POSITIVE,
        ImpactAnalysisState.RESOLVED,
    }
)

#: Findings named in a message before "and N more".
MAX_LISTED = 10
#: Affected components named per finding.
MAX_REFS = 3
#: Characters of the findings part of a message.
MAX_LISTING = 800


class NotCycloneDX(ValueError):
    """The document is not a CycloneDX JSON SBOM this gate reads."""


def rank(severity: str) -> int:
    """Position of ``severity`` in :data:`SEVERITIES` (-1 for unknown)."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


@dataclass(frozen=True)
class Finding:
    """One vulnerability: its id, its highest rated severity and the components it affects."""

    id: str
    severity: str
    affects: tuple[str, ...]

    def describe(self) -> str:
        refs = ", ".join(self.affects[:MAX_REFS])
        if len(self.affects) > MAX_REFS:
            refs += f", +{len(self.affects) - MAX_REFS}"
        return f"{self.id} ({self.severity}{'; ' + refs if refs else ''})"


@dataclass(frozen=True)
class SBOMReport:
    spec_version: str
    components: int
    findings: tuple[Finding, ...]
    not_exploitable: int


def _components(items: Iterable[Component]) -> Iterator[Component]:
    for item in items:
        yield item
        yield from _components(item.components)


def _label(component: Component) -> str:
    if component.purl is not None:
        return str(component.purl)
    return f"{component.name}@{component.version}" if component.version else component.name


def _severity(vulnerability: Vulnerability) -> str:
    best = UNKNOWN
    for rating in vulnerability.ratings:
        value = rating.severity.value if rating.severity is not None else UNKNOWN
        if rank(value) > rank(best):
            best = value
    return best


@functools.cache
def _validator(version: str) -> JsonStrictValidator:
    return JsonStrictValidator(SchemaVersion.from_version(version))


def _schema_problem(doc: Any, version: str) -> str | None:
    """Why ``doc`` is not valid against the CycloneDX ``version`` schema, in one line."""
    error = _validator(version).validate_str(json.dumps(doc))
    if error is None:
        return None
    detail = getattr(error.data, "message", str(error.data))
    path = "/".join(str(p) for p in getattr(error.data, "absolute_path", ()))
    text = f"{detail} (at /{path})" if path else detail
    return f"not valid against the CycloneDX {version} schema: {text[:300]}"


def parse_sbom(raw: bytes | str) -> SBOMReport:
    """The findings of a CycloneDX JSON document; :class:`NotCycloneDX` when it is not one."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise NotCycloneDX(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        raise NotCycloneDX("not a CycloneDX document (bomFormat is not CycloneDX)")
    version = str(doc.get("specVersion", ""))
    if version not in SUPPORTED_SPEC_VERSIONS:
        raise NotCycloneDX(
            f"CycloneDX specVersion {version or '(missing)'} is not supported "
            f"(supported: {', '.join(SUPPORTED_SPEC_VERSIONS)})"
        )
    problem = _schema_problem(doc, version)
    if problem is not None:
        raise NotCycloneDX(problem)
    try:
        bom = Bom.from_json(doc)  # type: ignore[attr-defined]
    except Exception as exc:  # the library raises many kinds on a document it cannot model
        raise NotCycloneDX(f"could not be read: {type(exc).__name__}: {exc}"[:300]) from None
    components = list(_components(bom.components))
    labels = {c.bom_ref.value: _label(c) for c in components if c.bom_ref.value}
    findings: list[Finding] = []
    ignored = 0
    for index, vulnerability in enumerate(bom.vulnerabilities):
        analysis = vulnerability.analysis
        if analysis is not None and analysis.state in NOT_EXPLOITABLE:
            ignored += 1
            continue
        refs = tuple(labels.get(str(a.ref), str(a.ref)) for a in vulnerability.affects if a.ref)
        ident = vulnerability.id or vulnerability.bom_ref.value or f"#{index}"
        findings.append(Finding(ident, _severity(vulnerability), refs))
    findings.sort(key=lambda f: (-rank(f.severity), f.id))
    return SBOMReport(version, len(components), tuple(findings), ignored)


def _listing(findings: tuple[Finding, ...]) -> str:
    parts: list[str] = []
    used = 0
    for finding in findings[:MAX_LISTED]:
        text = finding.describe()
        if parts and used + len(text) > MAX_LISTING:
            break
        parts.append(text)
        used += len(text) + 2
    listing = ", ".join(parts)
    if len(parts) < len(findings):
        listing += f" and {len(findings) - len(parts)} more"
    return listing


def judge(report: SBOMReport, max_severity: str, where: str) -> Outcome:
    """Failed when a finding is at or above ``max_severity``, else Passed."""
    threshold = rank(max_severity)
    blocking = tuple(f for f in report.findings if rank(f.severity) >= threshold)
    unknown = tuple(f for f in report.findings if f.severity == UNKNOWN)
    if blocking:
        count = len(blocking)
        noun = "vulnerability" if count == 1 else "vulnerabilities"
        return Outcome.failed(
            f"SBOM {where}: {count} {noun} at or above {max_severity}: {_listing(blocking)}"
        )
    notes = [f"{report.components} components, no vulnerability at or above {max_severity}"]
    below = len(report.findings) - len(unknown)
    if below:
        notes.append(f"{below} below {max_severity}")
    if unknown:
        notes.append(f"{len(unknown)} of unknown severity: {_listing(unknown)}")
    if report.not_exploitable:
        notes.append(f"{report.not_exploitable} not exploitable per its analysis")
    return Outcome.passed(f"SBOM {where}: " + "; ".join(notes))


def check_document(raw: bytes | str, max_severity: str, where: str) -> Outcome:
    """The gate's verdict on one SBOM document read from ``where``."""
    try:
        report = parse_sbom(raw)
    except NotCycloneDX as exc:
        return Outcome.failed(f"SBOM {where} is unusable: {exc}; no evidence, no promotion")
    return judge(report, max_severity, where)


def configmap_value(configmap: Mapping[str, Any], key: str) -> bytes | None:
    """The bytes under ``key`` of a ConfigMap (``data``, else base64 ``binaryData``)."""
    data = configmap.get("data") or {}
    if isinstance(data, dict) and isinstance(data.get(key), str):
        return str(data[key]).encode("utf-8")
    binary = configmap.get("binaryData") or {}
    if isinstance(binary, dict) and isinstance(binary.get(key), str):
        try:
            return base64.b64decode(str(binary[key]), validate=True)
        except (binascii.Error, ValueError):
            return b""
    return None


__all__ = [
    "NOT_EXPLOITABLE",
    "SEVERITIES",
    "SUPPORTED_SPEC_VERSIONS",
    "UNKNOWN",
    "Finding",
    "NotCycloneDX",
    "SBOMReport",
    "check_document",
    "configmap_value",
    "judge",
    "parse_sbom",
    "rank",
]
