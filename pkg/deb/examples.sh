#!/usr/bin/env bash
# Writes pkg/deb/examples/ from systemd/: the example units and logrotate file as the .deb
# ships them, with the packaged /usr/bin/detach in place of the /usr/local/bin/detach that
# systemd/ names for an install from source. Run it after editing systemd/; with --check, it
# only says whether pkg/deb/examples/ is up to date (tests/deb/check.sh runs that in CI).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=pkg/deb/examples
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for src in systemd/*.service systemd/logrotate/example; do
  name=$(basename "$src")
  [[ $name == example ]] && name=logrotate.example
  sed 's#/usr/local/bin/detach#/usr/bin/detach#g' "$src" >"$tmp/$name"
done
if [[ ${1:-} == --check ]]; then
  diff -r "$out" "$tmp" >&2 || { echo "pkg/deb/examples is out of date: run pkg/deb/examples.sh" >&2; exit 1; }
  exit 0
fi
rm -rf "$out"
mkdir -p "$out"
cp "$tmp"/* "$out"/
