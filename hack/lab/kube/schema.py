"""Kubernetes structural schemas, applied to custom resources as kube-apiserver applies them.

Given a CRD version's ``openAPIV3Schema``, :class:`StructuralSchema` prunes unknown fields,
applies defaults and validates an object: the OpenAPI value checks, the ``x-kubernetes-*``
extensions (preserve-unknown-fields, int-or-string, embedded-resource, list types) and the CEL
``x-kubernetes-validations`` rules, including transition rules over ``oldSelf``. Errors are
:class:`FieldError` values whose ``str()`` reads like the API server's field errors, so tests
can match the same message substrings a user sees from ``kubectl apply``.

Boundary: this module knows schemas and JSON values only. It neither reads CRDs from a store
nor answers HTTP; the lab's API emulator and the unit tests call it. Known approximations: no
CEL cost budget, no ``optionalOldSelf``, no validation ratcheting, no CEL type checking at
compile time (an unknown function or field is reported when a rule runs), metadata is checked
for shape only.

Speed matters because the emulator validates every write: the schema is compiled once into
:class:`_Node` trees (regexes, enums and CEL programs included), and each rule's outcome is
memoized on the JSON of its inputs, so the unchanged spec of a status write costs lookups, not
CEL interpretation (cel-python interprets its parse tree, a few milliseconds per rule).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import celpy
import re2  # type: ignore[import-untyped]
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

__all__ = [
    "FieldError",
    "SchemaError",
    "StructuralSchema",
    "admit_custom_resource",
    "invalid_message",
]

# --------------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True)
class FieldError:
    """One field error, as ``k8s.io/apimachinery/pkg/util/validation/field.Error``."""

    path: str
    type: str
    value: Any
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.body()}"

    def body(self) -> str:
        """The error without its path (``ErrorBody`` in apimachinery)."""
        if self.type in _VALUELESS_TYPES:
            text = self.type
        else:
            text = f"{self.type}: {_go_value(self.value)}"
        if self.detail:
            text += f": {self.detail}"
        return text

    @property
    def reason(self) -> str:
        """The ``StatusCause`` type of this error (``FieldValueInvalid``, ...)."""
        return _CAUSES.get(self.type, "FieldValueInvalid")

    def to_cause(self) -> dict[str, str]:
        """This error as one entry of a ``Status``'s ``details.causes``."""
        return {"reason": self.reason, "message": self.body(), "field": self.path}


def invalid_message(kind: str, group: str, name: str, errors: list[FieldError]) -> str:
    """The message of the 422 ``Invalid`` Status kube-apiserver answers for ``errors``:
    ``Rollout.rollwise.dev "demo" is invalid: spec.x: ...`` (several errors in brackets)."""
    qualified = f"{kind}.{group}" if group else kind
    unique = list(dict.fromkeys(str(e) for e in errors))
    joined = unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"
    return f"{qualified} {json.dumps(name)} is invalid: {joined}"


class SchemaError(ValueError):
    """The schema itself is unusable (bad regex, CEL rule that does not compile, ...)."""


INVALID = "Invalid value"
REQUIRED = "Required value"
UNSUPPORTED = "Unsupported value"
DUPLICATE = "Duplicate value"
TOO_MANY = "Too many"
TOO_LONG = "Too long"
FORBIDDEN = "Forbidden"
_VALUELESS_TYPES = frozenset({REQUIRED, FORBIDDEN, TOO_LONG, "Internal error"})

_CAUSES = {
    INVALID: "FieldValueInvalid",
    REQUIRED: "FieldValueRequired",
    UNSUPPORTED: "FieldValueNotSupported",
    DUPLICATE: "FieldValueDuplicate",
    TOO_MANY: "FieldValueTooMany",
    TOO_LONG: "FieldValueTooLong",
    FORBIDDEN: "FieldValueForbidden",
}

_REASONS = {
    "FieldValueInvalid": INVALID,
    "FieldValueForbidden": FORBIDDEN,
    "FieldValueRequired": REQUIRED,
    "FieldValueDuplicate": DUPLICATE,
}


def _go_num(value: float | int) -> str:
    """A number as Go's ``%v`` prints it (``100``, ``0.5``)."""
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    return str(value)


def _go_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _go_num(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _json_type(value: Any) -> str:
    """The JSON type name kube-openapi reports for a value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# --------------------------------------------------------------------------------------------
# CEL: the Kubernetes extension libraries celpy lacks


def _cel_error(message: str) -> CELEvalError:
    return CELEvalError(message)


def _list_is_sorted(values: Any) -> Any:
    try:
        return celtypes.BoolType(all(values[i] <= values[i + 1] for i in range(len(values) - 1)))
    except TypeError:
        return _cel_error("isSorted: list elements are not comparable")


def _list_sum(values: Any) -> Any:
    if not values:
        return celtypes.IntType(0)
    total = values[0]
    for item in values[1:]:
        total = total + item
    return total


def _list_min(values: Any) -> Any:
    if not values:
        return _cel_error("min called on empty list")
    return min(values)


def _list_max(values: Any) -> Any:
    if not values:
        return _cel_error("max called on empty list")
    return max(values)


def _index_of(target: Any, item: Any, *start: Any) -> Any:
    if isinstance(target, str):
        begin = int(start[0]) if start else 0
        if begin < 0 or begin > len(target):
            return _cel_error(f"index out of range: {begin}")
        return celtypes.IntType(target.find(item, begin))
    for i, candidate in enumerate(target):
        if candidate == item:
            return celtypes.IntType(i)
    return celtypes.IntType(-1)


def _last_index_of(target: Any, item: Any, *end: Any) -> Any:
    if isinstance(target, str):
        if end:
            return celtypes.IntType(target.rfind(item, 0, int(end[0]) + len(item)))
        return celtypes.IntType(target.rfind(item))
    for i in range(len(target) - 1, -1, -1):
        if target[i] == item:
            return celtypes.IntType(i)
    return celtypes.IntType(-1)


def _find(text: str, pattern: str) -> Any:
    try:
        match = re2.search(pattern, text)
    except re2.error as exc:
        return _cel_error(f"invalid regex {pattern!r}: {exc}")
    return celtypes.StringType(match.group(0) if match else "")


def _find_all(text: str, pattern: str, *limit: Any) -> Any:
    try:
        compiled = re2.compile(pattern)
    except re2.error as exc:
        return _cel_error(f"invalid regex {pattern!r}: {exc}")
    found = [celtypes.StringType(m.group(0)) for m in compiled.finditer(text)]
    if limit and int(limit[0]) >= 0:
        found = found[: int(limit[0])]
    return celtypes.ListType(found)


def _lower_ascii(text: str) -> Any:
    return celtypes.StringType(
        "".join(c.lower() if c.isascii() else c for c in text)  # non-ASCII stays as is
    )


def _upper_ascii(text: str) -> Any:
    return celtypes.StringType("".join(c.upper() if c.isascii() else c for c in text))


def _split(text: str, separator: str, *limit: Any) -> Any:
    count = int(limit[0]) if limit else -1
    if count == 0:
        return celtypes.ListType([])
    parts = text.split(separator, count - 1) if count > 0 else text.split(separator)
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def _join(values: Any, *separator: Any) -> Any:
    return celtypes.StringType((separator[0] if separator else "").join(values))


def _replace(text: str, old: str, new: str, *limit: Any) -> Any:
    count = int(limit[0]) if limit else -1
    return celtypes.StringType(text.replace(old, new, count))


def _substring(text: str, start: Any, *end: Any) -> Any:
    begin, stop = int(start), int(end[0]) if end else len(text)
    if begin < 0 or stop > len(text) or begin > stop:
        return _cel_error(f"substring: index out of range [{begin}:{stop}]")
    return celtypes.StringType(text[begin:stop])


def _char_at(text: str, index: Any) -> Any:
    i = int(index)
    if i < 0 or i > len(text):
        return _cel_error(f"index out of range: {i}")
    return celtypes.StringType(text[i : i + 1])


def _trim(text: str) -> Any:
    return celtypes.StringType(text.strip())


def _matches(text: str, pattern: str) -> Any:
    try:
        return celtypes.BoolType(re2.search(pattern, text) is not None)
    except re2.error as exc:
        return _cel_error(f"invalid regex {pattern!r}: {exc}")


_K8S_FUNCTIONS: dict[str, Callable[..., Any]] = {
    # lists (k8s.io/apiserver/pkg/cel/library/lists.go)
    "isSorted": _list_is_sorted,
    "sum": _list_sum,
    "min": _list_min,
    "max": _list_max,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    # regex (library/regex.go)
    "find": _find,
    "findAll": _find_all,
    "matches": _matches,
    # strings (cel-go ext strings)
    "lowerAscii": _lower_ascii,
    "upperAscii": _upper_ascii,
    "split": _split,
    "join": _join,
    "replace": _replace,
    "substring": _substring,
    "charAt": _char_at,
    "trim": _trim,
}

_CEL_ENV = celpy.Environment()
_STRING_LITERAL = re.compile(
    r"""'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*\"""", re.S
)
_OLD_SELF = re.compile(r"\boldSelf\b")


@dataclass
class _Rule:
    rule: str
    message: str
    message_expression: str
    reason: str
    field_path: str
    transition: bool
    program: Any
    message_program: Any
    cache: dict[tuple[str, str], tuple[bool, str] | None] = field(default_factory=dict)


def _compile_cel(text: str) -> Any:
    return _CEL_ENV.program(_CEL_ENV.compile(text), functions=_K8S_FUNCTIONS)


def _compile_rule(raw: dict[str, Any], where: str) -> _Rule:
    text = str(raw.get("rule", ""))
    try:
        program = _compile_cel(text)
        message_expression = str(raw.get("messageExpression", ""))
        message_program = _compile_cel(message_expression) if message_expression else None
    except Exception as exc:  # celpy raises its parser's own exception types
        raise SchemaError(f"{where}: compilation failed for rule {text!r}: {exc}") from exc
    return _Rule(
        rule=text,
        message=str(raw.get("message", "")).strip(),
        message_expression=message_expression,
        reason=str(raw.get("reason", "FieldValueInvalid")),
        field_path=str(raw.get("fieldPath", "")),
        transition=bool(_OLD_SELF.search(_STRING_LITERAL.sub("''", text))),
        program=program,
        message_program=message_program,
    )


def _describe_cel_error(err: Any) -> str:
    """cel-go's wording for the common runtime errors (``no such key: x``)."""
    args: tuple[Any, ...] = tuple(getattr(err, "args", ()))
    text = str(args[0]) if args else str(err)
    cause = args[1] if len(args) > 1 else None
    detail = args[2] if len(args) > 2 else None
    if cause is KeyError or text.startswith("no such member"):
        key = re.search(r"'([^']*)'", text)
        return f"no such key: {key.group(1) if key else text}"
    if cause is IndexError:
        return "index out of bounds"
    if cause is ZeroDivisionError:
        return "division by zero"
    if isinstance(detail, tuple) and detail and text in {"no such overload", "invalid_argument"}:
        return f"{text}: {detail[0]}"
    return text


# --------------------------------------------------------------------------------------------
# The compiled schema

_OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
_RESOURCE_FIELDS = ("apiVersion", "kind", "metadata")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_MISSING = object()


@dataclass
class _Node:
    type: str = ""
    nullable: bool = False
    properties: dict[str, _Node] = field(default_factory=dict)
    additional: _Node | None = None
    items: _Node | None = None
    required: tuple[str, ...] = ()
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    multiple_of: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    pattern_re: Any = None
    min_items: int | None = None
    max_items: int | None = None
    min_properties: int | None = None
    max_properties: int | None = None
    format: str = ""
    preserve_unknown: bool = False
    int_or_string: bool = False
    embedded: bool = False
    list_type: str = "atomic"
    map_keys: tuple[str, ...] = ()
    has_default: bool = False
    default: Any = None
    all_of: tuple[_Node, ...] = ()
    any_of: tuple[_Node, ...] = ()
    one_of: tuple[_Node, ...] = ()
    not_: _Node | None = None
    rules: tuple[_Rule, ...] = ()
    #: any rule here or below: lets validation skip the CEL bookkeeping in plain subtrees
    cel_below: bool = False


def _build(raw: dict[str, Any], where: str) -> _Node:
    if not isinstance(raw, dict):
        raise SchemaError(f"{where}: a schema must be an object")
    node = _Node(
        type=str(raw.get("type", "")),
        nullable=bool(raw.get("nullable", False)),
        required=tuple(raw.get("required", ())),
        minimum=raw.get("minimum"),
        maximum=raw.get("maximum"),
        exclusive_minimum=bool(raw.get("exclusiveMinimum", False)),
        exclusive_maximum=bool(raw.get("exclusiveMaximum", False)),
        multiple_of=raw.get("multipleOf"),
        min_length=raw.get("minLength"),
        max_length=raw.get("maxLength"),
        pattern=raw.get("pattern"),
        min_items=raw.get("minItems"),
        max_items=raw.get("maxItems"),
        min_properties=raw.get("minProperties"),
        max_properties=raw.get("maxProperties"),
        format=str(raw.get("format", "")),
        preserve_unknown=bool(raw.get("x-kubernetes-preserve-unknown-fields", False)),
        int_or_string=bool(raw.get("x-kubernetes-int-or-string", False)),
        embedded=bool(raw.get("x-kubernetes-embedded-resource", False)),
        list_type=str(raw.get("x-kubernetes-list-type", "atomic")),
        map_keys=tuple(raw.get("x-kubernetes-list-map-keys", ())),
    )
    if "enum" in raw:
        node.enum = tuple(raw["enum"])
    if "default" in raw:
        node.has_default, node.default = True, raw["default"]
    if node.pattern is not None:
        try:
            node.pattern_re = re2.compile(node.pattern)
        except re2.error as exc:
            raise SchemaError(f"{where}.pattern: invalid regex {node.pattern!r}: {exc}") from exc
    node.properties = {
        name: _build(sub, f"{where}.properties[{name}]")
        for name, sub in (raw.get("properties") or {}).items()
    }
    additional = raw.get("additionalProperties")
    if isinstance(additional, dict):
        node.additional = _build(additional, f"{where}.additionalProperties")
    elif additional is True:
        node.preserve_unknown = True
    if isinstance(raw.get("items"), dict):
        node.items = _build(raw["items"], f"{where}.items")
    node.all_of = tuple(
        _build(s, f"{where}.allOf[{i}]") for i, s in enumerate(raw.get("allOf", ()))
    )
    node.any_of = tuple(
        _build(s, f"{where}.anyOf[{i}]") for i, s in enumerate(raw.get("anyOf", ()))
    )
    node.one_of = tuple(
        _build(s, f"{where}.oneOf[{i}]") for i, s in enumerate(raw.get("oneOf", ()))
    )
    if isinstance(raw.get("not"), dict):
        node.not_ = _build(raw["not"], f"{where}.not")
    node.rules = tuple(
        _compile_rule(r, f"{where}.x-kubernetes-validations[{i}]")
        for i, r in enumerate(raw.get("x-kubernetes-validations", ()))
    )
    children = [*node.properties.values(), node.additional, node.items]
    node.cel_below = bool(node.rules) or any(c.cel_below for c in children if c is not None)
    return node


def _copy(value: Any) -> Any:
    """Deep copy of a JSON value (much faster than ``copy.deepcopy``)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# Pruning and defaulting


def _prune_meta(meta: Any) -> Any:
    if not isinstance(meta, dict):
        return _copy(meta)
    return {k: _copy(v) for k, v in meta.items() if k in _OBJECT_META_FIELDS}


def _prune(value: Any, node: _Node | None) -> Any:
    if node is None:
        return _copy(value)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            prop = node.properties.get(key)
            if node.embedded and key in _RESOURCE_FIELDS:
                out[key] = _prune_meta(item) if key == "metadata" else _copy(item)
            elif prop is not None:
                out[key] = _prune(item, prop)
            elif node.additional is not None:
                out[key] = _prune(item, node.additional)
            elif node.preserve_unknown:
                out[key] = _copy(item)
        return out
    if isinstance(value, list):
        return [_prune(item, node.items) for item in value]
    return value


def _is_non_nullable_null(value: Any, node: _Node) -> bool:
    return value is None and not node.nullable


def _default(value: Any, node: _Node | None) -> None:
    """In place, kube-apiserver's ``structuraldefaulting.Default`` after pruning nulls."""
    if node is None:
        return
    if isinstance(value, dict):
        for key, prop in node.properties.items():
            current = value.get(key, _MISSING)
            if current is _MISSING or _is_non_nullable_null(current, prop):
                if prop.has_default:
                    value[key] = _copy(prop.default)
                elif current is None:
                    # non-nullable null without a default: dropped, as the API server does
                    del value[key]
        for key, item in value.items():
            child = node.properties.get(key)
            if child is not None:
                _default(item, child)
            elif node.additional is not None:
                if _is_non_nullable_null(item, node.additional) and node.additional.has_default:
                    value[key] = _copy(node.additional.default)
                _default(value[key], node.additional)
    elif isinstance(value, list) and node.items is not None:
        for i, item in enumerate(value):
            if _is_non_nullable_null(item, node.items) and node.items.has_default:
                value[i] = _copy(node.items.default)
            _default(value[i], node.items)


# --------------------------------------------------------------------------------------------
# Conversion to CEL values, schema-aware as the API server types ``self``: an ``integer`` is an
# int, a ``number`` a double, a ``date-time`` string a timestamp. Data kept only by
# x-kubernetes-preserve-unknown-fields is not visible to CEL (unknown fields of a preserving
# object, and properties whose schema has no type), so a rule cannot depend on it here either.


def _cel_visible(node: _Node) -> bool:
    return bool(node.type) or node.int_or_string


def _object_to_cel(value: dict[str, Any], node: _Node) -> Any:
    fields: dict[Any, Any] = {}
    for key, item in value.items():
        prop = node.properties.get(key)
        if prop is None:
            if node.additional is not None:
                fields[celtypes.StringType(key)] = _to_cel(item, node.additional)
            elif node.embedded and key in _RESOURCE_FIELDS:
                visible = item
                if key == "metadata" and isinstance(item, dict):
                    visible = {k: v for k, v in item.items() if k in {"name", "generateName"}}
                fields[celtypes.StringType(key)] = json_to_cel(visible)
        elif _cel_visible(prop):
            fields[celtypes.StringType(key)] = _to_cel(item, prop)
    return celtypes.MapType(fields)


def _to_cel(value: Any, node: _Node) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        if not _cel_visible(node) and not node.properties:
            return json_to_cel(value)
        return _object_to_cel(value, node)
    if isinstance(value, list):
        if node.items is None:
            return json_to_cel(value)
        return celtypes.ListType([_to_cel(v, node.items) for v in value])
    kind = node.type
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if kind == "number" and isinstance(value, int | float):
        return celtypes.DoubleType(value)
    if isinstance(value, int) or (kind == "integer" and isinstance(value, float)):
        return celtypes.IntType(int(value))
    if isinstance(value, float):
        return celtypes.DoubleType(value)
    if isinstance(value, str):
        if node.format == "date-time" and _DATE_TIME.match(value):
            try:
                return celtypes.TimestampType(value.replace(" ", "T"))
            except (ValueError, TypeError):
                return celtypes.StringType(value)
        if node.format == "duration":
            try:
                return celtypes.DurationType(value)
            except (ValueError, TypeError):
                return celtypes.StringType(value)
        return celtypes.StringType(value)
    return json_to_cel(value)


def _format_ok(fmt: str, value: str) -> bool:
    if fmt == "date-time":
        if not _DATE_TIME.match(value):
            return False
        try:
            _dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return False
        return True
    if fmt == "date":
        try:
            _dt.date.fromisoformat(value)
        except ValueError:
            return False
        return True
    return True


def _join_field_path(path: str, field_path: str) -> str:
    """Appends a rule's ``fieldPath`` (``.a.b``, ``.a['b']``, ``.a[0]``) to a field path."""
    suffix = re.sub(r"\['([^']*)'\]", r"[\1]", field_path)
    joined = path + suffix if suffix.startswith(("[", ".")) else f"{path}.{suffix}"
    return joined.lstrip(".")


def _type_matches(value: Any, node: _Node) -> bool:
    kind = node.type
    if node.int_or_string:
        return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)
    if not kind:
        return True
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True


class _Validation:
    """One validation pass: walks the value with the schema and collects the errors."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, path: str, kind: str, value: Any, detail: str) -> None:
        self.errors.append(FieldError(path or "<root>", kind, value, detail))

    def value_checks(self, value: Any, node: _Node, path: str) -> bool:
        """The OpenAPI checks of one node (not its children); False stops the descent."""
        shown = path or "<root>"
        if value is None:
            if node.nullable or (not node.type and not node.int_or_string):
                return False
            expected = "integer or string" if node.int_or_string else node.type
            detail = f'{shown} in body must be of type {expected}: "null"'
            self.add(path, INVALID, "null", detail)
            return False
        if not _type_matches(value, node):
            expected = "integer or string" if node.int_or_string else node.type
            actual = _json_type(value)
            detail = f'{shown} in body must be of type {expected}: "{actual}"'
            self.add(path, INVALID, actual, detail)
            return False
        if node.enum is not None and value not in node.enum:
            allowed = ", ".join(
                json.dumps(e if isinstance(e, str) else _go_value(e)) for e in node.enum
            )
            self.add(path, UNSUPPORTED, value, f"supported values: {allowed}")
        if isinstance(value, str):
            self._string_checks(value, node, path, shown)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self._number_checks(value, node, path, shown)
        elif isinstance(value, list):
            if node.min_items is not None and len(value) < node.min_items:
                detail = f"{shown} in body should have at least {node.min_items} items"
                self.add(path, INVALID, len(value), detail)
            if node.max_items is not None and len(value) > node.max_items:
                self.add(path, TOO_MANY, len(value), f"must have at most {node.max_items} items")
            self._list_type_checks(value, node, path)
        elif isinstance(value, dict):
            if node.min_properties is not None and len(value) < node.min_properties:
                detail = f"{shown} in body should have at least {node.min_properties} properties"
                self.add(path, INVALID, len(value), detail)
            if node.max_properties is not None and len(value) > node.max_properties:
                detail = f"must have at most {node.max_properties} items"
                self.add(path, TOO_MANY, len(value), detail)
            for name in node.required:
                if name not in value:
                    self.add(f"{path}.{name}" if path else name, REQUIRED, None, "")
            if node.embedded:
                for name in ("apiVersion", "kind"):
                    if not value.get(name):
                        child = f"{path}.{name}" if path else name
                        self.add(child, REQUIRED, None, "must not be empty")
        self._combinator_checks(value, node, path, shown)
        return True

    def _string_checks(self, value: str, node: _Node, path: str, shown: str) -> None:
        if node.min_length is not None and len(value) < node.min_length:
            detail = f"{shown} in body should be at least {node.min_length} chars long"
            self.add(path, INVALID, value, detail)
        if node.max_length is not None and len(value) > node.max_length:
            self.add(path, TOO_LONG, value, f"may not be more than {node.max_length} bytes")
        if node.pattern_re is not None and node.pattern_re.search(value) is None:
            self.add(path, INVALID, value, f"{shown} in body should match '{node.pattern}'")
        if node.format and not _format_ok(node.format, value):
            detail = f"{shown} in body must be of type {node.format}: {json.dumps(value)}"
            self.add(path, INVALID, value, detail)

    def _number_checks(self, value: float, node: _Node, path: str, shown: str) -> None:
        if node.minimum is not None:
            if node.exclusive_minimum and value <= node.minimum:
                detail = f"{shown} in body should be greater than {_go_num(node.minimum)}"
                self.add(path, INVALID, value, detail)
            elif value < node.minimum:
                detail = (
                    f"{shown} in body should be greater than or equal to {_go_num(node.minimum)}"
                )
                self.add(path, INVALID, value, detail)
        if node.maximum is not None:
            if node.exclusive_maximum and value >= node.maximum:
                detail = f"{shown} in body should be less than {_go_num(node.maximum)}"
                self.add(path, INVALID, value, detail)
            elif value > node.maximum:
                detail = f"{shown} in body should be less than or equal to {_go_num(node.maximum)}"
                self.add(path, INVALID, value, detail)
        if node.multiple_of:
            quotient = value / node.multiple_of
            if not math.isclose(quotient, round(quotient)):
                detail = f"{shown} in body should be a multiple of {_go_num(node.multiple_of)}"
                self.add(path, INVALID, value, detail)

    def _list_type_checks(self, value: list[Any], node: _Node, path: str) -> None:
        if node.list_type == "set":
            seen: set[str] = set()
            for i, item in enumerate(value):
                key = json.dumps(item, sort_keys=True)
                if key in seen:
                    self.add(f"{path}[{i}]", DUPLICATE, item, "")
                seen.add(key)
        elif node.list_type == "map" and node.map_keys:
            seen_keys: set[str] = set()
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    continue
                keys = {k: item[k] for k in node.map_keys if k in item}
                marker = json.dumps(keys, sort_keys=True)
                if marker in seen_keys:
                    self.add(f"{path}[{i}]", DUPLICATE, keys, "")
                seen_keys.add(marker)

    def _combinator_checks(self, value: Any, node: _Node, path: str, shown: str) -> None:
        if not (node.all_of or node.any_of or node.one_of or node.not_):
            return
        for sub in node.all_of:
            self.walk(value, sub, path, _MISSING)

        def passes(sub: _Node) -> bool:
            probe = _Validation()
            probe.walk(value, sub, path, _MISSING)
            return not probe.errors

        if node.any_of and not any(passes(s) for s in node.any_of):
            detail = f"{shown} in body must validate at least one schema (anyOf)"
            self.add(path, INVALID, value, detail)
        if node.one_of and sum(passes(s) for s in node.one_of) != 1:
            detail = f"{shown} in body must validate one and only one schema (oneOf)"
            self.add(path, INVALID, value, detail)
        if node.not_ is not None and passes(node.not_):
            self.add(path, INVALID, value, f"{shown} in body must not validate the schema (not)")

    def walk(self, value: Any, node: _Node, path: str, old: Any) -> None:
        if not self.value_checks(value, node, path):
            return
        if isinstance(value, dict):
            old_map = old if isinstance(old, dict) else None
            for key, item in value.items():
                prop = node.properties.get(key)
                if prop is None:
                    prop = node.additional
                    if prop is None:
                        if node.embedded and key == "metadata" and not isinstance(item, dict):
                            child = f"{path}.metadata" if path else "metadata"
                            self.add(child, INVALID, _json_type(item), "must be an object")
                        continue
                    child = f"{path}[{key}]"
                else:
                    child = f"{path}.{key}" if path else key
                previous = old_map.get(key, _MISSING) if old_map is not None else _MISSING
                self.walk(item, prop, child, previous if prop.cel_below else _MISSING)
        elif isinstance(value, list) and node.items is not None:
            correlate = node.items.cel_below and isinstance(old, list)
            old_index = self._correlate(old, node) if correlate else None
            for i, item in enumerate(value):
                previous = _MISSING
                if old_index is not None:
                    previous = old_index.get(self._item_key(item, node), _MISSING)
                self.walk(item, node.items, f"{path}[{i}]", previous)
        if node.rules:
            self.run_rules(value, node, path, old)

    @staticmethod
    def _item_key(item: Any, node: _Node) -> str:
        if node.list_type == "map" and isinstance(item, dict):
            return json.dumps({k: item.get(k) for k in node.map_keys}, sort_keys=True)
        return json.dumps(item, sort_keys=True)

    def _correlate(self, old: list[Any], node: _Node) -> dict[str, Any] | None:
        """Old items matched to new ones: map lists by key, sets by value, atomic not at all."""
        if node.list_type not in {"map", "set"}:
            return None
        return {self._item_key(item, node): item for item in old}

    def run_rules(self, value: Any, node: _Node, path: str, old: Any) -> None:
        shown_type = node.type or _json_type(value)
        activation: dict[str, Any] = {}
        self_key: str | None = None
        for rule in node.rules:
            if rule.transition and old is _MISSING:
                continue
            # A rule is a pure function of self (and oldSelf): its outcome is memoized on the
            # JSON of its inputs, so re-validating an unchanged subtree (every status write
            # re-validates the spec) costs a lookup instead of an interpretation.
            if self_key is None:
                self_key = json.dumps(value, separators=(",", ":"))
            key = (self_key, json.dumps(old, separators=(",", ":")) if rule.transition else "")
            if key in rule.cache:
                outcome = rule.cache[key]
            else:
                if "self" not in activation:
                    activation["self"] = _to_cel(value, node)
                if rule.transition and "oldSelf" not in activation:
                    activation["oldSelf"] = _to_cel(old, node)
                outcome = _evaluate_rule(rule, activation)
                if len(rule.cache) >= _RULE_CACHE_SIZE:
                    rule.cache.clear()
                rule.cache[key] = outcome
            if outcome is None:
                continue
            failed, detail = outcome
            if failed:
                target = _join_field_path(path, rule.field_path) if rule.field_path else path
                self.add(target, _REASONS.get(rule.reason, INVALID), shown_type, detail)
            else:
                self.add(path, INVALID, shown_type, detail)


_RULE_CACHE_SIZE = 4096


def _evaluate_rule(rule: _Rule, activation: dict[str, Any]) -> tuple[bool, str] | None:
    """None when the rule holds; (True, message) when it is false; (False, error) when it
    could not be evaluated."""
    try:
        result = rule.program.evaluate(activation)
    except CELEvalError as exc:
        result = exc
    except Exception as exc:  # a bug surfacing inside celpy still must not crash a write
        result = CELEvalError(str(exc), type(exc), exc.args)
    if isinstance(result, CELEvalError):
        return False, f"{_describe_cel_error(result)} evaluating rule: {rule.message or rule.rule}"
    if not isinstance(result, bool | celtypes.BoolType):
        return False, f"rule did not return a bool (got {type(result).__name__}): {rule.rule}"
    if result:
        return None
    return True, _rule_message(rule, activation)


def _rule_message(rule: _Rule, activation: dict[str, Any]) -> str:
    if rule.message_program is not None:
        try:
            text = rule.message_program.evaluate(activation)
        except Exception:  # falls back to the static message, as the API server does
            text = None
        if isinstance(text, str) and text.strip() and "\n" not in text:
            return text.strip()
    return rule.message or f"failed rule: {rule.rule}"


# --------------------------------------------------------------------------------------------
# Public API


class StructuralSchema:
    """A compiled ``openAPIV3Schema`` of one CRD version."""

    def __init__(self, openapi_v3_schema: dict[str, Any]) -> None:
        self.raw = openapi_v3_schema
        self._root = _build(openapi_v3_schema, "openAPIV3Schema")
        # The root of a custom resource is always an embedded resource.
        self._root.embedded = True

    def prune(self, obj: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``obj`` without the fields the schema does not know.

        ``apiVersion``, ``kind`` and ``metadata`` (pruned to ObjectMeta's fields) are kept, at
        the root and in embedded resources; preserve-unknown-fields subtrees are kept whole
        except for the known properties inside them, which are pruned by their own schema.
        """
        pruned = _prune(obj, self._root)
        return pruned if isinstance(pruned, dict) else {}

    def apply_defaults(self, obj: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``obj`` with defaults applied where the parent object exists.

        Non-nullable nulls take the default when there is one and are dropped otherwise;
        defaults inside a freshly defaulted object are applied too.
        """
        out: dict[str, Any] = _copy(obj)
        _default(out, self._root)
        return out

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
        """Every schema and CEL error of ``obj``; transition rules run only against ``old``."""
        run = _Validation()
        root = self._root
        for key, prop in root.properties.items():
            if key in _RESOURCE_FIELDS and key != "metadata":
                continue
            if key in obj:
                previous = old.get(key, _MISSING) if old is not None else _MISSING
                run.walk(obj[key], prop, key, previous)
        for name in root.required:
            if name not in obj:
                run.add(name, REQUIRED, None, "")
        if root.rules:
            run.run_rules(obj, root, "", old if old is not None else _MISSING)
        return run.errors


def admit_custom_resource(
    schema: StructuralSchema, obj: dict[str, Any], old: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[FieldError]]:
    """What kube-apiserver does with a custom resource on write: prune, default, validate.

    ``old`` (the stored object, on update) is defaulted as it would be when read from storage,
    and lets transition rules (``oldSelf``) run.
    """
    admitted = schema.apply_defaults(schema.prune(obj))
    previous = schema.apply_defaults(old) if old is not None else None
    return admitted, schema.validate(admitted, previous)
