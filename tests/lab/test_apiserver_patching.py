"""The emulator's patch formats and selectors against their specifications' own examples
(RFC 7386 appendix A, RFC 6902 appendix A) and kube-apiserver's strategic-merge directives."""

from __future__ import annotations

from typing import Any

import pytest

from hack.lab.kube.errors import APIError
from hack.lab.kube.patching import (
    PatchError,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from hack.lab.kube.selectors import FieldSelector, LabelSelector


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        pytest.param({"a": "b"}, {"a": "c"}, {"a": "c"}, id="replace"),
        pytest.param({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}, id="add"),
        pytest.param({"a": "b"}, {"a": None}, {}, id="remove"),
        pytest.param({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}, id="remove-one"),
        pytest.param({"a": ["b"]}, {"a": "c"}, {"a": "c"}, id="list-to-scalar"),
        pytest.param({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}, id="scalar-to-list"),
        pytest.param(
            {"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}, id="nested"
        ),
        pytest.param({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}, id="lists-replace"),
        pytest.param(["a", "b"], ["c", "d"], ["c", "d"], id="root-list"),
        pytest.param({"a": "b"}, ["c"], ["c"], id="object-to-list"),
        pytest.param({"e": None}, {"a": 1}, {"e": None, "a": 1}, id="keeps-null"),
        pytest.param([1, 2], {"a": "b", "c": None}, {"a": "b"}, id="list-to-object"),
        pytest.param({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}, id="deep-null"),
    ],
)
def test_merge_patch_rfc7386_examples(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


@pytest.mark.parametrize(
    ("doc", "ops", "expected"),
    [
        pytest.param(
            {"foo": "bar"},
            [{"op": "add", "path": "/baz", "value": "qux"}],
            {"baz": "qux", "foo": "bar"},
            id="add-member",
        ),
        pytest.param(
            {"foo": ["bar", "baz"]},
            [{"op": "add", "path": "/foo/1", "value": "qux"}],
            {"foo": ["bar", "qux", "baz"]},
            id="add-array-element",
        ),
        pytest.param(
            {"baz": "qux", "foo": "bar"},
            [{"op": "remove", "path": "/baz"}],
            {"foo": "bar"},
            id="remove-member",
        ),
        pytest.param(
            {"foo": ["bar", "qux", "baz"]},
            [{"op": "remove", "path": "/foo/1"}],
            {"foo": ["bar", "baz"]},
            id="remove-array-element",
        ),
        pytest.param(
            {"baz": "qux", "foo": "bar"},
            [{"op": "replace", "path": "/baz", "value": "boo"}],
            {"baz": "boo", "foo": "bar"},
            id="replace",
        ),
        pytest.param(
            {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
            [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
            {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
            id="move",
        ),
        pytest.param(
            {"foo": ["all", "grass", "cows", "eat"]},
            [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
            {"foo": ["all", "cows", "eat", "grass"]},
            id="move-array-element",
        ),
        pytest.param(
            {"baz": "qux", "foo": ["a", 2, "c"]},
            [
                {"op": "test", "path": "/baz", "value": "qux"},
                {"op": "test", "path": "/foo/1", "value": 2},
            ],
            {"baz": "qux", "foo": ["a", 2, "c"]},
            id="test-success",
        ),
        pytest.param(
            {"foo": "bar"},
            [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
            {"foo": "bar", "child": {"grandchild": {}}},
            id="add-nested",
        ),
        pytest.param(
            {"foo": ["bar"]},
            [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
            {"foo": ["bar", ["abc", "def"]]},
            id="append-with-dash",
        ),
        pytest.param(
            {"/": 9, "~1": 10},
            [{"op": "test", "path": "/~01", "value": 10}],
            {"/": 9, "~1": 10},
            id="escaped-pointer",
        ),
        pytest.param(
            {"a": {"b": 1}},
            [{"op": "copy", "from": "/a", "path": "/c"}],
            {"a": {"b": 1}, "c": {"b": 1}},
            id="copy",
        ),
    ],
)
def test_json_patch_rfc6902_examples(doc: Any, ops: list[Any], expected: Any) -> None:
    assert json_patch(doc, ops) == expected


@pytest.mark.parametrize(
    ("doc", "ops"),
    [
        pytest.param(
            {"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], id="failed-test"
        ),
        pytest.param(
            {"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}], id="missing-parent"
        ),
        pytest.param(
            {"foo": [1]}, [{"op": "add", "path": "/foo/5", "value": 2}], id="index-out-of-range"
        ),
        pytest.param({"foo": 1}, [{"op": "remove", "path": "/bar"}], id="remove-missing"),
        pytest.param(
            {"foo": 1}, [{"op": "replace", "path": "/bar", "value": 2}], id="replace-missing"
        ),
    ],
)
def test_json_patch_errors_are_unprocessable(doc: Any, ops: list[Any]) -> None:
    with pytest.raises(PatchError) as err:
        json_patch(doc, ops)
    assert err.value.unprocessable


def test_json_patch_is_atomic_and_does_not_touch_its_input() -> None:
    doc = {"a": [1]}
    with pytest.raises(PatchError):
        json_patch(
            doc,
            [{"op": "add", "path": "/a/-", "value": 2}, {"op": "test", "path": "/a/0", "value": 9}],
        )
    assert doc == {"a": [1]}


def test_json_patch_of_an_object_body_is_bad_request() -> None:
    with pytest.raises(PatchError) as err:
        json_patch({}, {"spec": {}})
    assert not err.value.unprocessable


POD = {
    "metadata": {"finalizers": ["a"]},
    "spec": {
        "containers": [
            {
                "name": "app",
                "image": "app:1",
                "ports": [{"containerPort": 80}],
                "env": [{"name": "A", "value": "1"}],
            },
            {"name": "side", "image": "side:1"},
        ],
        "tolerations": [{"key": "x"}],
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
    },
}


@pytest.mark.parametrize(
    ("patch", "check"),
    [
        pytest.param(
            {"spec": {"containers": [{"name": "app", "image": "app:2"}]}},
            lambda r: (
                [c["image"] for c in r["spec"]["containers"]] == ["app:2", "side:1"]
                and r["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]
            ),
            id="merge-by-name",
        ),
        pytest.param(
            {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}},
            lambda r: [c["name"] for c in r["spec"]["containers"]] == ["app"],
            id="delete-directive",
        ),
        pytest.param(
            {"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 81}]}]}},
            lambda r: (
                r["spec"]["containers"][0]["ports"]
                == [{"containerPort": 80}, {"containerPort": 81}]
            ),
            id="ports-by-container-port",
        ),
        pytest.param(
            {"spec": {"tolerations": [{"key": "y"}]}},
            lambda r: r["spec"]["tolerations"] == [{"key": "y"}],
            id="unknown-lists-replace",
        ),
        pytest.param(
            {"metadata": {"finalizers": ["b"]}},
            lambda r: r["metadata"]["finalizers"] == ["a", "b"],
            id="finalizers-union",
        ),
        pytest.param(
            {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}},
            lambda r: r["metadata"]["finalizers"] == [],
            id="delete-from-primitive-list",
        ),
        pytest.param(
            {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
            lambda r: r["spec"]["strategy"] == {"type": "Recreate"},
            id="retain-keys",
        ),
        pytest.param(
            {
                "spec": {
                    "$setElementOrder/containers": [{"name": "side"}, {"name": "app"}],
                    "containers": [{"name": "side", "image": "side:2"}],
                }
            },
            lambda r: (
                "$setElementOrder/containers" not in r["spec"]
                and r["spec"]["containers"][1]["image"] == "side:2"
            ),
            id="set-element-order-dropped",
        ),
        pytest.param(
            {"spec": {"strategy": {"$patch": "replace", "type": "Recreate"}}},
            lambda r: r["spec"]["strategy"] == {"type": "Recreate"},
            id="replace-directive",
        ),
    ],
)
def test_strategic_merge_patch(patch: dict[str, Any], check: Any) -> None:
    assert check(strategic_merge_patch(POD, patch))


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        pytest.param("a=b", {"a": "b"}, True, id="equal"),
        pytest.param("a==b", {"a": "c"}, False, id="double-equal"),
        pytest.param("a!=b", {}, True, id="not-equal-missing"),
        pytest.param("a in (b, c)", {"a": "c"}, True, id="in"),
        pytest.param("a notin (b,c)", {"a": "c"}, False, id="notin"),
        pytest.param("a notin (b)", {}, True, id="notin-missing"),
        pytest.param("a", {"a": ""}, True, id="exists"),
        pytest.param("!a", {"a": "x"}, False, id="not-exists"),
        pytest.param("a=b,c in (d),!e", {"a": "b", "c": "d"}, True, id="conjunction"),
        pytest.param(
            "app.kubernetes.io/name=x", {"app.kubernetes.io/name": "x"}, True, id="prefixed-key"
        ),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert LabelSelector.parse(selector).matches({"metadata": {"labels": labels}}) is expected


def test_invalid_selectors_are_bad_requests() -> None:
    with pytest.raises(APIError) as err:
        LabelSelector.parse("a in b")
    assert err.value.code == 400
    with pytest.raises(APIError) as field_err:
        FieldSelector.parse("spec.x=1", lambda f: f == "metadata.name")
    assert field_err.value.code == 400
    assert field_err.value.message == "field label not supported: spec.x"
