"""The ConfigMap alias store (the default): one ConfigMap per namespace maps ``model/alias`` to
a target.

The ConfigMap is named by ``spec.alias.store.configMap.name`` and lives in the ModelRelease's
namespace. It is a plain, human-readable record that serving code can mount or read::

    data:
      fraud-detector.production: '{"version": "7", "uri": "s3://models/fraud/7",
                                   "digest": "sha256:...", "updatedAt": "2026-..."}'

Keys: ConfigMap keys must match ``[-._a-zA-Z0-9]+``, so a key is ``<model>.<alias>`` with each
part escaped: every character other than ``[-a-zA-Z0-9]`` (``.`` and ``_`` included) becomes
``_`` followed by two lower-case hex digits per UTF-8 byte (``my.model`` → ``my_2emodel``,
``team/fraud`` → ``team_2ffraud``). The one unescaped ``.`` separates model from alias, so
every key decodes back unambiguously (``decode_key``).

Writes are merge patches carrying the ``resourceVersion`` that was read (a conditional write:
the API server answers 409 when anybody changed the ConfigMap since). A 409 is a concurrent
write to this or another alias in the same ConfigMap: the store reads again, re-checks
``expected`` and retries, a bounded number of times; a missing ConfigMap is created, and a
409 on create (somebody created it first) is handled the same way. A race that is still lost
after the last attempt raises ``AliasConflict``. API transport failures stay ``KubeError``
subclasses (``Unavailable`` is retryable), as for the routers.

The store reads and writes its ConfigMap through :class:`rollwise.adapters.configmaps.ConfigMaps`
over the operator's ``KubeAPI`` connection: the adapters' one client and error mapping
(``kube_errors``), as the gates and the release manifests use it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rollwise.adapters.configmaps import ConfigMaps
from rollwise.adapters.errors import AliasConflict, Conflict, RegistryError
from rollwise.adapters.kube import DEFAULT_TIMEOUT, KubeAPI
from rollwise.adapters.registry.base import AliasTarget, check_expected, verify

#: Attempts of one write when concurrent writers keep changing the ConfigMap.
MAX_ATTEMPTS = 5

#: Kubernetes limits a ConfigMap key to 253 characters.
MAX_KEY_LENGTH = 253

_SAFE = frozenset("-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _escape(part: str) -> str:
    out: list[str] = []
    for char in part:
        if char in _SAFE:
            out.append(char)
        else:
            out.extend(f"_{byte:02x}" for byte in char.encode("utf-8"))
    return "".join(out)


def _unescape(part: str) -> str:
    raw = bytearray()
    i = 0
    while i < len(part):
        if part[i] == "_":
            raw.append(int(part[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.extend(part[i].encode("ascii"))
            i += 1
    return raw.decode("utf-8")


def encode_key(model: str, alias: str) -> str:
    """The ConfigMap key of ``model``/``alias`` (``RegistryError`` when it would be too long)."""
    if not model or not alias:
        raise RegistryError("a model name and an alias name must not be empty")
    key = f"{_escape(model)}.{_escape(alias)}"
    if len(key) > MAX_KEY_LENGTH:
        raise RegistryError(
            f"model {model!r} alias {alias!r} encodes to a ConfigMap key of {len(key)} "
            f"characters (at most {MAX_KEY_LENGTH})"
        )
    return key


def decode_key(key: str) -> tuple[str, str]:
    """The (model, alias) a key written by ``encode_key`` stands for."""
    model, _, alias = key.partition(".")
    return _unescape(model), _unescape(alias)


def _parse(model: str, alias: str, raw: str | None) -> AliasTarget | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
        return AliasTarget(
            version=str(value["version"]),
            uri=str(value["uri"]),
            digest=str(value["digest"]) if value.get("digest") is not None else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RegistryError(
            f"alias {alias!r} of model {model!r}: the ConfigMap value is not an alias "
            f"record: {raw[:200]!r}"
        ) from exc


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ConfigMapAliasStore:
    """Aliases as keys of one ConfigMap (``namespace``/``name``)."""

    def __init__(
        self,
        kube: KubeAPI | Any,
        namespace: str,
        name: str,
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        view = kube if isinstance(kube, KubeAPI) else KubeAPI(kube, timeout=DEFAULT_TIMEOUT)
        self.timeout = view.timeout
        self.namespace = namespace
        self.name = name
        self.clock = clock
        self._maps = ConfigMaps(view)

    # -- the ConfigMap ---------------------------------------------------------------------------

    def _read(self) -> dict[str, Any] | None:
        return self._maps.get(self.namespace, self.name)

    def _create(self, data: dict[str, str]) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/managed-by": "rollwise"},
            },
            "data": data,
        }
        self._maps.create(self.namespace, body)

    def _patch(self, resource_version: str, data: dict[str, str | None]) -> None:
        patch = {"metadata": {"resourceVersion": resource_version}, "data": data}
        self._maps.merge_patch(self.namespace, self.name, patch)

    @staticmethod
    def _raw(configmap: dict[str, Any] | None, key: str) -> str | None:
        if configmap is None:
            return None
        data = configmap.get("data") or {}
        value = data.get(key)
        return value if isinstance(value, str) else None

    # -- the interface -----------------------------------------------------------------------

    def get(self, model: str, alias: str) -> AliasTarget | None:
        key = encode_key(model, alias)
        return _parse(model, alias, self._raw(self._read(), key))

    def set(
        self, model: str, alias: str, target: AliasTarget, *, expected: str | None
    ) -> AliasTarget:
        value = json.dumps(
            {
                "version": target.version,
                "uri": target.uri,
                "digest": target.digest,
                "updatedAt": self.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
        self._write(model, alias, target=target, value=value, expected=expected)
        return target

    def delete(self, model: str, alias: str, *, expected: str | None) -> None:
        self._write(model, alias, target=None, value=None, expected=expected)

    def _write(
        self,
        model: str,
        alias: str,
        *,
        target: AliasTarget | None,
        value: str | None,
        expected: str | None,
    ) -> None:
        """One conditional write of the alias's key (``value`` None deletes it), retried on
        409."""
        key = encode_key(model, alias)
        for _ in range(MAX_ATTEMPTS):
            configmap = self._read()
            current = _parse(model, alias, self._raw(configmap, key))
            check_expected(model, alias, current, expected)
            if current == target:
                return
            try:
                if configmap is None:
                    # Only a set reaches here (deleting from a missing ConfigMap is a no-op).
                    self._create({key: value} if value is not None else {})
                else:
                    resource_version = str(configmap["metadata"]["resourceVersion"])
                    self._patch(resource_version, {key: value})
            except Conflict:
                continue
            verify(model, alias, target, self.get(model, alias))
            return
        raise AliasConflict(
            f"alias {alias!r} of model {model!r}: ConfigMap {self.namespace}/{self.name} "
            f"changed under {MAX_ATTEMPTS} consecutive writes"
        )


__all__ = ["MAX_ATTEMPTS", "ConfigMapAliasStore", "decode_key", "encode_key"]
