"""The cluster policy of ModelReleases: what the operator's settings decide and no spec can.

Spec authors are not trusted (docs/security.md): a ModelRelease names what it wants, the
operator's settings decide what it may have. :class:`ClusterPolicy` holds the settings'
answers:

* ``registries``: the names of the model registries the operator knows (their addresses and
  credentials stay in the settings; a spec names a registry, never a URL);
* ``required_roles`` / ``required_gates``: the approval roles and the gates every release must
  pass, whatever its spec asks for; ``namespaces`` may set either for one namespace (a field a
  namespace entry sets replaces the cluster default, one it leaves out keeps it);
* ``model_owners``: which namespace owns which model on the shared registries. An alias in a
  registry is global, so only the namespace that owns a model may move its alias.

:meth:`ClusterPolicy.rules_for` resolves the policy for one release as :class:`ReleaseRules`,
the form the decision core reads. :func:`parse_cluster_policy` reads the policy from the
settings' (YAML or JSON decoded) mapping, refusing anything it does not know.

Pure: no I/O, no environment.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: The gates a cluster policy may require of every release (the others always apply).
REQUIRABLE_GATES = (
    "sbom",
    "policy-digest",
    "model-card",
    "security-decision",
    "signature",
    "attestation",
)

#: A registry name, as specs write it: a DNS label.
REGISTRY_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_ROLE = re.compile(r"^[a-z0-9_-]+$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_MODEL_PATTERN = re.compile(r"^[^\s]+$")


class PolicyError(ValueError):
    """The cluster policy in the operator's settings is not usable."""


@dataclass(frozen=True)
class ReleaseRules:
    """The cluster policy as it applies to one release.

    ``required_roles`` are added to the spec's ``approvals.requiredRoles``; ``required_gates``
    apply whether or not the spec configures them. ``registries``: the registry names a spec
    may use. ``model_owner``: the namespace that owns the release's model on the shared
    registries (None: nobody). The defaults are the strict ones: no registry, no owner.
    """

    namespace: str = ""
    required_roles: tuple[str, ...] = ()
    required_gates: tuple[str, ...] = ()
    registries: frozenset[str] = frozenset()
    model_owner: str | None = None


@dataclass(frozen=True)
class ApprovalRule:
    """Roles and gates one namespace (or the cluster) requires; None: not set here."""

    required_roles: tuple[str, ...] | None = None
    required_gates: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ClusterPolicy:
    """The cluster policy of ModelReleases (module doc)."""

    required_roles: tuple[str, ...] = ()
    required_gates: tuple[str, ...] = ()
    namespaces: Mapping[str, ApprovalRule] = field(default_factory=dict)
    registries: frozenset[str] = frozenset()
    #: (model name or glob pattern, namespace), in the order the settings list them.
    model_owners: tuple[tuple[str, str], ...] = ()

    def owner_of(self, model: str) -> str | None:
        """The namespace owning ``model``: an exact name first, else the first pattern that
        matches (``fnmatch`` globs, case-sensitive)."""
        for pattern, namespace in self.model_owners:
            if pattern == model:
                return namespace
        for pattern, namespace in self.model_owners:
            if fnmatch.fnmatchcase(model, pattern):
                return namespace
        return None

    def rules_for(self, namespace: str, model: str) -> ReleaseRules:
        rule = self.namespaces.get(namespace, ApprovalRule())
        roles = rule.required_roles if rule.required_roles is not None else self.required_roles
        gates = rule.required_gates if rule.required_gates is not None else self.required_gates
        return ReleaseRules(
            namespace=namespace,
            required_roles=roles,
            required_gates=gates,
            registries=self.registries,
            model_owner=self.owner_of(model),
        )


def _strings(value: Any, what: str, pattern: re.Pattern[str], kind: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{what} must be a list of {kind}s")
    for item in value:
        if not pattern.match(item):
            raise PolicyError(f"{what}: {item!r} is not a valid {kind}")
    return tuple(dict.fromkeys(value))


def _gates(value: Any, what: str) -> tuple[str, ...]:
    gates = _strings(value, what, re.compile(r"^.+$"), "gate name")
    unknown = [g for g in gates if g not in REQUIRABLE_GATES]
    if unknown:
        raise PolicyError(
            f"{what}: {', '.join(unknown)} cannot be required "
            f"(requirable: {', '.join(REQUIRABLE_GATES)}; the others always apply)"
        )
    return gates


def _rule(value: Any, what: str) -> ApprovalRule:
    if not isinstance(value, Mapping):
        raise PolicyError(f"{what} must be a mapping with requiredRoles and/or requiredGates")
    unknown = sorted(set(value) - {"requiredRoles", "requiredGates"})
    if unknown:
        raise PolicyError(f"{what}: unknown key(s) {', '.join(unknown)}")
    return ApprovalRule(
        required_roles=(
            _strings(value["requiredRoles"], f"{what}.requiredRoles", _ROLE, "role")
            if "requiredRoles" in value
            else None
        ),
        required_gates=(
            _gates(value["requiredGates"], f"{what}.requiredGates")
            if "requiredGates" in value
            else None
        ),
    )


#: What the policy is when the settings say nothing: the roles the CRD asks for by default.
DEFAULT_REQUIRED_ROLES = ("security", "product")


def parse_cluster_policy(
    value: Any, what: str, *, registries: frozenset[str] = frozenset()
) -> ClusterPolicy:
    """The cluster policy from the settings' mapping ``value`` (None: the defaults):
    ``requiredRoles``, ``requiredGates``, ``namespaces`` (namespace -> ``requiredRoles`` and/or
    ``requiredGates``) and ``modelOwners`` (model name or glob -> namespace). ``registries``:
    the names the registry settings define. Raises :class:`PolicyError` naming ``what``."""
    if value is None:
        return ClusterPolicy(required_roles=DEFAULT_REQUIRED_ROLES, registries=registries)
    if not isinstance(value, Mapping):
        raise PolicyError(f"{what} must be a mapping")
    known = {"requiredRoles", "requiredGates", "namespaces", "modelOwners"}
    unknown = sorted(set(value) - known)
    if unknown:
        raise PolicyError(
            f"{what}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    top = _rule({k: v for k, v in value.items() if k in ("requiredRoles", "requiredGates")}, what)
    namespaces_raw = value.get("namespaces") or {}
    if not isinstance(namespaces_raw, Mapping):
        raise PolicyError(f"{what}.namespaces must be a mapping of namespace to rules")
    namespaces: dict[str, ApprovalRule] = {}
    for name, rule in namespaces_raw.items():
        if not isinstance(name, str) or not _NAMESPACE.match(name):
            raise PolicyError(f"{what}.namespaces: {name!r} is not a namespace name")
        namespaces[name] = _rule(rule, f"{what}.namespaces.{name}")
    owners_raw = value.get("modelOwners") or {}
    if not isinstance(owners_raw, Mapping):
        raise PolicyError(f"{what}.modelOwners must be a mapping of model (or glob) to namespace")
    owners: list[tuple[str, str]] = []
    for pattern, namespace in owners_raw.items():
        if not isinstance(pattern, str) or not _MODEL_PATTERN.match(pattern):
            raise PolicyError(f"{what}.modelOwners: {pattern!r} is not a model name or pattern")
        if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
            raise PolicyError(
                f"{what}.modelOwners.{pattern}: {namespace!r} is not one namespace name"
            )
        owners.append((pattern, namespace))
    return ClusterPolicy(
        required_roles=(
            top.required_roles if top.required_roles is not None else DEFAULT_REQUIRED_ROLES
        ),
        required_gates=top.required_gates or (),
        namespaces=namespaces,
        registries=registries,
        model_owners=tuple(owners),
    )


__all__ = [
    "DEFAULT_REQUIRED_ROLES",
    "REGISTRY_NAME",
    "REQUIRABLE_GATES",
    "ApprovalRule",
    "ClusterPolicy",
    "PolicyError",
    "ReleaseRules",
    "parse_cluster_policy",
]
