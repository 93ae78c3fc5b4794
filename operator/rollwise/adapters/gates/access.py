"""Where gate evidence may be read from: the operator's evidence policy.

A spec names its evidence (``spec.artifact.uri``, ``spec.gates.sbom.url``); the operator reads
it with its own network position and file system, which the spec's author does not have. So
the operator's settings decide what it may read (docs/security.md):

* ``allowed_schemes``: the URL schemes read over the network (``https``, ``http``);
* ``allowed_hosts``: the hosts those URLs may name, exactly (``artifacts.example.com``,
  ``models.internal:8443``) or by a leading wildcard label (``*.s3.amazonaws.com`` matches
  ``bucket.s3.amazonaws.com``, not ``s3.amazonaws.com``). A host without a port allows every
  port. Nothing else is reached: not the cloud metadata address, not a cluster-internal
  service the settings do not list;
* ``file_prefixes``: the directories ``file://`` evidence may come from (a mounted model
  volume). Empty (the default): ``file://`` is refused, so a spec cannot make the operator
  read its own token or the record key. A path counts as inside a prefix only once every
  symbolic link in it is resolved, so a link cannot lead out.

:meth:`EvidenceAccess.check_url` and :meth:`EvidenceAccess.check_path` raise
:class:`EvidenceForbidden`, whose message names the setting to change and nothing the server
answered; :mod:`rollwise.adapters.gates.fetch` checks every redirect's target the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rollwise.adapters.gates.fetch import EvidenceForbidden

#: The schemes read over the network when the settings name none.
DEFAULT_SCHEMES = ("https",)
NETWORK_SCHEMES = ("http", "https")


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


@dataclass(frozen=True)
class HostRule:
    """One allowed host: ``name`` exactly, or every subdomain of it when ``wildcard``; any port
    when ``port`` is None."""

    name: str
    port: int | None = None
    wildcard: bool = False

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and port != self.port:
            return False
        if self.wildcard:
            return host.endswith("." + self.name)
        return host == self.name


def parse_host_rule(text: str) -> HostRule:
    """``host``, ``host:port``, ``[v6]:port`` or ``*.domain[:port]``; ValueError otherwise."""
    entry = text.strip().lower()
    if not entry or any(c in entry for c in "/@?#") or any(c.isspace() for c in entry):
        raise ValueError(f"{text!r} is not a host, host:port or *.domain")
    port: int | None = None
    if entry.startswith("["):
        host, sep, rest = entry[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r} is not a host, host:port or *.domain")
        if rest:
            port = _port(rest[1:], text)
    elif entry.count(":") == 1:
        host, _, raw_port = entry.partition(":")
        port = _port(raw_port, text)
    else:
        host = entry
    wildcard = host.startswith("*.")
    name = host[2:] if wildcard else host
    if not name or any(c in name for c in "/@?#*") or any(c.isspace() for c in name):
        raise ValueError(f"{text!r} is not a host, host:port or *.domain")
    return HostRule(name=name.rstrip("."), port=port, wildcard=wildcard)


def _port(raw: str, text: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{text!r} has no valid port")
    return int(raw)


@dataclass(frozen=True)
class EvidenceAccess:
    """The evidence policy (module doc). The default allows nothing."""

    allowed_schemes: tuple[str, ...] = DEFAULT_SCHEMES
    allowed_hosts: tuple[HostRule, ...] = ()
    file_prefixes: tuple[str, ...] = ()

    def host_allowed(self, host: str, port: int) -> bool:
        name = host.lower().rstrip(".")
        return any(rule.matches(name, port) for rule in self.allowed_hosts)

    def check_url(self, url: str, what: str) -> None:
        """Raises :class:`EvidenceForbidden` unless ``url`` may be read over the network."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in NETWORK_SCHEMES or scheme not in self.allowed_schemes:
            allowed = ", ".join(f"{s}://" for s in self.allowed_schemes) or "none"
            raise EvidenceForbidden(
                f"{what}: scheme {scheme or '(none)'}:// is not allowed by the operator's "
                f"evidence policy (allowed: {allowed})"
            )
        try:
            host = parts.hostname or ""
            port = parts.port or _default_port(scheme)
        except ValueError:
            raise EvidenceForbidden(f"{what}: the URL has no valid host and port") from None
        if parts.username is not None or parts.password is not None:
            raise EvidenceForbidden(f"{what}: URLs with credentials are not allowed")
        if not host or not self.host_allowed(host, port):
            raise EvidenceForbidden(
                f"{what}: host {host or '(none)'} is not in the operator's evidence policy "
                "(allowedHosts)"
            )

    def check_path(self, path: Path, what: str) -> Path:
        """``path`` with its symbolic links resolved; raises :class:`EvidenceForbidden` unless
        it lies inside one of ``file_prefixes``."""
        if not self.file_prefixes:
            raise EvidenceForbidden(
                f"{what}: file:// evidence is not allowed by the operator's evidence policy "
                "(filePathPrefixes is empty)"
            )
        resolved = Path(os.path.realpath(path))
        for prefix in self.file_prefixes:
            root = Path(os.path.realpath(prefix))
            if resolved == root or root in resolved.parents:
                return resolved
        raise EvidenceForbidden(
            f"{what}: {path} is outside the operator's evidence policy (filePathPrefixes)"
        )


def evidence_access(
    *,
    schemes: Iterable[str] | None = None,
    hosts: Iterable[str] = (),
    file_prefixes: Iterable[str] = (),
) -> EvidenceAccess:
    """An :class:`EvidenceAccess` from the settings' words (ValueError for a bad entry);
    ``schemes`` None: :data:`DEFAULT_SCHEMES`."""
    chosen = tuple(s.lower() for s in schemes) if schemes is not None else DEFAULT_SCHEMES
    unknown = [s for s in chosen if s not in NETWORK_SCHEMES]
    if unknown:
        raise ValueError(f"scheme(s) {', '.join(unknown)} cannot be allowed (http, https)")
    prefixes = tuple(file_prefixes)
    for prefix in prefixes:
        if not prefix.startswith("/") or prefix.rstrip("/") == "":
            raise ValueError(f"{prefix!r} is not an absolute directory other than /")
    return EvidenceAccess(
        allowed_schemes=chosen,
        allowed_hosts=tuple(parse_host_rule(h) for h in hosts),
        file_prefixes=prefixes,
    )


__all__ = [
    "DEFAULT_SCHEMES",
    "NETWORK_SCHEMES",
    "EvidenceAccess",
    "HostRule",
    "evidence_access",
    "parse_host_rule",
]
