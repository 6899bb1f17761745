#!/usr/bin/env bash
# The whole benchmark suite from ONE release build: health sweep, token API, scale, start-up. Prints the
# results table (also in $BENCH_RESULTS/results.tsv, default target/bench-results). Every figure is set
# against a baseline measured in the same run. Each part also runs alone: bench/sweep.sh,
# bench/token-api.sh, bench/scale.sh, bench/startup.sh (each takes --quick).
#
# Usage: bench/run.sh [--quick]    (--quick: small sizes, about 3 minutes; full: over 20 minutes on a shared 2-core machine)
source "$(dirname "$0")/lib.sh"
bench_build
export BENCH_NO_BUILD=1
rm -f "$BENCH_RESULTS/results.tsv"
started=$(date +%s)
"$BIN/consentry-bench" machine | jq -r .machine >"$BENCH_RESULTS/machine.txt"
args=(); [[ $QUICK == 1 ]] && args=(--quick)
for part in sweep token-api scale rollout startup; do
  log "== $part"
  "$(dirname "$0")/$part.sh" "${args[@]}"
done
echo
echo "Machine: $(cat "$BENCH_RESULTS/machine.txt"); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); $(( $(date +%s) - started )) s"
{
  printf 'part\tfigure\tvalue\tbaseline\tratio\ttarget\tverdict\n'
  cat "$BENCH_RESULTS/results.tsv"
} | column -t -s $'\t'
