"""The ``policy-digest`` gate: was the release prepared against the cluster's current policy?

The cluster's policy snapshot is one ConfigMap (the operator setting names its namespace and
name). Its digest is ``sha256:`` followed by the SHA-256 (hex) of the canonical JSON of the
ConfigMap's ``data``::

    json.dumps(data, sort_keys=True, separators=(",", ":"))   # encoded as UTF-8

(``ensure_ascii`` stays on, so non-ASCII text is written as ``\\uXXXX`` escapes; a ConfigMap
without ``data`` hashes as ``{}``; ``binaryData`` and metadata do not count). A release whose
``spec.policyDigest`` equals the snapshot's digest passes; a different digest fails, naming
both; no snapshot configured, or the ConfigMap missing, leaves the gate Pending.

To compute the digest of a manifest before applying it (or of ``kubectl get configmap NAME -o
yaml`` output)::

    python -m rollwise.adapters.gates.policy policy.yaml      # "-" reads standard input

It prints ``sha256:<hex>  <namespace>/<name>`` for each ConfigMap in the file.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from rollwise.adapters.gates.outcome import Outcome, short_digest


class NotAConfigMap(ValueError):
    """A document is not a ConfigMap with string ``data`` values."""


def policy_digest(data: Mapping[str, str] | None) -> str:
    """``sha256:<hex>`` of the canonical JSON of a ConfigMap's ``data``."""
    canonical = json.dumps(dict(data or {}), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def configmap_data(configmap: Mapping[str, Any]) -> dict[str, str]:
    """The ``data`` of a ConfigMap manifest, checked to map strings to strings."""
    data = configmap.get("data") or {}
    if not isinstance(data, dict):
        raise NotAConfigMap("data must be a mapping of keys to strings")
    for key, value in data.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise NotAConfigMap(
                f"data[{key!r}] is not a string (quote it: the API server stores strings only)"
            )
    return data


def check_policy(configmap: Mapping[str, Any] | None, expected: str, where: str) -> Outcome:
    """The verdict for ``spec.policyDigest`` ``expected`` against the snapshot ConfigMap
    ``configmap`` (None: missing) found at ``where`` (``namespace/name``)."""
    if configmap is None:
        return Outcome.pending(f"policy snapshot ConfigMap {where} not found")
    try:
        actual = policy_digest(configmap_data(configmap))
    except NotAConfigMap as exc:
        return Outcome.failed(f"policy snapshot ConfigMap {where}: {exc}")
    if actual == expected.lower():
        return Outcome.passed(f"policy snapshot {where} has digest {short_digest(actual)}")
    return Outcome.failed(
        f"policy digest mismatch: spec.policyDigest is {short_digest(expected)}, the cluster's "
        f"policy snapshot {where} is {short_digest(actual)}"
    )


def manifest_digests(text: str) -> list[tuple[str, str]]:
    """(digest, namespace/name) of each ConfigMap in a YAML or JSON text (``kind: List``
    items included)."""
    found: list[tuple[str, str]] = []
    for doc in yaml.safe_load_all(text):
        if not isinstance(doc, dict):
            continue
        items = doc.get("items") if doc.get("kind") == "List" else [doc]
        for item in items or []:
            if not isinstance(item, dict) or item.get("kind") != "ConfigMap":
                continue
            meta = item.get("metadata") or {}
            where = f"{meta.get('namespace', 'default')}/{meta.get('name', '?')}"
            try:
                found.append((policy_digest(configmap_data(item)), where))
            except NotAConfigMap as exc:
                raise NotAConfigMap(f"ConfigMap {where}: {exc}") from None
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Print the policy digest of each ConfigMap in the files named (``-``: stdin)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m rollwise.adapters.gates.policy FILE.yaml|- ...", file=sys.stderr)
        return 2
    status = 0
    for arg in args:
        try:
            text = sys.stdin.read() if arg == "-" else Path(arg).read_text(encoding="utf-8")
            digests = manifest_digests(text)
        except (OSError, yaml.YAMLError, NotAConfigMap) as exc:
            print(f"{arg}: {exc}", file=sys.stderr)
            status = 1
            continue
        if not digests:
            print(f"{arg}: no ConfigMap found", file=sys.stderr)
            status = 1
        for digest, where in digests:
            print(f"{digest}  {where}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "NotAConfigMap",
    "check_policy",
    "configmap_data",
    "manifest_digests",
    "policy_digest",
]
