#!/usr/bin/env bash
# Microsoft's throttling: a sweep of every seeded certificate-based profile (100,000 over 4 tenants;
# --quick: 1,000 over 1 tenant) while entra-sim enforces the documented limits per app and tenant
# (Graph: 3,500 resource units per 10 s for a small tenant, 150,000 per 20 s per app; token endpoint:
# 200 requests per second, UNVERIFIED). Few tenants, so that the limits bind: each tenant's checks share
# one custom app, and a check costs one token request and 4 Graph resource units (the four reads of
# its `$batch`, one unit each: 400,165 units for 100,000 checks in the run of 2026-12-04).
#
# Figures, all from the same run:
#   - requests Consentry sent, how many entra-sim answered 429, their share: target <= 1 %;
#   - the sweep's duration against the limit-implied minimum: for each key (app and tenant, and the
#     per-app limit) the work it had answered / its refill rate, less the bucket's starting burst; the
#     longest key sets it (the nominal figure, without the burst, is printed beside it).
#
# Usage: bench/throttle.sh [--quick]
source "$(dirname "$0")/lib.sh"
bench_build

CONCURRENCY=16
PER_TENANT=4
if [[ $QUICK == 1 ]]; then PROFILES=1000; TENANTS=1; else PROFILES=100000; TENANTS=4; fi
W="$BENCH_WORK/throttle"
rm -rf "$W"; mkdir -p "$W"

start_sim "$TENANTS" "$W/sim"
consentry_env "$W/data"
log "seeding $PROFILES profiles over $TENANTS tenants"
SEEDED="$("$BIN/consentry-bench" seed --profiles "$PROFILES" --tenants "$TENANTS")"
log "seeded in $(jqn "$SEEDED" .seconds) s; sweeping with the documented limits on"
OUT="$("$BIN/consentry-bench" throttle --checks "$PROFILES" --sim "$SIM_URL" \
  --concurrency "$CONCURRENCY" --per-tenant "$PER_TENANT")"
echo "$OUT" >"$BENCH_RESULTS/throttle-$PROFILES.json"

requests="$(jqn "$OUT" .requests)"
throttled="$(jqn "$OUT" .throttled)"
share="$(calc "100*$(jqn "$OUT" .throttled_share)")"
record throttle "requests answered 429, $PROFILES profiles over $TENANTS tenants ($throttled of $requests; outcomes $(jq -c .outcomes <<<"$OUT"))" \
  "$share %" - - "<= 1 %" "$(verdict "$share <= 1")"
secs="$(jqn "$OUT" .seconds)"
min="$(jqn "$OUT" .limit_min_seconds)"
nominal="$(jqn "$OUT" .limit_min_seconds_nominal)"
record throttle "sweep duration (s), $PROFILES profiles over $TENANTS tenants, vs the limit-implied minimum ($(jqn "$OUT" .binding_limit); $(calc "$nominal") s without the starting burst)" \
  "$(calc "$secs")" "minimum $(calc "$min") s" "$(calc "$(jqn "$OUT" .ratio)")" - context
