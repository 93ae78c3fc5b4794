"""The CRDs in ``crds/``: they agree with the pydantic spec models field by field, they are
complete for ``kubectl explain`` and ``kubectl get``, and their CEL rules stay within what
kube-apiserver accepts. Whether the schemas admit and refuse the manifests they should is
asked of the real API server (``tests/lab/test_crd_admission.py``), which also compiles and
cost-checks every rule when the lab installs the CRDs.
"""

from __future__ import annotations

import copy
import enum
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import annotated_types
import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from rollwise.core import validation
from rollwise.core.rollout.status import RolloutStatus
from rollwise.core.spec import DURATION_PATTERN, RolloutSpec
from rollwise.core.spec_release import ModelReleaseSpec

CRDS = Path(__file__).resolve().parents[2] / "crds"
SHA = "sha256:" + "0123456789abcdef" * 4
OTHER_SHA = "sha256:" + "fedcba9876543210" * 4


def load_crd(plural: str) -> dict[str, Any]:
    doc = yaml.safe_load((CRDS / f"{plural}.rollwise.dev.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


ROLLOUT_CRD = load_crd("rollouts")
MODELRELEASE_CRD = load_crd("modelreleases")


def version_of(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    assert isinstance(version, dict)
    return version


def openapi(crd: dict[str, Any]) -> dict[str, Any]:
    schema = version_of(crd)["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


# --------------------------------------------------------------------------------------------
# Names, subresources, columns


@pytest.mark.parametrize(
    ("crd", "plural", "kind", "short_names"),
    [
        pytest.param(ROLLOUT_CRD, "rollouts", "Rollout", ["rwr"], id="rollout"),
        pytest.param(
            MODELRELEASE_CRD, "modelreleases", "ModelRelease", ["mr", "mrel"], id="modelrelease"
        ),
    ],
)
def test_names_and_version(
    crd: dict[str, Any], plural: str, kind: str, short_names: list[str]
) -> None:
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{plural}.rollwise.dev"
    spec = crd["spec"]
    assert spec["group"] == "rollwise.dev"
    assert spec["scope"] == "Namespaced"
    names = spec["names"]
    assert names["plural"] == plural
    assert names["kind"] == kind
    assert names["singular"] == kind.lower()
    assert names["shortNames"] == short_names
    assert names["categories"] == ["rollwise"]
    # `ro`/`rollout` are commonly claimed by other rollout operators; a cluster running one
    # of them beside Rollwise must keep both usable.
    assert not {"ro", "rollout", "rollouts"} & set(short_names)
    version = version_of(crd)
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"]["status"] == {}


def test_rollout_scale_subresource() -> None:
    scale = version_of(ROLLOUT_CRD)["subresources"]["scale"]
    assert scale == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    assert "scale" not in version_of(MODELRELEASE_CRD)["subresources"]


@pytest.mark.parametrize(
    ("crd", "columns"),
    [
        pytest.param(
            ROLLOUT_CRD,
            [
                ("Phase", ".status.phase"),
                ("Step", ".status.step"),
                ("Weight", ".status.canaryWeight"),
                ("Stable", ".status.stableRevision"),
                ("Canary", ".status.canaryRevision"),
                ("Age", ".metadata.creationTimestamp"),
            ],
            id="rollout",
        ),
        pytest.param(
            MODELRELEASE_CRD,
            [
                ("Model", ".spec.model"),
                ("Version", ".spec.version"),
                ("Stage", ".status.stage"),
                ("Alias", ".spec.alias.name"),
                ("Age", ".metadata.creationTimestamp"),
            ],
            id="modelrelease",
        ),
    ],
)
def test_printer_columns(crd: dict[str, Any], columns: list[tuple[str, str]]) -> None:
    printed = version_of(crd)["additionalPrinterColumns"]
    assert [(c["name"], c["jsonPath"]) for c in printed] == columns
    assert printed[-1]["type"] == "date"
    schema = openapi(crd)
    for column in printed[:-1]:
        # Every column points at a field the schema describes, with a matching type.
        node = schema
        for part in column["jsonPath"].lstrip(".").split("."):
            node = node["properties"][part]
        assert node["type"] == column["type"], column["name"]


# --------------------------------------------------------------------------------------------
# Schema hygiene


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its dotted path (``[]`` for items, ``{}`` for map values)."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}" if path else name)
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("crd", [ROLLOUT_CRD, MODELRELEASE_CRD], ids=["rollout", "modelrelease"])
def test_every_property_has_a_description(crd: dict[str, Any]) -> None:
    undocumented = [
        f"{path}.{name}" if path else name
        for path, node in walk(openapi(crd))
        for name, sub in node.get("properties", {}).items()
        if not str(sub.get("description", "")).strip()
        # The root's metadata is ObjectMeta: the API server describes it, and a CRD may not
        # say more about it than name and generateName.
        and (path, name) != ("", "metadata")
    ]
    assert undocumented == []
    assert openapi(crd)["description"].strip()


@pytest.mark.parametrize(
    ("crd", "templates"),
    [
        pytest.param(ROLLOUT_CRD, {"spec.template"}, id="rollout"),
        pytest.param(MODELRELEASE_CRD, {"spec.serving.template"}, id="modelrelease"),
    ],
)
def test_spec_preserves_unknown_fields_only_in_pod_templates(
    crd: dict[str, Any], templates: set[str]
) -> None:
    preserving = {
        path
        for path, node in walk(openapi(crd))
        if node.get("x-kubernetes-preserve-unknown-fields") and not path.startswith("status")
    }
    assert preserving == templates
    for path in templates:
        node = dict(walk(openapi(crd)))[path]
        assert node["type"] == "object"
        assert "properties" not in node
    status = openapi(crd)["properties"]["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True
    assert "preserve" in status["description"]


@pytest.mark.parametrize("crd", [ROLLOUT_CRD, MODELRELEASE_CRD], ids=["rollout", "modelrelease"])
def test_structural_every_node_typed(crd: dict[str, Any]) -> None:
    # (The API server refuses defaults that would not survive pruning and validation: the lab
    # installs the CRDs on a real one.)
    for path, node in walk(openapi(crd)):
        assert node.get("type"), f"{path} has no type (a structural schema needs one)"


@pytest.mark.parametrize("crd", [ROLLOUT_CRD, MODELRELEASE_CRD], ids=["rollout", "modelrelease"])
def test_lists_iterated_by_cel_are_bounded(crd: dict[str, Any]) -> None:
    for path, node in walk(openapi(crd)):
        rules = " ".join(r["rule"] for r in node.get("x-kubernetes-validations", []))
        if node.get("type") == "array" and any(m in rules for m in ("all(", "exists", "filter(")):
            assert isinstance(node.get("maxItems"), int), f"{path}: CEL iterates an unbounded list"


@pytest.mark.parametrize("crd", [ROLLOUT_CRD, MODELRELEASE_CRD], ids=["rollout", "modelrelease"])
def test_strings_read_by_cel_are_bounded(crd: dict[str, Any]) -> None:
    """kube-apiserver estimates a rule's cost from the longest string it may read: a rule on
    an unbounded string (durations' ``self.matches(...)``) put the CRDs over the cost budget,
    and the real API server refused them."""
    for path, node in walk(openapi(crd)):
        if node.get("type") == "string" and node.get("x-kubernetes-validations"):
            assert isinstance(node.get("maxLength"), int), f"{path}: CEL reads an unbounded string"


#: Functions and macros a Kubernetes API server's CEL environment offers that the rules use.
KUBERNETES_CEL_FUNCTIONS = {
    "has",
    "size",
    "all",
    "exists",
    "exists_one",
    "map",
    "filter",
    "isSorted",
    "matches",
}


@pytest.mark.parametrize("crd", [ROLLOUT_CRD, MODELRELEASE_CRD], ids=["rollout", "modelrelease"])
def test_rules_call_only_kubernetes_cel_functions(crd: dict[str, Any]) -> None:
    called: set[str] = set()
    for _, node in walk(openapi(crd)):
        for rule in node.get("x-kubernetes-validations", []):
            without_strings = re.sub(r"'[^']*'", "''", rule["rule"])
            called |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", without_strings))
            assert rule["message"].strip(), rule["rule"]
    assert called <= KUBERNETES_CEL_FUNCTIONS
    assert "isSorted" in called


def test_durations_use_the_shared_pattern() -> None:
    for crd in (ROLLOUT_CRD, MODELRELEASE_CRD):
        durations = [
            path
            for path, node in walk(openapi(crd))
            if node.get("pattern") == DURATION_PATTERN and "duration" in node["description"]
        ]
        assert len(durations) >= 5
        for path, node in walk(openapi(crd)):
            if path.rsplit(".", 1)[-1] in {"interval", "timeout", "duration"}:
                assert node.get("pattern") == DURATION_PATTERN, path


def test_rule_messages_are_the_operators_messages() -> None:
    """The operator re-checks the cross-field rules with the same texts (rollwise.core.validation),
    so a user sees one message for one mistake, from the API server or from the operator."""
    messages = {
        rule["message"]
        for _, node in walk(openapi(ROLLOUT_CRD))
        for rule in node.get("x-kubernetes-validations", [])
    }
    shared = [
        "MSG_STEP_ONE_KIND",
        "MSG_WEIGHTS_NON_DECREASING",
        "MSG_LAST_WEIGHT_100",
        "MSG_ONE_ROUTER",
        "MSG_SERVICES_DIFFER",
        "MSG_UNIQUE_METRICS",
        "MSG_METRIC_KIND",
        "MSG_SCORING_ORDER",
        "MSG_RANGE_EXCLUSIVE",
        "MSG_RANGE_BOUNDS",
        "MSG_GUARD_NEEDS_PROMETHEUS",
        "MSG_ANALYSIS_STEP_METRICS",
        "MSG_SELECTOR_EMPTY",
        "MSG_HEADER_ROUTE_ROUTER",
        "MSG_HEADER_MATCH_ONE",
        "MSG_HEADER_VALUE_ONE",
        "MSG_MIRROR_ROUTE_ROUTER",
        "MSG_ONE_STRATEGY",
        "MSG_PREVIEW_SERVICE_DIFFERS",
        "MSG_PRE_PROMOTION_METRICS",
        "MSG_POST_PROMOTION_METRICS",
    ]
    assert [name for name in shared if getattr(validation, name) not in messages] == []


# --------------------------------------------------------------------------------------------
# The CRDs and the pydantic models agree field by field

NoneType = type(None)


def unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """The core type of an annotation and the constraints collected on the way
    (``Optional``, ``Annotated`` and ``Field(...)`` layers removed)."""
    constraints: list[Any] = []
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            base, *extra = typing.get_args(annotation)
            for item in extra:
                constraints.extend(item.metadata if isinstance(item, FieldInfo) else [item])
            annotation = base
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not NoneType]
            assert len(args) == 1, annotation
            annotation = args[0]
        else:
            return annotation, constraints


def expected_bounds(constraints: list[Any]) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    for item in constraints:
        if isinstance(item, annotated_types.Ge):
            bounds["minimum"] = item.ge
        elif isinstance(item, annotated_types.Gt):
            bounds["minimum"] = item.gt
            bounds["exclusiveMinimum"] = True
        elif isinstance(item, annotated_types.Lt):
            bounds["maximum"] = item.lt
            bounds["exclusiveMaximum"] = True
        elif isinstance(item, annotated_types.Le):
            bounds["maximum"] = item.le
        elif isinstance(item, annotated_types.MinLen):
            bounds["minLength"] = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            bounds["maxLength"] = item.max_length
        elif getattr(item, "pattern", None) is not None:
            bounds["pattern"] = item.pattern
    return bounds


def _bounds_of(node: dict[str, Any]) -> dict[str, Any]:
    return {
        k: node[k]
        for k in (
            "minimum",
            "exclusiveMinimum",
            "maximum",
            "exclusiveMaximum",
            "minLength",
            "maxLength",
            "pattern",
            "enum",
        )
        if k in node
    }


def compare_value(annotation: Any, node: dict[str, Any], path: str, problems: list[str]) -> None:
    core, constraints = unwrap(annotation)
    bounds = expected_bounds(constraints)
    crd_bounds = _bounds_of(node)
    enum_values = crd_bounds.pop("enum", None)
    if enum_values is not None and "pattern" in bounds:
        # A closed alternation in the model (^(a|b)$) is an enum in the CRD (kubectl explain
        # shows enums).
        pattern = bounds.pop("pattern")
        if set(pattern.removeprefix("^(").removesuffix(")$").split("|")) != set(enum_values):
            problems.append(f"{path}: enum {enum_values} != pattern {pattern}")
    if bounds != crd_bounds:
        problems.append(f"{path}: bounds {crd_bounds} in the CRD, {bounds} in the model")
    origin = typing.get_origin(core)
    if isinstance(core, type) and issubclass(core, BaseModel):
        if node.get("type") != "object":
            problems.append(f"{path}: model {core.__name__} but CRD type {node.get('type')}")
            return
        compare_model(core, node, path, problems)
    elif isinstance(core, type) and issubclass(core, enum.Enum):
        if node.get("type") != "string" or node.get("enum") != [m.value for m in core]:
            problems.append(f"{path}: enum {core.__name__} vs {node.get('enum')}")
    elif origin is list:
        (item,) = typing.get_args(core)
        if node.get("type") != "array" or "items" not in node:
            problems.append(f"{path}: list in the model, {node.get('type')} in the CRD")
            return
        compare_value(item, node["items"], f"{path}[]", problems)
    elif origin is dict:
        key, value = typing.get_args(core)
        assert key is str
        if value is Any:
            free_form = node.get("type") == "object" and node.get(
                "x-kubernetes-preserve-unknown-fields"
            )
            if not free_form:
                problems.append(f"{path}: free-form in the model but not in the CRD")
        elif node.get("type") != "object" or "additionalProperties" not in node:
            problems.append(f"{path}: map in the model, not in the CRD")
        else:
            compare_value(value, node["additionalProperties"], f"{path}{{}}", problems)
    else:
        scalar = {str: "string", int: "integer", float: "number", bool: "boolean"}[core]
        if node.get("type") != scalar:
            problems.append(f"{path}: {scalar} in the model, {node.get('type')} in the CRD")


def model_default(info: FieldInfo) -> Any:
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, list):
        return [
            v.model_dump(mode="json", by_alias=True, exclude_none=True)
            if isinstance(v, BaseModel)
            else v
            for v in value
        ]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def apply_defaults(node: dict[str, Any], value: Any) -> Any:
    """``value`` with the defaults of ``node``'s properties filled in, recursively, as the
    API server applies them (a default inside an absent object is not applied)."""
    if isinstance(value, dict) and node.get("type") == "object":
        out = dict(value)
        for name, child in node.get("properties", {}).items():
            if name not in out and "default" in child:
                out[name] = copy.deepcopy(child["default"])
            if name in out:
                out[name] = apply_defaults(child, out[name])
        return out
    if isinstance(value, list) and node.get("type") == "array":
        return [apply_defaults(node.get("items", {}), item) for item in value]
    return value


def crd_default(node: dict[str, Any]) -> Any:
    """The CRD default as the API server stores it: nested defaults applied inside it."""
    if "default" not in node:
        return None
    return apply_defaults(node, copy.deepcopy(node["default"]))


def compare_model(
    model: type[BaseModel], node: dict[str, Any], path: str, problems: list[str]
) -> None:
    properties = node.get("properties", {})
    fields = {info.alias or name: info for name, info in model.model_fields.items()}
    for name in sorted(set(fields) ^ set(properties)):
        side = "model" if name in fields else "CRD"
        problems.append(f"{path}.{name}: only in the {side}")
    required = {name for name, info in fields.items() if info.is_required()}
    if required != set(node.get("required", [])):
        problems.append(
            f"{path}: required {sorted(node.get('required', []))} != {sorted(required)}"
        )
    for name, info in fields.items():
        if name not in properties:
            continue
        sub = properties[name]
        child = f"{path}.{name}"
        annotation: Any = info.annotation
        if info.metadata:
            annotation = typing.Annotated[annotation, *info.metadata]
        compare_value(annotation, sub, child, problems)
        if not info.is_required():
            expected = model_default(info)
            if crd_default(sub) != expected:
                problems.append(f"{child}: default {crd_default(sub)!r} != model {expected!r}")


@pytest.mark.parametrize(
    ("crd", "model"),
    [
        pytest.param(ROLLOUT_CRD, RolloutSpec, id="rollout"),
        pytest.param(MODELRELEASE_CRD, ModelReleaseSpec, id="modelrelease"),
    ],
)
def test_crd_spec_matches_the_model(crd: dict[str, Any], model: type[BaseModel]) -> None:
    problems: list[str] = []
    compare_model(model, openapi(crd)["properties"]["spec"], "spec", problems)
    if model is ModelReleaseSpec:
        # The step model is shared with the Rollout; a ModelRelease canary has no header
        # routes nor mirrors: its CRD has no such field (the API server drops or refuses it)
        # and the operator's validation refuses one that got past
        # (MSG_HEADER_ROUTE_MODELRELEASE, MSG_MIRROR_ROUTE_MODELRELEASE); likewise approval
        # steps (a ModelRelease has its own approvals, MSG_APPROVAL_MODELRELEASE).
        problems.remove("spec.canary.steps[].setHeaderRoute: only in the model")
        problems.remove("spec.canary.steps[].setMirrorRoute: only in the model")
        problems.remove("spec.canary.steps[].approval: only in the model")
    assert problems == []


def test_the_field_walker_notices_drift() -> None:
    """The comparison above must be able to fail: feed it a deliberately drifted schema."""
    spec = copy.deepcopy(openapi(ROLLOUT_CRD)["properties"]["spec"])
    spec["properties"]["replicas"]["default"] = 2
    spec["properties"]["paused"]["type"] = "string"
    del spec["properties"]["progressDeadlineSeconds"]
    spec["properties"]["extra"] = {"type": "string", "description": "x"}
    spec["required"] = ["selector"]
    canary = spec["properties"]["strategy"]["properties"]["canary"]["properties"]
    canary["steps"]["items"]["properties"]["setWeight"]["maximum"] = 99
    problems: list[str] = []
    compare_model(RolloutSpec, spec, "spec", problems)
    text = "\n".join(problems)
    for fragment in (
        "spec.replicas: default",
        "spec.paused: boolean in the model",
        "spec.progressDeadlineSeconds: only in the model",
        "spec.extra: only in the CRD",
        "spec: required",
        "setWeight: bounds",
    ):
        assert fragment in text


def test_status_fields_are_described_and_unknown_ones_kept() -> None:
    rollout_status = openapi(ROLLOUT_CRD)["properties"]["status"]["properties"]
    for name in (
        "phase",
        "message",
        "observedGeneration",
        "currentStepIndex",
        "canaryWeight",
        "stableRevision",
        "canaryRevision",
        "replicas",
        "selector",
        "conditions",
        "analysis",
    ):
        assert name in rollout_status
    condition = rollout_status["conditions"]["items"]["properties"]
    assert set(condition) >= {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
        "observedGeneration",
    }
    release_status = openapi(MODELRELEASE_CRD)["properties"]["status"]["properties"]
    for name in ("stage", "phase", "message", "observedGeneration", "conditions", "history"):
        assert name in release_status
    assert set(release_status["alias"]["properties"]) == {"currentVersion", "previousVersion"}
    assert release_status["gates"]["type"] == "array"


# --------------------------------------------------------------------------------------------
# The Rollout status the operator writes is described by, and valid against, the CRD
def undescribed(model: type[BaseModel], node: dict[str, Any], path: str) -> list[str]:
    missing: list[str] = []
    properties = node.get("properties", {})
    for name, info in model.model_fields.items():
        alias = info.alias or name
        if alias not in properties:
            missing.append(f"{path}.{alias}")
            continue
        core, _ = unwrap(info.annotation)
        sub = properties[alias]
        if typing.get_origin(core) is list:
            (core,) = typing.get_args(core)
            sub = sub.get("items", {})
        if isinstance(core, type) and issubclass(core, BaseModel):
            missing.extend(undescribed(core, sub, f"{path}.{alias}"))
    return missing


def test_every_rollout_status_field_is_described() -> None:
    status_schema = openapi(ROLLOUT_CRD)["properties"]["status"]
    assert undescribed(RolloutStatus, status_schema, "status") == []
