#!/usr/bin/env bash
# Fails (exit 1, with a unified diff) when the chart's CRDs differ from crds/, their single
# source of truth: a changed, missing or extra file. Fix with hack/sync-chart-crds.sh.
# Usage: verify-chart-crds.sh [SOURCE_DIR CHART_CRDS_DIR] (defaults: crds/, charts/rollwise/crds/)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
src="${1:-$root/crds}"
dst="${2:-$root/charts/rollwise/crds}"

if ! compgen -G "$src/*.yaml" >/dev/null; then
  echo "no CRDs found in $src" >&2
  exit 2
fi

drift=0
for file in "$src"/*.yaml "$dst"/*.yaml; do
  [ -e "$file" ] || continue
  name="$(basename "$file")"
  if [ "$file" = "$dst/$name" ] && [ -e "$src/$name" ]; then
    continue # compared once, from the source side
  fi
  if ! diff -u -N --label "crds/$name" --label "charts/rollwise/crds/$name" \
    "$src/$name" "$dst/$name"; then
    [ -e "$src/$name" ] || echo "extra file in the chart: charts/rollwise/crds/$name"
    [ -e "$dst/$name" ] || echo "missing from the chart: charts/rollwise/crds/$name"
    drift=1
  fi
done

if [ "$drift" -ne 0 ]; then
  echo "the chart's CRDs drifted from crds/: run hack/sync-chart-crds.sh" >&2
  exit 1
fi
echo "charts/rollwise/crds matches crds/"
