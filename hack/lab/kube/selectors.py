"""Label and field selectors, parsed and matched as kube-apiserver does for list and watch.

Label selectors: equality (``=``, ``==``, ``!=``) and set-based (``in``, ``notin``, ``key``,
``!key``) requirements joined by commas. Field selectors: ``=``, ``==``, ``!=`` over the
fields a resource supports (see :func:`FieldSelector.parse`); any other field is a 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hack.lab.kube.errors import APIError, bad_request

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[A-Za-z0-9_.-]*"
_SET = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*$")
_EXISTS = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


@dataclass(frozen=True)
class _Requirement:
    key: str
    op: str  # in | notin | exists | !exists
    values: frozenset[str]

    def matches(self, labels: dict[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!exists":
            return self.key not in labels
        if self.op == "in":
            return self.key in labels and labels[self.key] in self.values
        return self.key not in labels or labels[self.key] not in self.values


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


class LabelSelector:
    def __init__(self, requirements: Iterable[_Requirement] = ()) -> None:
        self.requirements = tuple(requirements)

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        if not text:
            return cls()
        reqs = []
        for part in _split_top_level(text):
            if m := _SET.match(part):
                values = frozenset(v.strip() for v in m.group(3).split(",") if v.strip())
                reqs.append(_Requirement(m.group(1), m.group(2), values))
            elif m := _EQ.match(part):
                op = "notin" if m.group(2) == "!=" else "in"
                reqs.append(_Requirement(m.group(1), op, frozenset({m.group(3)})))
            elif m := _EXISTS.match(part):
                reqs.append(
                    _Requirement(m.group(2), "!exists" if m.group(1) else "exists", frozenset())
                )
            else:
                raise bad_request(f"unable to parse requirement: {part.strip()!r}")
        return cls(reqs)

    @classmethod
    def from_match(cls, selector: dict[str, Any] | None) -> LabelSelector:
        """A ``metav1.LabelSelector`` (matchLabels / matchExpressions) as a selector."""
        if not selector:
            return cls()
        reqs = [
            _Requirement(k, "in", frozenset({str(v)}))
            for k, v in (selector.get("matchLabels") or {}).items()
        ]
        ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
        for expr in selector.get("matchExpressions") or []:
            reqs.append(
                _Requirement(
                    expr["key"], ops[expr["operator"]], frozenset(expr.get("values") or [])
                )
            )
        return cls(reqs)

    def __bool__(self) -> bool:
        return bool(self.requirements)

    def matches(self, obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(r.matches(labels) for r in self.requirements)


def _lookup(obj: dict[str, Any], dotted: str) -> str:
    node: Any = obj
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return ""
        node = node.get(part)
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


class FieldSelector:
    def __init__(self, terms: Iterable[tuple[str, bool, str]] = ()) -> None:
        self.terms = tuple(terms)  # (field, equal, value)

    @classmethod
    def parse(cls, text: str | None, supported: Callable[[str], bool]) -> FieldSelector:
        if not text:
            return cls()
        terms = []
        for part in _split_top_level(text):
            for op in ("!=", "==", "="):
                if op in part:
                    field, value = part.split(op, 1)
                    field = field.strip()
                    if not supported(field):
                        raise APIError(400, "BadRequest", f"field label not supported: {field}")
                    terms.append((field, op != "!=", value.strip()))
                    break
            else:
                raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        return cls(terms)

    def __bool__(self) -> bool:
        return bool(self.terms)

    def single_name(self) -> str | None:
        """The name when the selector pins ``metadata.name`` (kubectl get NAME -w)."""
        for field, equal, value in self.terms:
            if field == "metadata.name" and equal:
                return value
        return None

    def matches(self, obj: dict[str, Any]) -> bool:
        return all((_lookup(obj, f) == v) == eq for f, eq, v in self.terms)
