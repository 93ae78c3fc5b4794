"""The CRDs in ``crds/``: they agree with the pydantic spec models field by field, they are
complete for ``kubectl explain`` and ``kubectl get``, and their schemas (with CEL rules) accept
the manifests they should and reject the ones they should, with messages a user understands.

Admission goes through the lab's structural-schema engine, the same one the API emulator uses.
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

from hack.lab.kube.schema import StructuralSchema, admit_custom_resource
from rollwise.core import validation
from rollwise.core.spec import DURATION_PATTERN, ModelReleaseSpec, RolloutSpec
from rollwise.core.status import RolloutStatus

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


ROLLOUT_SCHEMA = StructuralSchema(openapi(ROLLOUT_CRD))
MODELRELEASE_SCHEMA = StructuralSchema(openapi(MODELRELEASE_CRD))


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
                ("Step", ".status.currentStepIndex"),
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
def test_structural_every_node_typed_and_defaults_valid(crd: dict[str, Any]) -> None:
    for path, node in walk(openapi(crd)):
        assert node.get("type"), f"{path} has no type (a structural schema needs one)"
        if "default" in node:
            # The API server refuses defaults that would not survive pruning and validation.
            wrapper = StructuralSchema({"type": "object", "properties": {"v": node}})
            value = {"v": copy.deepcopy(node["default"])}
            assert wrapper.prune(value) == value, path
            assert wrapper.validate(wrapper.apply_defaults(value)) == [], path


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
        "MSG_METRIC_RULE",
        "MSG_RANGE_EXCLUSIVE",
        "MSG_RANGE_BOUNDS",
        "MSG_ANALYSIS_STEP_METRICS",
        "MSG_SELECTOR_EMPTY",
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
        for k in ("minimum", "maximum", "minLength", "maxLength", "pattern", "enum")
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


def crd_default(node: dict[str, Any]) -> Any:
    """The CRD default as the API server stores it: nested defaults applied inside it."""
    if "default" not in node:
        return None
    wrapper = StructuralSchema({"type": "object", "properties": {"v": node}})
    return wrapper.apply_defaults({"v": copy.deepcopy(node["default"])})["v"]


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


# --------------------------------------------------------------------------------------------
# Admission: invalid manifests rejected with clear messages, valid ones defaulted


def rollout(**canary: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"stableService": "demo-stable", "canaryService": "demo-canary"}
    body.update(canary)
    return {
        "apiVersion": "rollwise.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "demo"}},
            "template": {
                "metadata": {"labels": {"app": "demo"}},
                "spec": {"containers": [{"name": "app", "image": "demo:1"}]},
            },
            "strategy": {"canary": body},
        },
    }


def metric(name: str = "errors", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "successCondition": "result < 0.05",
        "provider": {"prometheus": {"query": "vector(0)"}},
    }
    body.update(fields)
    return body


def modelrelease(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "fraud",
        "version": "7",
        "artifact": {"uri": "s3://models/fraud/7", "digest": SHA},
        "change": {"ticket": "CHG-1"},
        "serving": {"inferenceServiceRef": {"name": "fraud"}},
    }
    body.update(spec)
    return {
        "apiVersion": "rollwise.dev/v1alpha1",
        "kind": "ModelRelease",
        "metadata": {"name": "fraud-7", "namespace": "default"},
        "spec": body,
    }


def with_spec(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(obj)
    changed["spec"].update(changes)
    return changed


INVALID_ROLLOUTS = [
    pytest.param(
        rollout(steps=[{"setWeight": 50}, {"setWeight": 20}, {"setWeight": 100}]),
        'spec.strategy.canary.steps: Invalid value: "array": setWeight must not decrease '
        "from one step to the next",
        id="decreasing-weights",
    ),
    pytest.param(
        rollout(steps=[{"setWeight": 5}, {"setWeight": 50}]),
        "the last setWeight step must set weight 100",
        id="last-weight-not-100",
    ),
    pytest.param(
        rollout(steps=[{"setWeight": 5}, {"setWeight": 50}, {"pause": {}}]),
        "the last setWeight step must set weight 100",
        id="last-weight-not-100-before-a-pause",
    ),
    pytest.param(
        rollout(
            trafficRouting={
                "gatewayAPI": {"httpRoute": {"name": "demo"}},
                "istio": {"virtualService": {"name": "demo"}},
            }
        ),
        'spec.strategy.canary.trafficRouting: Invalid value: "object": trafficRouting must '
        "set exactly one of gatewayAPI or istio",
        id="two-routers",
    ),
    pytest.param(
        rollout(trafficRouting={}),
        "trafficRouting must set exactly one of gatewayAPI or istio",
        id="empty-traffic-routing",
    ),
    pytest.param(
        rollout(steps=[{"setWeight": 5, "pause": {}}, {"setWeight": 100}]),
        'spec.strategy.canary.steps[0]: Invalid value: "object": each step must set exactly '
        "one of setWeight, pause or analysis",
        id="step-with-two-kinds",
    ),
    pytest.param(
        rollout(steps=[{}, {"setWeight": 100}]),
        "each step must set exactly one of setWeight, pause or analysis",
        id="empty-step",
    ),
    pytest.param(
        rollout(steps=[{"pause": {"duration": "5 minutes"}}, {"setWeight": 100}]),
        'spec.strategy.canary.steps[0].pause.duration: Invalid value: "5 minutes": '
        "spec.strategy.canary.steps[0].pause.duration in body should match",
        id="bad-duration",
    ),
    pytest.param(
        rollout(analysis={"interval": "30"}),
        "spec.strategy.canary.analysis.interval in body should match",
        id="duration-without-unit",
    ),
    pytest.param(
        rollout(steps=[{"setWeight": 101}]),
        "spec.strategy.canary.steps[0].setWeight: Invalid value: 101: "
        "spec.strategy.canary.steps[0].setWeight in body should be less than or equal to 100",
        id="weight-101",
    ),
    pytest.param(
        rollout(steps=[{"setWeight": -1}, {"setWeight": 100}]),
        "should be greater than or equal to 0",
        id="negative-weight",
    ),
    pytest.param(
        rollout(analysis={"metrics": [metric("errors"), metric("errors")]}),
        'spec.strategy.canary.analysis.metrics: Invalid value: "array": metric names must be '
        "unique within an analysis",
        id="duplicate-metric-names",
    ),
    pytest.param(
        rollout(steps=[{"analysis": {"metrics": [metric("a"), metric("a")]}}, {"setWeight": 100}]),
        "metric names must be unique within an analysis",
        id="duplicate-metric-names-in-a-step",
    ),
    pytest.param(
        rollout(canaryService="demo-stable"),
        "stableService and canaryService must differ",
        id="stable-equals-canary-service",
    ),
    pytest.param(
        rollout(analysis={"metrics": [metric(successCondition=None)]}),
        "each metric needs thresholdRange, successCondition or failureCondition",
        id="metric-without-condition",
    ),
    pytest.param(
        rollout(analysis={"metrics": [metric(thresholdRange={"max": 1})]}),
        "thresholdRange cannot be combined with successCondition or failureCondition",
        id="threshold-range-with-condition",
    ),
    pytest.param(
        rollout(steps=[{"analysis": {}}, {"setWeight": 100}]),
        'spec.strategy.canary.steps: Invalid value: "object": an analysis step needs metrics, '
        "its own or strategy.canary.analysis.metrics",
        id="analysis-step-without-metrics",
    ),
    pytest.param(
        rollout(
            steps=[{"analysis": {"metrics": []}}, {"setWeight": 100}],
            analysis={"metrics": [metric()]},
        ),
        "an analysis step needs metrics, its own or strategy.canary.analysis.metrics",
        id="analysis-step-with-empty-metrics",
    ),
    pytest.param(
        rollout(analysis={"interval": "0s", "metrics": [metric()]}),
        'spec.strategy.canary.analysis.interval: Invalid value: "string": duration must be '
        "greater than 0",
        id="zero-interval",
    ),
    pytest.param(
        rollout(analysis={"metrics": [metric(interval="0.0m")]}),
        'spec.strategy.canary.analysis.metrics[0].interval: Invalid value: "string": duration '
        "must be greater than 0",
        id="zero-metric-interval",
    ),
    pytest.param(
        with_spec(rollout(), selector={"matchLabels": {}}),
        'spec.selector: Invalid value: "object": selector must set matchLabels or matchExpressions',
        id="empty-selector",
    ),
    pytest.param(
        rollout(
            analysis={
                "metrics": [metric(successCondition=None, thresholdRange={"min": 2, "max": 1.5})]
            }
        ),
        'spec.strategy.canary.analysis.metrics[0].thresholdRange: Invalid value: "object": '
        "thresholdRange needs min or max, and min must not exceed max",
        id="threshold-min-above-max",
    ),
    pytest.param(
        rollout(analysis={"metrics": [metric(successCondition=None, thresholdRange={})]}),
        "thresholdRange needs min or max, and min must not exceed max",
        id="threshold-range-empty",
    ),
    pytest.param(
        rollout(
            analysis={
                "metrics": [
                    metric(
                        provider={
                            "prometheus": {"query": "up"},
                            "web": {"name": "slo", "jsonPath": "$.value"},
                        }
                    )
                ]
            }
        ),
        "provider must set exactly one of prometheus or web",
        id="metric-with-two-providers",
    ),
    pytest.param(
        rollout(
            analysis={
                "metrics": [
                    metric(provider={"web": {"name": "slo", "jsonPath": "$.v", "body": "{}"}})
                ]
            }
        ),
        "body is sent only with method POST",
        id="web-body-without-post",
    ),
    pytest.param(
        rollout(analysis={"metrics": [metric(provider={})]}),
        "provider must set exactly one of prometheus or web",
        id="metric-without-provider",
    ),
    pytest.param(
        rollout(analysis={"metrics": [metric(name="Error_Rate")]}),
        "spec.strategy.canary.analysis.metrics[0].name in body should match",
        id="metric-name-not-a-dns-label",
    ),
    pytest.param(
        rollout(analysis={"metrics": [metric(count=0)]}),
        "metrics[0].count in body should be greater than or equal to 1",
        id="metric-count-zero",
    ),
    pytest.param(
        rollout(steps=[{"setWeight": 1}] * 64 + [{"setWeight": 100}]),
        "spec.strategy.canary.steps: Too many: 65: must have at most 64 items",
        id="too-many-steps",
    ),
    pytest.param(
        with_spec(rollout(), replicas=-1),
        "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or "
        "equal to 0",
        id="negative-replicas",
    ),
    pytest.param(
        with_spec(rollout(), replicas="three"),
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type '
        'integer: "string"',
        id="replicas-not-an-integer",
    ),
    pytest.param(
        {k: v for k, v in rollout().items() if k != "spec"},
        "spec: Required value",
        id="no-spec",
    ),
    pytest.param(
        with_spec(rollout(), strategy={"canary": {"stableService": "demo-stable"}}),
        "spec.strategy.canary.canaryService: Required value",
        id="no-canary-service",
    ),
    pytest.param(
        with_spec(
            rollout(),
            selector={"matchExpressions": [{"key": "app", "operator": "Like"}]},
        ),
        'spec.selector.matchExpressions[0].operator: Unsupported value: "Like": supported '
        'values: "In", "NotIn", "Exists", "DoesNotExist"',
        id="bad-selector-operator",
    ),
]


@pytest.mark.parametrize(("manifest", "message"), INVALID_ROLLOUTS)
def test_invalid_rollouts_are_rejected(manifest: dict[str, Any], message: str) -> None:
    _, errors = admit_custom_resource(ROLLOUT_SCHEMA, manifest)
    assert errors, "accepted"
    assert any(message in str(e) for e in errors), [str(e) for e in errors]


INVALID_MODELRELEASES = [
    pytest.param(
        modelrelease(serving={"template": {"spec": {}}, "inferenceServiceRef": {"name": "x"}}),
        'spec.serving: Invalid value: "object": serving needs exactly one of template or '
        "inferenceServiceRef",
        id="serving-template-and-inferenceservice",
    ),
    pytest.param(
        modelrelease(serving={"replicas": 1}),
        "serving needs exactly one of template or inferenceServiceRef",
        id="serving-neither",
    ),
    pytest.param(
        modelrelease(
            alias={"store": {"configMap": {"name": "a"}, "mlflow": {"trackingURI": "http://m"}}}
        ),
        "alias store must set at most one of configMap or mlflow",
        id="two-alias-stores",
    ),
    pytest.param(
        modelrelease(gates={"freezeWindows": [{"name": "friday", "schedule": "0 18 * * 5"}]}),
        "a freeze window needs either schedule and duration, or start and end",
        id="freeze-schedule-without-duration",
    ),
    pytest.param(
        modelrelease(
            gates={
                "freezeWindows": [
                    {
                        "name": "mixed",
                        "schedule": "0 18 * * 5",
                        "duration": "1h",
                        "start": "2026-01-01T00:00:00Z",
                        "end": "2026-01-02T00:00:00Z",
                    }
                ]
            }
        ),
        "a freeze window needs either schedule and duration, or start and end",
        id="freeze-both-styles",
    ),
    pytest.param(
        modelrelease(
            gates={
                "freezeWindows": [
                    {"name": "x", "start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}
                ]
            }
        ),
        "a freeze window's start must be before its end",
        id="freeze-end-before-start",
    ),
    pytest.param(
        modelrelease(gates={"freezeWindows": [{"name": "x", "start": "monday", "end": "friday"}]}),
        'spec.gates.freezeWindows[0].start in body must be of type date-time: "monday"',
        id="freeze-start-not-a-time",
    ),
    pytest.param(
        modelrelease(approvals={"requiredRoles": ["security", "security"]}),
        'spec.approvals.requiredRoles[1]: Duplicate value: "security"',
        id="duplicate-required-roles",
    ),
    pytest.param(
        modelrelease(artifact={"uri": "s3://m", "digest": "md5:abc"}),
        "spec.artifact.digest in body should match '^sha256:[a-f0-9]{64}$'",
        id="digest-not-sha256",
    ),
    pytest.param(
        modelrelease(change={"type": "urgent", "ticket": "CHG-1"}),
        'spec.change.type: Unsupported value: "urgent": supported values: "standard", '
        '"normal", "emergency"',
        id="unknown-change-type",
    ),
    pytest.param(
        modelrelease(canary={"steps": [{"setWeight": 60}, {"setWeight": 30}]}),
        "setWeight must not decrease from one step to the next",
        id="canary-decreasing-weights",
    ),
    pytest.param(
        modelrelease(
            serving={
                "template": {"spec": {}},
                "stableService": "svc",
                "canaryService": "svc",
            }
        ),
        "stableService and canaryService must differ",
        id="serving-same-services",
    ),
    pytest.param(
        modelrelease(canary={"steps": [{"analysis": {}}, {"setWeight": 100}]}),
        'spec.canary.steps: Invalid value: "object": an analysis step needs metrics, its own or '
        "canary.analysis.metrics",
        id="analysis-step-without-metrics",
    ),
    pytest.param(
        modelrelease(
            gates={"freezeWindows": [{"name": "x", "schedule": "0 1 * * *", "duration": "0h"}]}
        ),
        'spec.gates.freezeWindows[0].duration: Invalid value: "string": duration must be '
        "greater than 0",
        id="freeze-zero-duration",
    ),
    pytest.param(
        modelrelease(version=""),
        'spec.version: Invalid value: "": spec.version in body should be at least 1 chars long',
        id="empty-version",
    ),
]


@pytest.mark.parametrize(("manifest", "message"), INVALID_MODELRELEASES)
def test_invalid_modelreleases_are_rejected(manifest: dict[str, Any], message: str) -> None:
    _, errors = admit_custom_resource(MODELRELEASE_SCHEMA, manifest)
    assert errors, "accepted"
    assert any(message in str(e) for e in errors), [str(e) for e in errors]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            {"version": "8"},
            'spec.version: Invalid value: "object": version is immutable; create a new '
            "ModelRelease for a new version",
            id="version",
        ),
        pytest.param({"model": "churn"}, "spec.model: Invalid value", id="model"),
        pytest.param(
            {"artifact": {"uri": "s3://models/fraud/7", "digest": OTHER_SHA}},
            'spec.artifact.digest: Invalid value: "object": artifact.digest is immutable',
            id="artifact-digest",
        ),
    ],
)
def test_modelrelease_immutable_fields(change: dict[str, Any], message: str) -> None:
    old = modelrelease()
    new = with_spec(old, **change)
    _, on_create = admit_custom_resource(MODELRELEASE_SCHEMA, new)
    assert on_create == []  # transition rules run on update only
    _, on_update = admit_custom_resource(MODELRELEASE_SCHEMA, new, old)
    messages = [str(e) for e in on_update]
    assert len(messages) == 1, messages
    assert message in messages[0]


def test_modelrelease_update_of_mutable_fields_is_accepted() -> None:
    old = modelrelease()
    new = with_spec(old, change={"type": "emergency", "ticket": "INC-9"}, alias={"name": "prod"})
    admitted, errors = admit_custom_resource(MODELRELEASE_SCHEMA, new, old)
    assert errors == []
    assert admitted["spec"]["alias"]["name"] == "prod"


def test_minimal_rollout_gets_the_documented_defaults() -> None:
    admitted, errors = admit_custom_resource(ROLLOUT_SCHEMA, rollout())
    assert errors == []
    spec = admitted["spec"]
    assert spec["replicas"] == 1
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["paused"] is False
    canary = spec["strategy"]["canary"]
    assert canary["steps"] == [{"setWeight": 5}, {"setWeight": 25}, {"setWeight": 100}]
    assert canary["scaleDownDelaySeconds"] == 30
    assert "analysis" not in canary  # no parent object, no defaults inside it
    parsed = RolloutSpec.model_validate(spec)
    assert parsed == RolloutSpec.model_validate(rollout()["spec"])


def test_rollout_analysis_defaults_fill_metrics() -> None:
    manifest = rollout(
        analysis={"metrics": [metric(thresholdRange={"max": 0.5}, successCondition=None)]}
    )
    admitted, errors = admit_custom_resource(ROLLOUT_SCHEMA, manifest)
    assert errors == []
    analysis = admitted["spec"]["strategy"]["canary"]["analysis"]
    assert (analysis["interval"], analysis["failureLimit"], analysis["inconclusiveLimit"]) == (
        "30s",
        0,
        0,
    )
    assert analysis["consecutiveErrorLimit"] == 4
    (only,) = analysis["metrics"]
    assert only["count"] == 1
    assert only["provider"]["prometheus"]["timeout"] == "10s"


def test_rollout_unknown_fields_are_pruned_but_template_kept() -> None:
    manifest = rollout(unknownKnob=True)
    manifest["spec"]["template"]["spec"]["containers"][0]["futureField"] = {"x": 1}
    manifest["status"] = {"phase": "Healthy", "operatorBookkeeping": {"a": 1}}
    admitted, errors = admit_custom_resource(ROLLOUT_SCHEMA, manifest)
    assert errors == []
    assert "unknownKnob" not in admitted["spec"]["strategy"]["canary"]
    assert admitted["spec"]["template"]["spec"]["containers"][0]["futureField"] == {"x": 1}
    assert admitted["status"]["operatorBookkeeping"] == {"a": 1}


def test_valid_rollout_with_every_step_kind() -> None:
    manifest = rollout(
        steps=[
            {"setWeight": 10},
            {"pause": {"duration": "1m30s"}},
            {
                "analysis": {
                    "metrics": [
                        metric("latency", successCondition=None, thresholdRange={"max": 0.25})
                    ]
                }
            },
            {"setWeight": 10},
            {"pause": {}},
            {"setWeight": 100},
            {"analysis": {"interval": "250ms", "failureLimit": 2}},
        ],
        analysis={"metrics": [metric()]},
        trafficRouting={"istio": {"virtualService": {"name": "demo", "routes": ["primary"]}}},
    )
    admitted, errors = admit_custom_resource(ROLLOUT_SCHEMA, manifest)
    assert errors == []
    spec = RolloutSpec.model_validate(admitted["spec"])
    assert spec.strategy.canary.traffic_routing is not None
    assert spec.strategy.canary.traffic_routing.istio is not None


def test_minimal_modelrelease_gets_the_documented_defaults() -> None:
    admitted, errors = admit_custom_resource(MODELRELEASE_SCHEMA, modelrelease())
    assert errors == []
    spec = admitted["spec"]
    assert spec["change"]["type"] == "normal"
    assert spec["alias"] == {"name": "production"}
    assert spec["approvals"] == {"requiredRoles": ["security", "product"]}
    assert spec["canary"] == {"steps": [{"setWeight": 5}, {"setWeight": 25}, {"setWeight": 100}]}
    assert spec["serving"]["replicas"] == 1
    assert spec["gates"] == {}
    parsed = ModelReleaseSpec.model_validate(spec)
    assert parsed == ModelReleaseSpec.model_validate(modelrelease()["spec"])


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

T0 = "2026-01-01T00:00:00Z"
FULL_ROLLOUT_STATUS: dict[str, Any] = {
    "phase": "Progressing",
    "message": "step 1/3: canary at 5%",
    "observedGeneration": 3,
    "currentStepIndex": 1,
    "canaryWeight": 5,
    "stableRevision": "6d4f8b7c9",
    "canaryRevision": "7f9c5d6b8",
    "stepStartedAt": T0,
    "pauseStartedAt": T0,
    "pauseReason": "PauseStep",
    "aborted": False,
    "rolledBackRevision": "5c8d7e6f1",
    "progressStartedAt": T0,
    "deadlineExceeded": False,
    "analysis": {
        "stepIndex": 1,
        "revision": "7f9c5d6b8",
        "startedAt": T0,
        "metrics": [
            {
                "name": "error-ratio",
                "measurements": [
                    {"value": 0.01, "verdict": "Pass", "at": T0, "message": "", "error": False},
                    {"value": None, "verdict": "Inconclusive", "at": T0, "error": True},
                ],
                "successful": 1,
                "failed": 0,
                "inconclusive": 1,
                "error": 1,
                "consecutiveErrors": 1,
                "verdict": "Pass",
                "message": "1 of 1 measurements passed",
            }
        ],
        "verdict": "Pass",
        "message": "all metrics passed",
    },
    "handledRequests": {"rollwise.dev/promote": "req-1"},
    "retiredRevisions": [{"revision": "5c8d7e6f1", "removeAt": T0}],
    "conditions": [
        {
            "type": "Ready",
            "status": "False",
            "reason": "Progressing",
            "message": "canary at 5%",
            "lastTransitionTime": T0,
            "observedGeneration": 3,
        }
    ],
    "replicas": 3,
    "availableReplicas": 4,
    "selector": "app=demo",
}


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


def test_the_status_the_operator_writes_is_admitted_unchanged() -> None:
    written = RolloutStatus.model_validate(FULL_ROLLOUT_STATUS).model_dump(
        mode="json", by_alias=True
    )
    manifest = rollout()
    manifest["status"] = written
    admitted, errors = admit_custom_resource(ROLLOUT_SCHEMA, manifest)
    assert errors == []

    def without_nulls(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: without_nulls(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [without_nulls(v) for v in value]
        return value

    # Nulls of non-nullable fields are dropped by the API server; everything else survives.
    assert admitted["status"] == without_nulls(written)
    assert RolloutStatus.model_validate(admitted["status"]) == RolloutStatus.model_validate(
        FULL_ROLLOUT_STATUS
    )
