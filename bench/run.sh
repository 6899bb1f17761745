#!/usr/bin/env bash
# The whole benchmark suite from ONE release build: health sweep, token API, scale, permission rollout,
# start-up, throttling, scale-out. Prints the results table (also in $BENCH_RESULTS/results.tsv, default
# target/bench-results), every row with its verdict, and the run's duration. Every figure is set against
# a baseline measured in the same run. Each part also runs alone: bench/sweep.sh, bench/token-api.sh,
# bench/scale.sh, bench/rollout.sh, bench/startup.sh, bench/throttle.sh, bench/scaleout.sh (each takes
# --quick).
#
# Usage: bench/run.sh [--quick]    (--quick: small sizes, under 2 minutes on a 2-core machine; full: over
# 20 minutes)
source "$(dirname "$0")/lib.sh"
bench_build
export BENCH_NO_BUILD=1
rm -f "$BENCH_RESULTS/results.tsv"
started=$(date +%s)
"$BIN/consentry-bench" machine | jq -r .machine >"$BENCH_RESULTS/machine.txt"
args=(); [[ $QUICK == 1 ]] && args=(--quick)
for part in sweep token-api scale rollout startup throttle scaleout; do
  log "== $part"
  part_started=$SECONDS
  "$(dirname "$0")/$part.sh" "${args[@]}"
  log "== $part took $((SECONDS - part_started)) s"
done
took=$(( $(date +%s) - started ))
if [[ $QUICK == 1 ]]; then
  record run "bench/run.sh --quick duration s" "$took" - - "<= 120 s" "$(verdict "$took <= 120")"
else
  record run "bench/run.sh duration s" "$took" - - - -
fi
echo
echo "Machine: $(cat "$BENCH_RESULTS/machine.txt"); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Duration: $took s ($([[ $QUICK == 1 ]] && echo quick || echo full) run)"
{
  printf 'part\tfigure\tvalue\tbaseline\tratio\ttarget\tverdict\n'
  cat "$BENCH_RESULTS/results.tsv"
} | column -t -s $'\t'
