"""The people a lab cluster's kube-apiserver authenticates: its ``--token-auth-file``.

``write_identities`` makes the token file for a set of named users (name -> groups) with
random tokens, in kube-apiserver's format (CSV rows ``token,user,uid,"group1,group2"``);
``parse_token_file`` reads it back (``Cluster.attach`` does, to act as someone). The
kubeconfigs that carry the tokens are written by ``hack.cluster.config.write_kubeconfig``.

Files only: kube-apiserver does the authenticating, and RBAC the authorizing.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Every authenticated request carries this group: kube-apiserver adds it.
AUTHENTICATED_GROUP = "system:authenticated"

TOKEN_FILE = "tokens.csv"


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


@dataclass(frozen=True)
class Identity:
    """One person: their token and where their kubeconfig is written."""

    user: str
    token: str
    uid: str
    groups: tuple[str, ...]
    kubeconfig: Path

    @property
    def all_groups(self) -> tuple[str, ...]:
        """The groups kube-apiserver reports for them (``system:authenticated`` added)."""
        return (*self.groups, AUTHENTICATED_GROUP)


class Identities(Mapping[str, Identity]):
    """The identities of one token file, by user name."""

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


def write_identities(directory: str | Path, users: Mapping[str, Sequence[str]]) -> Identities:
    """Writes ``directory/tokens.csv`` for ``users`` (name -> groups) with fresh random tokens;
    each identity's kubeconfig is to be ``directory/<user>.kubeconfig``."""
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
    token_file = directory / TOKEN_FILE
    entries = [TokenEntry(i.token, i.user, i.uid, i.groups) for i in identities.values()]
    token_file.write_text(format_token_file(entries), encoding="utf-8")
    token_file.chmod(0o600)
    return Identities(directory, token_file, identities)


def read_identities(directory: str | Path) -> Identities:
    """The identities ``write_identities`` wrote into ``directory``, read back."""
    directory = Path(directory)
    token_file = directory / TOKEN_FILE
    entries = parse_token_file(token_file.read_text(encoding="utf-8"), source=str(token_file))
    identities = {
        e.user: Identity(
            user=e.user,
            token=e.token,
            uid=e.uid,
            groups=e.groups,
            kubeconfig=directory / f"{e.user}.kubeconfig",
        )
        for e in entries
    }
    return Identities(directory, token_file, identities)
