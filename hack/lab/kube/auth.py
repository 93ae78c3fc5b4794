"""Who is calling the lab's API server: static bearer tokens, as kube-apiserver's token file.

``TokenFileAuthenticator`` reads the file format of kube-apiserver's ``--token-auth-file``
(CSV rows ``token,user,uid,"group1,group2"``) and maps an ``Authorization: Bearer <token>``
header to a ``UserInfo``. ``write_identities`` makes such a file for a set of named users with
random tokens, and ``Identities.write_kubeconfigs`` writes one kubeconfig per user, so that a
test acts as a given person with ``kubectl --kubeconfig alice.kubeconfig ...``.

kubectl (client-go) sends credentials only over TLS: the API server serves HTTPS when it has an
authenticator, and the kubeconfigs carry its self-signed certificate.

This module authenticates only; authorization (RBAC) is not part of the lab.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hack.lab.kube.contracts import UserInfo

#: Every authenticated request carries this group, as kube-apiserver adds it.
AUTHENTICATED_GROUP = "system:authenticated"


class TokenFileError(ValueError):
    """The token file cannot be read; the message names the file and the line."""


@dataclass(frozen=True)
class TokenEntry:
    token: str
    user: str
    uid: str
    groups: tuple[str, ...]


def parse_token_file(text: str, *, source: str = "<token file>") -> list[TokenEntry]:
    """Parses ``--token-auth-file`` content; blank lines and ``#`` comments are ignored."""
    entries: list[TokenEntry] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            rows = list(csv.reader(io.StringIO(line), skipinitialspace=True, strict=True))
        except csv.Error as exc:
            raise TokenFileError(f"{source}:{lineno}: not valid CSV: {exc}") from exc
        if len(rows) != 1:
            raise TokenFileError(f"{source}:{lineno}: not valid CSV (unterminated quote?)")
        record = [field.strip() for field in rows[0]]
        if len(record) < 3:
            raise TokenFileError(
                f"{source}:{lineno}: expected at least 3 columns (token, user name, user uid),"
                f" found {len(record)}"
            )
        token, user, uid = record[0], record[1], record[2]
        if not token:
            raise TokenFileError(f"{source}:{lineno}: the token is empty")
        if not user:
            raise TokenFileError(f"{source}:{lineno}: the user name is empty")
        if token in seen:
            raise TokenFileError(
                f"{source}:{lineno}: duplicate token (first used on line {seen[token]})"
            )
        seen[token] = lineno
        groups: tuple[str, ...] = ()
        if len(record) >= 4 and record[3]:
            groups = tuple(g.strip() for g in record[3].split(",") if g.strip())
        entries.append(TokenEntry(token=token, user=user, uid=uid, groups=groups))
    return entries


def format_token_file(entries: Sequence[TokenEntry]) -> str:
    """The inverse of ``parse_token_file`` (groups quoted as one CSV field)."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    for entry in entries:
        writer.writerow([entry.token, entry.user, entry.uid, ",".join(entry.groups)])
    return out.getvalue()


class TokenFileAuthenticator:
    """Implements ``contracts.Authenticator`` over a fixed set of bearer tokens."""

    def __init__(self, entries: Sequence[TokenEntry]) -> None:
        self._users: dict[str, UserInfo] = {}
        for entry in entries:
            groups = entry.groups
            if AUTHENTICATED_GROUP not in groups:
                groups = (*groups, AUTHENTICATED_GROUP)
            self._users[entry.token] = UserInfo(username=entry.user, uid=entry.uid, groups=groups)

    @classmethod
    def from_file(cls, path: str | Path) -> TokenFileAuthenticator:
        path = Path(path)
        return cls(parse_token_file(path.read_text(encoding="utf-8"), source=str(path)))

    def authenticate(self, authorization_header: str | None) -> UserInfo | None:
        if not authorization_header:
            return None
        scheme, _, token = authorization_header.strip().partition(" ")
        # The scheme is case-insensitive (RFC 7235), as kube-apiserver reads it.
        if scheme.lower() != "bearer":
            return None
        token = token.strip()
        if not token:
            return None
        return self._users.get(token)


@dataclass(frozen=True)
class Identity:
    """One person of the lab: their token and where their kubeconfig is (or will be) written."""

    user: str
    token: str
    uid: str
    groups: tuple[str, ...]
    kubeconfig: Path

    @property
    def user_info(self) -> UserInfo:
        """What the API server authenticates this identity as."""
        return UserInfo(
            username=self.user, uid=self.uid, groups=(*self.groups, AUTHENTICATED_GROUP)
        )


class Identities(Mapping[str, Identity]):
    """The identities written by ``write_identities``, by user name."""

    def __init__(self, directory: Path, token_file: Path, identities: dict[str, Identity]) -> None:
        self.directory = directory
        self.token_file = token_file
        self._identities = identities

    def __getitem__(self, user: str) -> Identity:
        return self._identities[user]

    def __iter__(self) -> Iterator[str]:
        return iter(self._identities)

    def __len__(self) -> int:
        return len(self._identities)

    def authenticator(self) -> TokenFileAuthenticator:
        """An authenticator reading the token file, as the server would with --token-auth-file."""
        return TokenFileAuthenticator.from_file(self.token_file)

    def write_kubeconfigs(
        self,
        url: str,
        *,
        certificate_authority_data: bytes | None = None,
        namespace: str = "default",
    ) -> dict[str, Path]:
        """Writes ``<directory>/<user>.kubeconfig`` for every identity, pointing at ``url``.

        For the lab's server: ``write_kubeconfigs(bg.url,
        certificate_authority_data=bg.server.ca_pem)``.
        """
        from hack.lab.kube.server import write_kubeconfig  # noqa: PLC0415 - the server is heavy

        return {
            user: write_kubeconfig(
                ident.kubeconfig,
                url,
                token=ident.token,
                user=user,
                namespace=namespace,
                certificate_authority_data=certificate_authority_data,
            )
            for user, ident in self._identities.items()
        }


def write_identities(
    directory: str | Path,
    users: Mapping[str, Sequence[str]],
    *,
    token_file_name: str = "tokens.csv",
) -> Identities:
    """Writes a token file for ``users`` (name -> groups) with fresh random tokens.

    The server is started with ``Identities.authenticator()`` (or the token file's path); once
    its URL is known, ``write_kubeconfigs(url)`` writes the per-user kubeconfigs.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    identities: dict[str, Identity] = {}
    for user, groups in users.items():
        if not user or "," in user or "\n" in user or "/" in user:
            raise ValueError(f"user name {user!r} cannot be written to a token file")
        identities[user] = Identity(
            user=user,
            token=secrets.token_urlsafe(24),
            uid=f"uid-{user}",
            groups=tuple(groups),
            kubeconfig=directory / f"{user}.kubeconfig",
        )
    token_file = directory / token_file_name
    entries = [TokenEntry(i.token, i.user, i.uid, i.groups) for i in identities.values()]
    token_file.write_text(format_token_file(entries), encoding="utf-8")
    token_file.chmod(0o600)
    return Identities(directory, token_file, identities)
