# bench/common.sh — helpers shared by the scripts in bench/
# (sourced, not run). Expects ROOT (the repository) to be set.

# detach_binary [FEATURES]: prints the detach to benchmark. $DETACH if set,
# else builds target/release/detach (or under $CARGO_TARGET_DIR) with `cargo
# build --release` and the cargo FEATURES given (syslog.sh needs `tls`). Refuses a missing or empty file: a binary caught half-written by
# a concurrent build would "run" as an empty shell script and exit 0.
detach_binary() {
  local bin=${DETACH:-} features=${1:-}
  if [[ -z $bin ]]; then
    (cd "$ROOT" && cargo build --release --quiet ${features:+--features "$features"}) >&2
    bin=${CARGO_TARGET_DIR:-$ROOT/target}/release/detach
  fi
  if [[ ! -x $bin || ! -s $bin ]]; then
    echo "bench: $bin is missing or empty" >&2
    return 69
  fi
  echo "$bin"
}

# wait_quiet SECONDS: returns once the CPUs were at least 90% idle over 0.3 s,
# or after SECONDS (then returns 1, so that the caller can count a busy
# start). The runs measured here are short: any other load moves them a lot.
wait_quiet() {
  local deadline=$((SECONDS + $1)) a b i total
  while ((SECONDS < deadline)); do
    read -r -a a </proc/stat
    sleep 0.3
    read -r -a b </proc/stat
    total=0
    for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
    # /proc/stat "cpu" line: user nice system idle iowait irq softirq steal
    if (((b[4] - a[4]) * 100 >= 90 * total)); then return 0; fi
  done
  (($1 == 0)) # waiting was not asked for: not a busy start
}

# machine_info: one line about the machine, for the reports.
machine_info() {
  local cpu
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  echo "machine: $(nproc) CPUs, ${cpu:-unknown CPU}, kernel $(uname -r)"
}

# The arguments every script takes: --smoke (or SMOKE=1 in the environment),
# -h/--help (prints the script's header comment), and at most MAX positional
# values, left in the array `positional`.
parse_args() {
  local max=$1 arg
  shift
  SMOKE=${SMOKE:-0}
  positional=()
  for arg in "$@"; do
    case $arg in
      --smoke) SMOKE=1 ;;
      -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
      -*) echo "$(basename "$0"): unknown option $arg" >&2; exit 64 ;;
      *) positional+=("$arg") ;;
    esac
  done
  if ((${#positional[@]} > max)); then
    echo "$(basename "$0"): too many arguments: ${positional[*]}" >&2
    exit 64
  fi
}
