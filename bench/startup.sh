#!/usr/bin/env bash
# bench/startup.sh — start-up latency: how long each tool takes to return
# after starting `/bin/true` in the background.
#
#   bench/startup.sh [--smoke]
#
#   detach --log FILE -- /bin/true      returns once the command was exec'd
#                                       (a close-on-exec status pipe confirms it)
#   daemonize /bin/true                 returns after its fork, exec unconfirmed
#   setsid -f /bin/true                 returns after its fork, exec unconfirmed
#   start-stop-daemon --start --background ...   (if installed; unconfirmed)
#   daemon /bin/true  (libslack, if installed; unconfirmed)
#
# Uses hyperfine (--shell=none, so no shell start-up is counted) when it is
# installed and NO_HYPERFINE is not 1, else a loop timed with date +%s%N.
# Prints each tool's mean, standard deviation and minimum, and their
# differences to daemonize's. The fork+exec of a plain /bin/true is in every
# figure (about 0.6 ms here), as it is in any shell script's use of the tool.
# Environment: RUNS (default 300), DETACH (a binary to use instead of building
# target/release/detach), BENCH_DIR, QUIET_WAIT (default 30: before each tool,
# wait up to that many seconds for idle CPUs; 0: don't).
# --smoke (or SMOKE=1): 20 runs, no waiting, for CI.
set -euo pipefail

SMOKE=${SMOKE:-0}
for arg in "$@"; do
  case $arg in
    --smoke) SMOKE=1 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "startup.sh: unknown argument $arg" >&2; exit 64 ;;
  esac
done
if [[ $SMOKE == 1 ]]; then
  RUNS=20 QUIET_WAIT=0
else
  RUNS=${RUNS:-300} QUIET_WAIT=${QUIET_WAIT:-30}
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"
WORK=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/detach-startup.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

DETACH=$(detach_binary)

# name|command line (split on spaces: no argument below contains one).
TOOLS=("detach|$DETACH --log $WORK/detach.log -- /bin/true")
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
if command -v daemon >/dev/null && daemon --version 2>&1 | grep -qi libslack; then
  TOOLS+=("daemon (libslack)|$(command -v daemon) -- /bin/true")
fi

# mean_of NAME COMMAND: prints the mean, standard deviation and minimum wall
# time of COMMAND in ms ("-" for what the date loop cannot tell). The minimum
# is the steadiest figure on a machine that has other work to do.
mean_of() {
  local name=$1 cmd=$2
  if [[ ${NO_HYPERFINE:-0} != 1 ]] && command -v hyperfine >/dev/null; then
    hyperfine --shell=none --warmup 10 --runs "$RUNS" --style none \
      --export-json "$WORK/h.json" "$cmd" >/dev/null 2>"$WORK/h.err" ||
      { cat "$WORK/h.err" >&2; return 1; } # (its outlier warnings are dropped)
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.3f %.3f %.3f" % (r["mean"]*1e3, r["stddev"]*1e3, min(r["times"])*1e3))' "$WORK/h.json"
  else
    local -a argv
    read -r -a argv <<<"$cmd"
    local i t0 t1
    t0=$(date +%s%N)
    for ((i = 0; i < RUNS; i++)); do "${argv[@]}" >/dev/null; done
    t1=$(date +%s%N)
    # The loop's own cost (fork+exec by bash) is in it, as it is for all.
    awk -v ns=$((t1 - t0)) -v n="$RUNS" 'BEGIN { printf "%.3f - -\n", ns / n / 1e6 }'
  fi
}

HOW=hyperfine
[[ ${NO_HYPERFINE:-0} != 1 ]] && command -v hyperfine >/dev/null || HOW="date loop"
echo "startup: $RUNS runs each ($HOW)"
machine_info
# Measure everything first, then print: each row compares with daemonize.
declare -A MEAN SD MIN
busy=0
for entry in "${TOOLS[@]}"; do
  name=${entry%%|*} cmd=${entry#*|}
  wait_quiet "$QUIET_WAIT" || busy=$((busy + 1))
  result=$(mean_of "$name" "$cmd")
  read -r mean sd min <<<"$result"
  MEAN[$name]=$mean SD[$name]=$sd MIN[$name]=$min
done
((QUIET_WAIT == 0)) || echo "tools measured while the machine was busy (other load): $busy/${#TOOLS[@]}"
printf '%-20s %9s %9s %9s %14s %13s  %s\n' tool "mean ms" "stddev" "min ms" "mean vs dmz" "min vs dmz" "exec confirmed"
for entry in "${TOOLS[@]}"; do
  name=${entry%%|*}
  diff=- mdiff=-
  if [[ -n ${MEAN[daemonize]:-} ]]; then
    diff=$(awk -v a="${MEAN[$name]}" -v b="${MEAN[daemonize]}" 'BEGIN { printf "%+.3f ms", a - b }')
    [[ ${MIN[$name]} == - ]] ||
      mdiff=$(awk -v a="${MIN[$name]}" -v b="${MIN[daemonize]}" 'BEGIN { printf "%+.3f ms", a - b }')
  fi
  confirmed=no
  [[ $name == detach ]] && confirmed=yes
  printf '%-20s %9s %9s %9s %14s %13s  %s\n' "$name" "${MEAN[$name]}" "${SD[$name]}" "${MIN[$name]}" "$diff" "$mdiff" "$confirmed"
done
if [[ -n ${MEAN[daemonize]:-} ]]; then
  awk -v a="${MEAN[detach]}" -v b="${MEAN[daemonize]}" \
    'BEGIN { printf "detach - daemonize (means): %+.3f ms (target: at most +0.5 ms)\n", a - b }'
fi
# The supervisors started above exit with their /bin/true; give them a moment
# before the log directory goes.
sleep 0.2
