"""Interfaces between the API emulator's request path and its pluggable parts.

The server (``hack.lab.kube.server``) authenticates every request with an ``Authenticator`` and
passes every write through an ``Admission`` chain, in kube-apiserver's order: decode and
default, mutating admission, schema validation, validating admission, persist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class UserInfo:
    """The identity the API server authenticated (``userInfo`` in an AdmissionReview)."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"username": self.username, "groups": list(self.groups)}
        if self.uid:
            body["uid"] = self.uid
        if self.extra:
            body["extra"] = {k: list(v) for k, v in self.extra.items()}
        return body


#: The identity of requests when the server runs without a token file.
ANONYMOUS_ADMIN = UserInfo(username="lab-admin", uid="lab-admin", groups=("system:masters",))


class Authenticator(Protocol):
    def authenticate(self, authorization_header: str | None) -> UserInfo | None:
        """The user behind an ``Authorization`` header, or None (the server answers 401)."""


@dataclass(frozen=True)
class AdmissionAttributes:
    """What an admission plugin is told about one request."""

    operation: str  # CREATE | UPDATE | DELETE | CONNECT
    group: str
    version: str
    resource: str  # plural, e.g. "modelreleases"
    subresource: str  # "" or "status", "scale"
    kind: str
    namespace: str | None
    name: str
    user: UserInfo
    dry_run: bool = False


class AdmissionDenied(Exception):
    """An admission plugin refused the request; the server answers ``code`` with a Status."""

    def __init__(self, message: str, code: int = 403, reason: str = "Forbidden") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason


class Admission(Protocol):
    async def mutate(
        self, attrs: AdmissionAttributes, obj: dict[str, Any] | None, old: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """Returns the object to persist (possibly changed); raises AdmissionDenied."""

    async def validate(
        self, attrs: AdmissionAttributes, obj: dict[str, Any] | None, old: dict[str, Any] | None
    ) -> None:
        """Raises AdmissionDenied to refuse the request."""


class NoAdmission:
    """Admits everything unchanged."""

    async def mutate(
        self, attrs: AdmissionAttributes, obj: dict[str, Any] | None, old: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        return obj

    async def validate(
        self, attrs: AdmissionAttributes, obj: dict[str, Any] | None, old: dict[str, Any] | None
    ) -> None:
        return None
