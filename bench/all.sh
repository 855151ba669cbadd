#!/usr/bin/env bash
# bench/all.sh — every benchmark of issue 7, one after the other, with the
# output kept:
#
#   bench/all.sh
#
#   bench/pump.sh 268 100, 268 10 and 268 4096    throughput, CPU, peak RSS vs cat and the peers
#   bench/startup.sh                              start-up latency
#   bench/reopen.sh                               reopen latency
#   bench/plot.py                                 throughput.png (if matplotlib is installed)
#
# Each report goes to OUT (default target/bench), as pump-100.txt, pump-10.txt,
# pump-4096.txt, startup.txt, reopen.txt, with the pump medians in pump.tsv.
# Environment: OUT, PUMP_RUNS (default 7: RUNS of pump.sh), SIZE_MB (default
# 268), and what each script reads (QUIET_WAIT, DETACH, BENCH_DIR, ...).
# Takes about 15 minutes on 2 cores, a third of it svlogd with 10-byte lines.
# Needs: apt-get install -y gcc time hyperfine daemonize daemon s6 runit daemontools
# (and python3-matplotlib for the plot).
set -euo pipefail

for arg in "$@"; do
  case $arg in
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "all.sh: unknown argument $arg" >&2; exit 64 ;;
  esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"
OUT=${OUT:-$ROOT/target/bench}
mkdir -p "$OUT"
rm -f "$OUT/pump.tsv"
DETACH=$(detach_binary)
export DETACH

for len in 100 10 4096; do
  RUNS=${PUMP_RUNS:-7} TSV=$OUT/pump.tsv "$ROOT/bench/pump.sh" "${SIZE_MB:-268}" "$len" | tee "$OUT/pump-$len.txt"
  echo
done
"$ROOT/bench/startup.sh" | tee "$OUT/startup.txt"
echo
"$ROOT/bench/reopen.sh" | tee "$OUT/reopen.txt"
# Debian's python3-matplotlib is for /usr/bin/python3, which another python3
# (pyenv, a venv) may hide.
for py in python3 /usr/bin/python3 ""; do
  [[ -n $py ]] && "$py" -c 'import matplotlib' 2>/dev/null && break
done
if [[ -n $py ]]; then
  "$py" "$ROOT/bench/plot.py" "$OUT/pump.tsv" "$OUT/throughput.png"
  echo "plot: $OUT/throughput.png"
else
  echo "all.sh: no matplotlib (apt-get install -y python3-matplotlib): no plot" >&2
fi
echo "reports in $OUT"
