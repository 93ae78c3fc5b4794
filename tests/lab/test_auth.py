"""The lab's token-file authentication, kube-apiserver's --token-auth-file format."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hack.lab.kube.auth import (
    TokenFileAuthenticator,
    TokenFileError,
    write_identities,
)
from hack.lab.kube.contracts import UserInfo

TOKENS = """\
# lab identities
token-alice,alice,uid-1,"security,audit"

token-bob, bob, uid-2, product
token-carol,carol,uid-3
token-dave,dave,uid-4,""
"""


@pytest.fixture
def authenticator(tmp_path: Path) -> TokenFileAuthenticator:
    path = tmp_path / "tokens.csv"
    path.write_text(TOKENS)
    return TokenFileAuthenticator.from_file(path)


@pytest.mark.parametrize(
    ("header", "user"),
    [
        pytest.param(
            "Bearer token-alice",
            UserInfo("alice", "uid-1", ("security", "audit", "system:authenticated")),
            id="quoted-groups",
        ),
        pytest.param(
            "Bearer token-bob",
            UserInfo("bob", "uid-2", ("product", "system:authenticated")),
            id="spaces-after-commas",
        ),
        pytest.param(
            "bearer token-carol",
            UserInfo("carol", "uid-3", ("system:authenticated",)),
            id="no-groups-column-and-lowercase-scheme",
        ),
        pytest.param(
            "Bearer token-dave",
            UserInfo("dave", "uid-4", ("system:authenticated",)),
            id="empty-groups",
        ),
        pytest.param("Bearer token-mallory", None, id="unknown-token"),
        pytest.param("Bearer ", None, id="empty-token"),
        pytest.param("Basic dG9rZW4tYWxpY2U=", None, id="other-scheme"),
        pytest.param("token-alice", None, id="no-scheme"),
        pytest.param("", None, id="empty-header"),
        pytest.param(None, None, id="no-header"),
    ],
)
def test_authenticate(
    authenticator: TokenFileAuthenticator, header: str | None, user: UserInfo | None
) -> None:
    assert authenticator.authenticate(header) == user


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
def test_malformed_token_file_names_the_line(tmp_path: Path, content: str, error: str) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text(content)
    with pytest.raises(TokenFileError, match=error):
        TokenFileAuthenticator.from_file(path)


def test_write_identities_round_trips_through_the_token_file(tmp_path: Path) -> None:
    users = {"alice": ("security",), "bob": ("product",), "carol": ("executive", "audit")}
    identities = write_identities(tmp_path / "ids", users)
    auth = identities.authenticator()
    assert set(identities) == set(users)
    for name, ident in identities.items():
        seen = auth.authenticate(f"Bearer {ident.token}")
        assert seen == ident.user_info
        assert seen is not None
        assert seen.username == name
        assert seen.groups == (*users[name], "system:authenticated")
    tokens = {ident.token for ident in identities.values()}
    assert len(tokens) == len(users), "every user has a distinct token"


def test_write_kubeconfigs(tmp_path: Path) -> None:
    identities = write_identities(tmp_path, {"alice": ("security",), "dave": ("developers",)})
    paths = identities.write_kubeconfigs("http://127.0.0.1:4321")
    assert paths == {"alice": tmp_path / "alice.kubeconfig", "dave": tmp_path / "dave.kubeconfig"}
    config = yaml.safe_load(paths["alice"].read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(c for c in config["clusters"] if c["name"] == context["context"]["cluster"])
    user = next(u for u in config["users"] if u["name"] == context["context"]["user"])
    assert cluster["cluster"]["server"] == "http://127.0.0.1:4321"
    assert user["user"]["token"] == identities["alice"].token


def test_user_names_that_break_the_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be written"):
        write_identities(tmp_path, {"eve,admin": ()})


@pytest.mark.lab
def test_kubectl_acts_as_the_token_user(tmp_path: Path) -> None:
    from hack.lab.kube.server import BackgroundAPIServer  # noqa: PLC0415
    from hack.lab.testing.kube_fixtures import make_kubectl  # noqa: PLC0415

    identities = write_identities(tmp_path, {"alice": ("security",)})
    with BackgroundAPIServer(authenticator=identities.authenticator()) as server:
        identities.write_kubeconfigs(server.url, certificate_authority_data=server.server.ca_pem)
        alice = make_kubectl(identities["alice"].kubeconfig, tmp_path / "cache-alice")
        listed = alice("get", "namespaces", "-o", "name")
        config = yaml.safe_load(identities["alice"].kubeconfig.read_text())
        config["users"][0]["user"]["token"] = "not-a-known-token"
        stranger_config = tmp_path / "stranger.kubeconfig"
        stranger_config.write_text(yaml.safe_dump(config))
        stranger = make_kubectl(stranger_config, tmp_path / "cache-stranger")
        refused = stranger("get", "namespaces", "-o", "name")
    assert listed.returncode == 0, listed.stderr
    assert "namespace/default" in listed.stdout.splitlines()
    assert refused.returncode != 0
    assert "You must be logged in to the server" in refused.stderr


@pytest.mark.lab
def test_a_lab_with_users_serves_them_and_its_own_parts_over_https(tmp_path: Path) -> None:
    import json  # noqa: PLC0415

    from hack.lab.lab import LAB_ADMIN, Lab  # noqa: PLC0415
    from hack.lab.testing.kube_fixtures import make_kubectl  # noqa: PLC0415

    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "web:1"}]},
            },
        },
    }
    with Lab(tmp_path / "lab", prometheus=False, ready_delay=0.1, users={"alice": ("ml",)}) as lab:
        assert lab.api_url.startswith("https://")
        alice = make_kubectl(lab.kubeconfig_of("alice"), tmp_path / "cache-alice")
        created = alice("apply", "-f", "-", input=json.dumps(deployment))
        # The workload simulator (the lab's own part, as lab-admin over HTTPS) marks it ready.
        ready = alice("rollout", "status", "deployment/web", "--timeout=20s")
        admin = yaml.safe_load(lab.kubeconfig.read_text())
        token = lab.identities[LAB_ADMIN].token if lab.identities is not None else None
    assert created.returncode == 0, created.stderr
    assert ready.returncode == 0, ready.stderr
    assert admin["users"][0]["user"]["token"] == token
    with pytest.raises(ValueError, match="lab's own identity"):
        Lab(tmp_path / "other", users={LAB_ADMIN: ()})
