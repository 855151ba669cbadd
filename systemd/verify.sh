#!/usr/bin/env bash
# Verifies the example units with systemd-analyze, ExecStart pointed at the
# detach built in target/ (verify checks that the executable exists).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-$PWD/target/release/detach}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for unit in systemd/*.service; do
  sed "s#/usr/local/bin/detach#$bin#" "$unit" >"$tmp/$(basename "$unit")"
  # verify prints warnings on stderr but may still exit 0: any output fails.
  out=$(systemd-analyze verify "$tmp/$(basename "$unit")" 2>&1) || { echo "$out"; exit 1; }
  if [[ -n $out ]]; then echo "$unit: $out"; exit 1; fi
  echo "ok: $unit"
done
logrotate -d systemd/logrotate/example >/dev/null 2>&1 || { echo "logrotate rejects systemd/logrotate/example"; exit 1; }
echo "ok: systemd/logrotate/example"
