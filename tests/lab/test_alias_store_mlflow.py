"""The MLflow alias store against a real MLflow tracking server (``mlflow_server``): what the
registry shows, its error codes, and an outage (server stopped, then restarted)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from hack.lab.mlflow import MLflowServer
from hack.lab.prometheus import free_port
from rollwise.adapters.errors import (
    AliasConflict,
    ModelVersionNotFound,
    RegistryError,
    RegistryUnavailable,
)
from rollwise.adapters.registry.base import EXPECT_UNSET, AliasTarget
from rollwise.adapters.registry.mlflow import DIGEST_TAG, MLflowAliasStore, MLflowRegistry

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]


def new_model() -> str:
    return f"model-{uuid.uuid4().hex[:8]}"


def as_target(version: dict[str, Any]) -> AliasTarget:
    tags = {tag["key"]: tag["value"] for tag in version.get("tags", [])}
    return AliasTarget(version["version"], version["source"], tags.get(DIGEST_TAG))


def alias_in_mlflow(server: MLflowServer, model: str, alias: str) -> str | None:
    """The alias's version as MLflow's own API lists it on the registered model."""
    found = server.api("GET", "registered-models/get", {"name": model})["registered_model"]
    versions = {a["alias"]: a["version"] for a in found.get("aliases", [])}
    return versions.get(alias)


@pytest.fixture
def store(mlflow_server: MLflowServer) -> MLflowAliasStore:
    return MLflowAliasStore(MLflowRegistry("main", mlflow_server.url), timeout=10)


def test_round_trip_shows_in_mlflow(mlflow_server: MLflowServer, store: MLflowAliasStore) -> None:
    model = new_model()
    v1 = as_target(mlflow_server.create_version(model, digest="sha256:11"))
    v2 = as_target(mlflow_server.create_version(model, digest="sha256:22"))
    assert store.get(model, "production") is None
    assert store.set(model, "production", v1, expected=EXPECT_UNSET) == v1
    assert alias_in_mlflow(mlflow_server, model, "production") == "1"
    assert store.set(model, "production", v2, expected="1") == v2
    assert alias_in_mlflow(mlflow_server, model, "production") == "2"
    assert store.get(model, "production") == v2
    store.delete(model, "production", expected="2")
    assert alias_in_mlflow(mlflow_server, model, "production") is None
    assert store.get(model, "production") is None


def test_uri_and_digest_come_from_the_version(
    mlflow_server: MLflowServer, store: MLflowAliasStore
) -> None:
    model = new_model()
    tagged = mlflow_server.create_version(model, digest="sha256:feed", source="s3://models/a/1")
    untagged = mlflow_server.create_version(model, source="s3://models/a/2")
    assert tagged["source"] == "s3://models/a/1"
    got = store.set(model, "production", AliasTarget("1", "ignored"), expected=None)
    assert got == AliasTarget("1", "s3://models/a/1", "sha256:feed")
    assert store.set(model, "staging", as_target(untagged), expected=None) == AliasTarget(
        "2", "s3://models/a/2", None
    )


def test_idempotent_set_does_not_write(
    mlflow_server: MLflowServer, store: MLflowAliasStore
) -> None:
    model = new_model()
    v1 = as_target(mlflow_server.create_version(model))
    store.set(model, "production", v1, expected=None)
    before = mlflow_server.api("GET", "registered-models/get", {"name": model})
    assert store.set(model, "production", v1, expected="1") == v1
    after = mlflow_server.api("GET", "registered-models/get", {"name": model})
    stamp = "last_updated_timestamp"
    assert after["registered_model"][stamp] == before["registered_model"][stamp]


def test_stale_expected_version_is_a_conflict(
    mlflow_server: MLflowServer, store: MLflowAliasStore
) -> None:
    model = new_model()
    v1 = as_target(mlflow_server.create_version(model))
    v2 = as_target(mlflow_server.create_version(model))
    store.set(model, "production", v1, expected=None)
    # Somebody else flips the alias directly in MLflow.
    mlflow_server.api(
        "POST", "registered-models/alias", {"name": model, "alias": "production", "version": "2"}
    )
    with pytest.raises(AliasConflict, match="is at version '2', expected version '1'"):
        store.set(model, "production", v1, expected="1")
    with pytest.raises(AliasConflict):
        store.delete(model, "production", expected="1")
    with pytest.raises(AliasConflict, match="expected unset"):
        store.set(model, "production", v2, expected=EXPECT_UNSET)
    assert alias_in_mlflow(mlflow_server, model, "production") == "2"


def test_unknown_model_and_version(mlflow_server: MLflowServer, store: MLflowAliasStore) -> None:
    model = new_model()
    with pytest.raises(ModelVersionNotFound, match="not found"):
        store.get(model, "production")
    with pytest.raises(ModelVersionNotFound):
        store.set(model, "production", AliasTarget("1", "s3://x"), expected=None)
    mlflow_server.create_version(model)
    with pytest.raises(ModelVersionNotFound, match="version 7 not found"):
        store.set(model, "production", AliasTarget("7", "s3://x"), expected=EXPECT_UNSET)
    assert store.get(model, "production") is None
    error = ModelVersionNotFound("x")
    assert isinstance(error, RegistryError)
    assert not error.retryable


def test_refused_request_is_a_registry_error(mlflow_server: MLflowServer) -> None:
    # MLflow's security middleware refuses a foreign Host header (403, not JSON).
    session = requests.Session()
    session.headers["Host"] = "registry.example"
    store = MLflowAliasStore(MLflowRegistry("main", mlflow_server.url), session=session)
    with pytest.raises(RegistryError, match="403") as caught:
        store.get(new_model(), "production")
    assert not caught.value.retryable


def test_nothing_listening_is_unavailable() -> None:
    store = MLflowAliasStore(MLflowRegistry("main", f"http://127.0.0.1:{free_port()}"), timeout=2)
    with pytest.raises(RegistryUnavailable, match="unreachable") as caught:
        store.get("m", "production")
    assert caught.value.retryable


def test_outage_then_recovery(mlflow_server: MLflowServer, store: MLflowAliasStore) -> None:
    model = new_model()
    v1 = as_target(mlflow_server.create_version(model, digest="sha256:01"))
    v2 = as_target(mlflow_server.create_version(model, digest="sha256:02"))
    store.set(model, "production", v1, expected=None)
    mlflow_server.stop()
    try:
        with pytest.raises(RegistryUnavailable):
            store.set(model, "production", v2, expected="1")
        with pytest.raises(RegistryUnavailable):
            store.get(model, "production")
    finally:
        mlflow_server.restart()
    # Same port, same data: the flip that failed did not happen, and now goes through.
    assert store.get(model, "production") == v1
    assert store.set(model, "production", v2, expected="1") == v2
    assert alias_in_mlflow(mlflow_server, model, "production") == "2"


def test_without_mlflow_installed_the_fixture_fails_naming_make_test(tmp_path: Path) -> None:
    test_file = tmp_path / "test_needs_mlflow.py"
    test_file.write_text("def test_it(mlflow_server):\n    assert mlflow_server\n")
    env = {**os.environ, "LAB_MLFLOW_VENV": str(tmp_path / "no-venv"), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "hack.lab.testing.service_fixtures",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(test_file),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 error" in proc.stdout
    assert "skipped" not in proc.stdout
    assert "run `make test`" in proc.stdout
