#!/usr/bin/env bash
# Regenerate the image's locked dependencies: requirements.lock (the operator's runtime
# dependencies, from pyproject.toml) and requirements-build.lock (what builds its wheel), every
# file pinned by version and sha256 hash, so that the Dockerfile installs exactly these bytes
# (pip --require-hashes). Needs pip-tools (pip-compile) and PyPI:
#   python3 -m venv /tmp/piptools && /tmp/piptools/bin/pip install pip-tools
#   ROLLWISE_PIP_COMPILE=/tmp/piptools/bin/pip-compile hack/lock-requirements.sh
set -euo pipefail
cd "$(dirname "$0")/.."
compile="${ROLLWISE_PIP_COMPILE:-pip-compile}"
options=(--quiet --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links)
"$compile" "${options[@]}" --output-file requirements.lock pyproject.toml
build_in="$(mktemp --suffix=.in)"
trap 'rm -f "$build_in"' EXIT
python3 - "$build_in" <<'PY'
import sys
import tomllib

with open("pyproject.toml", "rb") as handle:
    requires = tomllib.load(handle)["build-system"]["requires"]
with open(sys.argv[1], "w") as out:
    out.write("\n".join(requires) + "\n")
PY
"$compile" "${options[@]}" --allow-unsafe --output-file requirements-build.lock "$build_in"
# pip-compile writes the temporary input's path into the header: name the real source.
sed -i "s|$build_in|pyproject.toml [build-system] requires|" requirements-build.lock
