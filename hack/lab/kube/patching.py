"""The three PATCH formats kube-apiserver accepts, applied to plain JSON values.

- JSON merge patch (RFC 7386): ``application/merge-patch+json``.
- JSON patch (RFC 6902): ``application/json-patch+json``; a failed ``test`` is an error.
- Strategic merge patch: a merge patch whose lists of known fields are merged by key
  (containers by ``name``, conditions by ``type``, ...), with the ``$patch``,
  ``$retainKeys``, ``$deleteFromPrimitiveList`` and ``$setElementOrder`` directives. The merge
  keys come from a fixed table of the built-in types' fields rather than from Go struct tags;
  fields not in the table are replaced, as a merge patch replaces them.

Boundary: values in, values out, :class:`PatchError` on a malformed patch; no HTTP, no store.
"""

from __future__ import annotations

from typing import Any


class PatchError(ValueError):
    """The patch cannot be applied; ``unprocessable`` marks a failed ``test`` or a bad path
    (422) as opposed to a malformed document (400)."""

    def __init__(self, message: str, *, unprocessable: bool = True) -> None:
        super().__init__(message)
        self.unprocessable = unprocessable


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value (several times faster than ``copy.deepcopy``)."""
    kind = type(value)
    if kind is dict:
        return {k: v if type(v) in _SCALARS else copy_json(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _SCALARS else copy_json(v) for v in value]
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


_SCALARS = frozenset({str, int, float, bool, type(None)})


# --------------------------------------------------------------------------------------------
# RFC 7386


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386. ``target`` is not modified; the result shares the subtrees of ``target`` the
    patch leaves alone (only the patched path is copied: the registry copies the result
    before it keeps it, and copying whole objects here was a large part of a write's cost)."""
    if not isinstance(patch, dict):
        return copy_json(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --------------------------------------------------------------------------------------------
# RFC 6902


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _split_pointer(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"invalid JSON pointer {pointer!r}", unprocessable=False)
    return [_unescape(t) for t in pointer[1:].split("/")]


def _list_index(container: list[Any], token: str, *, for_add: bool) -> int:
    if token == "-" and for_add:
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    index = int(token)
    limit = len(container) if for_add else len(container) - 1
    if index > limit:
        raise PatchError(f"array index {index} out of bounds (length {len(container)})")
    return index


def _resolve(doc: Any, tokens: list[str], pointer: str) -> Any:
    node = doc
    for token in tokens:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"path {pointer!r} does not exist")
            node = node[token]
        elif isinstance(node, list):
            node = node[_list_index(node, token, for_add=False)]
        else:
            raise PatchError(f"path {pointer!r} does not exist")
    return node


def _add(doc: Any, pointer: str, value: Any) -> Any:
    tokens = _split_pointer(pointer)
    if not tokens:
        return value
    parent = _resolve(doc, tokens[:-1], pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_list_index(parent, last, for_add=True), value)
    else:
        raise PatchError(f"path {pointer!r} does not exist")
    return doc


def _remove(doc: Any, pointer: str) -> tuple[Any, Any]:
    tokens = _split_pointer(pointer)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _resolve(doc, tokens[:-1], pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"unable to remove nonexistent key: {last}: missing value")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_list_index(parent, last, for_add=False))
    raise PatchError(f"path {pointer!r} does not exist")


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise PatchError(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
            unprocessable=False,
        )
    doc = copy_json(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError("malformed JSON patch operation", unprocessable=False)
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _add(doc, path, copy_json(op.get("value")))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            tokens = _split_pointer(path)
            if tokens:
                _resolve(doc, tokens, path)
                doc, _ = _remove(doc, path)
            doc = _add(doc, path, copy_json(op.get("value")))
        elif kind == "move":
            doc, value = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "copy":
            value = copy_json(_resolve(doc, _split_pointer(op["from"]), op["from"]))
            doc = _add(doc, path, value)
        elif kind == "test":
            actual = _resolve(doc, _split_pointer(path), path)
            if actual != op.get("value"):
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}", unprocessable=False)
    return doc


# --------------------------------------------------------------------------------------------
# Strategic merge patch

#: field name -> merge key of its list items, for the built-in types' lists that merge.
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "secrets": "name",
}
#: lists of scalars that merge as sets.
_PRIMITIVE_MERGE = frozenset({"finalizers"})


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        has_container_port = any(isinstance(i, dict) and "containerPort" in i for i in items)
        return "containerPort" if has_container_port else "port"
    return _MERGE_KEYS.get(field)


def strategic_merge_patch(target: Any, patch: Any) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be a JSON object", unprocessable=False)
    return _smp_map(target if isinstance(target, dict) else {}, patch)


def _smp_map(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy_json(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return {}
    result: dict[str, Any] = copy_json(target)
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            current = result.get(key)
            result[key] = _smp_map(current if isinstance(current, dict) else {}, value)
        elif isinstance(value, list):
            result[key] = _smp_list(key, result.get(key), value)
        else:
            result[key] = value
    if isinstance(retain, list):
        for key in list(result):
            if key not in retain and key not in patch:
                del result[key]
    return result


def _smp_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    current_list = current if isinstance(current, list) else []
    if field in _PRIMITIVE_MERGE:
        merged = list(current_list)
        for item in patch:
            if item not in merged:
                merged.append(item)
        return merged
    key = _merge_key(field, patch)
    if key is None or not all(isinstance(i, dict) for i in patch):
        return [copy_json(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [copy_json(i) for i in patch if i.get("$patch") != "replace"]
    merged = [copy_json(i) for i in current_list]
    for item in patch:
        wanted = item.get(key)
        index = next(
            (n for n, m in enumerate(merged) if isinstance(m, dict) and m.get(key) == wanted),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                merged.pop(index)
            continue
        if index is None:
            merged.append(_smp_map({}, item))
        else:
            merged[index] = _smp_map(merged[index], item)
    return merged
