#!/usr/bin/env bash
# Builds the Debian package with cargo-deb, installs it with apt-get as an operator would, uses
# what it installed (the binary from /usr/bin, the man page through man, the bash completion
# through bash-completion's loader, the example units and logrotate file, one daemon started
# and stopped), then purges it and checks that none of its files is left. Needs root (apt-get),
# cargo-deb, and the packages .ci/run installs (man-db, bash-completion, dpkg-dev, systemd,
# logrotate). .ci/run calls it after the tests.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ $(id -u) -ne 0 ]]; then
  echo "deb: skipped: installing a package needs root"
  exit 0
fi
if dpkg-query -W -f='${Status}' detach 2>/dev/null | grep -q 'ok installed'; then
  echo "deb: a detach package is installed already; remove it first (apt-get purge detach)" >&2
  exit 1
fi

fail() {
  echo "deb: FAILED: $*" >&2
  exit 1
}
ok() { echo "deb: ok: $*"; }

tmp=$(mktemp -d)
installed=0
cleanup() {
  # A failed check leaves neither the daemon nor the package behind.
  if [[ -s $tmp/app.pid ]]; then /usr/bin/detach stop --pidfile "$tmp/app.pid" >/dev/null 2>&1 || true; fi
  if ((installed)); then DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq detach >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# Polls COMMAND (a handshake, not a fixed sleep) for at most 10 s.
wait_until() {
  local what=$1
  shift
  for _ in $(seq 200); do
    if "$@"; then return 0; fi
    sleep 0.05
  done
  fail "timed out waiting for $what"
}

# --- build ---------------------------------------------------------------------------------
pkg/deb/examples.sh --check || fail "pkg/deb/examples differs from systemd/"
cargo deb --locked >"$tmp/deb.out" 2>"$tmp/deb.err" || { cat "$tmp/deb.err" >&2; fail "cargo deb"; }
if grep -i 'warning' "$tmp/deb.err"; then fail "cargo deb warned"; fi
deb=$(tail -n 1 "$tmp/deb.out")
# As the README has it: apt-get install ./target/debian/detach_*.deb (apt needs the ./).
[[ $deb == "$PWD"/* ]] && deb=./${deb#"$PWD"/}
[[ -f $deb ]] || fail "cargo deb printed no package path (got: $deb)"
version=$(dpkg-deb -f "$deb" Version)
ok "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB), Depends: $(dpkg-deb -f "$deb" Depends)"
[[ $(dpkg-deb -f "$deb" Section) == admin ]] || fail "Section is not admin"

# --- install -------------------------------------------------------------------------------
# apt-get resolves a local file's Depends from the archive, as `apt install ./detach_*.deb` does.
installed=1
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >"$tmp/apt.out" 2>&1 ||
  { cat "$tmp/apt.out" >&2; fail "apt-get install $deb"; }
[[ $(dpkg-query -W -f='${Version}' detach) == "$version" ]] || fail "dpkg does not list detach $version"
dpkg -L detach >"$tmp/files"
ok "installed detach $version ($(wc -l <"$tmp/files") paths)"

for path in /usr/bin/detach /usr/share/man/man1/detach.1.gz /usr/share/doc/detach/copyright \
  /usr/share/bash-completion/completions/detach /usr/share/zsh/vendor-completions/_detach \
  /usr/share/fish/vendor_completions.d/detach.fish \
  /usr/share/doc/detach/examples/detach-example-forking.service \
  /usr/share/doc/detach/examples/detach-example-notify.service \
  /usr/share/doc/detach/examples/detach-example-simple.service \
  /usr/share/doc/detach/examples/logrotate.example; do
  grep -qx "$path" "$tmp/files" || fail "the package has no $path"
  [[ -f $path ]] || fail "$path was not installed"
done
ok "every file in its place"

# --- the binary ----------------------------------------------------------------------------
expected="detach $(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
got=$(/usr/bin/detach --version)
[[ $got == "$expected" ]] || fail "/usr/bin/detach --version says '$got', not '$expected'"
ok "/usr/bin/detach --version: $got"

# --- the man page --------------------------------------------------------------------------
man -aw detach | grep -qx /usr/share/man/man1/detach.1.gz || fail "man -w detach: $(man -aw detach 2>&1)"
MANWIDTH=100 MANPAGER=cat man -l /usr/share/man/man1/detach.1.gz 2>/dev/null | grep -q -- '--pidfile' ||
  fail "the installed man page does not render with --pidfile in it"
ok "man -w detach: /usr/share/man/man1/detach.1.gz, and it renders"
# detach(1)'s SEE ALSO names a page per verb: each is there.
for verb in status reopen stop restart signal rotate logs; do
  man -aw "detach-$verb" | grep -qx "/usr/share/man/man1/detach-$verb.1.gz" || fail "man -w detach-$verb: $(man -aw "detach-$verb" 2>&1)"
done
ok "man -w detach-VERB: a page for each verb SEE ALSO names"

# --- the bash completion -------------------------------------------------------------------
# As an interactive shell gets it: bash-completion's loader finds the file by the command's
# name on the first Tab; then the function it registered completes `detach --lo` to --log.
completion=$(
  bash --norc --noprofile -c '
    source /usr/share/bash-completion/bash_completion
    __load_completion detach || exit 1
    spec=$(complete -p detach) || exit 1
    fn=${spec##*-F }; fn=${fn%% *}
    COMP_WORDS=(detach --lo); COMP_CWORD=1; COMP_LINE="detach --lo"; COMP_POINT=${#COMP_LINE}
    "$fn" detach --lo detach
    printf "%s\n" "$spec" "${COMPREPLY[@]}"'
) || fail "bash-completion did not load a completion for detach"
grep -qx -- '--log' <<<"$completion" || fail "completing 'detach --lo' did not offer --log: $completion"
ok "bash completes 'detach --lo' to --log ($(head -n 1 <<<"$completion"))"

# --- the examples --------------------------------------------------------------------------
# The shipped units run the installed binary: verify checks that ExecStart's executable exists.
for unit in /usr/share/doc/detach/examples/*.service; do
  cp "$unit" "$tmp/"
  out=$(systemd-analyze verify "$tmp/$(basename "$unit")" 2>&1) || fail "systemd-analyze verify $unit: $out"
  [[ -z $out ]] || fail "systemd-analyze verify $unit: $out"
done
logrotate -d /usr/share/doc/detach/examples/logrotate.example >/dev/null 2>&1 ||
  fail "logrotate rejects /usr/share/doc/detach/examples/logrotate.example"
ok "the example units verify against /usr/bin/detach; logrotate accepts the example"

# --- one daemon ----------------------------------------------------------------------------
/usr/bin/detach --log "$tmp/app.log" --pidfile "$tmp/app.pid" -- \
  sh -c 'echo "hello from the packaged detach"; exec sleep 600' || fail "detach did not start the daemon"
wait_until "the daemon's line in its log" grep -q 'hello from the packaged detach' "$tmp/app.log"
supervisor=$(cat "$tmp/app.pid")
/usr/bin/detach status --pidfile "$tmp/app.pid" >"$tmp/status" || fail "detach status: $(cat "$tmp/status")"
/usr/bin/detach stop --pidfile "$tmp/app.pid" || fail "detach stop"
# stop returns once the daemon is gone and its pidfile removed.
[[ ! -e $tmp/app.pid ]] || fail "the pidfile is still there after stop"
# A zombie is gone too: it waits for an init that reaps it (as in some containers).
# (The state follows the name in parentheses, which may hold spaces: "(detach: sh)".)
state=$(sed 's/.*) //' "/proc/$supervisor/stat" 2>/dev/null | cut -d' ' -f1 || true)
[[ -z $state || $state == Z ]] || fail "the supervisor ($supervisor) is still alive after stop (state $state)"
ok "a daemon started, logged, answered status, and stopped (supervisor $supervisor)"

# --- purge ---------------------------------------------------------------------------------
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq detach >"$tmp/apt.out" 2>&1 ||
  { cat "$tmp/apt.out" >&2; fail "apt-get purge detach"; }
installed=0
! dpkg-query -W -f='${Status}' detach 2>/dev/null | grep -q 'installed' || fail "dpkg still lists detach"
left=()
while IFS= read -r path; do
  [[ $path == /. ]] && continue
  if [[ -L $path || -f $path ]]; then
    left+=("$path")
  elif [[ -d $path ]] && ! dpkg -S "$path" >/dev/null 2>&1; then
    # A directory may stay only when another package owns it too (/usr/share/man/man1).
    left+=("$path/")
  fi
done <"$tmp/files"
((${#left[@]} == 0)) || fail "left behind after purge: ${left[*]}"
ok "apt-get purge left none of the $(wc -l <"$tmp/files") paths behind"
