#!/usr/bin/env bash
# bench/syslog.sh — TCP and TLS syslog throughput of detach against util-linux logger.
#
#   bench/syslog.sh [--smoke] [LINES]
#
# Starts an rsyslogd of its own (imtcp on a free 127.0.0.1 port, and, with
# rsyslog-gnutls and openssl installed, a TLS imtcp input with certificates
# made here; every message written with the template "%msg%\n" to one file per
# tag), makes a file of LINES (default 200000) 100-byte lines, and sends it to
# that rsyslogd:
#   a) logger --tcp --octet-count -f FILE     (util-linux, RFC 5424, RFC 6587)
#   b) detach --foreground --syslog-server tcp://... --log-buffer B -- cat FILE
#      B (256 bytes a line, in MiB) holds every message: cat outruns any
#      collector, and detach, which never blocks the command, would otherwise
#      drop the oldest messages past its default 4 MiB bound (and say so).
#   c) the same as b) over tls://localhost:PORT (RFC 5425, the CA made here).
# Each run is timed from the start of the sender until all LINES messages are
# in rsyslogd's output file (polled every 10 ms), then checked against FILE;
# the sender's CPU time (user + system, GNU time; for detach that includes
# cat's, the same in b and c) is divided by LINES.
# The variants alternate for RUNS rounds (default 3); the medians are printed
# in lines/s and CPU microseconds per line, with the ratio detach/logger
# (above 1: detach is faster).
# Then one run of b) with the default --log-buffer: how many lines arrived,
# and how many detach's own "dropped N lines" messages account for.
#
# Environment: RUNS, BENCH_DIR (where the files go; default a temp dir under
# $TMPDIR or /tmp), DETACH (a detach binary to use instead of building
# target/release/detach), SMOKE=1 (same as --smoke).
#
# --smoke: 2000 lines, 1 round; exits non-zero if any output differs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"
parse_args 1 "$@"
if [[ $SMOKE == 1 ]]; then
  LINES=${positional[0]:-2000}
  RUNS=1
else
  LINES=${positional[0]:-200000}
  RUNS=${RUNS:-3}
fi


RSYSLOGD=$(PATH=$PATH:/usr/sbin:/sbin command -v rsyslogd || true)
if [[ -z $RSYSLOGD ]]; then
  echo "syslog.sh: rsyslogd is needed (apt-get install -y rsyslog)" >&2
  exit 69
fi
if ! logger --help 2>/dev/null | grep -q -- --octet-count; then
  echo "syslog.sh: util-linux logger with --octet-count is needed" >&2
  exit 69
fi
DETACH=$(detach_binary tls)
TIME=$(command -v /usr/bin/time || true)
if [[ -z $TIME ]]; then
  echo "syslog.sh: GNU time is needed (apt-get install -y time)" >&2
  exit 69
fi

WORK=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/detach-syslog.XXXXXX")
RSYSLOG_PID=
cleanup() {
  if [[ -n $RSYSLOG_PID ]]; then kill "$RSYSLOG_PID" 2>/dev/null || true; wait "$RSYSLOG_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap "exit 130" INT TERM

# --- the collector ----------------------------------------------------------
# TLS when rsyslog's gtls driver and openssl are there: a CA and a certificate
# for localhost, EC P-256 (as the tests make them).
TLS_INPUT=
if compgen -G "/usr/lib/*/rsyslog/lmnsd_gtls.so" >/dev/null && command -v openssl >/dev/null; then
  (
    cd "$WORK"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=bench CA" \
      -keyout ca.key -out ca.pem
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -keyout server.key -out server.csr
    printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile server.ext -out server.pem
  ) 2>"$WORK/openssl.log"
  TLS_INPUT="input(type=\"imtcp\" address=\"127.0.0.1\" port=\"0\" listenPortFileName=\"$WORK/tls.port\" ruleset=\"bench\"
  streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"anon\" streamDriver.CAFile=\"$WORK/ca.pem\"
  streamDriver.CertFile=\"$WORK/server.pem\" streamDriver.KeyFile=\"$WORK/server.key\")"
else
  echo "syslog.sh: no TLS variant: it needs rsyslog-gnutls and openssl" >&2
fi
cat >"$WORK/rsyslog.conf" <<EOF
global(workDirectory="$WORK" maxMessageSize="64k")
# One worker: the output keeps the order received (more reorder whole batches).
main_queue(queue.workerThreads="1")
module(load="imtcp")
template(name="bench_file" type="string" string="$WORK/out-%programname%.log")
template(name="bench_msg" type="string" string="%msg%\n")
ruleset(name="bench") {
    action(type="omfile" dynaFile="bench_file" template="bench_msg")
}
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="$WORK/tcp.port" ruleset="bench")
$TLS_INPUT
action(type="omfile" file="$WORK/internal.log")
EOF
"$RSYSLOGD" -n -f "$WORK/rsyslog.conf" -i "$WORK/rsyslogd.pid" 2>"$WORK/rsyslogd.stderr" &
RSYSLOG_PID=$!
ports_ready() { [[ -s $WORK/tcp.port ]] && { [[ -z $TLS_INPUT ]] || [[ -s $WORK/tls.port ]]; }; }
for _ in $(seq 500); do
  ports_ready && break
  sleep 0.01
done
if ! ports_ready || [[ -s $WORK/rsyslogd.stderr ]]; then
  echo "syslog.sh: rsyslogd did not start:" >&2
  cat "$WORK/rsyslogd.stderr" >&2
  exit 70
fi
PORT=$(cat "$WORK/tcp.port")
VARIANTS=(logger detach)
if [[ -n $TLS_INPUT ]]; then
  TLS_PORT=$(cat "$WORK/tls.port")
  VARIANTS+=(detach-tls)
fi

# --- the lines --------------------------------------------------------------
# Line i: "line " and i zero-padded to 12 digits, then x's: 99 bytes and \n.
awk -v n="$LINES" 'BEGIN { pad = sprintf("%86s", ""); gsub(/ /, "x", pad); for (i = 0; i < n; i++) printf "line %012d%s\n", i, pad }' \
  >"$WORK/lines"

BUFFER=$((LINES * 256 / 1048576 + 1))M

now_ns() { date +%s%N; }

# run VARIANT ROUND: sends the lines, prints the microseconds until all
# arrived and the sender's CPU microseconds.
run() {
  local variant=$1 round=$2 tag out start end
  tag=bench-$variant-$round
  out=$WORK/out-$tag.log
  start=$(now_ns)
  case $variant in
    logger)
      "$TIME" -o "$WORK/cpu" -f "%U %S" \
        logger --tcp --server 127.0.0.1 --port "$PORT" --octet-count -t "$tag" -f "$WORK/lines" ;;
    detach)
      "$TIME" -o "$WORK/cpu" -f "%U %S" "$DETACH" --foreground --syslog-server "tcp://127.0.0.1:$PORT" \
        --syslog-tag "$tag" --log-buffer "$BUFFER" -- cat "$WORK/lines" ;;
    detach-tls)
      "$TIME" -o "$WORK/cpu" -f "%U %S" "$DETACH" --foreground --syslog-server "tls://localhost:$TLS_PORT" \
        --syslog-ca "$WORK/ca.pem" --syslog-tag "$tag" --log-buffer "$BUFFER" -- cat "$WORK/lines" ;;
  esac
  local deadline=$((SECONDS + 120))
  while [[ ! -e $out ]] || (($(wc -l <"$out") < LINES)); do
    if ((SECONDS > deadline)); then
      echo "syslog.sh: $variant: only $(wc -l <"$out" 2>/dev/null || echo 0) of $LINES lines arrived" >&2
      exit 1
    fi
    sleep 0.01
  done
  end=$(now_ns)
  # A leading BOM (RFC 5424 allows one) is not part of the line.
  if ! sed 's/^\xEF\xBB\xBF//' "$out" | cmp -s - "$WORK/lines"; then
    echo "syslog.sh: $variant: rsyslogd's output differs from the lines sent:" >&2
    sed 's/^\xEF\xBB\xBF//' "$out" | cmp - "$WORK/lines" >&2 || true
    exit 1
  fi
  rm -f "$out"
  echo $(((end - start) / 1000)) "$(awk '{ printf "%d", ($1 + $2) * 1e6 }' "$WORK/cpu")"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

machine_info
echo "$("$RSYSLOGD" -v | head -1 | sed "s/ compiled with://;s/  / /"); $(logger --version)"
echo "$LINES lines of 100 bytes over TCP to 127.0.0.1:$PORT${TLS_PORT:+ and TLS to localhost:$TLS_PORT}, $RUNS rounds"
declare -A times cpus
for round in $(seq "$RUNS"); do
  for variant in "${VARIANTS[@]}"; do
    read -r us cpu < <(run "$variant" "$round")
    times[$variant]+="$us "
    cpus[$variant]+="$cpu "
    awk -v r="$round" -v v="$variant" -v us="$us" -v cpu="$cpu" -v n="$LINES" \
      'BEGIN { printf "  round %d %-10s %8.3f s %10.0f lines/s %7.2f us CPU/line\n", r, v, us / 1e6, n * 1e6 / us, cpu / n }'
  done
done
med() { tr ' ' '\n' <<<"$1" | grep . | median; }
printf "%-38s %10s %12s %14s\n" "median of $RUNS" seconds lines/s "us CPU/line"
declare -A label=([logger]="a) logger --tcp --octet-count" [detach]="b) detach --syslog-server tcp://" [detach-tls]="c) detach --syslog-server tls://")
for variant in "${VARIANTS[@]}"; do
  awk -v l="${label[$variant]}" -v n="$LINES" -v us="$(med "${times[$variant]}")" -v cpu="$(med "${cpus[$variant]}")" \
    'BEGIN { printf "%-38s %10.3f %12.0f %14.2f\n", l, us / 1e6, n * 1e6 / us, cpu / n }'
done
logger_us=$(med "${times[logger]}")
for variant in "${VARIANTS[@]:1}"; do
  awk -v v="$variant" -v a="$logger_us" -v b="$(med "${times[$variant]}")" \
    'BEGIN { printf "ratio %s/logger (throughput): %.2f\n", v, a / b }'
done

# The default bound: what arrives, and what detach says it dropped.
if [[ $SMOKE != 1 ]]; then
  tag=bench-default
  "$DETACH" --foreground --syslog-server "tcp://127.0.0.1:$PORT" --syslog-tag "$tag" -- cat "$WORK/lines"
  arrived=0 dropped=0
  deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)); do
    arrived=$(wc -l <"$WORK/out-$tag.log" 2>/dev/null || echo 0)
    dropped=$(awk '{ for (i = 1; i < NF; i++) if ($i == "dropped" && $(i + 2) == "lines") n += $(i + 1) } END { print n + 0 }' \
      "$WORK/out-detach.log" 2>/dev/null || echo 0)
    ((arrived + dropped >= LINES)) && break
    sleep 0.05
  done
  echo "default --log-buffer (4 MiB): $arrived of $LINES lines arrived; detach reported $dropped dropped"
fi
