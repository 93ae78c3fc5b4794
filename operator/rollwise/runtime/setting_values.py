"""The values of the operator's settings: each parsed and checked, or refused with a
:class:`SettingsError` naming the setting (a Kubernetes name, a URL, a port, a duration, a
JSON document of registries, policies or role groups).

:mod:`rollwise.runtime.settings` reads them from the environment, the flags and the
settings ConfigMap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import yaml

from rollwise.adapters.gates.access import EvidenceAccess, evidence_access
from rollwise.core.modelrelease.policy import (
    REGISTRY_NAME,
    ClusterPolicy,
    PolicyError,
    parse_cluster_policy,
)

_DNS_LABEL_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


_ROLE_CHARS = _DNS_LABEL_CHARS | set("_")


class SettingsError(ValueError):
    """A flag, environment variable or ConfigMap key has an unusable value."""


@dataclass(frozen=True)
class WebProviderSetting:
    """A web metric provider the operator offers: specs name it, the admin sets the rest."""

    name: str
    url: str
    headers_dir: str | None = None


@dataclass(frozen=True)
class RegistrySetting:
    """One MLflow registry of the settings: its URL and the file holding its token."""

    url: str
    token_file: str | None = None


def check_name(value: str, what: str) -> str:
    if not value or len(value) > 253 or not set(value) <= _DNS_LABEL_CHARS | {"."}:
        raise SettingsError(f"{what}: {value!r} is not a valid Kubernetes name")
    return value


def check_url(value: str, what: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SettingsError(f"{what}: {value!r} is not an http(s) URL")
    return value.rstrip("/")


def port_number(value: str, what: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise SettingsError(f"{what}: {value!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise SettingsError(f"{what}: {port} is not within 0-65535 (0 turns it off)")
    return port


def integer(value: str, what: str, minimum: int | None = None) -> int:
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{what}: {value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise SettingsError(f"{what}: must be at least {minimum}, got {number}")
    return number


def positive_seconds(value: str, what: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise SettingsError(f"{what}: {value!r} is not a number of seconds") from None
    if not seconds > 0:
        raise SettingsError(f"{what}: must be greater than 0, got {value}")
    return seconds


def urls(value: str, what: str) -> tuple[str, ...]:
    parts = [p.strip() for p in value.replace("\n", ",").split(",")]
    return tuple(dict.fromkeys(check_url(p, what) for p in parts if p))


def parse_web_providers(value: str, what: str) -> tuple[WebProviderSetting, ...]:
    """``[{"name": ..., "url": ..., "headersDir": ...}, ...]`` as web provider settings."""
    try:
        raw = json.loads(value)
    except ValueError as exc:
        raise SettingsError(f"{what}: not JSON: {exc}") from None
    if not isinstance(raw, list):
        raise SettingsError(f"{what}: expected a JSON list of providers")
    found: dict[str, WebProviderSetting] = {}
    for i, item in enumerate(raw):
        at = f"{what}[{i}]"
        if not isinstance(item, dict) or set(item) - {"name", "url", "headersDir"}:
            raise SettingsError(f"{at}: expected an object with name, url and headersDir")
        name = str(item.get("name") or "")
        if not name or len(name) > 63 or not set(name) <= _DNS_LABEL_CHARS:
            raise SettingsError(f"{at}.name: {name!r} is not a DNS label")
        if name in found:
            raise SettingsError(f"{at}.name: {name!r} is listed twice")
        url = check_url(str(item.get("url") or ""), f"{at}.url")
        headers = item.get("headersDir")
        found[name] = WebProviderSetting(
            name=name,
            url=url,
            headers_dir=path_setting(str(headers), f"{at}.headersDir") if headers else None,
        )
    return tuple(found.values())


def namespaced_name(value: str, what: str) -> tuple[str, str]:
    ns, sep, name = value.partition("/")
    if not sep:
        raise SettingsError(f"{what}: {value!r} is not NAMESPACE/NAME")
    return check_name(ns, what), check_name(name, what)


def path_setting(value: str, what: str) -> str:
    if "\x00" in value:
        raise SettingsError(f"{what}: {value!r} is not a file path")
    return value


def boolean(value: str, what: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise SettingsError(f"{what}: {value!r} is not true or false")


def host(value: str, what: str) -> str:
    if not value or any(c.isspace() for c in value) or "/" in value:
        raise SettingsError(f"{what}: {value!r} is not a host name or IP address")
    return value


def document(text: str, what: str) -> Any:
    """A YAML (or JSON) document from a setting's text."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SettingsError(f"{what}: not YAML or JSON: {exc}") from None


def parse_registries(text: str, what: str) -> dict[str, RegistrySetting]:
    """``{NAME: {url: URL, tokenFile: PATH}}`` as registry settings (``what``: for messages)."""
    value = document(text, what)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SettingsError(f"{what}: must map registry names to {{url, tokenFile}}")
    found: dict[str, RegistrySetting] = {}
    for name, body in value.items():
        if not isinstance(name, str) or not REGISTRY_NAME.match(name) or len(name) > 63:
            raise SettingsError(f"{what}: {name!r} is not a registry name (a DNS label)")
        if not isinstance(body, dict):
            raise SettingsError(f"{what}.{name}: must be {{url, tokenFile}}")
        unknown = sorted(set(body) - {"url", "tokenFile"})
        if unknown:
            raise SettingsError(f"{what}.{name}: unknown key(s) {', '.join(unknown)}")
        url = body.get("url")
        if not isinstance(url, str):
            raise SettingsError(f"{what}.{name}: needs a url")
        token = body.get("tokenFile")
        if token is not None and not isinstance(token, str):
            raise SettingsError(f"{what}.{name}.tokenFile: must be a file path")
        found[name] = RegistrySetting(
            url=check_url(url, f"{what}.{name}.url"),
            token_file=path_setting(token, f"{what}.{name}.tokenFile") if token else None,
        )
    return found


def parse_release_policy(text: str, what: str) -> ClusterPolicy:
    """The cluster policy of ModelReleases from a setting's YAML or JSON text."""
    try:
        return parse_cluster_policy(document(text, what), what)
    except PolicyError as exc:
        raise SettingsError(str(exc)) from None


def parse_evidence_policy(text: str, what: str) -> EvidenceAccess:
    """``{allowedSchemes, allowedHosts, filePathPrefixes}`` as an :class:`EvidenceAccess`."""
    value = document(text, what)
    if value is None:
        return EvidenceAccess()
    if not isinstance(value, dict):
        raise SettingsError(f"{what}: must be a mapping")
    known = {"allowedSchemes", "allowedHosts", "filePathPrefixes"}
    unknown = sorted(set(value) - known)
    if unknown:
        raise SettingsError(
            f"{what}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    lists: dict[str, list[str] | None] = {}
    for key in sorted(known):
        item = value.get(key)
        if item is not None and (
            not isinstance(item, list) or not all(isinstance(i, str) for i in item)
        ):
            raise SettingsError(f"{what}.{key}: must be a list of strings")
        lists[key] = item
    try:
        return evidence_access(
            schemes=lists["allowedSchemes"],
            hosts=lists["allowedHosts"] or (),
            file_prefixes=lists["filePathPrefixes"] or (),
        )
    except ValueError as exc:
        raise SettingsError(f"{what}: {exc}") from None


def parse_role_groups(value: str) -> dict[str, tuple[str, ...]]:
    """``security=sec-team,sre;product=pm`` as role -> groups."""
    what = "ROLLWISE_ROLE_GROUPS"
    roles: dict[str, tuple[str, ...]] = {}
    for part in (p.strip() for p in value.split(";")):
        if not part:
            continue
        role, sep, groups_text = part.partition("=")
        role = role.strip()
        if not sep or not role or not set(role) <= _ROLE_CHARS:
            raise SettingsError(
                f"{what}: {part!r} is not ROLE=GROUP[,GROUP...] (role: lower-case letters, "
                "digits, '-' or '_')"
            )
        if role in roles:
            raise SettingsError(f"{what}: role {role!r} is listed twice")
        groups = tuple(dict.fromkeys(g.strip() for g in groups_text.split(",") if g.strip()))
        if not groups:
            raise SettingsError(f"{what}: role {role!r} names no group")
        roles[role] = groups
    return roles


def name_list(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.strip() for p in value.replace("\n", ",").split(",") if p.strip()))


__all__ = [
    "RegistrySetting",
    "SettingsError",
    "WebProviderSetting",
    "parse_evidence_policy",
    "parse_registries",
    "parse_release_policy",
    "parse_role_groups",
    "parse_web_providers",
]
