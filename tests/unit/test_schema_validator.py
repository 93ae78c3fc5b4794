"""Semantics of the lab's structural-schema engine (``hack.lab.kube.schema``) on small schemas:
OpenAPI value checks, pruning, defaulting, the ``x-kubernetes-*`` extensions and CEL rules,
with kube-apiserver's error strings."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hack.lab.kube.schema import (
    FieldError,
    SchemaError,
    StructuralSchema,
    admit_custom_resource,
    invalid_message,
)


def spec_schema(spec: dict[str, Any], **root: Any) -> StructuralSchema:
    return StructuralSchema({"type": "object", "properties": {"spec": spec}, **root})


def obj(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, **extra}


def errors_of(schema: StructuralSchema, spec: Any, old: Any = None) -> list[str]:
    previous = {"spec": old} if old is not None else None
    return [str(e) for e in schema.validate({"spec": spec}, previous)]


# --------------------------------------------------------------------------------------------
# OpenAPI value checks

VALUE_CASES = [
    pytest.param(
        {"type": "integer"},
        "three",
        'spec.v: Invalid value: "string": spec.v in body must be of type integer: "string"',
        id="integer-given-string",
    ),
    pytest.param(
        {"type": "integer"},
        1.5,
        'spec.v: Invalid value: "number": spec.v in body must be of type integer: "number"',
        id="integer-given-fraction",
    ),
    pytest.param(
        {"type": "integer"},
        True,
        'spec.v: Invalid value: "boolean": spec.v in body must be of type integer: "boolean"',
        id="integer-given-bool",
    ),
    pytest.param(
        {"type": "boolean"},
        1,
        'spec.v: Invalid value: "integer": spec.v in body must be of type boolean: "integer"',
        id="boolean-given-int",
    ),
    pytest.param(
        {"type": "object"},
        [],
        'spec.v: Invalid value: "array": spec.v in body must be of type object: "array"',
        id="object-given-array",
    ),
    pytest.param(
        {"type": "array", "items": {"type": "string"}},
        {},
        'spec.v: Invalid value: "object": spec.v in body must be of type array: "object"',
        id="array-given-object",
    ),
    pytest.param(
        {"type": "string"},
        None,
        'spec.v: Invalid value: "null": spec.v in body must be of type string: "null"',
        id="null-not-nullable",
    ),
    pytest.param(
        {"type": "string", "enum": ["a", "b"]},
        "c",
        'spec.v: Unsupported value: "c": supported values: "a", "b"',
        id="enum",
    ),
    pytest.param(
        {"type": "integer", "enum": [1, 2]},
        3,
        'spec.v: Unsupported value: 3: supported values: "1", "2"',
        id="integer-enum",
    ),
    pytest.param(
        {"type": "integer", "minimum": 0},
        -1,
        "spec.v: Invalid value: -1: spec.v in body should be greater than or equal to 0",
        id="minimum",
    ),
    pytest.param(
        {"type": "integer", "maximum": 100},
        101,
        "spec.v: Invalid value: 101: spec.v in body should be less than or equal to 100",
        id="maximum",
    ),
    pytest.param(
        {"type": "number", "minimum": 0, "exclusiveMinimum": True},
        0,
        "spec.v: Invalid value: 0: spec.v in body should be greater than 0",
        id="exclusive-minimum",
    ),
    pytest.param(
        {"type": "number", "maximum": 1.5, "exclusiveMaximum": True},
        1.5,
        "spec.v: Invalid value: 1.5: spec.v in body should be less than 1.5",
        id="exclusive-maximum",
    ),
    pytest.param(
        {"type": "integer", "multipleOf": 5},
        7,
        "spec.v: Invalid value: 7: spec.v in body should be a multiple of 5",
        id="multiple-of",
    ),
    pytest.param(
        {"type": "string", "minLength": 2},
        "a",
        'spec.v: Invalid value: "a": spec.v in body should be at least 2 chars long',
        id="min-length",
    ),
    pytest.param(
        {"type": "string", "maxLength": 3},
        "abcd",
        "spec.v: Too long: may not be more than 3 bytes",
        id="max-length",
    ),
    pytest.param(
        {"type": "string", "pattern": "^[a-z]+$"},
        "A1",
        "spec.v: Invalid value: \"A1\": spec.v in body should match '^[a-z]+$'",
        id="pattern",
    ),
    pytest.param(
        {"type": "string", "pattern": "[0-9]"},
        "abc",
        "should match '[0-9]'",
        id="pattern-is-a-search",
    ),
    pytest.param(
        {"type": "array", "items": {"type": "integer"}, "minItems": 2},
        [1],
        "spec.v: Invalid value: 1: spec.v in body should have at least 2 items",
        id="min-items",
    ),
    pytest.param(
        {"type": "array", "items": {"type": "integer"}, "maxItems": 1},
        [1, 2, 3],
        "spec.v: Too many: 3: must have at most 1 items",
        id="max-items",
    ),
    pytest.param(
        {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1},
        {},
        "spec.v: Invalid value: 0: spec.v in body should have at least 1 properties",
        id="min-properties",
    ),
    pytest.param(
        {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 1},
        {"a": "1", "b": "2"},
        "spec.v: Too many: 2: must have at most 1 items",
        id="max-properties",
    ),
    pytest.param(
        {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}},
        {"ok": 1, "bad": 0},
        "spec.v[bad]: Invalid value: 0: spec.v[bad] in body should be greater than or equal to 1",
        id="additional-properties-schema",
    ),
    pytest.param(
        {"type": "array", "items": obj({"n": {"type": "integer"}}, required=["n"])},
        [{"n": 1}, {}],
        "spec.v[1].n: Required value",
        id="required-in-list-item",
    ),
    pytest.param(
        {"type": "string", "format": "date-time"},
        "yesterday",
        'spec.v: Invalid value: "yesterday": spec.v in body must be of type date-time: "yesterday"',
        id="date-time",
    ),
    pytest.param(
        {"x-kubernetes-int-or-string": True},
        1.5,
        "spec.v in body must be of type integer or string",
        id="int-or-string-given-fraction",
    ),
    pytest.param(
        {"x-kubernetes-int-or-string": True},
        True,
        "must be of type integer or string",
        id="int-or-string-given-bool",
    ),
    pytest.param(
        {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
        ["a", "b", "a"],
        'spec.v[2]: Duplicate value: "a"',
        id="list-type-set",
    ),
    pytest.param(
        {
            "type": "array",
            "items": obj({"name": {"type": "string"}, "port": {"type": "integer"}}),
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
        [{"name": "a", "port": 1}, {"name": "b", "port": 1}, {"name": "a", "port": 2}],
        'spec.v[2]: Duplicate value: {"name":"a"}',
        id="list-type-map",
    ),
    pytest.param(
        {"type": "string", "anyOf": [{"pattern": "^a"}, {"pattern": "^b"}]},
        "c",
        "spec.v in body must validate at least one schema (anyOf)",
        id="any-of",
    ),
]


@pytest.mark.parametrize(("schema", "value", "message"), VALUE_CASES)
def test_value_checks(schema: dict[str, Any], value: Any, message: str) -> None:
    errors = errors_of(spec_schema(obj({"v": schema})), {"v": value})
    assert any(message in e for e in errors), errors


ACCEPTED_CASES = [
    pytest.param({"type": "integer"}, 3, id="integer"),
    pytest.param({"type": "integer"}, 3.0, id="integral-float-is-an-integer"),
    pytest.param({"type": "number"}, 3, id="number-given-int"),
    pytest.param({"type": "string", "nullable": True}, None, id="nullable"),
    pytest.param({"x-kubernetes-int-or-string": True}, 3, id="int-or-string-int"),
    pytest.param({"x-kubernetes-int-or-string": True}, "25%", id="int-or-string-string"),
    pytest.param({"type": "string", "format": "date-time"}, "2026-01-02T03:04:05Z", id="rfc3339"),
    pytest.param(
        {"type": "string", "format": "date-time"}, "2026-01-02T03:04:05.5+02:00", id="offset"
    ),
    pytest.param({"type": "string", "format": "unknown-format"}, "x", id="unknown-format"),
    pytest.param({"x-kubernetes-preserve-unknown-fields": True}, {"a": [1]}, id="untyped"),
    pytest.param(
        {"type": "array", "items": {"type": "integer"}, "x-kubernetes-list-type": "set"},
        [1, 2],
        id="set-unique",
    ),
    pytest.param(
        {"type": "string", "anyOf": [{"pattern": "^a"}, {"pattern": "^b"}]}, "b", id="any-of"
    ),
]


@pytest.mark.parametrize(("schema", "value"), ACCEPTED_CASES)
def test_values_accepted(schema: dict[str, Any], value: Any) -> None:
    assert errors_of(spec_schema(obj({"v": schema})), {"v": value}) == []


def test_required_and_unknown_fields_at_validation() -> None:
    schema = spec_schema(obj({"a": {"type": "string"}, "b": {"type": "string"}}, required=["a"]))
    # validate() alone ignores unknown fields: pruning is what removes them.
    assert errors_of(schema, {"b": "x", "unknown": 1}) == ["spec.a: Required value"]


def test_root_required() -> None:
    schema = spec_schema(obj({}), required=["spec"])
    assert [str(e) for e in schema.validate({"apiVersion": "v1", "kind": "K"})] == [
        "spec: Required value"
    ]


# --------------------------------------------------------------------------------------------
# Pruning


def test_prune_drops_unknown_fields_recursively_and_keeps_the_input() -> None:
    schema = spec_schema(
        obj(
            {
                "a": obj({"b": {"type": "string"}}),
                "items": {"type": "array", "items": obj({"n": {"type": "integer"}})},
            }
        )
    )
    original = {
        "apiVersion": "example.com/v1",
        "kind": "Thing",
        "metadata": {"name": "x", "labels": {"a": "b"}, "bogus": 1},
        "spec": {"a": {"b": "keep", "c": "drop"}, "items": [{"n": 1, "x": 2}], "z": 0},
        "extra": True,
    }
    before = copy.deepcopy(original)
    pruned = schema.prune(original)
    assert original == before
    assert pruned == {
        "apiVersion": "example.com/v1",
        "kind": "Thing",
        "metadata": {"name": "x", "labels": {"a": "b"}},
        "spec": {"a": {"b": "keep"}, "items": [{"n": 1}]},
    }


def test_prune_respects_preserve_unknown_fields() -> None:
    schema = spec_schema(
        obj(
            {
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "mixed": obj(
                    {"known": obj({"k": {"type": "string"}})},
                    **{"x-kubernetes-preserve-unknown-fields": True},
                ),
            }
        )
    )
    pruned = schema.prune(
        {
            "spec": {
                "free": {"anything": {"deep": [1, {"x": None}]}},
                "mixed": {"other": 1, "known": {"k": "v", "dropped": 2}},
            }
        }
    )
    assert pruned["spec"]["free"] == {"anything": {"deep": [1, {"x": None}]}}
    # Known properties inside a preserving object are still pruned by their own schema.
    assert pruned["spec"]["mixed"] == {"other": 1, "known": {"k": "v"}}


def test_prune_keeps_embedded_resource_type_meta() -> None:
    schema = spec_schema(
        obj(
            {
                "child": obj(
                    {"spec": obj({"n": {"type": "integer"}})},
                    **{"x-kubernetes-embedded-resource": True},
                )
            }
        )
    )
    child = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "annotations": {"a": "b"}, "junk": 1},
        "spec": {"n": 1, "m": 2},
        "other": 3,
    }
    pruned = schema.prune({"spec": {"child": child}})
    assert pruned["spec"]["child"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "annotations": {"a": "b"}},
        "spec": {"n": 1},
    }
    errors = [str(e) for e in schema.validate({"spec": {"child": {"spec": {}}}})]
    assert errors == [
        "spec.child.apiVersion: Required value: must not be empty",
        "spec.child.kind: Required value: must not be empty",
    ]


# --------------------------------------------------------------------------------------------
# Defaulting

DEFAULTING = obj(
    {
        "replicas": {"type": "integer", "default": 1},
        "nested": obj(
            {
                "interval": {"type": "string", "default": "30s"},
                "inner": obj({"x": {"type": "integer", "default": 7}}, default={}),
            }
        ),
        "withDefaultObject": obj({"y": {"type": "string", "default": "why"}}, default={}),
        "list": {
            "type": "array",
            "items": obj({"n": {"type": "integer", "default": 3}, "m": {"type": "integer"}}),
        },
        "nullableField": {"type": "string", "nullable": True, "default": "d"},
        "plain": {"type": "string"},
    }
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {},
            {"replicas": 1, "withDefaultObject": {"y": "why"}, "nullableField": "d"},
            id="no-parent-no-nested-default",
        ),
        pytest.param(
            {"nested": {}},
            {
                "replicas": 1,
                "nested": {"interval": "30s", "inner": {"x": 7}},
                "withDefaultObject": {"y": "why"},
                "nullableField": "d",
            },
            id="nested-defaults-where-parent-exists",
        ),
        pytest.param(
            {"replicas": None, "plain": None, "nullableField": None},
            {"replicas": 1, "withDefaultObject": {"y": "why"}, "nullableField": None},
            id="non-nullable-nulls-defaulted-or-dropped-nullable-kept",
        ),
        pytest.param(
            {"replicas": 0, "list": [{}, {"n": 5, "m": 1}]},
            {
                "replicas": 0,
                "list": [{"n": 3}, {"n": 5, "m": 1}],
                "withDefaultObject": {"y": "why"},
                "nullableField": "d",
            },
            id="list-items-defaulted-explicit-zero-kept",
        ),
    ],
)
def test_defaulting(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    schema = spec_schema(DEFAULTING)
    original = {"spec": spec}
    before = copy.deepcopy(original)
    defaulted = schema.apply_defaults(original)
    assert defaulted == {"spec": expected}
    assert original == before


def test_defaults_are_copies() -> None:
    schema = spec_schema(obj({"l": {"type": "array", "items": {"type": "string"}, "default": []}}))
    first = schema.apply_defaults({"spec": {}})
    first["spec"]["l"].append("mutated")
    assert schema.apply_defaults({"spec": {}}) == {"spec": {"l": []}}


def test_admission_prunes_then_defaults_then_validates() -> None:
    schema = spec_schema(
        obj(
            {"n": {"type": "integer", "default": 1, "minimum": 1}},
            **{"x-kubernetes-validations": [{"rule": "self.n == 1", "message": "n must be 1"}]},
        )
    )
    admitted, errors = admit_custom_resource(schema, {"spec": {"unknown": "not even valid"}})
    assert admitted == {"spec": {"n": 1}}
    assert errors == []
    _, errors = admit_custom_resource(schema, {"spec": {"n": 0}})
    assert [str(e) for e in errors] == [
        "spec.n: Invalid value: 0: spec.n in body should be greater than or equal to 1",
        'spec: Invalid value: "object": n must be 1',
    ]


# --------------------------------------------------------------------------------------------
# CEL rules


def rules(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(entries)}


@pytest.mark.parametrize(
    ("rule", "value", "holds"),
    [
        pytest.param("self.isSorted()", [1, 2, 2, 5], True, id="isSorted"),
        pytest.param("self.isSorted()", [3, 1], False, id="isSorted-false"),
        pytest.param("self.sum() == 10", [1, 2, 3, 4], True, id="sum"),
        pytest.param("[].sum() == 0", [], True, id="sum-empty"),
        pytest.param("self.min() == 1 && self.max() == 4", [3, 1, 4], True, id="min-max"),
        pytest.param("self.indexOf(4) == 2", [3, 1, 4, 4], True, id="indexOf"),
        pytest.param("self.lastIndexOf(4) == 3", [3, 1, 4, 4], True, id="lastIndexOf"),
        pytest.param("self.indexOf(9) == -1", [3], True, id="indexOf-missing"),
        pytest.param("self.all(x, x > 0) && self.exists_one(x, x == 3)", [3, 1], True, id="all"),
        pytest.param("self.map(x, x * 2).filter(x, x > 2) == [6]", [3, 1], True, id="map-filter"),
    ],
)
def test_cel_list_functions(rule: str, value: list[int], holds: bool) -> None:
    schema = spec_schema(
        obj({"v": {"type": "array", "items": {"type": "integer"}, **rules({"rule": rule})}})
    )
    assert (errors_of(schema, {"v": value}) == []) is holds


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param("self.matches('^de[a-z]+-[0-9]+$') && !self.matches('^[0-9]')", id="matches"),
        pytest.param("self.find('[0-9]+') == '42'", id="find"),
        pytest.param("self.findAll('[a-z]') == ['d', 'e', 'm', 'o']", id="findAll"),
        pytest.param("self.findAll('[a-z]', 2) == ['d', 'e']", id="findAll-limit"),
        pytest.param("self.upperAscii() == 'DEMO-42' && 'AbC'.lowerAscii() == 'abc'", id="case"),
        pytest.param("self.indexOf('-') == 4 && self.lastIndexOf('4') == 5", id="str-index"),
        pytest.param("self.split('-') == ['demo', '42'] && ['a', 'b'].join('/') == 'a/b'", id="sj"),
        pytest.param("self.substring(0, 4) == 'demo' && self.charAt(1) == 'e'", id="substring"),
        pytest.param("self.replace('42', '7') == 'demo-7' && ' x '.trim() == 'x'", id="replace"),
        pytest.param("self.startsWith('de') && self.endsWith('42') && size(self) == 7", id="std"),
    ],
)
def test_cel_string_functions(rule: str) -> None:
    schema = spec_schema(obj({"v": {"type": "string", **rules({"rule": rule})}}))
    assert errors_of(schema, {"v": "demo-42"}) == []


def test_cel_types_follow_the_schema() -> None:
    schema = spec_schema(
        obj(
            {
                "ratio": {"type": "number"},
                "count": {"type": "integer"},
                "start": {"type": "string", "format": "date-time"},
                "end": {"type": "string", "format": "date-time"},
            },
            **rules(
                # A number field is a double even when written as 1: comparing it with a double
                # literal must work, as in the API server.
                {"rule": "self.ratio <= 1.0 && self.count < 5"},
                {"rule": "self.start < self.end", "message": "start must be before end"},
            ),
        )
    )
    good = {"ratio": 1, "count": 2, "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}
    assert errors_of(schema, good) == []
    bad = dict(good, start="2026-01-03T00:00:00Z")
    assert errors_of(schema, bad) == ['spec: Invalid value: "object": start must be before end']


def test_cel_messages_field_path_and_reason() -> None:
    schema = spec_schema(
        obj(
            {"a": {"type": "integer"}, "b": {"type": "integer"}},
            **rules(
                {"rule": "self.a < self.b"},
                {"rule": "self.a != 3", "message": "a must not be 3", "fieldPath": ".a"},
                {
                    "rule": "self.b != 4",
                    "messageExpression": "'b is ' + string(self.b)",
                    "reason": "FieldValueForbidden",
                    "fieldPath": ".b",
                },
            ),
        )
    )
    assert errors_of(schema, {"a": 3, "b": 4}) == [
        'spec.a: Invalid value: "object": a must not be 3',
        "spec.b: Forbidden: b is 4",
    ]
    assert errors_of(schema, {"a": 5, "b": 1}) == [
        'spec: Invalid value: "object": failed rule: self.a < self.b'
    ]


def test_cel_evaluation_error_is_a_field_error() -> None:
    schema = spec_schema(
        obj({"a": {"type": "integer"}}, **rules({"rule": "self.a > 0", "message": "a positive"}))
    )
    assert errors_of(schema, {}) == [
        'spec: Invalid value: "object": no such key: a evaluating rule: a positive'
    ]


def test_cel_rules_do_not_run_on_absent_values() -> None:
    schema = spec_schema(obj({"a": {"type": "string", **rules({"rule": "self == 'x'"})}}))
    assert errors_of(schema, {}) == []
    assert errors_of(schema, {"a": "y"}) == [
        "spec.a: Invalid value: \"string\": failed rule: self == 'x'"
    ]


def test_transition_rules_run_only_with_an_old_value() -> None:
    schema = spec_schema(
        obj(
            {"v": {"type": "string"}, "other": {"type": "string"}},
            **rules(
                {"rule": "self.v == oldSelf.v", "message": "v is immutable", "fieldPath": ".v"}
            ),
        )
    )
    assert errors_of(schema, {"v": "a"}) == []
    assert errors_of(schema, {"v": "a", "other": "x"}, old={"v": "a"}) == []
    assert errors_of(schema, {"v": "b"}, old={"v": "a"}) == [
        'spec.v: Invalid value: "object": v is immutable'
    ]
    # An old object without the field: the field-level rule has no old value to compare with.
    field_level = spec_schema(obj({"v": {"type": "string", **rules({"rule": "self == oldSelf"})}}))
    assert errors_of(field_level, {"v": "b"}, old={}) == []
    assert errors_of(field_level, {"v": "b"}, old={"v": "a"}) != []


def test_transition_rules_in_lists_follow_list_type() -> None:
    item = obj(
        {"name": {"type": "string"}, "size": {"type": "integer"}},
        **rules({"rule": "self.size >= oldSelf.size", "message": "size may only grow"}),
    )
    as_map = spec_schema(
        obj(
            {
                "l": {
                    "type": "array",
                    "items": item,
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                }
            }
        )
    )
    old = {"l": [{"name": "a", "size": 5}, {"name": "b", "size": 1}]}
    # Reordered and grown: items are correlated by key, not by position.
    assert errors_of(as_map, {"l": [{"name": "b", "size": 2}, {"name": "a", "size": 5}]}, old) == []
    assert errors_of(as_map, {"l": [{"name": "b", "size": 1}, {"name": "a", "size": 4}]}, old) == [
        'spec.l[1]: Invalid value: "object": size may only grow'
    ]
    # Atomic lists have no correlation, so the transition rule cannot run inside them.
    atomic = spec_schema(obj({"l": {"type": "array", "items": item}}))
    assert errors_of(atomic, {"l": [{"name": "a", "size": 0}]}, old) == []


def test_rules_on_map_values_see_the_old_value_by_key() -> None:
    schema = spec_schema(
        obj(
            {
                "m": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "string",
                        **rules({"rule": "self == oldSelf"}),
                    },
                }
            }
        )
    )
    assert errors_of(schema, {"m": {"a": "1", "new": "2"}}, old={"m": {"a": "1"}}) == []
    assert errors_of(schema, {"m": {"a": "9"}}, old={"m": {"a": "1"}}) == [
        'spec.m[a]: Invalid value: "string": failed rule: self == oldSelf'
    ]


def test_cel_cannot_see_data_kept_only_by_preserve_unknown_fields() -> None:
    schema = spec_schema(
        obj(
            {
                "template": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "untyped": {"x-kubernetes-preserve-unknown-fields": True},
                "known": {"type": "string"},
            },
            **rules(
                {"rule": "!has(self.template.metadata)"},
                {"rule": "!has(self.untyped)"},
                {"rule": "has(self.known)"},
            ),
        )
    )
    spec = {"template": {"metadata": {"labels": {}}}, "untyped": {"a": 1}, "known": "k"}
    assert errors_of(schema, spec) == []


def test_rule_results_are_memoized_per_value_not_shared_across_values() -> None:
    schema = spec_schema(obj({"n": {"type": "integer", **rules({"rule": "self % 2 == 0"})}}))
    for _ in range(3):
        assert errors_of(schema, {"n": 2}) == []
        assert errors_of(schema, {"n": 3}) == [
            'spec.n: Invalid value: "integer": failed rule: self % 2 == 0'
        ]


def test_invalid_schemas_are_refused() -> None:
    with pytest.raises(SchemaError, match="compilation failed"):
        spec_schema(obj({}, **rules({"rule": "self.a >"})))
    with pytest.raises(SchemaError, match="invalid regex"):
        spec_schema({"type": "string", "pattern": "("})


# --------------------------------------------------------------------------------------------
# Error strings


@pytest.mark.parametrize(
    ("error", "text"),
    [
        pytest.param(
            FieldError(
                "spec.replicas",
                "Invalid value",
                -1,
                "spec.replicas in body should be greater than or equal to 0",
            ),
            "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or "
            "equal to 0",
            id="invalid-int",
        ),
        pytest.param(
            FieldError("spec.a", "Invalid value", "x", "bad"),
            'spec.a: Invalid value: "x": bad',
            id="invalid-string-quoted",
        ),
        pytest.param(
            FieldError("spec.a", "Invalid value", 0.5, "d"),
            "spec.a: Invalid value: 0.5: d",
            id="float",
        ),
        pytest.param(
            FieldError("spec.a", "Invalid value", True, "d"),
            "spec.a: Invalid value: true: d",
            id="bool",
        ),
        pytest.param(
            FieldError("spec.a", "Invalid value", None, "d"),
            "spec.a: Invalid value: null: d",
            id="null",
        ),
        pytest.param(
            FieldError("spec.a", "Required value", None, ""),
            "spec.a: Required value",
            id="required",
        ),
        pytest.param(
            FieldError("spec.a", "Forbidden", "v", "no"), "spec.a: Forbidden: no", id="forbidden"
        ),
        pytest.param(
            FieldError("spec.a", "Too long", "vvvv", "may not be more than 3 bytes"),
            "spec.a: Too long: may not be more than 3 bytes",
            id="too-long",
        ),
    ],
)
def test_field_error_strings(error: FieldError, text: str) -> None:
    assert str(error) == text


def test_status_causes_and_invalid_message() -> None:
    schema = spec_schema(
        obj(
            {
                "replicas": {"type": "integer", "minimum": 0},
                "mode": {"enum": ["a"], "type": "string"},
            },
            required=["name"],
        )
    )
    errors = schema.validate({"spec": {"replicas": -1, "mode": "b"}})
    causes = {e.path: e.to_cause() for e in errors}
    assert causes == {
        "spec.replicas": {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: -1: spec.replicas in body should be greater than or "
            "equal to 0",
            "field": "spec.replicas",
        },
        "spec.mode": {
            "reason": "FieldValueNotSupported",
            "message": 'Unsupported value: "b": supported values: "a"',
            "field": "spec.mode",
        },
        "spec.name": {
            "reason": "FieldValueRequired",
            "message": "Required value",
            "field": "spec.name",
        },
    }
    required = [e for e in errors if e.path == "spec.name"]
    unsupported = [e for e in errors if e.path == "spec.mode"]
    assert invalid_message("Rollout", "rollwise.dev", "demo", required) == (
        'Rollout.rollwise.dev "demo" is invalid: spec.name: Required value'
    )
    assert invalid_message(
        "Rollout", "rollwise.dev", "demo", unsupported + required + required
    ) == (
        'Rollout.rollwise.dev "demo" is invalid: [spec.mode: Unsupported value: "b": supported '
        'values: "a", spec.name: Required value]'
    )
