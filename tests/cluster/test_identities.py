"""The lab cluster's token file: kube-apiserver's ``--token-auth-file`` format, written for the
people a cluster authenticates and read back by ``Cluster.attach``. (That kube-apiserver
accepts the file and reports the groups is ``test_cluster.py``'s business.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from hack.cluster.identities import (
    AUTHENTICATED_GROUP,
    TokenEntry,
    TokenFileError,
    format_token_file,
    parse_token_file,
    read_identities,
    write_identities,
)

TOKENS = """\
# lab identities
token-alice,alice,uid-1,"security,audit"

token-bob, bob, uid-2, product
token-carol,carol,uid-3
token-dave,dave,uid-4,""
"""


def test_rows_comments_quoted_groups_and_spaces() -> None:
    assert parse_token_file(TOKENS) == [
        TokenEntry("token-alice", "alice", "uid-1", ("security", "audit")),
        TokenEntry("token-bob", "bob", "uid-2", ("product",)),
        TokenEntry("token-carol", "carol", "uid-3", ()),
        TokenEntry("token-dave", "dave", "uid-4", ()),
    ]


@pytest.mark.parametrize(
    ("content", "error"),
    [
        pytest.param("t1,alice\n", r"tokens\.csv:1: expected at least 3 columns", id="two-columns"),
        pytest.param(
            "t1,alice,u1\n\n# c\nt2,bob\n", r"tokens\.csv:4: expected at least 3", id="line-number"
        ),
        pytest.param(",alice,u1\n", r"tokens\.csv:1: the token is empty", id="empty-token"),
        pytest.param("t1,,u1\n", r"tokens\.csv:1: the user name is empty", id="empty-user"),
        pytest.param(
            "t1,alice,u1\nt1,bob,u2\n",
            r"tokens\.csv:2: duplicate token \(first used on line 1\)",
            id="duplicate-token",
        ),
        pytest.param('t1,alice,u1,"a,b\n', r"tokens\.csv:1: not valid CSV", id="unterminated"),
    ],
)
def test_malformed_token_file_names_the_line(content: str, error: str) -> None:
    with pytest.raises(TokenFileError, match=error):
        parse_token_file(content, source="tokens.csv")


def test_write_identities_round_trips_through_the_token_file(tmp_path: Path) -> None:
    users = {"alice": ("security",), "bob": ("product",), "carol": ("executive", "audit")}
    written = write_identities(tmp_path / "ids", users)
    assert (written.token_file.stat().st_mode & 0o777) == 0o600
    read = read_identities(tmp_path / "ids")
    assert dict(read) == dict(written)
    for name, identity in read.items():
        assert identity.groups == users[name]
        assert identity.all_groups == (*users[name], AUTHENTICATED_GROUP)
        assert identity.kubeconfig == tmp_path / "ids" / f"{name}.kubeconfig"
    assert len({i.token for i in read.values()}) == len(users), "every user has a distinct token"
    text = written.token_file.read_text()
    assert parse_token_file(format_token_file(parse_token_file(text))) == parse_token_file(text)


def test_user_names_that_break_the_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be written"):
        write_identities(tmp_path, {"eve,admin": ()})
