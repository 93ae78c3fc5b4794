"""Writes the analysis template CRDs (``crds/analysistemplates.rollwise.dev.yaml`` and
``crds/clusteranalysistemplates.rollwise.dev.yaml``) and checks the template references in
the Rollout and ModelRelease CRDs.

A template holds the same metrics a Rollout's analysis does, so its metric schema is not
written twice: it is taken from the Rollout CRD (``spec.strategy.canary.analysis.metrics``),
the single source of the metric schema, and a new metric field or kind added there reaches
the templates when this script runs again. ``TEMPLATE_REFS`` is the schema of the
``templates`` field each analysis carries; ``--check`` (run by tests/unit/test_template_crds.py)
fails when a generated file or a reference schema in the other CRDs differs from what this
script writes.

    python -m hack.gen_template_crds          # write both files
    python -m hack.gen_template_crds --check  # verify, write nothing
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CRDS = ROOT / "crds"
GROUP = "rollwise.dev"

ARG_NAME: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 63,
    "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
}
#: A number as the core reads one (``rollwise.core.templates``), with ``[.]`` for a dot: no
#: backslash that a CEL string would need escaped.
NUMBER_PATTERN = "^[-+]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][-+]?[0-9]+)?$"
#: Arg names are unique: a list map keyed by name (the API server refuses a duplicate key at
#: no CEL cost; an args rule iterating pairs went over the cost budget inside steps).
UNIQUE_ARGS = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}

#: The ``templates`` field of a Rollout's or ModelRelease's analysis (background and steps).
TEMPLATE_REFS: dict[str, Any] = {
    "description": (
        "Analysis templates whose metrics join this analysis, before the inline metrics, with "
        "the values of their args. A template missing, an arg it does not declare, a required "
        "arg not given, or a metric name defined twice makes the spec invalid (InvalidSpec)."
    ),
    "type": "array",
    "maxItems": 8,
    "items": {
        "description": "A reference to an AnalysisTemplate or ClusterAnalysisTemplate by name.",
        "type": "object",
        "required": ["templateName"],
        "properties": {
            "templateName": {
                "description": (
                    "Name of the AnalysisTemplate in this object's namespace or, with "
                    "clusterScope, of the ClusterAnalysisTemplate."
                ),
                "type": "string",
                "minLength": 1,
                "maxLength": 253,
                "pattern": (r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"),
            },
            "clusterScope": {
                "description": (
                    "Reference a ClusterAnalysisTemplate instead of an AnalysisTemplate."
                ),
                "type": "boolean",
                "default": False,
            },
            "args": {
                "description": (
                    "Values of the template's args, each used where the template's metrics "
                    "write {{args.NAME}}."
                ),
                "type": "array",
                "maxItems": 32,
                "items": {
                    "description": "The value of one arg.",
                    "type": "object",
                    "required": ["name", "value"],
                    "properties": {
                        "name": {
                            "description": "Name of an arg the template declares.",
                            **ARG_NAME,
                        },
                        "value": {
                            "description": (
                                "The arg's value, as text (a number arg's must be a number)."
                            ),
                            "type": "string",
                            "maxLength": 1024,
                        },
                    },
                },
                **UNIQUE_ARGS,
            },
        },
    },
}

#: Where the Rollout and ModelRelease CRDs carry ``TEMPLATE_REFS``: (file, path of the analysis).
REF_SITES = [
    ("rollouts", ("spec", "strategy", "canary", "analysis")),
    ("rollouts", ("spec", "strategy", "canary", "steps", "[]", "analysis")),
    ("modelreleases", ("spec", "canary", "analysis")),
    ("modelreleases", ("spec", "canary", "steps", "[]", "analysis")),
]


#: Where the Rollout and ModelRelease CRDs carry a copy of the analysis metric schema (the
#: watch's metrics), as (plural, path).
WATCH_METRIC_SITES = [
    ("rollouts", ("spec", "strategy", "canary", "postPromotion", "metrics")),
    ("modelreleases", ("spec", "canary", "postPromotion", "metrics")),
]
#: Where each kind's watch spec and watch status sit: the ModelRelease's are copies of the
#: Rollout's (same spec shape, same status contract).
WATCH_SPEC_SITES = {
    "rollouts": ("spec", "strategy", "canary", "postPromotion"),
    "modelreleases": ("spec", "canary", "postPromotion"),
}
WATCH_STATUS_SITE = ("status", "postPromotion")


def load(plural: str) -> dict[str, Any]:
    doc = yaml.safe_load((CRDS / f"{plural}.{GROUP}.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


def node_at(crd: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    node: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    for part in path:
        node = node["items"] if part == "[]" else node["properties"][part]
    return node


def metric_schema() -> dict[str, Any]:
    """The schema of one metric, as the Rollout CRD defines it."""
    metrics = node_at(load("rollouts"), ("spec", "strategy", "canary", "analysis", "metrics"))
    return copy.deepcopy(metrics["items"])


def template_spec() -> dict[str, Any]:
    return {
        "description": (
            "Metrics to reuse across Rollouts and ModelReleases, and the args they take. A "
            "reference (an analysis' templates) gives the args' values; each {{args.NAME}} in "
            "a metric's queries, paths, bodies and conditions is replaced by its value, and "
            "the other placeholders ({{canaryRevision}}, ...) are filled in as for inline "
            "metrics."
        ),
        "type": "object",
        "required": ["metrics"],
        "properties": {
            "args": {
                "description": "The args the metrics use as {{args.NAME}}.",
                "type": "array",
                "maxItems": 32,
                "items": {
                    "description": (
                        "One arg. A required arg must be given by every reference; an optional "
                        "one falls back to its default (empty without one)."
                    ),
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {
                            "description": "Name of the arg, used as {{args.NAME}}.",
                            **ARG_NAME,
                        },
                        "default": {
                            "description": "Value used when a reference gives none.",
                            "type": "string",
                            "maxLength": 1024,
                        },
                        "required": {
                            "description": "Every reference must give a value (no default then).",
                            "type": "boolean",
                            "default": False,
                        },
                        "type": {
                            "description": (
                                "What the value must be: any text (string) or a number (number: "
                                "a value such as 0.05 or 1e3, refused otherwise)."
                            ),
                            "type": "string",
                            "enum": ["string", "number"],
                            "default": "string",
                        },
                    },
                    "x-kubernetes-validations": [
                        {
                            "rule": "!(self.required && has(self.default))",
                            "message": "a required arg has no default",
                        },
                        {
                            "rule": (
                                "!has(self.default) || self.type != 'number' || "
                                f"self.default.matches('{NUMBER_PATTERN}')"
                            ),
                            "message": "the default of a number arg must be a number",
                        },
                    ],
                },
                **UNIQUE_ARGS,
            },
            "metrics": {
                "description": "The checks the template stands for.",
                "type": "array",
                "minItems": 1,
                "maxItems": 32,
                "items": metric_schema(),
                "x-kubernetes-validations": [
                    {
                        "rule": "self.all(m, self.exists_one(n, n.name == m.name))",
                        "message": "metric names must be unique within an analysis",
                    }
                ],
            },
        },
    }


def template_crd(kind: str, plural: str, scope: str, short_names: list[str]) -> dict[str, Any]:
    where = (
        "referenced by Rollouts and ModelReleases in any namespace with clusterScope: true"
        if scope == "Cluster"
        else "referenced by Rollouts and ModelReleases in its namespace"
    )
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {
                "app.kubernetes.io/name": "rollwise",
                "app.kubernetes.io/part-of": "rollwise",
            },
        },
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                "categories": ["rollwise"],
            },
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "additionalPrinterColumns": [
                        {
                            "name": "Metrics",
                            "type": "string",
                            "jsonPath": ".spec.metrics[*].name",
                            "description": "Names of the template's metrics",
                        },
                        {
                            "name": "Args",
                            "type": "string",
                            "jsonPath": ".spec.args[*].name",
                            "description": "Names of the template's args",
                        },
                        {
                            "name": "Age",
                            "type": "date",
                            "jsonPath": ".metadata.creationTimestamp",
                        },
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "description": (
                                f"{kind}: reusable analysis metrics with typed args, {where}. "
                                "A Rollout reads it on each pass: an edit applies from the next "
                                "measurement of every analysis that references it."
                            ),
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {
                                    "description": "APIVersion of the object.",
                                    "type": "string",
                                },
                                "kind": {"description": "Kind of the object.", "type": "string"},
                                "metadata": {"type": "object"},
                                "spec": template_spec(),
                            },
                        }
                    },
                }
            ],
        },
    }


HEADER = """\
# GENERATED by hack/gen_template_crds.py from the metric schema of crds/rollouts.rollwise.dev.yaml:
# edit the generator (or the Rollout CRD's metrics) and run `python -m hack.gen_template_crds`,
# then `bash hack/sync-chart-crds.sh`. `kubectl explain {singular}.spec` shows the descriptions.
---
"""


def rendered() -> dict[Path, str]:
    out: dict[Path, str] = {}
    for kind, plural, scope, short in (
        ("AnalysisTemplate", "analysistemplates", "Namespaced", ["rwat"]),
        ("ClusterAnalysisTemplate", "clusteranalysistemplates", "Cluster", ["rwcat"]),
    ):
        body = yaml.safe_dump(template_crd(kind, plural, scope, short), sort_keys=False, width=100)
        out[CRDS / f"{plural}.{GROUP}.yaml"] = HEADER.format(singular=kind.lower()) + body
    return out


def ref_drift() -> list[str]:
    """The places in the Rollout and ModelRelease CRDs whose ``templates`` differs from
    :data:`TEMPLATE_REFS`."""
    problems: list[str] = []
    for plural, path in REF_SITES:
        node = node_at(load(plural), path)
        if node.get("properties", {}).get("templates") != TEMPLATE_REFS:
            problems.append(f"{plural}: {'.'.join(path)}.templates differs from TEMPLATE_REFS")
    # The post-promotion watch measures the same metrics: its metric schema is the analysis'.
    for plural, path in WATCH_METRIC_SITES:
        if node_at(load(plural), path)["items"] != metric_schema():
            problems.append(
                f"{plural}: {'.'.join(path)}.items differs from the analysis metric schema"
                " (spec.strategy.canary.analysis.metrics.items): copy it over"
            )
    # The ModelRelease's watch is the Rollout's: its fields (but its description) and status.
    ours = node_at(load("rollouts"), WATCH_SPEC_SITES["rollouts"])
    theirs = node_at(load("modelreleases"), WATCH_SPEC_SITES["modelreleases"])
    if _without_description(ours) != _without_description(theirs):
        problems.append(
            "modelreleases: spec.canary.postPromotion differs from the Rollout's "
            "spec.strategy.canary.postPromotion: copy it over"
        )
    if _without_description(node_at(load("rollouts"), WATCH_STATUS_SITE)) != _without_description(
        node_at(load("modelreleases"), WATCH_STATUS_SITE)
    ):
        problems.append(
            "modelreleases: status.postPromotion differs from the Rollout's: copy it over"
        )
    return problems


def _without_description(node: dict[str, Any]) -> dict[str, Any]:
    """A schema node without its own description (a kind words its watch its own way)."""
    return {k: v for k, v in node.items() if k != "description"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="verify only; exit 1 on drift")
    args = parser.parse_args(argv)
    stale = [
        path for path, text in rendered().items() if not path.exists() or path.read_text() != text
    ]
    drift = ref_drift()
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run python -m hack.gen_template_crds")
        for problem in drift:
            print(problem)
        return 1 if stale or drift else 0
    for path, text in rendered().items():
        path.write_text(text)
    for problem in drift:
        print(problem, file=sys.stderr)
    return 1 if drift else 0


if __name__ == "__main__":
    raise SystemExit(main())
