#!/usr/bin/env bash
# Scale: 100k profiles (10% invalid) over 200 tenants on SQLite and on PostgreSQL.
#   - the console's invalid-profiles page (session cookie) and the filtered API list (bearer token):
#     p95 over 200 sequential requests through HTTP; target <= 20 ms; baseline: the hello-world
#     server's p95 measured the same way in the same run;
#   - `consentry serve`'s RSS while its monitor sweeps the profiles; target <= 150 MB; baseline: the
#     hello-world server's RSS;
#   - RSS at 10k vs 100k profiles (SQLite): should not grow with the count;
#   - on PostgreSQL, the monitor's lease (`consentry-bench lease`: 50 (--quick: 10) leases of the
#     batch `consentry serve` leases, `[monitor] batch` = 100, after 5 untimed ones), p50/p95; target
#     <= 5 ms; baseline: a one-round-trip read through the same store in the same run; leases of 250
#     as context;
#   - full run only: the same PostgreSQL figures at 1,000,000 profiles (seeded set-based; the seeding
#     time is a figure too) and its RSS during a sweep against the 100k figure (target <= 1.2).
# --quick: 1k and 3k profiles, 30 requests, 10 leases, 2 s of RSS samples, no million.
#
# Usage: bench/scale.sh [--quick]
source "$(dirname "$0")/lib.sh"
SCALE_STARTED=$SECONDS
bench_build

if [[ $QUICK == 1 ]]; then BIG=3000; SMALL=1000; RSS_SECS=2; REQS=30; LEASES=10; else BIG=100000; SMALL=10000; RSS_SECS=20; REQS=200; LEASES=50; fi
TENANTS=200
W="$BENCH_WORK/scale"
rm -rf "$W"; mkdir -p "$W"
start_sim "$TENANTS" "$W/sim"

HPORT="$(free_port)"
start_hello "$HPORT"
HELLO="$("$BIN/consentry-bench" latency --url "http://127.0.0.1:$HPORT/" --requests "$REQS")"
HELLO_P95="$(jqn "$HELLO" .p95_ms)"
HELLO_RSS="$("$BIN/consentry-bench" rss --pid "$HELLO_PID" --seconds 1 | jq -r .max_rss_mb)"
record scale "hello-world baseline: p95 ms of GET /" "$HELLO_P95" - - - baseline
record scale "hello-world baseline: RSS MB" "$(calc "$HELLO_RSS")" - - - baseline

# measure LABEL PROFILES DATABASE_URL(optional): seeds, measures the two pages, then the RSS during a sweep.
measure() {
  local label="$1" n="$2" db="${3:-}" dir="$W/$1-$2" port out seeded p95
  consentry_env "$dir" "$db"
  log "$label: seeding $n profiles"
  seeded="$("$BIN/consentry-bench" seed --profiles "$n" --tenants "$TENANTS" --invalid-every 10 --credentials)"
  log "$label: seeded in $(jqn "$seeded" .seconds) s"
  record scale "$label, $n profiles: seeding s" "$(calc "$(jqn "$seeded" .seconds)")" - - - -
  local cookie="consentry_session=$(jqn "$seeded" .session)" token
  token="$(cat "$dir/api-token")"
  port="$(free_port)"
  if [[ "${4:-pages}" == pages ]]; then
    CONSENTRY_MONITOR__ENABLED=false start_serve "$port" "$dir/serve.log"
    local when
    for when in "" "after VACUUM ANALYZE"; do
      if [[ -n $when ]]; then
        # PostgreSQL right after a bulk load has no visibility map yet, so index-only scans still
        # visit the table; autovacuum sets it within about a minute. Both states are measured.
        [[ -n $db ]] || break
        psql -q "$db" -c "VACUUM ANALYZE" 2>&1 | { grep -v "only superuser can vacuum" || true; } >&2
      fi
      for page in console api; do
        if [[ $page == console ]]; then
          out="$("$BIN/consentry-bench" latency --url "http://127.0.0.1:$port/console/profiles?status=invalid" --cookie "$cookie" --requests "$REQS")"
        else
          out="$("$BIN/consentry-bench" latency --url "http://127.0.0.1:$port/api/v1/profiles?status=invalid" --bearer "$token" --requests "$REQS")"
        fi
        echo "$out" >"$BENCH_RESULTS/scale-$label-$n-$page${when:+-vacuumed}.json"
        p95="$(jqn "$out" .p95_ms)"
        record scale "$label, $n profiles${when:+ ($when)}: $page invalid-profiles list p95 ms ($(jqn "$out" .body_bytes) bytes)" \
          "$p95" "$HELLO_P95" "$(calc "$p95/$HELLO_P95")" "<= 20 ms" "$(verdict "$p95 <= 20")"
      done
    done
    stop "$SERVE_PID"
  fi
  if [[ -n $db ]]; then
    # The monitor's lease against a one-round-trip read of the same store (the leased profiles are
    # released due again, behind the others: the sweep below still finds every profile due). The
    # target is on the batch `consentry serve` leases (`[monitor] batch`, 100); 250 is context.
    local args limit p50
    for args in "" "--limit 250"; do
      # shellcheck disable=SC2086 # two words or none
      out="$("$BIN/consentry-bench" lease --leases "$LEASES" $args)"
      limit="$(jqn "$out" .limit)"
      echo "$out" >"$BENCH_RESULTS/scale-$label-$n-lease-$limit.json"
      p50="$(jqn "$out" .lease_p50_ms)"
      p95="$(jqn "$out" .lease_p95_ms)"
      if [[ -z $args ]]; then
        record scale "$label, $n profiles: monitor lease of $limit (the default batch) p50 ms" "$(calc "$p50")" \
          "$(calc "$(jqn "$out" .baseline_p50_ms)")" "$(calc "$p50/$(jqn "$out" .baseline_p50_ms)")" - -
        record scale "$label, $n profiles: monitor lease of $limit (the default batch) p95 ms" "$(calc "$p95")" \
          "$(calc "$(jqn "$out" .baseline_p95_ms)")" "$(calc "$p95/$(jqn "$out" .baseline_p95_ms)")" "<= 5 ms" "$(verdict "$p95 <= 5")"
      else
        record scale "$label, $n profiles: monitor lease of $limit p50 / p95 ms" "$(calc "$p50") / $(calc "$p95")" \
          - - - context
      fi
    done
  fi
  # The monitor sweeps every profile (all are due) while the RSS is sampled.
  CONSENTRY_MONITOR__POLL_SECONDS=1 start_serve "$port" "$dir/serve-sweep.log"
  out="$("$BIN/consentry-bench" rss --pid "$SERVE_PID" --seconds "$RSS_SECS")"
  checked="$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^consentry_checks_total/ { s += $2 } END { print s+0 }')"
  stop "$SERVE_PID"
  LAST_RSS="$(jqn "$out" .max_rss_mb)"
  record scale "$label, $n profiles: server RSS MB during a sweep ($checked checks in ${RSS_SECS}s)" \
    "$(calc "$LAST_RSS")" "$(calc "$HELLO_RSS")" "$(calc "$LAST_RSS/$HELLO_RSS")" "<= 150 MB" "$(verdict "$LAST_RSS <= 150")"
}

measure sqlite "$SMALL" "" rss-only
RSS_SMALL="$LAST_RSS"
measure sqlite "$BIG"
RSS_BIG="$LAST_RSS"
ratio="$(calc "$RSS_BIG/$RSS_SMALL")"
record scale "RSS at $BIG vs $SMALL profiles (SQLite)" "$(calc "$RSS_BIG")" "$(calc "$RSS_SMALL")" "$ratio" \
  "<= 1.2 (no growth)" "$(verdict "$ratio <= 1.2")"

eval "$("$BENCH_ROOT/scripts/ensure-postgres.sh")"
ADMIN_URL="$CONSENTRY_TEST_POSTGRES_URL"
unset CONSENTRY_TEST_POSTGRES_URL   # not a configuration key of Consentry
PG_URL="${ADMIN_URL%/*}/consentry_bench"
psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS consentry_bench" -c "CREATE DATABASE consentry_bench" >&2
measure postgres "$BIG" "$PG_URL"
RSS_PG_BIG="$LAST_RSS"

if [[ $QUICK == 0 ]]; then
  MILLION=1000000
  PG_URL_1M="${ADMIN_URL%/*}/consentry_bench_1m"
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS consentry_bench_1m" -c "CREATE DATABASE consentry_bench_1m" >&2
  measure postgres "$MILLION" "$PG_URL_1M"
  ratio="$(calc "$LAST_RSS/$RSS_PG_BIG")"
  record scale "RSS at $MILLION vs $BIG profiles (PostgreSQL)" "$(calc "$LAST_RSS")" "$(calc "$RSS_PG_BIG")" "$ratio" \
    "<= 1.2" "$(verdict "$ratio <= 1.2")"
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS consentry_bench_1m" >&2
fi
record scale "bench/scale.sh duration s" "$((SECONDS - SCALE_STARTED))" - - - -
