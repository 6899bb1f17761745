# Shared helpers of the benchmark scripts (sourced, not run).
#
# One release build (`cargo build --release -p consentry -p consentry-bench`) serves every part; set
# BENCH_NO_BUILD=1 to reuse it (bench/run.sh builds once, then runs each part with it).
# Results are appended as tab-separated lines to $BENCH_RESULTS/results.tsv:
#   part  figure  value  baseline  ratio  target  verdict
set -euo pipefail

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_TARGET="${CARGO_TARGET_DIR:-$BENCH_ROOT/target}"
BIN="${BENCH_BIN_DIR:-$BENCH_TARGET/release}"
BENCH_RESULTS="${BENCH_RESULTS:-$BENCH_TARGET/bench-results}"
BENCH_WORK="${BENCH_WORK:-$BENCH_TARGET/bench-work}"
QUICK=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $arg (use --quick)" >&2; exit 2 ;;
  esac
done
mkdir -p "$BENCH_RESULTS" "$BENCH_WORK"

log() { printf '[bench] %s\n' "$*" >&2; }

bench_build() {
  if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
    log "building (release): consentry, consentry-bench"
    (cd "$BENCH_ROOT" && cargo build --release --quiet -p consentry -p consentry-bench)
  fi
  [[ -x "$BIN/consentry" && -x "$BIN/consentry-bench" ]] || {
    log "release binaries missing in $BIN: run without BENCH_NO_BUILD"; exit 1; }
}

# The processes this script started, stopped by PID on exit.
BENCH_PIDS=()
bench_cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${BENCH_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap bench_cleanup EXIT

# record PART FIGURE VALUE BASELINE RATIO TARGET VERDICT (a figure without a target: verdict "-" is
# printed as "no target")
record() {
  local row=("$@")
  [[ ${row[6]:--} == - ]] && row[6]="no target"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${row[@]}" >>"$BENCH_RESULTS/results.tsv"
  printf '[result] %s | %s | %s | baseline %s | ratio %s | target %s | %s\n' "${row[@]}" >&2
}

# A number from a JSON object: json FILE_OR_TEXT JQ_PATH
jqn() { jq -r "$2" <<<"$1"; }

# calc EXPR (floating point, via awk)
calc() { awk "BEGIN { printf \"%.4g\", $* }"; }
# verdict COND_EXPR -> met / MISSED
verdict() { awk "BEGIN { exit !($*) }" && echo met || echo MISSED; }

# A free TCP port on loopback.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL [TRIES]: until URL answers (any status), 50 ms apart.
wait_http() {
  local url="$1" tries="${2:-600}"
  for _ in $(seq "$tries"); do
    if curl -sk -o /dev/null --max-time 1 "$url"; then return 0; fi
    sleep 0.05
  done
  log "$url did not answer"; return 1
}

# start_sim TENANTS DIR: entra-sim (bench scenario) in its own process; sets SIM_URL, SIM_PID, SIM_CA and
# SIM_COUNTS_URL (plain HTTP: GET it for the simulator's token requests per tenant, client and grant type).
start_sim() {
  local tenants="$1" dir="$2" port cport
  port="$(free_port)"
  cport="$(free_port)"
  mkdir -p "$dir"
  "$BIN/consentry-bench" sim --tenants "$tenants" --listen "127.0.0.1:$port" --state-dir "$dir" \
    --counts-listen "127.0.0.1:$cport" >"$dir/sim.out" 2>"$dir/sim.err" &
  SIM_PID=$!
  BENCH_PIDS+=("$SIM_PID")
  SIM_URL="https://127.0.0.1:$port"
  SIM_CA="$dir/ca.pem"
  SIM_COUNTS_URL="http://127.0.0.1:$cport/token-requests"
  wait_http "$SIM_URL/_sim/state"
}

# sim_op JSON: one operation of entra-sim's control API (e.g. set_faults).
sim_op() {
  curl -sf --cacert "$SIM_CA" -H 'Content-Type: application/json' -d "$1" "$SIM_URL/_sim/ops" >/dev/null ||
    { log "entra-sim refused $1"; return 1; }
}

# set_latency MS: entra-sim adds MS to every token request (0: no fault rule).
set_latency() {
  if [[ $1 == 0 ]]; then sim_op '{"op":"set_faults","faults":[]}'
  else sim_op "{\"op\":\"set_faults\",\"faults\":[{\"endpoint\":\"token\",\"rate\":1.0,\"latency_ms\":$1}]}"; fi
}

# consentry_env DATA_DIR [DATABASE_URL]: the CONSENTRY_* variables of a Consentry against the sim.
consentry_env() {
  export CONSENTRY_DATA_DIR="$1"
  if [[ -n "${2:-}" ]]; then export CONSENTRY_DATABASE_URL="$2"; else unset CONSENTRY_DATABASE_URL; fi
  export CONSENTRY_ENTRA__AUTHORITY="$SIM_URL"
  export CONSENTRY_ENTRA__GRAPH="$SIM_URL/v1.0"
  export CONSENTRY_ENTRA__EXTRA_CA_FILE="$SIM_CA"
  export CONSENTRY_LOG="${CONSENTRY_LOG:-error}"
}

# start_serve PORT LOG: `consentry serve` with the current CONSENTRY_* variables; sets SERVE_PID.
start_serve() {
  local port="$1" logf="$2"
  CONSENTRY_LISTEN="127.0.0.1:$port" CONSENTRY_PUBLIC_URL="http://127.0.0.1:$port" \
    "$BIN/consentry" serve >"$logf" 2>&1 &
  SERVE_PID=$!
  BENCH_PIDS+=("$SERVE_PID")
  wait_http "http://127.0.0.1:$port/healthz"
}

# start_hello PORT: the axum hello-world baseline; sets HELLO_PID.
start_hello() {
  "$BIN/consentry-bench" hello --listen "127.0.0.1:$1" 2>/dev/null &
  HELLO_PID=$!
  BENCH_PIDS+=("$HELLO_PID")
  wait_http "http://127.0.0.1:$1/healthz"
}

# stop PID: ends one process this script started.
stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
