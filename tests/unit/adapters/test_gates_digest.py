"""The artifact digest of local files and directories (real files), the digest CLI, MLflow
``models:/`` URIs and the schemes that are not verified."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rollwise.adapters.gates.access import EvidenceAccess
from rollwise.adapters.gates.digest import (
    ArtifactChecker,
    directory_digest,
    file_digest,
    main,
    parse_models_uri,
    path_digest,
)
from rollwise.adapters.gates.fetch import Budget, EvidenceTooLarge, EvidenceUnavailable
from rollwise.adapters.registry.mlflow import MLflowRegistry
from rollwise.core.modelrelease.status import GateStatus

REPO = Path(__file__).resolve().parents[3]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def budget(max_bytes: int = 1 << 30, timeout: float = 30.0) -> Budget:
    return Budget("artifact", max_bytes, timeout)


def checker(
    max_bytes: int = 1 << 30,
    timeout: float = 30.0,
    *,
    files: Path | None = None,
    registry: str | None = None,
) -> ArtifactChecker:
    """A checker that may read files below ``files`` and knows the MLflow registry
    ``default`` at ``registry``."""
    return ArtifactChecker(
        max_bytes=max_bytes,
        timeout=timeout,
        access=EvidenceAccess(file_prefixes=(str(files),) if files is not None else ()),
        registries={"default": MLflowRegistry("default", registry)} if registry else None,
    )


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "weights").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "MLmodel").write_bytes(b"flavors:\n  sklearn: {}\n")
    (root / "weights" / "part-0.bin").write_bytes(os.urandom(3000))
    (root / "weights" / "part-1.bin").write_bytes(b"")
    (root / "naïve.txt").write_text("unicode name", encoding="utf-8")
    return root


def test_file_digest_is_sha256_of_bytes(tmp_path: Path) -> None:
    data = os.urandom(5 * 1024 * 1024 + 17)  # several chunks
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    assert file_digest(path, budget()) == sha(data)


def test_directory_digest_is_the_canonical_listing(model_dir: Path) -> None:
    files = sorted(
        (p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file()),
        key=lambda p: p.encode("utf-8"),
    )
    listing = b"".join(
        f"{rel}\0{hashlib.sha256((model_dir / rel).read_bytes()).hexdigest()}\n".encode()
        for rel in files
    )
    assert files == ["MLmodel", "naïve.txt", "weights/part-0.bin", "weights/part-1.bin"]
    assert directory_digest(model_dir, budget()) == sha(listing)


def test_directory_digest_changes_with_content_and_names_not_with_empty_dirs(
    model_dir: Path,
) -> None:
    before = path_digest(model_dir, budget())
    (model_dir / "another-empty-dir").mkdir()
    assert path_digest(model_dir, budget()) == before
    (model_dir / "weights" / "part-1.bin").write_bytes(b"x")
    changed = path_digest(model_dir, budget())
    assert changed != before
    (model_dir / "weights" / "part-1.bin").rename(model_dir / "weights" / "part-2.bin")
    assert path_digest(model_dir, budget()) not in (before, changed)


def test_directory_symlinked_file_counts_as_its_target(model_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"shared weights")
    before = path_digest(model_dir, budget())
    (model_dir / "link.bin").symlink_to(outside)
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    for path in model_dir.rglob("*"):
        target = copy_dir / path.relative_to(model_dir)
        if path.is_dir():
            target.mkdir(exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    assert path_digest(model_dir, budget()) != before
    assert path_digest(model_dir, budget()) == path_digest(copy_dir, budget())


def test_size_bound_counts_the_whole_directory(model_dir: Path) -> None:
    with pytest.raises(EvidenceTooLarge, match=r"larger than the limit of 2\.9 KiB"):
        directory_digest(model_dir, budget(max_bytes=3000))
    assert directory_digest(model_dir, budget(max_bytes=3100)).startswith("sha256:")


def test_missing_path_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(EvidenceUnavailable, match="does not exist"):
        path_digest(tmp_path / "nope", budget())


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        pytest.param("models:/fraud/7", ("fraud", "7"), id="plain"),
        pytest.param("models:///fraud/12", ("fraud", "12"), id="triple-slash"),
        pytest.param("models:/team%20a/3", ("team a", "3"), id="quoted"),
    ],
)
def test_parse_models_uri(uri: str, expected: tuple[str, str]) -> None:
    assert parse_models_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("models:/fraud@production", id="alias"),
        pytest.param("models:/fraud/Production", id="stage"),
        pytest.param("models:/fraud", id="no-version"),
    ],
)
def test_parse_models_uri_needs_a_version(uri: str) -> None:
    with pytest.raises(ValueError, match="does not name a model version"):
        parse_models_uri(uri)


# ------------------------------------------------------------------------- ArtifactChecker


def test_file_uri_match_and_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights v7")
    good = checker(files=tmp_path).check(path.as_uri(), sha(b"weights v7"))
    assert good.status is GateStatus.PASSED
    assert sha(b"weights v7")[:19] in good.message
    bad = checker(files=tmp_path).check(path.as_uri(), sha(b"weights v6"))
    assert bad.status is GateStatus.FAILED
    assert sha(b"weights v6")[:19] in bad.message
    assert sha(b"weights v7")[:19] in bad.message
    assert "mismatch" in bad.message


def test_directory_uri(model_dir: Path) -> None:
    expected = directory_digest(model_dir, budget())
    outcome = checker(files=model_dir).check(model_dir.as_uri(), expected)
    assert outcome.status is GateStatus.PASSED
    assert "directory" in outcome.message


def test_file_too_large_fails_and_missing_is_pending(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 2048)
    too_large = checker(max_bytes=1024, files=tmp_path).check(path.as_uri(), sha(b"x" * 2048))
    assert too_large.status is GateStatus.FAILED
    assert "larger than the limit of 1.0 KiB" in too_large.message
    missing = checker(files=tmp_path).check((tmp_path / "gone.bin").as_uri(), sha(b""))
    assert missing.status is GateStatus.PENDING
    assert "does not exist" in missing.message


@pytest.mark.parametrize(
    ("uri", "scheme"),
    [
        pytest.param("s3://models/fraud/7/model.pkl", "s3://", id="s3"),
        pytest.param("gs://bucket/model", "gs://", id="gcs"),
        pytest.param("pvc://volume/model", "pvc://", id="pvc"),
        pytest.param("/plain/path", "/plain/path", id="no-scheme"),
    ],
)
def test_other_schemes_are_pending_never_passed(uri: str, scheme: str) -> None:
    outcome = checker().check(uri, sha(b""))
    assert outcome.status is GateStatus.PENDING
    assert f"scheme {scheme} is not supported for digest verification" in outcome.message


def test_remote_file_uri_is_pending() -> None:
    outcome = checker().check("file://fileserver/models/x", sha(b""))
    assert outcome.status is GateStatus.PENDING
    assert "local path" in outcome.message


def test_models_uri_without_registry_or_version_is_pending() -> None:
    no_registry = checker().check("models:/fraud/7", sha(b""), "default")
    assert no_registry.status is GateStatus.PENDING
    assert "no MLflow registry named 'default' in the operator's settings" in no_registry.message
    unknown = checker(registry="http://127.0.0.1:9").check("models:/fraud/7", sha(b""), "other")
    assert unknown.status is GateStatus.PENDING
    assert "no MLflow registry named 'other'" in unknown.message
    alias = checker(registry="http://127.0.0.1:9").check(
        "models:/fraud@production", sha(b""), "default"
    )
    assert alias.status is GateStatus.PENDING
    assert "does not name a model version" in alias.message


def test_models_uri_registry_unreachable_is_pending() -> None:
    # Port 9 (discard) on loopback has no listener here: the connection is refused at once.
    outcome = checker(timeout=2, registry="http://127.0.0.1:9").check(
        "models:/fraud/7", sha(b""), "default"
    )
    assert outcome.status is GateStatus.PENDING
    assert "MLflow unreachable" in outcome.message


# ------------------------------------------------------------------- the evidence policy


def test_file_evidence_is_refused_without_a_path_prefix(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_bytes(b"the operator's service account token")
    outcome = checker().check(token.as_uri(), sha(token.read_bytes()))
    assert outcome.status is GateStatus.FAILED
    assert "file:// evidence is not allowed by the operator's evidence policy" in outcome.message
    assert sha(token.read_bytes())[:19] not in outcome.message, "nothing of it was read"


def test_file_evidence_outside_the_prefixes_is_refused(tmp_path: Path) -> None:
    models, secrets = tmp_path / "models", tmp_path / "secrets"
    models.mkdir()
    secrets.mkdir()
    key = secrets / "record-key"
    key.write_bytes(b"k" * 48)
    allowed = checker(files=models)
    for uri in (key.as_uri(), f"file://{models}/../secrets/record-key"):
        outcome = allowed.check(uri, sha(key.read_bytes()))
        assert outcome.status is GateStatus.FAILED, uri
        assert "outside the operator's evidence policy (filePathPrefixes)" in outcome.message
    (models / "key-link").symlink_to(key)
    linked = allowed.check((models / "key-link").as_uri(), sha(key.read_bytes()))
    assert linked.status is GateStatus.FAILED, "a symbolic link does not lead out"


def test_a_link_inside_a_model_directory_does_not_lead_out(model_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"record key")
    expected = directory_digest(model_dir, budget())
    (model_dir / "weights" / "extra.bin").symlink_to(secret)
    outcome = checker(files=model_dir).check(model_dir.as_uri(), expected)
    assert outcome.status is GateStatus.FAILED
    assert "outside the operator's evidence policy" in outcome.message


# ------------------------------------------------------------------------------------- CLI


def test_cli_prints_digests(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = model_dir / "MLmodel"
    assert main([str(file), str(model_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{sha(file.read_bytes())}  {file}",
        f"{directory_digest(model_dir, budget())}  {model_dir}",
    ]
    assert main([str(model_dir / "missing")]) == 1
    assert main([]) == 2


def test_cli_runs_as_module(model_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rollwise.adapters.gates.digest", str(model_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "operator")},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.split()[0] == directory_digest(model_dir, budget())
