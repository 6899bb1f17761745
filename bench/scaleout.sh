#!/usr/bin/env bash
# Scale-out: `consentry serve` replicas on one PostgreSQL database sweeping certificate-based profiles
# against entra-sim (its own process, 200 tenants). One replica sweeps for a fixed window, then three at
# once, each at the same concurrency limit (CONCURRENCY checks at once, 4 per tenant, batches of BATCH);
# before each run every profile is made due again, so each run starts from the same due set and none
# runs dry (the profiles still due at the window's end are printed with the figure).
#
# Figures, all from the same run:
#   - +100 ms on every token request (latency-bound: each replica is held by its own concurrency limit,
#     not by the machine's CPUs): checks/s of three replicas against one; target >= 2.5;
#   - +0 ms (CPU-bound): the same ratio, as context: on this 2-core machine it is the machine's limit;
#   - no profile checked twice per due time, counted after each three-replica run from three sources of
#     truth (those of the replica test, crates/consentry-cli/tests/it/replicas.rs): the replicas' own
#     `consentry_checks_total`, entra-sim's client-credentials token requests (one per check; compared
#     per tenant too) and the store's profiles whose `last_checked_at` moved; duplicates = checks counted
#     - distinct profiles checked; target 0.
# The window ends by moving every unleased schedule row out of reach (so no new lease starts); the
# checks in flight finish and release their leases; then the three sources are counted, quiescent.
#
# The window's checks/s are counted from the store (profiles whose last_checked_at falls in it).
# --quick: 4,000 profiles, 3 s windows; full: 30,000 profiles, 20 s windows.
# CONCURRENCY (default 8) overrides the per-replica limit.
#
# Usage: bench/scaleout.sh [--quick]
source "$(dirname "$0")/lib.sh"
SCALEOUT_STARTED=$SECONDS
bench_build

TENANTS=200
CONCURRENCY="${CONCURRENCY:-8}"
PER_TENANT=4
BATCH=50
if [[ $QUICK == 1 ]]; then PROFILES=4000; WARM=1; WINDOW=3; else PROFILES=30000; WARM=3; WINDOW=20; fi
W="$BENCH_WORK/scaleout"
rm -rf "$W"; mkdir -p "$W"

eval "$("$BENCH_ROOT/scripts/ensure-postgres.sh")"
ADMIN_URL="$CONSENTRY_TEST_POSTGRES_URL"
unset CONSENTRY_TEST_POSTGRES_URL   # not a configuration key of Consentry
PG_URL="${ADMIN_URL%/*}/consentry_bench_scaleout"
psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS consentry_bench_scaleout" -c "CREATE DATABASE consentry_bench_scaleout" >&2
sql() { psql -qAt "$PG_URL" -c "$1"; }

start_sim "$TENANTS" "$W/sim"
consentry_env "$W/data" "$PG_URL"
log "seeding $PROFILES profiles over $TENANTS tenants (PostgreSQL)"
SEEDED="$("$BIN/consentry-bench" seed --profiles "$PROFILES" --tenants "$TENANTS")"
log "seeded in $(jqn "$SEEDED" .seconds) s"
export CONSENTRY_MASTER_KEY_FILE="$W/data/master.key"   # every replica seals with the seed's key
export CONSENTRY_MONITOR__POLL_SECONDS=1 CONSENTRY_MONITOR__BATCH="$BATCH" \
  CONSENTRY_MONITOR__MAX_CONCURRENT="$CONCURRENCY" CONSENTRY_MONITOR__MAX_PER_TENANT="$PER_TENANT"

# checks_total PORT: the sum of a replica's consentry_checks_total.
checks_total() {
  curl -sf "http://127.0.0.1:$1/metrics" | awk '/^consentry_checks_total/ { s += $2 } END { print s+0 }'
}
# outcomes PORT: its checks by outcome, as outcome=N,…
outcomes() {
  curl -sf "http://127.0.0.1:$1/metrics" | awk '/^consentry_checks_total/ {
    match($0, /outcome="[^"]*"/); o = substr($0, RSTART + 9, RLENGTH - 10); s[o] += $2 }
    END { sep = ""; for (k in s) { printf "%s%s=%d", sep, k, s[k]; sep = "," } }'
}
now_ns() { date +%s%N; }

# run_replicas N LATENCY_MS: every profile due, N replicas, a WINDOW of checks/s after WARM seconds,
# then a quiescent count. Sets RATE, DUE_LEFT, DUPLICATES and COUNTS (a description of the three sources).
run_replicas() {
  local n="$1" lat="$2" i port start m0 t0 t1 pids=() ports=()
  set_latency "$lat"
  start="$(now_ns)"
  sql "UPDATE check_schedule SET next_check_at = $start - 1, lease_owner = NULL, lease_until = NULL, transient_failures = 0" >/dev/null
  local before; before="$(curl -sf "$SIM_COUNTS_URL")"
  for ((i = 0; i < n; i++)); do
    port="$(free_port)"
    CONSENTRY_LISTEN="127.0.0.1:$port" CONSENTRY_PUBLIC_URL="http://127.0.0.1:$port" CONSENTRY_DATA_DIR="$W/replica-$i" \
      "$BIN/consentry" serve >"$W/replica-$n-$lat-$i.log" 2>&1 &
    pids+=("$!"); ports+=("$port"); BENCH_PIDS+=("$!")
  done
  for port in "${ports[@]}"; do wait_http "http://127.0.0.1:$port/healthz"; done
  sleep "$WARM"
  # The rate: checks completed in the window, from the store (each check stamps its profile's
  # last_checked_at; the replicas' metrics are counted by sweep, too coarse for a short window).
  t0="$(now_ns)"
  sleep "$WINDOW"
  t1="$(now_ns)"
  m0="$(sql "SELECT count(*) FROM profiles WHERE last_checked_at >= $t0 AND last_checked_at < $t1")"
  RATE="$(calc "$m0 / (($t1 - $t0) / 1e9)")"
  DUE_LEFT="$(sql "SELECT count(*) FROM check_schedule WHERE lease_owner IS NULL AND next_check_at <= $t1")"
  # End of the window: no unleased row is due any more; the leased ones are checked and released.
  sql "UPDATE check_schedule SET next_check_at = 9000000000000000000 WHERE lease_owner IS NULL" >/dev/null
  for _ in $(seq 600); do
    [[ "$(sql "SELECT count(*) FROM check_schedule WHERE lease_owner IS NOT NULL")" == 0 ]] && break
    sleep 0.1
  done
  local leased; leased="$(sql "SELECT count(*) FROM check_schedule WHERE lease_owner IS NOT NULL")"
  [[ $leased == 0 ]] || log "after 60 s, $leased leases are still held"
  # The three sources of truth, quiescent.
  local metrics=0 per=() outs=()
  for port in "${ports[@]}"; do
    i="$(checks_total "$port")"; metrics=$((metrics + i)); per+=("$i"); outs+=("$(outcomes "$port")")
  done
  local after store distinct sim excess
  after="$(curl -sf "$SIM_COUNTS_URL")"
  store="$(sql "SELECT coalesce(json_object_agg(tenant_id, n), '{}') FROM (SELECT tenant_id, count(*) AS n FROM profiles WHERE last_checked_at >= $start GROUP BY tenant_id) t")"
  read -r distinct sim excess < <(jq -rn --argjson a "$before" --argjson b "$after" --argjson s "$store" '
    def tally(x): reduce (x[] | select(.grant_type == "client_credentials")) as $r ({}; .[$r.tenant_id] += $r.count);
    tally($a) as $A | tally($b) as $B |
    ([$s[]] | add // 0) as $distinct |
    (([$B[]] | add // 0) - ([$A[]] | add // 0)) as $sim |
    ([$B | to_entries[] | (.value - ($A[.key] // 0) - ($s[.key] // 0)) | select(. > 0)] | add // 0) as $excess |
    "\($distinct) \($sim) \($excess)"')
  DUPLICATES="$(awk "BEGIN { d = $metrics - $distinct; if ($sim - $distinct > d) d = $sim - $distinct; if ($excess > d) d = $excess; print (d < 0 ? 0 : d) }")"
  COUNTS="checks: $metrics by the replicas' metrics (per replica ${per[*]}; ${outs[*]}), $sim token requests at entra-sim (per-tenant excess $excess), $distinct distinct profiles checked in the store"
  echo "{\"replicas\": $n, \"latency_ms\": $lat, \"checks_per_sec\": $RATE, \"due_left\": $DUE_LEFT, \"metrics\": $metrics, \"sim\": $sim, \"distinct\": $distinct, \"tenant_excess\": $excess, \"duplicates\": $DUPLICATES}" \
    >"$BENCH_RESULTS/scaleout-$n-$lat.json"
  log "$n replica(s), +$lat ms: $RATE checks/s; $DUE_LEFT still due; $COUNTS"
  for i in "${pids[@]}"; do kill "$i" 2>/dev/null || true; done   # all at once: each finishes in parallel
  for i in "${pids[@]}"; do wait "$i" 2>/dev/null || true; done
}

for lat in 100 0; do
  run_replicas 1 "$lat"
  ONE="$RATE"; ONE_LEFT="$DUE_LEFT"
  run_replicas 3 "$lat"
  ratio="$(calc "$RATE / $ONE")"
  if [[ $lat == 100 ]]; then
    record scaleout "checks/s, 3 replicas vs 1, +$lat ms (latency-bound), concurrency $CONCURRENCY each, ${WINDOW}s windows (still due at the end: $ONE_LEFT / $DUE_LEFT of $PROFILES)" \
      "$RATE" "$ONE" "$ratio" ">= 2.5" "$(verdict "$ratio >= 2.5")"
  else
    record scaleout "checks/s, 3 replicas vs 1, +0 ms (CPU-bound: the 2-core machine's limit), concurrency $CONCURRENCY each (still due at the end: $ONE_LEFT / $DUE_LEFT)" \
      "$RATE" "$ONE" "$ratio" - "context: machine's limit"
  fi
  record scaleout "profiles checked twice per due time, 3 replicas, +$lat ms ($COUNTS)" \
    "$DUPLICATES" - - "0" "$(verdict "$DUPLICATES == 0")"
  if [[ $DUE_LEFT == 0 || $ONE_LEFT == 0 ]]; then
    record scaleout "profiles still due at the end of the +$lat ms windows (a replica ran dry: seed more)" \
      "$ONE_LEFT / $DUE_LEFT" - - "> 0" MISSED
  fi
done
psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS consentry_bench_scaleout" >&2
record scaleout "bench/scaleout.sh duration s" "$((SECONDS - SCALEOUT_STARTED))" - - - -
