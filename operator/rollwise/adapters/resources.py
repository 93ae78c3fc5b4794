"""Resource types the adapters address (group, version, plural) and the JSON copy every read
hands out (:func:`copy_json`: callers may edit what they get)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Resource:
    """A namespaced resource type: group (``""`` for the core group), version, plural."""

    group: str
    version: str
    plural: str

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}/{self.version}" if self.group else self.plural


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value (dicts, lists, scalars): several times faster than
    ``copy.deepcopy``, which a pass would otherwise spend a good part of its CPU in."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


def _compact_copy(value: Any) -> Any:
    """``copy_json`` that interns keys and short strings: the cache keeps thousands of bodies
    whose keys and most values (labels, names, reasons) repeat, and a parsed body owns its own
    copy of each string; shared, they take about half the memory."""
    if isinstance(value, dict):
        return {sys.intern(str(k)): _compact_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_compact_copy(v) for v in value]
    if type(value) is str and len(value) <= _INTERNED_LENGTH:
        return sys.intern(value)
    return value


#: Strings up to this length are interned in cached bodies (longer ones rarely repeat).
_INTERNED_LENGTH = 64


__all__ = ["Resource", "copy_json"]
