#!/usr/bin/env bash
# Copies the CRDs from crds/ (their single source of truth) into the Helm chart, byte for byte,
# and removes chart copies whose source is gone. hack/verify-chart-crds.sh checks the result.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/crds"
dst="$root/charts/rollwise/crds"

mkdir -p "$dst"
for copy in "$dst"/*.yaml; do
  [ -e "$copy" ] || continue
  [ -e "$src/$(basename "$copy")" ] || rm -- "$copy"
done
cp -- "$src"/*.yaml "$dst"/
echo "synced $(find "$src" -maxdepth 1 -name '*.yaml' | wc -l) CRD file(s) into charts/rollwise/crds"
