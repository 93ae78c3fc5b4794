#!/usr/bin/env bash
# Runs the end-to-end tests against a real Kubernetes cluster in kind (needs Docker).
#
# Creates a kind cluster, installs the Gateway API CRDs (standard channel), Prometheus (the
# prometheus-community chart) and Rollwise (charts/rollwise, with an image built from this
# tree), then runs `pytest tests/e2e` with ROLLWISE_E2E_KUBECONFIG pointing at the cluster and
# ROLLWISE_E2E_PROMETHEUS_URL at a port-forward to Prometheus. The same tests run in the lab
# without these variables. The cluster is deleted on exit unless --keep is given.
#
# Usage: hack/e2e-kind.sh [--name NAME] [--keep] [--reuse] [--image IMAGE] [--no-build]
#                         [--gateway-api VERSION] [-- PYTEST_ARGS...]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER_NAME="rollwise-e2e"
KEEP=0
REUSE=0
BUILD=1
IMAGE="rollwise:e2e"
GATEWAY_API_VERSION="v1.2.1"
PYTHON="${PYTHON:-${ROOT}/.venv/bin/python}"
PYTEST_ARGS=()
WORKDIR=""
PORT_FORWARD_PID=""
CREATED_CLUSTER=0

usage() {
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
}

log() {
  printf '==> %s\n' "$*" >&2
}

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --name)
      [ $# -ge 2 ] || die "--name needs a value"
      CLUSTER_NAME="$2"
      shift 2
      ;;
    --keep)
      KEEP=1
      shift
      ;;
    --reuse)
      REUSE=1
      shift
      ;;
    --image)
      [ $# -ge 2 ] || die "--image needs a value"
      IMAGE="$2"
      shift 2
      ;;
    --no-build)
      BUILD=0
      shift
      ;;
    --gateway-api)
      [ $# -ge 2 ] || die "--gateway-api needs a value"
      GATEWAY_API_VERSION="$2"
      shift 2
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    --)
      shift
      PYTEST_ARGS=("$@")
      break
      ;;
    *)
      die "unknown argument: $1 (see --help)"
      ;;
  esac
done

cleanup() {
  local status=$?
  if [ -n "${PORT_FORWARD_PID}" ]; then
    kill "${PORT_FORWARD_PID}" 2>/dev/null || true
    wait "${PORT_FORWARD_PID}" 2>/dev/null || true
  fi
  if [ "${CREATED_CLUSTER}" -eq 1 ] && [ "${KEEP}" -eq 0 ]; then
    log "deleting kind cluster ${CLUSTER_NAME}"
    kind delete cluster --name "${CLUSTER_NAME}" >/dev/null 2>&1 || true
  elif [ "${CREATED_CLUSTER}" -eq 1 ]; then
    log "keeping kind cluster ${CLUSTER_NAME} (kubeconfig: ${WORKDIR}/kubeconfig)"
  fi
  if [ -n "${WORKDIR}" ] && [ "${KEEP}" -eq 0 ]; then
    rm -rf "${WORKDIR}"
  fi
  exit "${status}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for tool in docker kind kubectl helm; do
  command -v "${tool}" >/dev/null 2>&1 || die "${tool} is required on PATH"
done
[ -x "${PYTHON}" ] || die "no Python at ${PYTHON}; run 'make venv' or set PYTHON"
[ -d "${ROOT}/charts/rollwise" ] || die "the Rollwise chart is missing: ${ROOT}/charts/rollwise"
docker info >/dev/null 2>&1 || die "Docker is not running"

WORKDIR="$(mktemp -d "${TMPDIR:-/tmp}/rollwise-e2e.XXXXXX")"
export KUBECONFIG="${WORKDIR}/kubeconfig"

if kind get clusters 2>/dev/null | grep -qx "${CLUSTER_NAME}"; then
  [ "${REUSE}" -eq 1 ] || die "kind cluster ${CLUSTER_NAME} exists; pass --reuse or --name"
  log "reusing kind cluster ${CLUSTER_NAME}"
  kind export kubeconfig --name "${CLUSTER_NAME}" --kubeconfig "${KUBECONFIG}"
else
  log "creating kind cluster ${CLUSTER_NAME}"
  CREATED_CLUSTER=1
  kind create cluster --name "${CLUSTER_NAME}" --kubeconfig "${KUBECONFIG}" --wait 120s
fi

log "installing Gateway API CRDs ${GATEWAY_API_VERSION} (standard channel)"
kubectl apply --server-side -f \
  "https://github.com/kubernetes-sigs/gateway-api/releases/download/${GATEWAY_API_VERSION}/standard-install.yaml"
kubectl wait --for=condition=Established --timeout=60s crd/httproutes.gateway.networking.k8s.io

log "installing Prometheus (prometheus-community/prometheus)"
helm repo add prometheus-community https://prometheus-community.github.io/helm-charts >/dev/null
helm repo update prometheus-community >/dev/null
helm upgrade --install prometheus prometheus-community/prometheus \
  --namespace monitoring --create-namespace \
  --set alertmanager.enabled=false \
  --set prometheus-pushgateway.enabled=false \
  --set prometheus-node-exporter.enabled=false \
  --set server.persistentVolume.enabled=false \
  --set server.global.scrape_interval=5s \
  --wait --timeout 5m

if [ "${BUILD}" -eq 1 ]; then
  [ -f "${ROOT}/Dockerfile" ] || die "no Dockerfile in ${ROOT}; build ${IMAGE} yourself and pass --no-build"
  log "building ${IMAGE}"
  docker build -t "${IMAGE}" "${ROOT}"
fi
log "loading ${IMAGE} into the cluster"
kind load docker-image "${IMAGE}" --name "${CLUSTER_NAME}"

log "installing Rollwise (charts/rollwise)"
helm upgrade --install rollwise "${ROOT}/charts/rollwise" \
  --namespace rollwise-system --create-namespace \
  --set image.repository="${IMAGE%:*}" \
  --set image.tag="${IMAGE##*:}" \
  --set image.pullPolicy=IfNotPresent \
  --wait --timeout 5m

PROMETHEUS_PORT="$("${PYTHON}" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log "port-forwarding Prometheus to 127.0.0.1:${PROMETHEUS_PORT}"
kubectl --namespace monitoring port-forward svc/prometheus-server "${PROMETHEUS_PORT}:80" \
  >"${WORKDIR}/port-forward.log" 2>&1 &
PORT_FORWARD_PID=$!
for _ in $(seq 1 50); do
  if curl -fsS "http://127.0.0.1:${PROMETHEUS_PORT}/-/ready" >/dev/null 2>&1; then
    break
  fi
  sleep 0.2
done
curl -fsS "http://127.0.0.1:${PROMETHEUS_PORT}/-/ready" >/dev/null \
  || die "Prometheus port-forward not ready: $(cat "${WORKDIR}/port-forward.log")"

export ROLLWISE_E2E_KUBECONFIG="${KUBECONFIG}"
export ROLLWISE_E2E_PROMETHEUS_URL="http://127.0.0.1:${PROMETHEUS_PORT}"
log "running the end-to-end tests"
cd "${ROOT}"
"${PYTHON}" -m pytest tests/e2e "${PYTEST_ARGS[@]}"
