#!/usr/bin/env bash
# bench/startup.sh — start-up latency: how long each tool takes to return
# after starting `/bin/true` in the background.
#
#   bench/startup.sh [--smoke]
#
#   detach --log FILE -- /bin/true      returns once the command was exec'd
#                                       (a close-on-exec status pipe confirms it)
#   detach --exec --log FILE -- /bin/true   the same without a supervisor: one
#                                       process fewer (no log reopening)
#   detach --version                    the start-up of the binary alone
#   confirm /bin/true                   the floor of a confirmed start (bench/confirm.c:
#                                       fork, setsid, fork, exec, EOF on a close-on-exec pipe)
#   daemonize /bin/true                 returns after its fork, exec unconfirmed
#   setsid -f /bin/true                 returns after its fork, exec unconfirmed
#   start-stop-daemon --start --background ...   (if installed; unconfirmed)
#   daemon --unsafe -- /bin/true        (libslack, if installed; unconfirmed)
#
# "exec confirmed" is tested, not assumed: each tool also starts a script
# whose interpreter does not exist (`#!/nonexistent`: it passes access(X_OK),
# and execve fails with ENOENT); a tool confirms the exec if it then exits
# non-zero. (--unsafe: libslack daemon refuses a program under a world-writable
# directory such as /tmp, where that script is; it skips a check on /bin/true.)
#
# Uses hyperfine (--shell=none, so no shell start-up is counted) when it is
# installed and NO_HYPERFINE is not 1, else bash's $EPOCHREALTIME around each
# run. RUNS runs of each tool (default 300), in ROUNDS rounds (default 5) that
# alternate the tools, so that a burst of other load hits them all alike.
# Prints each tool's mean, median and minimum, and the differences of the
# median and the minimum to daemonize's. The fork+exec of a plain /bin/true is
# in every figure (about 0.6 ms here), as it is in any shell script's use of
# the tool.
# Environment: RUNS, ROUNDS, DETACH (a binary to use instead of building
# target/release/detach), BENCH_DIR, QUIET_WAIT (default 30: before each
# round, wait up to that many seconds for idle CPUs; 0: don't).
# --smoke (or SMOKE=1): 20 runs in 1 round, no waiting, for CI.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"
parse_args 0 "$@"
if [[ $SMOKE == 1 ]]; then
  RUNS=20 ROUNDS=1 QUIET_WAIT=0
else
  RUNS=${RUNS:-300} ROUNDS=${ROUNDS:-5} QUIET_WAIT=${QUIET_WAIT:-30}
fi

WORK=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/detach-startup.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

DETACH=$(detach_binary)
gcc -O2 -Wall -Wextra -o "$WORK/confirm" "$ROOT/bench/confirm.c"

# name|command line (split on spaces: no argument below contains one).
TOOLS=("detach|$DETACH --log $WORK/detach.log -- /bin/true"
  "detach --exec|$DETACH --exec --log $WORK/detach-exec.log -- /bin/true"
  "detach --version|$DETACH --version"
  "confirm (C floor)|$WORK/confirm /bin/true")
if command -v daemonize >/dev/null; then
  TOOLS+=("daemonize|$(command -v daemonize) /bin/true")
else
  echo "startup.sh: daemonize not installed (apt-get install -y daemonize): no reference" >&2
fi
TOOLS+=("setsid -f|$(command -v setsid) -f /bin/true")
if command -v start-stop-daemon >/dev/null; then
  # --pidfile names a file that never exists: nothing "already runs".
  TOOLS+=("start-stop-daemon|$(command -v start-stop-daemon) --start --background --pidfile $WORK/none.pid --startas /bin/true")
fi
# (its --version prints only "daemon-0.8"; its --help names libslack.org)
if command -v daemon >/dev/null && daemon --help 2>&1 | grep -q libslack; then
  TOOLS+=("daemon (libslack)|$(command -v daemon) --unsafe -- /bin/true")
else
  echo "startup.sh: libslack daemon not installed (apt-get install -y daemon): skipped" >&2
fi

# confirms NAME COMMAND: "yes" if the tool exits non-zero when the program it
# starts cannot be exec'd, else "no".
printf '#!/nonexistent/interpreter\n' >"$WORK/noexec"
chmod 755 "$WORK/noexec"
confirms() {
  local -a argv
  read -r -a argv <<<"${2% /bin/true} $WORK/noexec"
  if "${argv[@]}" >/dev/null 2>&1; then echo no; else echo yes; fi
}

# sample COMMAND N FILE: runs COMMAND N times, appends each wall time (ms) to
# FILE. hyperfine (--shell=none: no shell start-up counted) if installed and
# NO_HYPERFINE is not 1; else bash's $EPOCHREALTIME around each run (bash's
# own fork+exec is then in every figure, as it is in a script's use).
sample() {
  local -a argv
  read -r -a argv <<<"$1"
  if [[ $HOW == hyperfine ]]; then
    hyperfine --shell=none --warmup 5 --runs "$2" --style none \
      --export-json "$WORK/h.json" "$1" >/dev/null 2>"$WORK/h.err" ||
      { cat "$WORK/h.err" >&2; return 1; } # (its outlier warnings are dropped)
    python3 -c 'import json,sys; print("\n".join("%.4f" % (t*1e3) for t in json.load(open(sys.argv[1]))["results"][0]["times"]))' \
      "$WORK/h.json" >>"$3"
  else
    local i t0 t1
    for ((i = 0; i < $2; i++)); do
      t0=$EPOCHREALTIME
      "${argv[@]}" >/dev/null
      t1=$EPOCHREALTIME
      awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", (b - a) * 1e3 }' >>"$3"
    done
  fi
}

# stats FILE: "mean median min" of the times in FILE, in ms.
stats() {
  sort -g "$1" | awk '{ a[NR] = $1; s += $1 }
    END { m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.3f %.3f %.3f\n", s / NR, m, a[1] }'
}

HOW=hyperfine
[[ ${NO_HYPERFINE:-0} != 1 ]] && command -v hyperfine >/dev/null || HOW="EPOCHREALTIME loop"
echo "startup: $RUNS runs each ($HOW), in $ROUNDS rounds that alternate the tools"
machine_info
# Measure everything first, then print: each row compares with daemonize.
busy=0
for ((r = 1; r <= ROUNDS; r++)); do
  wait_quiet "$QUIET_WAIT" || busy=$((busy + 1))
  for i in "${!TOOLS[@]}"; do
    sample "${TOOLS[$i]#*|}" $((RUNS / ROUNDS)) "$WORK/times.$i"
  done
done
declare -A MEAN MED MIN
for i in "${!TOOLS[@]}"; do
  name=${TOOLS[$i]%%|*}
  read -r mean med min < <(stats "$WORK/times.$i")
  MEAN[$name]=$mean MED[$name]=$med MIN[$name]=$min
done
((QUIET_WAIT == 0)) || echo "rounds started while the machine was busy (other load): $busy/$ROUNDS"
printf '%-20s %8s %9s %8s %15s %13s  %s\n' tool "mean ms" "median ms" "min ms" "median vs dmz" "min vs dmz" "exec confirmed"
vs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.3f ms", a - b }'; }
for entry in "${TOOLS[@]}"; do
  name=${entry%%|*}
  diff=- mdiff=-
  if [[ -n ${MED[daemonize]:-} ]]; then
    diff=$(vs "${MED[$name]}" "${MED[daemonize]}") mdiff=$(vs "${MIN[$name]}" "${MIN[daemonize]}")
  fi
  confirmed=-
  [[ $name == "detach --version" ]] || confirmed=$(confirms "$name" "${entry#*|}")
  printf '%-20s %8s %9s %8s %15s %13s  %s\n' "$name" "${MEAN[$name]}" "${MED[$name]}" "${MIN[$name]}" "$diff" "$mdiff" "$confirmed"
done
if [[ -n ${MED[daemonize]:-} ]]; then
  echo "detach - daemonize: median $(vs "${MED[detach]}" "${MED[daemonize]}"), min $(vs "${MIN[detach]}" "${MIN[daemonize]}") (target: at most +0.5 ms)"
fi
# The supervisors started above exit with their /bin/true; give them a moment
# before the log directory goes.
sleep 0.2
