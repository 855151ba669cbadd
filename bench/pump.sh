#!/usr/bin/env bash
# bench/pump.sh — throughput of detach's log pump against `cat`.
#
#   bench/pump.sh [--smoke] [SIZE_MB [LINE_LEN]]
#
# A writer (bench/writer.c) prints SIZE_MB MiB (default 268) of LINE_LEN-byte
# lines (default 100) in WRITE_SIZE-byte writes (default 65536), and its
# output goes:
#   a) straight to a file                  writer > file
#   b) through cat                         writer | cat > file
#   c) through detach's supervisor         detach --foreground --log file -- writer
#   d) as c, with a SIGHUP (reopen) every ROTATE_MS ms (default 10), same path
#   e) as c, with `mv file file.N` + SIGHUP every ROTATE_MS ms (a real rotation)
# The variants alternate (a b c d e, a b c d e, ...) for RUNS rounds (default
# 5). Each run reports wall time and the user+sys CPU time of the whole
# pipeline (bash's `time`, millisecond precision), and the peak RSS (GNU time
# %M) of the logger: cat or detach, or of the writer itself for a). The medians
# and the ratios to b) are printed as a table. The output of every variant is
# checked once against a)'s (for e, the rotated pieces concatenated in order).
#
# Environment: RUNS, WRITE_SIZE, ROTATE_MS, BENCH_DIR (where the output files
# go; default a temp dir under $TMPDIR or /tmp), DETACH (a detach binary to use
# instead of building target/release/detach), SMOKE=1 (same as --smoke),
# QUIET_WAIT (default 30): before each round, wait up to that many seconds for
# the CPUs to be at least 90% idle over 0.3 s (0: don't wait); the rounds that
# started on a busy machine are counted in the output.
#
# --smoke: 4 MiB, 1 round, then bench/startup.sh --smoke; takes a few seconds
# and exits non-zero if any output differs. CI runs it so the script cannot rot.
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

SMOKE=${SMOKE:-0}
positional=()
for arg in "$@"; do
  case $arg in
    --smoke) SMOKE=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "pump.sh: unknown option $arg" >&2; exit 64 ;;
    *) positional+=("$arg") ;;
  esac
done
if [[ $SMOKE == 1 ]]; then
  SIZE_MB=${positional[0]:-4}
  RUNS=1
else
  SIZE_MB=${positional[0]:-268}
  RUNS=${RUNS:-5}
fi
LINE_LEN=${positional[1]:-100}
WRITE_SIZE=${WRITE_SIZE:-65536}
ROTATE_MS=${ROTATE_MS:-10}
QUIET_WAIT=${QUIET_WAIT:-30}
[[ $SMOKE == 1 ]] && QUIET_WAIT=0
TOTAL=$((SIZE_MB * 1024 * 1024))
# The writer writes whole lines only: this many bytes arrive in the file.
BYTES=$((TOTAL / LINE_LEN * LINE_LEN))

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"
GNU_TIME=/usr/bin/time
if ! "$GNU_TIME" -f %M true 2>/dev/null; then
  echo "pump.sh: GNU time is needed for peak RSS (apt-get install -y time)" >&2
  exit 69
fi

# Work directory: the writer binary, the output files, the timings. Output
# files stay on one file system for every variant.
WORK=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/detach-pump.XXXXXX")
ROTATOR_PID=
cleanup() {
  if [[ -n $ROTATOR_PID ]]; then kill "$ROTATOR_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap "exit 130" INT TERM # so that cleanup runs on ^C or kill too

# --- build ------------------------------------------------------------------
gcc -O2 -Wall -Wextra -o "$WORK/writer" "$ROOT/bench/writer.c"
DETACH=$(detach_binary)
WRITER=("$WORK/writer" "$TOTAL" "$LINE_LEN" "$WRITE_SIZE")

# --- the rotator (variants d and e) -------------------------------------------
# Waits for detach's pidfile, then every ROTATE_MS: optionally renames the log
# to LOG.000001, LOG.000002, ..., and sends SIGHUP. Once detach is gone it
# idles until the STOP file appears (created after the timed pipeline ended),
# then writes how many reopens it asked for and exits: so it never exits, and
# is never reaped, inside the timed window, and its CPU time is not counted in
# the pipeline's. (No signal traps: a TERM landing between two builtins could
# be lost, and the rotator would block for ever.)
# Sleeps with `read -t` on a FIFO nobody writes to: no fork per tick.
rotator() {
  local pidfile=$1 log=$2 rename=$3 count_file=$4 stop=$5
  local pid="" n=0 tick tick_s
  tick_s=$(printf '0.%03d' "$ROTATE_MS")
  ((ROTATE_MS < 1000)) || tick_s=$((ROTATE_MS / 1000))
  mkfifo "$WORK/tick.$BASHPID"
  exec {tick}<>"$WORK/tick.$BASHPID"
  until [[ -e $stop ]] || { [[ -s $pidfile ]] && pid=$(<"$pidfile") && [[ -n $pid ]]; }; do
    read -r -t 0.001 -u "$tick" || true
  done
  while [[ -n $pid && ! -e $stop ]]; do
    if [[ $rename == 1 ]]; then
      mv -- "$log" "$(printf '%s.%06d' "$log" $((n + 1)))" 2>/dev/null || true
    fi
    kill -HUP "$pid" 2>/dev/null || break # detach is gone
    n=$((n + 1))
    read -r -t "$tick_s" -u "$tick" || true
  done
  until [[ -e $stop ]]; do read -r -t "$tick_s" -u "$tick" || true; done
  echo "$n" >"$count_file"
}

# --- one measured run -----------------------------------------------------------
# run_variant V OUT: runs variant V writing to OUT; appends
# "wall user sys rss" to $WORK/res.V. The timed command is one `sh -c` for all
# variants, so that the shell's own cost is the same in every row.
TIMEFORMAT='%3R %3U %3S'
run_variant() {
  local v=$1 out=$2 rss=$WORK/rss t=$WORK/time status=0
  local pidfile=$WORK/detach.pid stop=$WORK/stop
  rm -f "$rss" "$t" "$pidfile" "$stop"
  ROTATOR_PID=
  case $v in
    d) rotator "$pidfile" "$out" 0 "$WORK/rotations.d" "$stop" & ROTATOR_PID=$! ;;
    e) rotator "$pidfile" "$out" 1 "$WORK/rotations.e" "$stop" & ROTATOR_PID=$! ;;
  esac
  # In the script: $0 = GNU time, $1 = rss file, $2 = out, $3 = detach,
  # $4 = pidfile, $5... = the writer's command line.
  local script
  case $v in
    a) script='r=$1 o=$2; shift 4; exec "$0" -o "$r" -f %M "$@" > "$o"' ;;
    b) script='r=$1 o=$2; shift 4; "$@" | "$0" -o "$r" -f %M cat > "$o"' ;;
    c) script='r=$1 o=$2 d=$3; shift 4; exec "$0" -o "$r" -f %M "$d" --foreground --log "$o" -- "$@"' ;;
    d | e) script='r=$1 o=$2 d=$3 p=$4; shift 4; exec "$0" -o "$r" -f %M "$d" --foreground --log "$o" --pidfile "$p" -- "$@"' ;;
  esac
  { time sh -c "$script" "$GNU_TIME" "$rss" "$out" "$DETACH" "$pidfile" "${WRITER[@]}" 2>"$WORK/stderr.$v" || status=$?; } 2>"$t"
  if [[ -n $ROTATOR_PID ]]; then
    touch "$stop"
    wait "$ROTATOR_PID" || true
    ROTATOR_PID=
  fi
  if ((status != 0)); then
    echo "pump.sh: variant $v failed with status $status:" >&2
    cat "$WORK/stderr.$v" >&2
    exit 1
  fi
  echo "$(tail -n 1 "$t") $(tail -n 1 "$rss")" >>"$WORK/res.$v"
}

# verify V OUT: the output of variant V is exactly a)'s; prints why not.
FAILED=0
verify() {
  local v=$1 out=$2 pieces=()
  if [[ $v == e ]]; then
    # The rotated pieces in order, then the live file (if the last rename
    # was not followed by a reopen, there is none).
    mapfile -t pieces < <(ls "$out".?????? 2>/dev/null | sort)
    [[ -e $out ]] && pieces+=("$out")
    echo "  e) $(( ${#pieces[@]} )) files"
    if cat "${pieces[@]}" | cmp -s - "$WORK/ref"; then return; fi
  elif cmp -s "$out" "$WORK/ref"; then
    return
  fi
  echo "pump.sh: VERIFY FAILED for variant $v ($(cat "$out"* 2>/dev/null | wc -c) bytes, want $BYTES)" >&2
  FAILED=1
}

# --- the rounds -------------------------------------------------------------------
VARIANTS=(a b c d e)
declare -A LABEL=(
  [a]="a) writer > file"
  [b]="b) writer | cat > file"
  [c]="c) detach --foreground --log"
  [d]="d) c + HUP every ${ROTATE_MS} ms"
  [e]="e) c + mv+HUP every ${ROTATE_MS} ms"
)
echo "pump: $SIZE_MB MiB of $LINE_LEN-byte lines in $WRITE_SIZE-byte writes, $RUNS rounds, files in $WORK"
echo "      detach: $DETACH"
echo "      $(machine_info)"
BUSY_ROUNDS=0
for ((r = 1; r <= RUNS; r++)); do
  wait_quiet "$QUIET_WAIT" || BUSY_ROUNDS=$((BUSY_ROUNDS + 1))
  for v in "${VARIANTS[@]}"; do
    out=$WORK/out.$v
    rm -f "$out" "$out".*
    sync # no write-back of an earlier run's file during this one
    run_variant "$v" "$out"
    if ((r == 1)); then
      if [[ $v == a ]]; then mv "$out" "$WORK/ref"; else verify "$v" "$out"; fi
    fi
    rm -f "$out" "$out".*
  done
  echo "  round $r/$RUNS done"
done
rm -f "$WORK/ref"

# --- the table ----------------------------------------------------------------------
# median FILE COLUMN...: the median of the sum of the given columns.
median() {
  local file=$1; shift
  awk -v cols="$*" '{ s = 0; n = split(cols, c, " "); for (i = 1; i <= n; i++) s += $c[i]; print s }' "$file" |
    sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
declare -A WALL CPU USR SYS RSS
for v in "${VARIANTS[@]}"; do
  WALL[$v]=$(median "$WORK/res.$v" 1)
  USR[$v]=$(median "$WORK/res.$v" 2)
  SYS[$v]=$(median "$WORK/res.$v" 3)
  CPU[$v]=$(median "$WORK/res.$v" 2 3)
  RSS[$v]=$(median "$WORK/res.$v" 4)
done
echo
((QUIET_WAIT == 0)) || echo "rounds started while the machine was busy (other load): $BUSY_ROUNDS/$RUNS"
echo "Medians of $RUNS runs; CPU = user+sys of the whole pipeline; RSS = peak of the logger (row a: the writer)"
printf '%-32s %8s %8s %8s %7s %7s %9s %9s %8s\n' variant "wall s" "MB/s" "CPU s" "user" "sys" "RSS KiB" "wall/cat" "CPU/cat"
for v in "${VARIANTS[@]}"; do
  printf '%-32s %8.3f %8.0f %8.3f %7.3f %7.3f %9d %9.2f %8.2f\n' "${LABEL[$v]}" "${WALL[$v]}" \
    "$(awk -v b="$BYTES" -v w="${WALL[$v]}" 'BEGIN { print b / 1e6 / w }')" \
    "${CPU[$v]}" "${USR[$v]}" "${SYS[$v]}" "${RSS[$v]%.*}" \
    "$(awk -v x="${WALL[$v]}" -v y="${WALL[b]}" 'BEGIN { print x / y }')" \
    "$(awk -v x="${CPU[$v]}" -v y="${CPU[b]}" 'BEGIN { print x / y }')"
done
echo
for v in d e; do
  awk -v label="${LABEL[$v]}" -v x="${WALL[$v]}" -v y="${WALL[c]}" -v cx="${CPU[$v]}" -v cy="${CPU[c]}" \
    -v n="$(cat "$WORK/rotations.$v" 2>/dev/null || echo '?')" \
    'BEGIN { printf "rotation cost, %s: wall %+.1f%%, CPU %+.1f%% vs c) (%s reopens in the last run)\n",
             label, (x / y - 1) * 100, (cx / cy - 1) * 100, n }'
done

if ((FAILED)); then
  echo "pump.sh: output verification FAILED" >&2
  exit 1
fi
echo "output verified: b, c, d and e wrote exactly a)'s $BYTES bytes"

if [[ $SMOKE == 1 ]]; then
  echo
  DETACH=$DETACH "$ROOT/bench/startup.sh" --smoke
fi
