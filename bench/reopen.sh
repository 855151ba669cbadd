#!/usr/bin/env bash
# bench/reopen.sh — reopen latency: the time from the signal that asks a
# logger for a new log file to the first byte in that new file, under a
# steady writer.
#
#   bench/reopen.sh [--smoke]
#
#   floor                             `reopen log LOG` (bench/reopen.c): the least a logger can
#                                     do (read, write; on SIGHUP close and open again at once)
#   detach --foreground --log LOG     mv LOG LOG.old, then SIGHUP (detach reopens LOG by path)
#   svlogd DIR                        SIGALRM (svlogd rotates DIR/current itself)
#   s6-log n2 s268435455 DIR          SIGALRM (same)
#   multilog n2 s16777215 DIR         SIGALRM (same)
# (libslack daemon has no reopen: its --output file stays open until it exits.)
#
# The writer is `reopen write` (bench/reopen.c): 100-byte lines, RATE lines a
# second, one write each; for every RATE in RATES (default "10000 0"; 0 means
# as fast as the logger takes them, in 64 KiB writes). `reopen measure` does
# COUNT (default 200) reopens INTERVAL_MS (default 20) apart and prints the
# median, 90th and 99th percentiles and the maximum, in microseconds. At a
# finite rate the figure includes the wait for the writer's next line (up to
# 1/RATE: 100 us at 10000 lines/s).
# The loggers that rotate on SIGALRM also fsync the finished file, by design:
# that is in their figure.
#
# Environment: COUNT, INTERVAL_MS, RATES, DETACH (a binary to use instead of
# building target/release/detach), BENCH_DIR, QUIET_WAIT (default 30).
# --smoke (or SMOKE=1): 10 reopens at 10000 lines/s, no waiting; exits
# non-zero if a logger misses a reopen (a timeout).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"
parse_args 0 "$@"
if [[ $SMOKE == 1 ]]; then
  COUNT=10 INTERVAL_MS=10 RATES=10000 QUIET_WAIT=0
else
  COUNT=${COUNT:-200} INTERVAL_MS=${INTERVAL_MS:-20} RATES=${RATES:-"10000 0"} QUIET_WAIT=${QUIET_WAIT:-30}
fi

WORK=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/detach-reopen.XXXXXX")
LOGGER=
cleanup() {
  if [[ -n $LOGGER ]]; then kill "$LOGGER" 2>/dev/null || true; fi
  wait || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap "exit 130" INT TERM

gcc -O2 -Wall -Wextra -o "$WORK/reopen" "$ROOT/bench/reopen.c"
DETACH=$(detach_binary)
H=$WORK/reopen

# run_tool NAME RATE: starts the logger NAME behind a writer at RATE, measures,
# stops it; prints the measurer's line.
run_tool() {
  local name=$1 rate=$2 dir=$WORK/$1 log sig mode out
  rm -rf "$dir"
  mkdir -p "$dir"
  case $name in
    floor)
      log=$dir/log sig=1 mode=mv
      "$H" write 100 "$rate" | "$H" log "$log" &
      ;;
    detach)
      log=$dir/log sig=1 mode=mv
      "$DETACH" --foreground --log "$log" -- "$H" write 100 "$rate" &
      ;;
    svlogd)
      log=$dir/current sig=14 mode=self
      printf 's0\nn2\n' >"$dir/config"
      "$H" write 100 "$rate" | svlogd "$dir" &
      ;;
    s6-log)
      log=$dir/current sig=14 mode=self
      "$H" write 100 "$rate" | s6-log n2 s268435455 "$dir" &
      ;;
    multilog)
      log=$dir/current sig=14 mode=self
      "$H" write 100 "$rate" | multilog n2 s16777215 "$dir" &
      ;;
  esac
  LOGGER=$!
  out=$("$H" measure "$log" "$LOGGER" "$sig" "$COUNT" "$INTERVAL_MS" "$mode") || out="measure failed"
  kill "$LOGGER" 2>/dev/null || true
  wait || true
  LOGGER=
  rm -rf "$dir"
  echo "$out"
}

TOOLS=(floor detach)
for t in svlogd s6-log multilog; do
  if command -v "$t" >/dev/null; then
    TOOLS+=("$t")
  else
    echo "reopen.sh: $t not installed (apt-get install -y runit s6 daemontools): skipped" >&2
  fi
done

echo "reopen: $COUNT reopens ${INTERVAL_MS} ms apart, 100-byte lines; detach: $DETACH"
machine_info
printf '%-9s %-10s %-12s %7s %7s %7s %8s %9s\n' tool signal "lines/s" "median" p90 p99 max timeouts
TIMEOUTS=0 busy=0 rounds=0
declare -A MED P99
for rate in $RATES; do
  for t in "${TOOLS[@]}"; do
    wait_quiet "$QUIET_WAIT" || busy=$((busy + 1))
    rounds=$((rounds + 1))
    line=$(run_tool "$t" "$rate")
    if [[ $line != n=* ]]; then
      echo "reopen.sh: $t: $line" >&2
      TIMEOUTS=$((TIMEOUTS + 1))
      continue
    fi
    # n=.. median_us=.. p90_us=.. p99_us=.. max_us=.. timeouts=..
    declare -A f=()
    for kv in $line; do f[${kv%%=*}]=${kv#*=}; done
    how="mv+HUP"
    [[ $t == detach || $t == floor ]] || how=ALRM
    printf '%-9s %-10s %-12s %5s us %4s us %4s us %5s us %9s\n' "$t" "$how" \
      "$([[ $rate == 0 ]] && echo max || echo "$rate")" \
      "${f[median_us]}" "${f[p90_us]}" "${f[p99_us]}" "${f[max_us]}" "${f[timeouts]}"
    TIMEOUTS=$((TIMEOUTS + f[timeouts]))
    MED[$t.$rate]=${f[median_us]} P99[$t.$rate]=${f[p99_us]}
    unset f
  done
done
((QUIET_WAIT == 0)) || echo "measured while the machine was busy (other load): $busy/$rounds"
for rate in $RATES; do
  echo "detach at $([[ $rate == 0 ]] && echo 'full speed' || echo "$rate lines/s"): median ${MED[detach.$rate]:-?} us, p99 ${P99[detach.$rate]:-?} us (target: under 1000 us)"
done
if ((TIMEOUTS)); then
  echo "reopen.sh: $TIMEOUTS reopen(s) timed out (no new byte within 2 s)" >&2
  exit 1
fi
