"""The alias store interface, the value it stores, and ``NopAliasStore``.

An alias (``production``) names one version of one registered model. The operator flips it to
a new version when a ModelRelease reaches Production and back to the previous version on
rollback or revoke. Every store honours the same contract, checked by the shared contract test
(``tests/lab/test_alias_store_contract.py``):

- ``get`` returns the alias's ``AliasTarget`` or None when the alias is not set (not an error);
- ``set`` and ``delete`` are idempotent: writing what is already there writes nothing;
- ``expected`` makes a write conditional (optimistic concurrency): it is the version the
  caller believes the alias holds now (``EXPECT_UNSET`` = "not set"; None = no check), and a
  different current version raises ``AliasConflict`` without writing;
- every write is verified: the store reads the alias back and raises ``AliasNotVerified`` when
  the read-back differs, so a flip is never reported done unless the store shows it.

Failures raise ``rollwise.adapters.errors`` (``RegistryError`` and its subclasses; a store kept
in a Kubernetes object raises ``KubeError`` subclasses for transport failures). Stores are
synchronous; the runtime calls them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from rollwise.adapters.errors import AliasConflict, AliasNotVerified

#: ``expected`` value meaning "the caller believes the alias is not set".
EXPECT_UNSET = ""


@dataclass(frozen=True)
class AliasTarget:
    """Where an alias points: a model version, its artifact URI and (when known) the artifact
    digest (``sha256:...``)."""

    version: str
    uri: str
    digest: str | None = None


@runtime_checkable
class AliasStore(Protocol):
    def get(self, model: str, alias: str) -> AliasTarget | None:
        """The alias's current target; None when the alias is not set."""
        ...

    def set(
        self, model: str, alias: str, target: AliasTarget, *, expected: str | None
    ) -> AliasTarget:
        """Points the alias at ``target`` (no write when it already does) and returns what
        reading it back shows."""
        ...

    def delete(self, model: str, alias: str, *, expected: str | None) -> None:
        """Removes the alias (nothing to do when it is not set), verified by reading back."""
        ...


def check_expected(
    model: str, alias: str, current: AliasTarget | None, expected: str | None
) -> None:
    """Raises ``AliasConflict`` when ``expected`` is given and the alias holds another version."""
    if expected is None:
        return
    actual = current.version if current is not None else EXPECT_UNSET
    if actual != expected:
        raise AliasConflict(
            f"alias {alias!r} of model {model!r} is at {_describe(actual)}, "
            f"expected {_describe(expected)}"
        )


def verify(
    model: str, alias: str, wanted: AliasTarget | None, read_back: AliasTarget | None
) -> None:
    """Raises ``AliasNotVerified`` when the alias read back after a write is not ``wanted``."""
    if read_back != wanted:
        raise AliasNotVerified(
            f"alias {alias!r} of model {model!r} reads back as {read_back}, "
            f"not {wanted} after the write"
        )


def _describe(version: str) -> str:
    return f"version {version!r}" if version != EXPECT_UNSET else "unset"


class NopAliasStore:
    """Keeps aliases in memory (per instance, thread-safe); records every write it made."""

    def __init__(self, aliases: dict[tuple[str, str], AliasTarget] | None = None) -> None:
        self.aliases: dict[tuple[str, str], AliasTarget] = dict(aliases or {})
        self.writes: list[tuple[str, str, AliasTarget | None]] = []
        self._lock = threading.Lock()

    def get(self, model: str, alias: str) -> AliasTarget | None:
        with self._lock:
            return self.aliases.get((model, alias))

    def set(
        self, model: str, alias: str, target: AliasTarget, *, expected: str | None
    ) -> AliasTarget:
        with self._lock:
            current = self.aliases.get((model, alias))
            check_expected(model, alias, current, expected)
            if current != target:
                self.aliases[(model, alias)] = target
                self.writes.append((model, alias, target))
            read_back = self.aliases.get((model, alias))
        verify(model, alias, target, read_back)
        return target

    def delete(self, model: str, alias: str, *, expected: str | None) -> None:
        with self._lock:
            current = self.aliases.get((model, alias))
            check_expected(model, alias, current, expected)
            if current is not None:
                del self.aliases[(model, alias)]
                self.writes.append((model, alias, None))
            read_back = self.aliases.get((model, alias))
        verify(model, alias, None, read_back)


__all__ = [
    "EXPECT_UNSET",
    "AliasStore",
    "AliasTarget",
    "NopAliasStore",
    "check_expected",
    "verify",
]
