"""Known fields of the built-in kinds, for kube-apiserver's typed decoding.

kube-apiserver decodes a built-in object into its Go type: fields the type does not have are
dropped, reported as warnings, or refused with ``fieldValidation=Strict`` (what
``kubectl apply`` sends). The field names here come from the official ``kubernetes`` client's
generated models (``attribute_map`` / ``openapi_types``), which are generated from the same
OpenAPI document as the API server's types, so a typo in a manifest fails in the lab as it
would in a cluster. The emulator reports such fields but keeps them (docs/lab.md says why).

Boundary: field names only; values are not type-checked here (the emulator's built-in
defaulting and validation live in ``resources.py``).
"""

from __future__ import annotations

import functools
import re
from typing import Any

_LIST = re.compile(r"^List\[(.+)\]$", re.IGNORECASE)
_DICT = re.compile(r"^Dict\[str, (.+)\]$|^dict\(str, (.+)\)$", re.IGNORECASE)


@functools.cache
def _models() -> Any:
    try:
        from kubernetes.client import models  # noqa: PLC0415 - heavy, loaded on first use
    except ImportError:  # pragma: no cover - the lab always has the client installed
        return None
    return models


@functools.cache
def _fields(type_name: str) -> dict[str, str] | None:
    """JSON field name -> type name of a generated model, or None for a non-model type."""
    models = _models()
    cls = getattr(models, type_name, None) if models is not None else None
    attribute_map = getattr(cls, "attribute_map", None)
    types = getattr(cls, "openapi_types", None)
    if not isinstance(attribute_map, dict) or not isinstance(types, dict):
        return None
    return {json_name: types[py_name] for py_name, json_name in attribute_map.items()}


def model_name(group: str, version: str, kind: str) -> str:
    """The client's model class for a built-in kind (``V1Deployment``, ``CoreV1Event``)."""
    if kind == "Event":
        return "CoreV1Event" if group == "" else "EventsV1Event"
    return f"{version[:1].upper()}{version[1:]}{kind}"


def known(type_name: str) -> bool:
    return _fields(type_name) is not None


def prune(value: Any, type_name: str, unknown: list[str], path: str = "") -> Any:
    """``value`` without the fields ``type_name`` does not have; their paths go to ``unknown``."""
    if m := _LIST.match(type_name):
        if isinstance(value, list):
            return [prune(v, m.group(1), unknown, f"{path}[{i}]") for i, v in enumerate(value)]
        return value
    if m := _DICT.match(type_name):
        inner = m.group(1) or m.group(2)
        if isinstance(value, dict):
            return {
                k: prune(v, inner, unknown, f"{path}.{k}" if path else k) for k, v in value.items()
            }
        return value
    fields = _fields(type_name)
    if fields is None or not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        if key not in fields:
            unknown.append(where)
            continue
        out[key] = prune(item, fields[key], unknown, where)
    return out


@functools.cache
def _shape(type_name: str) -> tuple[str, str | None, dict[str, str] | None]:
    """How ``type_name`` is walked: ("list", item type), ("dict", value type) or ("model",
    fields; None for a scalar or unknown type). Parsed once per type name."""
    if m := _LIST.match(type_name):
        return "list", m.group(1), None
    if m := _DICT.match(type_name):
        return "dict", m.group(1) or m.group(2), None
    return "model", None, _fields(type_name)


#: A path as a linked list, (parent, part), so that walking a node allocates one pair only.
_Path = tuple["_Path", str | int] | None


def _join(path: _Path) -> str:
    parts: list[str | int] = []
    while path is not None:
        path, part = path
        parts.append(part)
    text = ""
    for part in reversed(parts):
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text = f"{text}.{part}" if text else part
    return text


def unknown_fields(value: Any, type_name: str, unknown: list[str]) -> None:
    """The paths of the fields in ``value`` that ``type_name`` does not have, appended to
    ``unknown`` in the order ``prune`` reports them; builds nothing else (a write checks
    every body, and most have no unknown field)."""

    def walk(item: Any, name: str, path: _Path) -> None:
        kind, inner, fields = _shape(name)
        # Only dicts and lists can hold a field of their own: scalars are not visited.
        if kind == "list":
            if isinstance(item, list):
                for i, element in enumerate(item):
                    if isinstance(element, dict | list):
                        walk(element, inner or "", (path, i))
        elif kind == "dict":
            if isinstance(item, dict):
                for key, element in item.items():
                    if isinstance(element, dict | list):
                        walk(element, inner or "", (path, key))
        elif fields is not None and isinstance(item, dict):
            for key, element in item.items():
                field_type = fields.get(key)
                if field_type is None:
                    unknown.append(_join((path, key)))
                elif isinstance(element, dict | list):
                    walk(element, field_type, (path, key))

    walk(value, type_name, None)
