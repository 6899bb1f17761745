#!/usr/bin/env bash
# Token API, cached path: POST /api/v1/tenants/{tenant}/tokens with a service API key, 64 connections on
# loopback with wrk (installed from Debian when missing), against the axum hello-world baseline answering
# the same request in the same run. Targets: >= 0.8 of the baseline's requests/s, p99 <= 5 ms.
#
# So that the figure does not swing with who gets which core: wrk (one thread) is pinned to one CPU
# and the server under test to the other (`taskset`; the baseline and `consentry serve` in turn, so each
# has one CPU to itself and one runtime worker), and RUNS runs alternate baseline, token API, baseline,
# token API, … The figure is the median of the runs' ratios (each token run against the baseline run just
# before it); the spread of those ratios (min–max) is printed beside it. On a machine with one CPU the
# pinning is skipped.
#
# --quick: 3 runs of 1 s each; full: 5 runs of 5 s each. RUNS and DUR (wrk's -d) override them.
# PERF=1 also profiles the server during one more token API run (perf, cpu-clock; see the end).
#
# Usage: bench/token-api.sh [--quick]
source "$(dirname "$0")/lib.sh"
bench_build

if ! command -v wrk >/dev/null; then
  log "installing wrk (Debian)"
  if [[ $(id -u) -eq 0 ]]; then apt-get install -y -q wrk >&2; else sudo apt-get install -y -q wrk >&2; fi
fi
if [[ $QUICK == 1 ]]; then RUNS="${RUNS:-3}"; DUR="${DUR:-1s}"; else RUNS="${RUNS:-5}"; DUR="${DUR:-5s}"; fi
CONNS=64
W="$BENCH_WORK/token-api"
rm -rf "$W"; mkdir -p "$W"
if [[ $(nproc) -ge 2 ]] && command -v taskset >/dev/null; then
  LOAD_CPU=(taskset -c 0); SERVER_CPU=(taskset -c 1); PINNED="wrk on CPU 0, server on CPU 1"
else
  LOAD_CPU=(); SERVER_CPU=(); PINNED="not pinned"
fi

start_sim 1 "$W/sim"
consentry_env "$W/data"
export CONSENTRY_MONITOR__ENABLED=false
SEEDED="$("$BIN/consentry-bench" seed --profiles 1 --tenants 1 --credentials)"
export BENCH_API_KEY="$(jqn "$SEEDED" .api_key)"
PORT="$(free_port)"
CONSENTRY_LISTEN="127.0.0.1:$PORT" CONSENTRY_PUBLIC_URL="http://127.0.0.1:$PORT" \
  "${SERVER_CPU[@]}" "$BIN/consentry" serve >"$W/serve.log" 2>&1 &
SERVE_PID=$!
BENCH_PIDS+=("$SERVE_PID")
wait_http "http://127.0.0.1:$PORT/healthz"
URL="http://127.0.0.1:$PORT/api/v1/tenants/bench-0.onmicrosoft.com/tokens"
# The first request acquires the token at entra-sim; every later one is served from the cache.
first="$(curl -s -X POST -H "Authorization: Bearer $BENCH_API_KEY" -H 'Content-Type: application/json' \
  -d '{"app_type":"custom-azure-app"}' "$URL")"
[[ "$(jq -r .token_type <<<"$first")" == Bearer ]] || { log "token API did not issue a token: $first"; exit 1; }

HPORT="$(free_port)"
"${SERVER_CPU[@]}" "$BIN/consentry-bench" hello --listen "127.0.0.1:$HPORT" 2>/dev/null &
HELLO_PID=$!
BENCH_PIDS+=("$HELLO_PID")
wait_http "http://127.0.0.1:$HPORT/healthz"
HELLO_URL="http://127.0.0.1:$HPORT/api/v1/tenants/bench-0.onmicrosoft.com/tokens"

run_wrk() {
  "${LOAD_CPU[@]}" wrk -t1 -c"$CONNS" -d"$DUR" -s "$(dirname "$0")/token.lua" "$1" | sed -n 's/^JSON //p'
}
log "wrk: $RUNS alternating runs of $DUR ($PINNED)"
runs=()
for ((r = 1; r <= RUNS; r++)); do
  base="$(run_wrk "$HELLO_URL")"
  tok="$(run_wrk "$URL")"
  runs+=("{\"baseline\": $base, \"token_api\": $tok}")
  log "run $r: baseline $(jqn "$base" .rps) req/s, token API $(jqn "$tok" .rps) req/s (p99 $(jqn "$tok" .p99_ms) ms)"
done
ALL="$(printf '%s\n' "${runs[@]}" | jq -s .)"
echo "$ALL" >"$BENCH_RESULTS/token-api.json"
# Medians over the runs (for an even count, the upper middle), and the spread of the per-run ratios.
med() { jq -r "[.[] | $1] | sort | .[length / 2 | floor]" <<<"$ALL"; }
RATIO="$(med '.token_api.rps / .baseline.rps')"
RMIN="$(jq -r '[.[] | .token_api.rps / .baseline.rps] | min' <<<"$ALL")"
RMAX="$(jq -r '[.[] | .token_api.rps / .baseline.rps] | max' <<<"$ALL")"
TOK_RPS="$(med .token_api.rps)"; BASE_RPS="$(med .baseline.rps)"
NON2XX="$(jq -r '[.[] | .token_api.non_2xx + .token_api.socket_errors] | add' <<<"$ALL")"
cached="$(curl -s -X POST -H "Authorization: Bearer $BENCH_API_KEY" -H 'Content-Type: application/json' \
  -d '{"app_type":"custom-azure-app"}' "$URL" | jq -r .cached)"
ratio="$(calc "$RATIO")"
record token-api "requests/s, $CONNS connections, median of $RUNS alternating runs of $DUR, $PINNED (ratio spread $(calc "$RMIN")–$(calc "$RMAX"); non-2xx and socket errors $NON2XX; cached=$cached)" \
  "$(calc "$TOK_RPS")" "$(calc "$BASE_RPS")" "$ratio" ">= 0.8" "$(verdict "$ratio >= 0.8")"
P50="$(med .token_api.p50_ms)"; BP50="$(med .baseline.p50_ms)"
record token-api "p50 ms, $CONNS connections (median of the runs)" "$P50" "$BP50" "$(calc "$P50/$BP50")" - -
P99="$(med .token_api.p99_ms)"; BP99="$(med .baseline.p99_ms)"
P99MAX="$(jq -r '[.[] | .token_api.p99_ms] | max' <<<"$ALL")"
record token-api "p99 ms, $CONNS connections (median of the runs; worst run $P99MAX ms)" "$P99" "$BP99" \
  "$(calc "$P99/$BP99")" "<= 5 ms" "$(verdict "$P99 <= 5")"

# PERF=1: where the server's CPU goes on the cached path: `perf record -e cpu-clock` of `consentry serve`
# during one more token API run; the top symbols (self time) go to $BENCH_RESULTS/token-api-profile.txt.
if [[ ${PERF:-0} == 1 ]]; then
  secs="${DUR%s}"
  perf record -q -e cpu-clock -F 4000 -p "$SERVE_PID" -o "$W/perf.data" -- sleep "$secs" 2>/dev/null &
  perf_pid=$!
  run_wrk "$URL" >/dev/null
  wait "$perf_pid" || true
  perf report -i "$W/perf.data" --no-children --sort dso,sym -g none --percent-limit 0.5 -F overhead,dso,sym \
    2>/dev/null | { grep -v '^#' || true; } | { grep -v '^$' || true; } >"$BENCH_RESULTS/token-api-profile.txt"
  log "profile of the token API (self time, by DSO then symbol): $BENCH_RESULTS/token-api-profile.txt; perf report -i $W/perf.data"
  sort -rn "$BENCH_RESULTS/token-api-profile.txt" | head -30 >&2
fi
