"""Builds the lab cluster's binaries from the pinned Go modules, once per machine.

Three wrapper modules under ``hack/cluster/`` pin what is built, each with a committed
``go.mod`` and ``go.sum``: ``kube/`` (kube-apiserver, kube-controller-manager, kube-scheduler
and kubectl from ``k8s.io/kubernetes``), ``etcd/`` (etcd's server) and ``kwok/`` (kwok, which
plays the kubelet). They are separate modules because their dependency graphs disagree (kwok
pins older ``k8s.io`` libraries than Kubernetes itself; etcd's server pins its own gRPC stack).

The binaries go to a cache outside the checkout, ``$ROLLWISE_CLUSTER_CACHE`` or
``~/.cache/rollwise/cluster`` (``$XDG_CACHE_HOME`` honoured), in a directory named by a key
that hashes everything that decides the binaries: the wrapper modules' files, the Go version,
the target platform and the build recipe. Every clone on the machine shares it; a change of
pins gives a new key and so a new build. A build goes to a temporary directory that is renamed
into place when complete, under a file lock, so an interrupted build leaves nothing half made
and concurrent callers (pytest-xdist workers) build once.

This module only builds; ``hack.cluster.cluster`` runs what it built.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: Bump when the way binaries are built changes (flags, environment) but no module file does.
RECIPE = "1"

#: How often a running build reports progress, in seconds.
PROGRESS_EVERY = 15.0

Log = Callable[[str], None]


class BuildError(RuntimeError):
    """A binary could not be built; the message carries the tail of the Go tool's output."""


@dataclass(frozen=True)
class GoModule:
    """One wrapper module and what it builds."""

    name: str  # the directory under hack/cluster/
    packages: tuple[str, ...]
    binaries: tuple[str, ...]

    @property
    def directory(self) -> Path:
        return HERE / self.name


KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")

MODULES: tuple[GoModule, ...] = (
    GoModule("etcd", packages=(".",), binaries=("etcd",)),
    GoModule("kwok", packages=("sigs.k8s.io/kwok/cmd/kwok",), binaries=("kwok",)),
    GoModule(
        "kube",
        packages=tuple(f"k8s.io/kubernetes/cmd/{c}" for c in KUBE_COMMANDS),
        binaries=KUBE_COMMANDS,
    ),
)

BINARIES: tuple[str, ...] = tuple(b for m in MODULES for b in m.binaries)


@dataclass(frozen=True)
class Versions:
    """The pinned versions, as the wrapper modules' go.mod files require them."""

    kubernetes: str
    etcd: str
    kwok: str


def _required_version(module: str, path: str) -> str:
    text = (HERE / module / "go.mod").read_text(encoding="utf-8")
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(path)}\s+(v\S+)", text, re.MULTILINE)
    if not match:
        raise BuildError(f"hack/cluster/{module}/go.mod does not require {path}")
    return match.group(1)


def pinned_versions() -> Versions:
    return Versions(
        kubernetes=_required_version("kube", "k8s.io/kubernetes"),
        etcd=_required_version("etcd", "go.etcd.io/etcd/server/v3"),
        kwok=_required_version("kwok", "sigs.k8s.io/kwok"),
    )


def go_environment() -> dict[str, str]:
    """The Go tool's environment: the installed toolchain only (a go.mod never downloads
    another), static binaries, no workspace file from a parent directory, and go.sum as
    committed (a build never edits it)."""
    return {
        **os.environ,
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
        "GOWORK": "off",
        "GOFLAGS": "-mod=readonly",
    }


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            "the Go tool (go) is not on PATH; the lab cluster is built from Go modules"
        )
    return go


def go_version() -> str:
    return subprocess.run(
        [_go(), "env", "GOVERSION", "GOOS", "GOARCH"],
        capture_output=True,
        text=True,
        check=True,
        env=go_environment(),
    ).stdout.strip()


def cache_root() -> Path:
    override = os.environ.get("ROLLWISE_CLUSTER_CACHE")
    if override:
        return Path(override).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser().resolve() / "rollwise" / "cluster"


def cache_key() -> str:
    """``<kubernetes version>-<hash>``: the hash covers every file of the wrapper modules, the Go
    version and platform, and the recipe, so it changes whenever the binaries would."""
    digest = hashlib.sha256()
    digest.update(f"recipe {RECIPE}\n{go_version()}\n".encode())
    for module in MODULES:
        for path in sorted(module.directory.iterdir()):
            if path.is_file() and (path.suffix in {".mod", ".sum", ".go"}):
                digest.update(f"{module.name}/{path.name}\n".encode())
                digest.update(path.read_bytes())
    return f"{pinned_versions().kubernetes}-{digest.hexdigest()[:16]}"


def bin_dir() -> Path:
    """Where the binaries of the current pins are (or will be, once built)."""
    return cache_root() / cache_key() / "bin"


def is_built(directory: Path | None = None) -> bool:
    directory = directory or bin_dir()
    return all((directory / b).is_file() for b in BINARIES)


def _module_time(module: GoModule, path: str) -> str:
    """The publication time of a module version (from the module cache or the proxy)."""
    out = subprocess.run(
        [_go(), "list", "-m", "-json", path],
        cwd=module.directory,
        capture_output=True,
        text=True,
        check=True,
        env=go_environment(),
    ).stdout
    stamp = str(json.loads(out).get("Time", ""))
    return stamp or "1970-01-01T00:00:00Z"


def _ldflags(module: GoModule, versions: Versions) -> str:
    flags = ["-s", "-w"]
    if module.name == "kube":
        # Kubernetes reads its version from variables its release tooling sets at link time;
        # without them the binaries report v0.0.0-master and clients (Helm's kubeVersion
        # checks, kubectl's skew warning) misjudge the server.
        match = re.fullmatch(r"v(\d+)\.(\d+)\.\d+", versions.kubernetes)
        if not match:
            raise BuildError(f"unexpected Kubernetes version {versions.kubernetes}")
        values = {
            "gitVersion": versions.kubernetes,
            "gitMajor": match.group(1),
            "gitMinor": match.group(2),
            # The module proxy does not carry the release's commit; the source is the
            # checksummed module zip, unmodified, hence a clean tree.
            "gitCommit": "",
            "gitTreeState": "clean",
            # The release's publication time, not the build's, so rebuilds are identical.
            "buildDate": _module_time(module, "k8s.io/kubernetes"),
        }
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            flags += [f"-X '{package}.{key}={value}'" for key, value in values.items()]
    return " ".join(flags)


def _count_dependencies(module: GoModule) -> int:
    out = subprocess.run(
        [_go(), "list", "-deps", *module.packages],
        cwd=module.directory,
        capture_output=True,
        text=True,
        check=False,
        env=go_environment(),
    ).stdout
    return len(out.split())


def _format_seconds(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _build_module(module: GoModule, versions: Versions, out_dir: Path, log: Log) -> float:
    started = time.monotonic()
    total = _count_dependencies(module)
    command = [
        _go(),
        "build",
        "-v",  # names each package as it is compiled: the progress count
        "-trimpath",
        "-ldflags",
        _ldflags(module, versions),
        "-o",
        f"{out_dir}{os.sep}",
        *module.packages,
    ]
    names = ", ".join(module.binaries)
    log(f"cluster build: {names}: compiling up to {total} packages")
    proc = subprocess.Popen(
        command,
        cwd=module.directory,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=go_environment(),
    )
    compiled = 0
    tail: deque[str] = deque(maxlen=60)
    lock = threading.Lock()
    done = threading.Event()

    def report() -> None:
        while not done.wait(PROGRESS_EVERY):
            with lock:
                count = compiled
            elapsed = _format_seconds(time.monotonic() - started)
            log(f"cluster build: {names}: {count} of up to {total} packages compiled, {elapsed}")

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            tail.append(line)
            # Package paths have no spaces; "go: downloading ...", "# pkg" and errors do.
            if line and " " not in line and not line.startswith("#"):
                with lock:
                    compiled += 1
        returncode = proc.wait()
    finally:
        done.set()
        reporter.join()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    elapsed = time.monotonic() - started
    if returncode != 0:
        output = "\n".join(tail)
        raise BuildError(f"go build of {names} failed ({returncode}):\n{output}")
    log(f"cluster build: {names}: built in {_format_seconds(elapsed)} ({compiled} packages)")
    return elapsed


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_built(*, force: bool = False, log: Log = print) -> Path:
    """Returns the directory of the binaries, building them first when the cache lacks them.

    ``force`` rebuilds even a complete cache entry (the Go build cache still makes that quick
    when nothing changed)."""
    root = cache_root()
    key = cache_key()
    final = root / key
    if not force and is_built(final / "bin"):
        return final / "bin"
    with _locked(root / f".{key}.lock"):
        # Another process may have finished the same build while this one waited for the lock.
        if not force and is_built(final / "bin"):
            return final / "bin"
        versions = pinned_versions()
        log(
            f"cluster build: Kubernetes {versions.kubernetes}, etcd {versions.etcd},"
            f" kwok {versions.kwok} -> {final}"
        )
        started = time.monotonic()
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the cache from the machine's other users
        try:
            timings = {
                module.name: round(_build_module(module, versions, staging / "bin", log), 1)
                for module in MODULES
            }
            manifest = {
                "key": key,
                "versions": vars(versions),
                "go": go_version().splitlines(),
                "build_seconds": timings,
            }
            (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
            if final.exists():
                shutil.rmtree(final)
            staging.rename(final)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        log(f"cluster build: done in {_format_seconds(time.monotonic() - started)}: {final}/bin")
    return final / "bin"
