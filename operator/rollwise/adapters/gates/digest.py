"""The ``artifact-digest`` gate: does the artifact at ``spec.artifact.uri`` have the digest
``spec.artifact.digest`` (``sha256:<64 hex>``)?

How the digest is obtained, by URI scheme:

* ``file://`` (a path on the operator's file system, e.g. a mounted volume): a file's digest is
  the SHA-256 of its bytes. A directory's digest is the SHA-256 of a canonical listing of the
  regular files below it: for each file, sorted by its path relative to the directory
  (``/``-separated, compared as UTF-8 strings), one line ``<path> NUL <sha256 hex of the
  file> LF``. Empty directories do not count; symbolic links to files count as the file they
  point to; symbolic links to directories are not followed. ``python -m
  rollwise.adapters.gates.digest PATH...`` prints the digest of files and directories the
  same way.
* ``http://`` and ``https://``: the SHA-256 of the body of a ``GET``, as sent (no content
  decoding), streamed in chunks.
* ``models:/NAME/VERSION`` (MLflow model registry): the digest recorded on that model version,
  the version tag ``rollwise.dev/artifact-digest`` (or, when absent, ``rollwise.dev/digest``,
  the tag the MLflow alias store reads), read with ``GET
  /api/2.0/mlflow/model-versions/get``. The registry is the one ``spec.alias.store.mlflow``
  names, else the operator's ``default`` registry: always one of the operator's settings,
  never an address from the spec. Here the evidence is the registry's record, put there by the
  pipeline that registered the version.
* anything else (``s3://``, ``gs://``, ...): not verified; the gate stays Pending and says so.

``file://`` and ``http(s)://`` artifacts are read only where the operator's evidence policy
allows (:mod:`rollwise.adapters.gates.access`): anything else fails the gate without a read.

Verdicts: digests equal → Passed; different → Failed naming both (shortened); larger than the
size bound, or not allowed by the evidence policy → Failed (the artifact cannot be verified
within the operator's limits); unreachable, an HTTP error, too slow, no digest recorded →
Pending.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from rollwise.adapters.bounded_http import AnswerTooLarge, RedirectRefused, bounded_session
from rollwise.adapters.errors import (
    ModelVersionNotFound,
    RegistryError,
    RegistryUnavailable,
)
from rollwise.adapters.gates.access import EvidenceAccess
from rollwise.adapters.gates.fetch import (
    Budget,
    EvidenceForbidden,
    EvidenceTooLarge,
    EvidenceUnavailable,
    URLCheck,
    http_get,
    read_file,
    status_text,
)
from rollwise.adapters.gates.outcome import Outcome, short_digest
from rollwise.adapters.registry.mlflow import MLflowRegistry, error_code

#: The MLflow model version tag holding the artifact digest.
ARTIFACT_DIGEST_TAG = "rollwise.dev/artifact-digest"
#: Read when ``ARTIFACT_DIGEST_TAG`` is absent: the tag the MLflow alias store reports.
FALLBACK_DIGEST_TAG = "rollwise.dev/digest"

#: Seconds one request to MLflow may take.
MLFLOW_TIMEOUT = 10.0

_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")


def _format(hasher: Any) -> str:
    return f"sha256:{hasher.hexdigest()}"


def _file_hex(path: Path, budget: Budget) -> str:
    hasher = hashlib.sha256()
    read_file(path, hasher.update, budget)
    return hasher.hexdigest()


def file_digest(path: Path, budget: Budget) -> str:
    """``sha256:<hex>`` of the bytes of the file at ``path``."""
    return f"sha256:{_file_hex(path, budget)}"


#: Checks (and resolves) a path before it is read; raises ``EvidenceForbidden``.
PathCheck = Callable[[Path], Path]


def _files_below(root: Path) -> list[str]:
    found: list[str] = []
    for folder, _dirs, files in os.walk(root, onerror=_raise):
        for name in files:
            full = Path(folder) / name
            if full.is_file():
                found.append(full.relative_to(root).as_posix())
    return sorted(found, key=lambda p: p.encode("utf-8"))


def _raise(exc: OSError) -> None:
    raise exc


def directory_digest(root: Path, budget: Budget, check: PathCheck | None = None) -> str:
    """``sha256:<hex>`` of the canonical listing of the files below ``root`` (module doc).
    ``check`` sees every file before it is read (a symbolic link may lead anywhere)."""
    listing = hashlib.sha256()
    try:
        files = _files_below(root)
    except OSError as exc:
        raise EvidenceUnavailable(f"{budget.what}: cannot list {root}: {exc}") from exc
    for relative in files:
        path = root / relative
        if check is not None:
            path = check(path)
        line = f"{relative}\0{_file_hex(path, budget)}\n"
        listing.update(line.encode("utf-8"))
    return _format(listing)


def path_digest(path: Path, budget: Budget, check: PathCheck | None = None) -> str:
    """The digest of a file or of a directory (``check``: as for :func:`directory_digest`)."""
    if check is not None:
        path = check(path)
    if path.is_dir():
        return directory_digest(path, budget, check)
    if not path.exists():
        raise EvidenceUnavailable(f"{budget.what}: {path} does not exist")
    return file_digest(path, budget)


def http_digest(
    session: requests.Session, url: str, budget: Budget, check: URLCheck | None = None
) -> str:
    """``sha256:<hex>`` of the body of ``GET url``, as sent (redirects: only where ``check``
    allows)."""
    hasher = hashlib.sha256()
    http_get(session, url, hasher.update, budget, decode=False, check=check)
    return _format(hasher)


def parse_models_uri(uri: str) -> tuple[str, str]:
    """(name, version) of ``models:/NAME/VERSION``; ValueError for other forms (an alias or
    a stage moves, so it cannot carry a verified digest)."""
    rest = uri.removeprefix("models:/").lstrip("/")
    name, _, version = rest.rpartition("/")
    if not name or not version.isdigit():
        raise ValueError(
            f"{uri} does not name a model version: use models:/NAME/VERSION "
            "(an alias or a stage may move to another version)"
        )
    return unquote(name), version


def mlflow_recorded_digest(
    session: requests.Session,
    registry: MLflowRegistry,
    name: str,
    version: str,
    *,
    timeout: float = MLFLOW_TIMEOUT,
) -> str | None:
    """The digest tag of MLflow model version ``name``/``version`` in ``registry`` (None when
    untagged). Follows no redirect; messages name the registry and the HTTP status, never
    what the server wrote.

    Raises ``RegistryUnavailable`` (unreachable, timeout, 429/5xx), ``ModelVersionNotFound``
    and ``RegistryError`` (any other refusal)."""
    url = registry.url.rstrip("/") + "/api/2.0/mlflow/model-versions/get"
    what = f"MLflow model version {name}/{version} (registry {registry.name})"
    headers = {"Authorization": f"Bearer {registry.token}"} if registry.token else {}
    try:
        response = session.get(
            url,
            params={"name": name, "version": version},
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
        )
    except (RedirectRefused, AnswerTooLarge) as exc:
        raise RegistryError(f"{what}: {exc}, not an MLflow answer") from exc
    except requests.RequestException as exc:
        raise RegistryUnavailable(f"{what}: MLflow unreachable ({type(exc).__name__})") from exc
    status = status_text(response.status_code)
    if response.status_code == 429 or response.status_code >= 500:
        raise RegistryUnavailable(f"{what}: {status}")
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or 300 <= response.status_code < 400:
        raise RegistryError(f"{what}: {status}, not an MLflow answer")
    if not response.ok:
        code = error_code(answer)
        if code == "RESOURCE_DOES_NOT_EXIST" or response.status_code == 404:
            raise ModelVersionNotFound(f"{what} not found")
        raise RegistryError(f"{what}: {status}{' ' + code if code else ''}")
    model_version = answer.get("model_version")
    tags = {
        str(tag.get("key")): str(tag.get("value"))
        for tag in (model_version.get("tags") if isinstance(model_version, dict) else None) or []
        if isinstance(tag, dict)
    }
    return tags.get(ARTIFACT_DIGEST_TAG) or tags.get(FALLBACK_DIGEST_TAG)


def compare(expected: str, actual: str, where: str) -> Outcome:
    """Passed when the digests are equal, else Failed naming both."""
    if actual.lower() == expected.lower():
        return Outcome.passed(f"{where} has the expected digest {short_digest(expected)}")
    return Outcome.failed(
        f"artifact digest mismatch: spec.artifact.digest is {short_digest(expected)}, "
        f"{where} has {short_digest(actual)}"
    )


class ArtifactChecker:
    """Checks one artifact URI against its expected digest (no caching: the evaluator
    caches). ``access``: where artifacts may be read from (the default allows nothing);
    ``registries``: the MLflow registries of the operator's settings, by name."""

    def __init__(
        self,
        *,
        max_bytes: int,
        timeout: float,
        access: EvidenceAccess | None = None,
        registries: dict[str, MLflowRegistry] | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.access = access or EvidenceAccess()
        self.registries = dict(registries or {})
        self.session = session or requests.Session()
        # MLflow's answers are small: read within a bound, redirects refused (bounded_http).
        # Artifacts stream through ``session`` within their own budget instead.
        self.mlflow_session = session or bounded_session()

    def check(self, uri: str, expected: str, registry: str | None = None) -> Outcome:
        """The verdict for ``uri``; ``registry`` names the MLflow registry of ``models:/``
        URIs. Raises only adapter errors the evaluator maps to Pending (and bugs)."""
        scheme = urlsplit(uri).scheme.lower()
        what = f"artifact {uri}"
        try:
            if scheme == "file":
                return self._check_file(uri, expected)
            if scheme in ("http", "https"):
                self.access.check_url(uri, what)
                budget = Budget(what, self.max_bytes, self.timeout)

                def redirect(url: str) -> None:
                    self.access.check_url(url, f"{what}: a redirect")

                actual = http_digest(self.session, uri, budget, redirect)
                return compare(expected, actual, "the artifact")
        except EvidenceForbidden as exc:
            return Outcome.failed(f"{exc}: not read (no evidence, no promotion)")
        except EvidenceTooLarge as exc:
            return Outcome.failed(
                f"{exc}: cannot verify its digest (raise the operator's artifact size limit "
                "or waive the gate)"
            )
        except EvidenceUnavailable as exc:
            return Outcome.pending(f"could not check the artifact digest: {exc}")
        if scheme == "models":
            return self._check_mlflow(uri, expected, registry)
        shown = f"{scheme}://" if scheme else uri
        return Outcome.pending(
            f"artifact scheme {shown} is not supported for digest verification "
            "(supported: file://, http://, https://, models:/NAME/VERSION); "
            "the gate stays Pending until it is waived"
        )

    def _check_file(self, uri: str, expected: str) -> Outcome:
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            return Outcome.pending(
                f"artifact {uri}: file:// URIs must name a local path (host {parts.netloc!r})"
            )
        what = f"artifact {uri}"
        path = Path(unquote(parts.path))
        budget = Budget(what, self.max_bytes, self.timeout)
        actual = path_digest(path, budget, lambda p: self.access.check_path(p, what))
        kind = "the artifact directory" if path.is_dir() else "the artifact"
        return compare(expected, actual, kind)

    def _check_mlflow(self, uri: str, expected: str, name: str | None) -> Outcome:
        try:
            model, version = parse_models_uri(uri)
        except ValueError as exc:
            return Outcome.pending(f"cannot check the artifact digest: {exc}")
        registry = self.registries.get(name or "")
        if registry is None:
            return Outcome.pending(
                f"cannot check {uri}: no MLflow registry "
                + (f"named {name!r} " if name else "")
                + "in the operator's settings (spec.alias.store.mlflow.registry names one; "
                "without it the registry named default is used)"
            )
        try:
            recorded = mlflow_recorded_digest(
                self.mlflow_session,
                registry,
                model,
                version,
                timeout=min(self.timeout, MLFLOW_TIMEOUT),
            )
        except RegistryError as exc:
            return Outcome.pending(f"could not check the artifact digest: {exc.message}")
        if recorded is None:
            return Outcome.pending(
                f"no digest recorded on MLflow model version {model}/{version} "
                f"(tag {ARTIFACT_DIGEST_TAG})"
            )
        if not _SHA256.match(recorded.strip().lower()):
            return Outcome.pending(
                f"MLflow model version {model}/{version} records a digest that is not "
                "sha256:<64 hex digits>"
            )
        return compare(expected, recorded.strip(), f"MLflow model version {model}/{version}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rollwise.adapters.gates.digest PATH...``: print each path's digest."""
    paths = list(sys.argv[1:] if argv is None else argv)
    if not paths:
        print("usage: python -m rollwise.adapters.gates.digest PATH...", file=sys.stderr)
        return 2
    status = 0
    for arg in paths:
        try:
            digest = path_digest(Path(arg), Budget(arg, 1 << 62, 1e9))
        except EvidenceUnavailable as exc:
            print(exc.message, file=sys.stderr)
            status = 1
            continue
        print(f"{digest}  {arg}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "ARTIFACT_DIGEST_TAG",
    "FALLBACK_DIGEST_TAG",
    "ArtifactChecker",
    "compare",
    "directory_digest",
    "file_digest",
    "http_digest",
    "mlflow_recorded_digest",
    "parse_models_uri",
    "path_digest",
]
