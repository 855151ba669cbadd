#!/usr/bin/env bash
# bench/threads.sh — where the CPU time of a rotation goes, thread by thread.
#
#   bench/threads.sh [SIZE_MB [ROTATE_SIZE]]     (defaults: 1024 and 1M)
#
# bench/pump.sh times whole pipelines; on a machine with 2 CPUs, a full-speed
# writer and the pump keep both busy, so any work of the file system's (a
# rotation's renames, deletion and creation) shows in the wall time wherever
# it runs. This script shows who does that work: it runs the writer under
# `detach --foreground --log FILE` with no rotation (c), with --rotate-size
# ROTATE_SIZE (cr) and with --rotate-compress too (cz), RUNS times each
# (default 5), under `perf record -e task-clock`, and prints the median CPU
# time of each thread: the pump ("detach: writer", the supervisor's main
# thread), detach-rotate (the archiver: renames, creation of the next file),
# detach-unlink (frees the deleted archives' pages), detach-gzip, and the
# writer. Needs perf (apt-get install -y linux-perf); not run by CI.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MB=${1:-1024}
ROTATE_SIZE=${2:-1M}
RUNS=${RUNS:-5}
command -v perf >/dev/null || { echo "threads.sh: perf is not installed (apt-get install -y linux-perf)" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/detach-threads.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
DETACH=${DETACH:-}
if [[ -z $DETACH ]]; then
  (cd "$ROOT" && cargo build --release --quiet)
  DETACH=$ROOT/target/release/detach
fi
gcc -O2 -Wall -Wextra -o "$WORK/writer" "$ROOT/bench/writer.c"
WRITER=("$WORK/writer" "$((SIZE_MB * 1048576))" 100 65536)

declare -A OPTS=([c]="" [cr]="--rotate-size $ROTATE_SIZE" [cz]="--rotate-size $ROTATE_SIZE --rotate-compress")
echo "threads: $SIZE_MB MiB of 100-byte lines, rotating at $ROTATE_SIZE, median CPU ms of $RUNS runs, files in $WORK"
printf '%-4s %10s %14s %14s %12s %10s %10s\n' variant pump detach-rotate detach-unlink detach-gzip writer wall
for v in c cr cz; do
  declare -A ms=()
  for ((r = 1; r <= RUNS; r++)); do
    rm -rf "$WORK/out" "$WORK"/out.* "$WORK"/.out.*
    sync
    start=$(date +%s%N)
    # shellcheck disable=SC2086 # OPTS holds several words on purpose
    perf record -q -e task-clock -o "$WORK/perf.data" -- "$DETACH" --foreground ${OPTS[$v]} --log "$WORK/out" -- "${WRITER[@]}"
    wall=$((($(date +%s%N) - start) / 1000000))
    ms[wall]+="$wall "
    while read -r period comm; do
      ms[$comm]+="$((period / 1000000)) "
    done < <(perf report -i "$WORK/perf.data" --stdio --sort comm -F period,comm 2>/dev/null |
      awk '!/^#/ && NF >= 2 { p = $1; $1 = ""; sub(/^ /, ""); gsub(/ /, "_"); print p, $0 }')
  done
  median() { tr ' ' '\n' <<<"${1:-}" | grep . | sort -n | awk '{ a[NR] = $1 } END { print NR ? a[int((NR + 1) / 2)] : "-" }'; }
  printf '%-4s %10s %14s %14s %12s %10s %10s\n' "$v" "$(median "${ms[detach:_writer]:-}")" \
    "$(median "${ms[detach-rotate]:-}")" "$(median "${ms[detach-unlink]:-}")" "$(median "${ms[detach-gzip]:-}")" \
    "$(median "${ms[writer]:-}")" "$(median "${ms[wall]}")"
  unset ms
done
echo "(wall includes perf's own start and end; compare the rows, not with pump.sh)"
