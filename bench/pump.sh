#!/usr/bin/env bash
# bench/pump.sh — throughput of detach's log pump against `cat` and the peers.
#
#   bench/pump.sh [--smoke] [SIZE_MB [LINE_LEN]]
#
# A writer (bench/writer.c) prints SIZE_MB MiB (default 268) of LINE_LEN-byte
# lines (default 100) in WRITE_SIZE-byte writes (default 65536), and its
# output goes:
#   a)  straight to a file                 writer > file
#   b)  through cat                        writer | cat > file
#   c)  through detach's supervisor        detach --foreground --log file -- writer
#   c1) as c, with a SIGHUP (reopen) every ROTATE_MS ms (default 10), same path
#   c2) as c, with `mv file file.N` + SIGHUP every ROTATE_MS ms (a real rotation)
#   ct) as c, with --timestamp (iso: local time, microseconds, offset)
#   cr) as c, with --rotate-size ROTATE_SIZE (default 1M; --rotate-keep's default 10)
#   cz) as cr, with --rotate-compress (gzip in detach's background thread)
#   h)  the floor: the least a logger can do  writer | reopen log file (bench/reopen.c)
#   h2) as h, with `mv file file.N` + SIGHUP every ROTATE_MS ms: what a rotation
#       costs any logger on this file system
#   hr) as h, rotating by size as cr does (reopen sizelog file SIZE 10: the
#       same renames, deletion and creation, without looking first): what
#       rotating every ROTATE_SIZE with 10 archives costs any logger here
# and, for each peer that is installed (PEERS=0: none of them):
#   d)  libslack daemon                    daemon --unsafe --foreground --output=file -- writer
#       (--foreground also copies the output to daemon's stdout: /dev/null here;
#       --unsafe: the writer lives under /tmp, which daemon refuses otherwise)
#   e)  s6-log                             writer | s6-log n1000 s268435455 dir
#   et) s6-log with timestamps (TAI64N)    writer | s6-log t n1000 s268435455 dir
#   f)  svlogd (runit)                     writer | svlogd dir     (dir/config: s0)
#   g)  multilog (daemontools)             writer | multilog n1000 s16777215 dir
# e, f and g write dir/current, without timestamps (et: with). Their largest file sizes
# are 256 MiB - 1 (s6-log) and 16 MiB - 1 (multilog): past those they rotate
# (and fsync) like they would in use; the check concatenates the pieces.
# The variants alternate (a b c c1 c2 ct cr cz h h2 hr d e et f g, a b ...) for RUNS rounds
# (default 7). Each run reports wall time and the user+sys CPU time of the
# whole pipeline (bash's `time`, millisecond precision), and the peak RSS (GNU
# time %M) of the logger, or of the writer itself for a). The medians and the
# ratios to b) are printed as a table, then the costs of rotation (c1, c2,
# h2, cr, hr against no rotation, cz against cr) and of timestamps (ct, et against
# cat). The output of every variant is checked once against a)'s: for c2 and
# the log directories, the pieces concatenated in order; for ct and et, each
# line with its stamp (first field and its space) removed; for cr, cz and hr, the
# archives from oldest to newest (gunzipped when .gz) then the current file,
# which must be exactly the end of a)'s output, starting at a line (the
# archives past --rotate-keep are deleted: with 10 of 1 MiB, the last 10 to 11
# MiB), every archive ending with a newline and within ROTATE_SIZE, no .tmp left.
#
# Environment: RUNS, WRITE_SIZE, ROTATE_MS, ROTATE_SIZE, BENCH_DIR (where the output files
# go; default a temp dir under $TMPDIR or /tmp), DETACH (a detach binary to use
# instead of building target/release/detach), SMOKE=1 (same as --smoke),
# PEERS=0 (detach and cat only), TSV (a file to append the medians to, for
# bench/plot.py), QUIET_WAIT (default 30): before each round, wait up to that
# many seconds for the CPUs to be at least 90% idle over 0.3 s (0: don't
# wait); the rounds that started on a busy machine are counted in the output.
#
# --smoke: 4 MiB, 1 round, then bench/startup.sh --smoke and bench/reopen.sh
# --smoke; takes a few seconds and exits non-zero if any output differs. CI
# runs it so the scripts cannot rot. Peers that are not installed are skipped,
# each with a message saying which package brings it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"
parse_args 2 "$@"
if [[ $SMOKE == 1 ]]; then
  SIZE_MB=${positional[0]:-4}
  RUNS=1
else
  SIZE_MB=${positional[0]:-268}
  RUNS=${RUNS:-7}
fi
LINE_LEN=${positional[1]:-100}
WRITE_SIZE=${WRITE_SIZE:-65536}
ROTATE_MS=${ROTATE_MS:-10}
ROTATE_SIZE=${ROTATE_SIZE:-1M}
export ROTATE_SIZE # read by the timed scripts of cr, cz and hr
QUIET_WAIT=${QUIET_WAIT:-30}
[[ $SMOKE == 1 ]] && QUIET_WAIT=0
TOTAL=$((SIZE_MB * 1024 * 1024))
# The writer writes whole lines only: this many bytes arrive in the file.
BYTES=$((TOTAL / LINE_LEN * LINE_LEN))

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
gcc -O2 -Wall -Wextra -o "$WORK/reopen" "$ROOT/bench/reopen.c"
DETACH=$(detach_binary)
WRITER=("$WORK/writer" "$TOTAL" "$LINE_LEN" "$WRITE_SIZE")

# --- the rotator (variants c1 and c2) ------------------------------------------
# `reopen rotate` (bench/reopen.c) waits for detach's pidfile, then every
# ROTATE_MS: renames the log to LOG.000001, LOG.000002, ... (c2 only), and
# sends SIGHUP, until detach is gone. It then waits for the STOP file (created
# after the timed pipeline ended) and writes how many reopens it asked for:
# so it never exits, and is never reaped, inside the timed window, and its CPU
# time is not counted in the pipeline's.
rotator() {
  "$WORK/reopen" rotate "$1" "$2" "$ROTATE_MS" "$3" "$5" >"$4"
}

# --- one measured run -----------------------------------------------------------
# run_variant V OUT: runs variant V writing to OUT (a file, or for e, f and g a
# log directory); appends "wall user sys rss" to $WORK/res.V. The timed command
# is one `sh -c` for all variants, so that the shell's own cost is the same in
# every row.
TIMEFORMAT='%3R %3U %3S'
run_variant() {
  local v=$1 out=$2 rss=$WORK/rss t=$WORK/time status=0
  local pidfile=$WORK/detach.pid stop=$WORK/stop
  rm -f "$rss" "$t" "$pidfile" "$stop"
  ROTATOR_PID=
  case $v in
    c1) rotator "$pidfile" "$out" 0 "$WORK/rotations.c1" "$stop" & ROTATOR_PID=$! ;;
    c2) rotator "$pidfile" "$out" 1 "$WORK/rotations.c2" "$stop" & ROTATOR_PID=$! ;;
    h2) rotator "$pidfile" "$out" 1 "$WORK/rotations.h2" "$stop" & ROTATOR_PID=$! ;;
    f) mkdir "$out" && echo s0 >"$out/config" ;; # s0: svlogd never rotates
  esac
  # In the script: $0 = GNU time, $1 = rss file, $2 = out, $3 = detach,
  # $4 = pidfile, $5... = the writer's command line.
  local script
  case $v in
    a) script='r=$1 o=$2; shift 4; exec "$0" -o "$r" -f %M "$@" > "$o"' ;;
    b) script='r=$1 o=$2; shift 4; "$@" | "$0" -o "$r" -f %M cat > "$o"' ;;
    c) script='r=$1 o=$2 d=$3; shift 4; exec "$0" -o "$r" -f %M "$d" --foreground --log "$o" -- "$@"' ;;
    c1 | c2) script='r=$1 o=$2 d=$3 p=$4; shift 4; exec "$0" -o "$r" -f %M "$d" --foreground --log "$o" --pidfile "$p" -- "$@"' ;;
    ct) script='r=$1 o=$2 d=$3; shift 4; exec "$0" -o "$r" -f %M "$d" --foreground --timestamp --log "$o" -- "$@"' ;;
    cr) script='r=$1 o=$2 d=$3; shift 4; exec "$0" -o "$r" -f %M "$d" --foreground --rotate-size "$ROTATE_SIZE" --log "$o" -- "$@"' ;;
    cz) script='r=$1 o=$2 d=$3; shift 4; exec "$0" -o "$r" -f %M "$d" --foreground --rotate-size "$ROTATE_SIZE" --rotate-compress --log "$o" -- "$@"' ;;
    h) script='r=$1 o=$2; shift 4; "$@" | "$0" -o "$r" -f %M "${1%/*}/reopen" log "$o"' ;;
    h2) script='r=$1 o=$2 p=$4; shift 4; "$@" | "$0" -o "$r" -f %M "${1%/*}/reopen" log "$o" "$p"' ;;
    hr) script='r=$1 o=$2; shift 4; "$@" | "$0" -o "$r" -f %M "${1%/*}/reopen" sizelog "$o" "$ROTATE_BYTES" 10' ;;
    d) script='r=$1 o=$2; shift 4; exec "$0" -o "$r" -f %M daemon --unsafe --foreground --output="$o" -- "$@" > /dev/null' ;;
    e) script='r=$1 o=$2; shift 4; "$@" | "$0" -o "$r" -f %M s6-log n1000 s268435455 "$o"' ;;
    et) script='r=$1 o=$2; shift 4; "$@" | "$0" -o "$r" -f %M s6-log t n1000 s268435455 "$o"' ;;
    f) script='r=$1 o=$2; shift 4; "$@" | "$0" -o "$r" -f %M svlogd "$o"' ;;
    g) script='r=$1 o=$2; shift 4; "$@" | "$0" -o "$r" -f %M multilog n1000 s16777215 "$o"' ;;
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

# bytes SIZE: SIZE (with a K, M or G suffix, as --rotate-size takes it) in bytes.
bytes() {
  local n=${1%[KkMmGg]}
  case ${1: -1} in
    K | k) echo $((n << 10)) ;;
    M | m) echo $((n << 20)) ;;
    G | g) echo $((n << 30)) ;;
    *) echo "$n" ;;
  esac
}
ROTATE_BYTES=$(bytes "$ROTATE_SIZE")
export ROTATE_BYTES # hr's size

# verify_rotated V OUT: the archives of cr, cz or hr (OUT.N[.gz], oldest first)
# then OUT are exactly the end of a)'s output, from a line start; each archive
# ends with a newline and holds at most ROTATE_SIZE bytes; no .tmp is left.
verify_rotated() {
  local v=$1 out=$2 pieces=() p n size max=$ROTATE_BYTES gz why=""
  mapfile -t pieces < <(ls "$out".* 2>/dev/null | grep -E '\.[0-9]+(\.gz)?$' |
    awk '{ n = $0; sub(/\.gz$/, "", n); sub(/.*\./, "", n); print n "\t" $0 }' | sort -rn | cut -f2)
  gz=$(printf '%s\n' "${pieces[@]}" | grep -c '\.gz$' || true)
  echo "  $v) ${#pieces[@]} archives ($gz gzipped) and the current file"
  for p in "${pieces[@]}"; do
    size=$(gzip -dcf "$p" | wc -c)
    ((size <= max)) || why+=" $p holds $size bytes;"
    [[ $(gzip -dcf "$p" | tail -c 1 | od -An -c | tr -d ' ') == '\n' ]] || why+=" $p does not end a line;"
  done
  ls "$out".*.tmp >/dev/null 2>&1 && why+=" a .tmp is left;"
  pieces+=("$out")
  n=$(gzip -dcf "${pieces[@]}" | wc -c)
  if ((n > BYTES)); then
    why+=" $n bytes, more than written;"
  elif ((n < BYTES)) && [[ $(tail -c $((n + 1)) "$WORK/ref" | head -c 1 | od -An -c | tr -d ' ') != '\n' ]]; then
    why+=" the oldest archive does not start a line;"
  elif ! gzip -dcf "${pieces[@]}" | cmp -s - <(tail -c "$n" "$WORK/ref"); then
    why+=" the $n bytes differ from the last $n written;"
  fi
  [[ -z $why ]] && return
  echo "pump.sh: VERIFY FAILED for variant $v:$why" >&2
  FAILED=1
}

# verify V OUT: the output of variant V is exactly a)'s; prints why not.
FAILED=0
verify() {
  local v=$1 out=$2 pieces=() strip=(cat)
  case $v in
    cr | cz | hr) verify_rotated "$v" "$out"; return ;;
    ct)
      pieces=("$out")
      strip=(cut -d ' ' -f 2-)
      # The first stamp is RFC 3339 with microseconds and an offset.
      head -n 1 "$out" | grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}([+-][0-9]{2}:[0-9]{2}|Z) ' ||
        { echo "pump.sh: variant ct: not an iso stamp: $(head -c 60 "$out")" >&2; FAILED=1; }
      ;;
    c2 | h2)
      # The rotated pieces in order, then the live file (if the last rename
      # was not followed by a reopen, there is none).
      mapfile -t pieces < <(ls "$out".?????? 2>/dev/null | sort)
      [[ -e $out ]] && pieces+=("$out")
      echo "  $v) $(( ${#pieces[@]} )) files"
      ;;
    e | et | f | g)
      # Rotated files are named @TAI64N.s: in time order when sorted.
      mapfile -t pieces < <(ls "$out"/@* 2>/dev/null | sort)
      pieces+=("$out/current")
      ((${#pieces[@]} == 1)) || echo "  $v) $(( ${#pieces[@]} )) files (the logger rotated)"
      if [[ $v == et ]]; then
        strip=(cut -d ' ' -f 2-)
        head -n 1 "$out/current" | grep -qE '^@[0-9a-f]{24} ' ||
          { echo "pump.sh: variant et: not a TAI64N stamp: $(head -c 60 "$out/current")" >&2; FAILED=1; }
      fi
      ;;
    *) pieces=("$out") ;;
  esac
  if cat "${pieces[@]}" 2>/dev/null | "${strip[@]}" | cmp -s - "$WORK/ref"; then return; fi
  echo "pump.sh: VERIFY FAILED for variant $v ($(cat "${pieces[@]}" 2>/dev/null | "${strip[@]}" | wc -c) bytes, want $BYTES)" >&2
  FAILED=1
}

# --- the rounds -------------------------------------------------------------------
# ONLY="a c cr": run just those variants, a first (the reference); peers unless PEERS=0.
read -r -a VARIANTS <<<"${ONLY:-a b c c1 c2 ct cr cz h h2 hr}"
declare -A LABEL=(
  [a]="a) writer > file"
  [b]="b) writer | cat > file"
  [c]="c) detach --foreground --log"
  [c1]="c1) c + HUP every ${ROTATE_MS} ms"
  [c2]="c2) c + mv+HUP every ${ROTATE_MS} ms"
  [ct]="ct) c + --timestamp (iso)"
  [cr]="cr) c + --rotate-size $ROTATE_SIZE"
  [cz]="cz) cr + --rotate-compress"
  [h]="h) floor: reopen log (C)"
  [h2]="h2) h + mv+HUP every ${ROTATE_MS} ms"
  [hr]="hr) h, rotating at $ROTATE_SIZE (C)"
  [d]="d) daemon -f --output (libslack)"
  [e]="e) s6-log"
  [et]="et) s6-log t (timestamps)"
  [f]="f) svlogd (runit)"
  [g]="g) multilog (daemontools)"
)
if [[ ${PEERS:-1} != 0 ]]; then
  # variant:binary:Debian package
  for peer in d:daemon:daemon e:s6-log:s6 f:svlogd:runit g:multilog:daemontools; do
    IFS=: read -r v bin pkg <<<"$peer"
    if [[ $bin == daemon ]] && ! daemon --help 2>&1 | grep -q libslack; then
      bin="daemon (libslack)" # another program named daemon is not this one
    fi
    if command -v "$bin" >/dev/null; then
      VARIANTS+=("$v")
      [[ $v == e ]] && VARIANTS+=(et)
    else
      echo "pump.sh: $bin not installed (apt-get install -y $pkg): ${LABEL[$v]} skipped" >&2
    fi
  done
fi
echo "pump: $SIZE_MB MiB of $LINE_LEN-byte lines in $WRITE_SIZE-byte writes, $RUNS rounds, files in $WORK"
echo "      detach: $DETACH"
echo "      $(machine_info)"
BUSY_ROUNDS=0
for ((r = 1; r <= RUNS; r++)); do
  wait_quiet "$QUIET_WAIT" || BUSY_ROUNDS=$((BUSY_ROUNDS + 1))
  for v in "${VARIANTS[@]}"; do
    out=$WORK/out.$v
    rm -rf "$out" "$out".*
    sync # no write-back of an earlier run's file during this one
    run_variant "$v" "$out"
    if ((r == 1)); then
      if [[ $v == a ]]; then mv "$out" "$WORK/ref"; else verify "$v" "$out"; fi
    fi
    rm -rf "$out" "$out".*
  done
  echo "  round $r/$RUNS done"
done
rm -f "$WORK/ref"

# --- the supervisor's own peak RSS ------------------------------------------------
# GNU time's %M for c) is the largest of detach and the writer. Here detach
# runs the writer and then a sleep, so that it is still there once all was
# pumped: its VmHWM (peak RSS) and what its RSS is made of are read from
# /proc, in the foreground and daemonized.
supervisor_rss() {
  local mode=$1 out=$WORK/out.rss pidfile=$WORK/rss.pid pid="" i
  rm -f "$out" "$pidfile"
  local cmd=(sh -c '"$@"; exec sleep 10' sh "${WRITER[@]}")
  if [[ $mode == foreground ]]; then
    "$DETACH" --foreground --log "$out" --pidfile "$pidfile" -- "${cmd[@]}" &
  else
    "$DETACH" --log "$out" --pidfile "$pidfile" -- "${cmd[@]}"
  fi
  for ((i = 0; i < 3000; i++)); do
    [[ -z $pid && -s $pidfile ]] && pid=$(<"$pidfile")
    [[ -n $pid && -e $out && $(stat -c %s "$out") -ge $BYTES ]] && break
    sleep 0.01
  done
  awk '/^(VmHWM|RssAnon|RssFile):/ { v[$1] = $2 }
       END { printf "%d KiB (now: anonymous %d KiB, file-backed %d KiB)", v["VmHWM:"], v["RssAnon:"], v["RssFile:"] }' \
    "/proc/$pid/status"
  "$DETACH" stop --pidfile "$pidfile" >/dev/null 2>&1 || true
  wait
  rm -f "$out"
}
SUP_FG=$(supervisor_rss foreground)
SUP_BG=$(supervisor_rss daemon)

# --- the table ----------------------------------------------------------------------
# median FILE COLUMN...: the median of the sum of the given columns.
median() {
  local file=$1; shift
  awk -v cols="$*" '{ s = 0; n = split(cols, c, " "); for (i = 1; i <= n; i++) s += $c[i]; print s }' "$file" |
    sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v x="$1" -v y="$2" 'BEGIN { print x / y }'; }
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
printf '%-34s %8s %8s %8s %7s %7s %9s %9s %8s\n' variant "wall s" "MB/s" "CPU s" "user" "sys" "RSS KiB" "wall/cat" "CPU/cat"
for v in "${VARIANTS[@]}"; do
  printf '%-34s %8.3f %8.0f %8.3f %7.3f %7.3f %9d %9.2f %8.2f\n' "${LABEL[$v]}" "${WALL[$v]}" \
    "$(awk -v b="$BYTES" -v w="${WALL[$v]}" 'BEGIN { print b / 1e6 / w }')" \
    "${CPU[$v]}" "${USR[$v]}" "${SYS[$v]}" "${RSS[$v]%.*}" \
    "$(ratio "${WALL[$v]}" "${WALL[b]}")" "$(ratio "${CPU[$v]}" "${CPU[b]}")"
  if [[ -n ${TSV:-} ]]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$LINE_LEN" "$v" "${LABEL[$v]}" "${WALL[$v]}" "${CPU[$v]}" \
      "${RSS[$v]%.*}" "$(ratio "${WALL[$v]}" "${WALL[b]}")" "$(ratio "${CPU[$v]}" "${CPU[b]}")" >>"$TSV"
  fi
done
echo
echo "detach's own peak RSS while pumping: --foreground $SUP_FG; daemonized $SUP_BG (target: 1536 KiB)"
for pair in c1:c c2:c h2:h cr:c hr:h cz:cr; do
  v=${pair%:*} base=${pair#*:}
  [[ -n ${WALL[$v]:-} && -n ${WALL[$base]:-} ]] || continue
  case $v in
    c1 | c2 | h2) n="($(cat "$WORK/rotations.$v" 2>/dev/null || echo '?') reopens in the last run)" ;;
    cr) n="(about $((BYTES / ROTATE_BYTES)) rotations a run; target: under +10%)" ;;
    hr) n="(the same rotations: what the file system and kernel charge for them)" ;;
    cz) n="(the cost of compressing; target: none)" ;;
  esac
  awk -v label="${LABEL[$v]}" -v x="${WALL[$v]}" -v y="${WALL[$base]}" -v cx="${CPU[$v]}" -v cy="${CPU[$base]}" \
    -v n="$n" -v base="$base" \
    'BEGIN { printf "rotation cost, %s: wall %+.1f%%, CPU %+.1f%% vs %s) %s\n",
             label, (x / y - 1) * 100, (cx / cy - 1) * 100, base, n }'
done
for v in ct et; do
  [[ -n ${WALL[$v]:-} ]] || continue
  awk -v label="${LABEL[$v]}" -v x="${WALL[$v]}" -v y="${WALL[b]}" -v cx="${CPU[$v]}" -v cy="${CPU[b]}" \
    -v n="$([[ $v == ct ]] && echo '; target: wall at most 1.30x')" \
    'BEGIN { printf "timestamps, %s: %.2fx cat wall, %.2fx cat CPU%s\n", label, x / y, cx / cy, n }'
done

if ((FAILED)); then
  echo "pump.sh: output verification FAILED" >&2
  exit 1
fi
echo "output verified: ${VARIANTS[*]:1} wrote exactly a)'s $BYTES bytes"

if [[ $SMOKE == 1 ]]; then
  echo
  DETACH=$DETACH "$ROOT/bench/startup.sh" --smoke
  echo
  DETACH=$DETACH "$ROOT/bench/reopen.sh" --smoke
fi
