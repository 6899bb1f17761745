#!/usr/bin/env bash
# Start-up: `consentry demo --fresh` (built binary) until /healthz answers, against starting the
# hello-world baseline until it answers, median of 5 runs each (--quick: 3). Target: <= 1 s.
#
# Usage: bench/startup.sh [--quick]
source "$(dirname "$0")/lib.sh"
bench_build

RUNS=$([[ $QUICK == 1 ]] && echo 3 || echo 5)
W="$BENCH_WORK/startup"
rm -rf "$W"; mkdir -p "$W"

# ready_ms CMD...: milliseconds from starting CMD until http://127.0.0.1:$PORT/healthz answers.
ready_ms() {
  local t0 t1 pid
  t0=$(date +%s%N)
  "$@" >"$W/out.log" 2>&1 &
  pid=$!
  BENCH_PIDS+=("$pid")
  for _ in $(seq 4000); do
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/healthz"; then break; fi
    sleep 0.005
  done
  t1=$(date +%s%N)
  stop "$pid"
  echo $(( (t1 - t0) / 1000000 ))
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

demo=() hello=()
for i in $(seq "$RUNS"); do
  PORT="$(free_port)"; SPORT="$(free_port)"
  demo+=("$(ready_ms "$BIN/consentry" demo --fresh --data-dir "$W/demo" --listen "127.0.0.1:$PORT" --sim-listen "127.0.0.1:$SPORT")")
  PORT="$(free_port)"
  hello+=("$(ready_ms "$BIN/consentry-bench" hello --listen "127.0.0.1:$PORT")")
done
D="$(printf '%s\n' "${demo[@]}" | median)"
H="$(printf '%s\n' "${hello[@]}" | median)"
log "demo: ${demo[*]} ms; hello-world: ${hello[*]} ms"
record startup "consentry demo --fresh until /healthz answers, ms (median of $RUNS)" "$D" "$H" \
  "$(calc "$D/$H")" "<= 1000 ms" "$(verdict "$D <= 1000")"
