#!/usr/bin/env bash
# Token API, cached path: POST /api/v1/tenants/{tenant}/tokens with a service API key, 64 connections on
# loopback with wrk (installed from Debian when missing), against the axum hello-world baseline answering
# the same request in the same run. Targets: >= 0.5 of the baseline's requests/s, p99 <= 5 ms.
#
# Usage: bench/token-api.sh [--quick]
source "$(dirname "$0")/lib.sh"
bench_build

if ! command -v wrk >/dev/null; then
  log "installing wrk (Debian)"
  if [[ $(id -u) -eq 0 ]]; then apt-get install -y -q wrk >&2; else sudo apt-get install -y -q wrk >&2; fi
fi
DUR=$([[ $QUICK == 1 ]] && echo 3s || echo 10s)
CONNS=64
W="$BENCH_WORK/token-api"
rm -rf "$W"; mkdir -p "$W"

start_sim 1 "$W/sim"
consentry_env "$W/data"
export CONSENTRY_MONITOR__ENABLED=false
SEEDED="$("$BIN/consentry-bench" seed --profiles 1 --tenants 1 --credentials)"
export BENCH_API_KEY="$(jqn "$SEEDED" .api_key)"
PORT="$(free_port)"
start_serve "$PORT" "$W/serve.log"
URL="http://127.0.0.1:$PORT/api/v1/tenants/bench-0.onmicrosoft.com/tokens"
# The first request acquires the token at entra-sim; every later one is served from the cache.
first="$(curl -s -X POST -H "Authorization: Bearer $BENCH_API_KEY" -H 'Content-Type: application/json' \
  -d '{"app_type":"custom-azure-app"}' "$URL")"
[[ "$(jq -r .token_type <<<"$first")" == Bearer ]] || { log "token API did not issue a token: $first"; exit 1; }

HPORT="$(free_port)"
start_hello "$HPORT"
run_wrk() { wrk -t2 -c"$CONNS" -d"$DUR" -s "$(dirname "$0")/token.lua" "$1" | sed -n 's/^JSON //p'; }
log "wrk: hello-world baseline"
BASE="$(run_wrk "http://127.0.0.1:$HPORT/api/v1/tenants/bench-0.onmicrosoft.com/tokens")"
log "wrk: token API (cached)"
TOK="$(run_wrk "$URL")"
echo "{\"baseline\": $BASE, \"token_api\": $TOK}" >"$BENCH_RESULTS/token-api.json"
cached="$(curl -s -X POST -H "Authorization: Bearer $BENCH_API_KEY" -H 'Content-Type: application/json' \
  -d '{"app_type":"custom-azure-app"}' "$URL" | jq -r .cached)"
ratio="$(calc "$(jqn "$TOK" .rps)/$(jqn "$BASE" .rps)")"
record token-api "requests/s, $CONNS connections (non-2xx $(jqn "$TOK" .non_2xx), cached=$cached)" \
  "$(calc "$(jqn "$TOK" .rps)")" "$(calc "$(jqn "$BASE" .rps)")" "$ratio" ">= 0.5" "$(verdict "$ratio >= 0.5")"
record token-api "p50 ms, $CONNS connections" "$(jqn "$TOK" .p50_ms)" "$(jqn "$BASE" .p50_ms)" \
  "$(calc "$(jqn "$TOK" .p50_ms)/$(jqn "$BASE" .p50_ms)")" - -
p99="$(jqn "$TOK" .p99_ms)"
record token-api "p99 ms, $CONNS connections" "$p99" "$(jqn "$BASE" .p99_ms)" \
  "$(calc "$p99/$(jqn "$BASE" .p99_ms)")" "<= 5 ms" "$(verdict "$p99 <= 5")"
