#!/usr/bin/env bash
# Health sweep: 1k, 10k and 100k certificate-based (custom app) profiles across 200 tenants, checked by
# the monitor against entra-sim (its own process) adding 0, 20 and 100 ms to every round trip (token requests and Graph exchanges).
#
# Baselines, measured in the same run:
#   - the CPU rate of RS256 client-assertion signatures on all cores (consentry-certs' code path);
#   - a check is two sequential round trips (the token, then one Graph $batch), each waiting the added
#     latency: limit = min(concurrency / (2 x latency), that signature rate); target: checks/s >= 0.9 x
#     limit at +20 and +100 ms (at +0 ms the figure is reported against the signature rate);
#   - round trips per check, counted by entra-sim: one token request and one Graph exchange;
#   - CPU per check (the checking process, /proc) vs one RSA-2048 assertion signature: target <= 3 at +0 ms
#     (the figure issue #21 quotes, "today 5.2 at 1k profiles", is this one; the profile it asks for,
#     bench/profile.sh, is taken there too); at +20 and +100 ms the same ratio is context: the process then
#     sleeps between answers, and on this virtual machine each wake-up costs CPU of its own;
#   - entra-sim's capacity (the calls of one check, without Consentry's store) vs the sweep rate.
# Each size is measured over at most 5,000 checks (--quick: one size, 500 profiles, 200 checks) with all its
# profiles in the store.
#
# Usage: bench/sweep.sh [--quick]
source "$(dirname "$0")/lib.sh"
bench_build

TENANTS=200
CONCURRENCY=16
if [[ $QUICK == 1 ]]; then SIZES=(500); WINDOW=200; SIGN_SECS=1; else SIZES=(1000 10000 100000); WINDOW=5000; SIGN_SECS=3; fi
LATENCIES=(0 20 100)
W="$BENCH_WORK/sweep"
rm -rf "$W"; mkdir -p "$W"

log "signature rate (RS256 client assertions, all cores)"
SIGN="$("$BIN/consentry-bench" sign --seconds "$SIGN_SECS")"
echo "$SIGN" >"$BENCH_RESULTS/sign.json"
SIG_RATE="$(jqn "$SIGN" .all_cores.per_sec_all_cores)"
SIG_CPU="$(jqn "$SIGN" .one_thread.cpu_secs_per_sig)"
record sweep "RS256 assertion signatures/s, $(jqn "$SIGN" .all_cores.threads) threads" "$(calc "$SIG_RATE")" - - - baseline
record sweep "CPU ms per RS256 assertion signature" "$(calc "$SIG_CPU*1000")" - - - baseline

start_sim "$TENANTS" "$W/sim"
consentry_env "$W/capacity"
log "entra-sim capacity (the identity-platform calls of one check, 32 at once)"
CAP="$("$BIN/consentry-bench" sim-capacity --seconds "$([[ $QUICK == 1 ]] && echo 2 || echo 8)" --tenants "$TENANTS" --sim-pid "$SIM_PID")"
echo "$CAP" >"$BENCH_RESULTS/sim-capacity.json"
SIM_CAP="$(jqn "$CAP" .sim_capacity_per_sec_all_cores)"
record sweep "entra-sim capacity (checks/s if it had every core)" "$(calc "$SIM_CAP")" - - - baseline
record sweep "entra-sim CPU ms per check" "$(calc "$(jqn "$CAP" .sim_cpu_secs_per_check)*1000")" - - - baseline
# The identity-platform calls of a check alone (the Entra adapter against entra-sim, no store, no monitor)
# at each added latency and the sweep's concurrency: what the sweep could reach if Consentry's own work
# cost nothing. It caught entra-sim serving one request at a time (docs/PERFORMANCE.md, "What was fixed").
declare -A ALONE
for lat in "${LATENCIES[@]}"; do
  [[ $lat == 0 ]] && continue
  OUT="$("$BIN/consentry-bench" sim-capacity --seconds "$([[ $QUICK == 1 ]] && echo 2 || echo 4)" --tenants "$TENANTS" \
    --concurrency "$CONCURRENCY" --latency-ms "$lat")"
  ALONE[$lat]="$(jqn "$OUT" .checks_per_sec)"
  limit="$(calc "$CONCURRENCY/(2*$lat/1000)")"
  record sweep "identity-platform calls alone, +$lat ms, concurrency $CONCURRENCY: checks/s" "$(calc "${ALONE[$lat]}")" \
    "limit $limit" "$(calc "${ALONE[$lat]}/$limit")" - baseline
done

# Round trips to entra-sim, counted by the simulator (`GET /_sim/counts`: a `$batch` is one exchange).
sim_counts() { curl -s --cacert "$SIM_CA" "$SIM_URL/_sim/counts"; }
TOKENS=0; GRAPH=0; CHECKED=0; SWEEPS=0
BEST=0
for size in "${SIZES[@]}"; do
  consentry_env "$W/data-$size"
  log "seeding $size profiles over $TENANTS tenants"
  SEEDED="$("$BIN/consentry-bench" seed --profiles "$size" --tenants "$TENANTS")"
  log "seeded in $(jqn "$SEEDED" .seconds) s"
  checks=$(( size < WINDOW ? size : WINDOW ))
  hours=0
  for lat in "${LATENCIES[@]}"; do
    hours=$((hours + 2))
    log "sweep: $size profiles, +$lat ms, $checks checks"
    BEFORE="$(sim_counts)"
    OUT="$("$BIN/consentry-bench" sweep --checks "$checks" --latency-ms "$lat" --sim "$SIM_URL" \
      --sim-pid "$SIM_PID" --concurrency "$CONCURRENCY" --clock-hours "$hours")"
    echo "$OUT" >"$BENCH_RESULTS/sweep-$size-$lat.json"
    AFTER="$(sim_counts)"
    TOKENS=$((TOKENS + $(jqn "$AFTER" .token_requests) - $(jqn "$BEFORE" .token_requests)))
    GRAPH=$((GRAPH + $(jqn "$AFTER" .graph_exchanges) - $(jqn "$BEFORE" .graph_exchanges)))
    CHECKED=$((CHECKED + $(jqn "$OUT" .all_checks)))
    SWEEPS=$((SWEEPS + 1))
    rate="$(jqn "$OUT" .checks_per_sec)"
    cpu="$(jqn "$OUT" .cpu_secs_per_check)"
    if [[ $lat == 0 ]]; then limit="$SIG_RATE"; else limit="$(awk "BEGIN { a=$CONCURRENCY/(2*$lat/1000); b=$SIG_RATE; printf \"%.4g\", (a<b?a:b) }")"; fi
    ratio="$(calc "$rate/$limit")"
    if [[ $lat == 0 ]]; then target=-; v=context; else target=">= 0.9"; v="$(verdict "$ratio >= 0.9")"; fi
    record sweep "checks/s, $size profiles, +$lat ms, concurrency $CONCURRENCY (outcomes $(jq -c .outcomes <<<"$OUT"))" \
      "$(calc "$rate")" "limit $limit" "$ratio" "$target" "$v"
    # Context, not the target: entra-sim shares this machine's CPUs, so checks/s cannot exceed
    # cores / (Consentry's CPU per check + entra-sim's CPU per check), both measured in this sweep;
    # nor concurrency / (2 x latency).
    simcpu="$(jqn "$OUT" .sim_cpu_secs_per_check)"
    cpulimit="$(awk "BEGIN { c=$(nproc) / ($cpu + $simcpu); if ($lat > 0 && $CONCURRENCY/(2*$lat/1000) < c) c=$CONCURRENCY/(2*$lat/1000); printf \"%.4g\", c }")"
    record sweep "checks/s, $size profiles, +$lat ms, vs min(concurrency/(2 x latency), CPU limit with entra-sim on the same cores)" \
      "$(calc "$rate")" "limit $cpulimit" "$(calc "$rate/$cpulimit")" - context
    if [[ $lat != 0 ]]; then
      record sweep "checks/s, $size profiles, +$lat ms, vs the identity-platform calls alone at that latency" \
        "$(calc "$rate")" "$(calc "${ALONE[$lat]}")" "$(calc "$rate/${ALONE[$lat]}")" - context
    fi
    cratio="$(calc "$cpu/$SIG_CPU")"
    if [[ $lat == 0 ]]; then
      record sweep "CPU ms per certificate-based check, $size profiles, +$lat ms" "$(calc "$cpu*1000")" \
        "1 signature $(calc "$SIG_CPU*1000") ms" "$cratio" "<= 3" "$(verdict "$cratio <= 3")"
    else
      record sweep "CPU ms per certificate-based check, $size profiles, +$lat ms (wake-ups between answers included)" \
        "$(calc "$cpu*1000")" "1 signature $(calc "$SIG_CPU*1000") ms" "$cratio" - context
    fi
    BEST="$(awk "BEGIN { print ($rate > $BEST ? $rate : $BEST) }")"
  done
done
# A certificate-based check: the token, then one Graph `$batch` with every read it needs.
per="$(calc "$TOKENS/$CHECKED")"
record sweep "token requests per check (all sweeps, $CHECKED checks)" "$per" - - "1" "$(verdict "$per <= 1.0001")"
# Each sweep is a new process, which reads Graph's app roles once (kept per cloud, shared by the checks
# that start together): not a round trip of a check.
per="$(calc "($GRAPH-$SWEEPS)/$CHECKED")"
record sweep "Graph round trips per check (all sweeps; a \$batch counts once; $GRAPH exchanges, less $SWEEPS reads of Graph's app roles, one per sweep process)" \
  "$per" - - "1" "$(verdict "$per <= 1.0001")"
ratio="$(calc "$BEST/$SIM_CAP")"
record sweep "fastest sweep vs entra-sim's CPU capacity (its CPU is not the limit; its rate at each latency: the calls-alone rows)" "$(calc "$BEST")" \
  "$(calc "$SIM_CAP")" "$ratio" "< 1" "$(verdict "$ratio < 1")"
