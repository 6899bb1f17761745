#!/usr/bin/env bash
# Where the CPU of a health sweep goes: `perf record -e cpu-clock` (a software clock, so it works on virtual
# machines without hardware counters) of `consentry-bench sweep` over 2,000 checks of 2,000 certificate-based
# profiles (+0 ms), then the samples of the sweeping process bucketed by what they were doing. perf is
# installed from Debian when missing. Prints the table; the raw profile stays in $BENCH_WORK/profile.
#
# Usage: bench/profile.sh [--quick]    (--quick: 500 profiles)
source "$(dirname "$0")/lib.sh"
bench_build

if ! command -v perf >/dev/null; then
  log "installing perf (Debian: linux-perf)"
  if [[ $(id -u) -eq 0 ]]; then apt-get install -y -q linux-perf >&2; else sudo apt-get install -y -q linux-perf >&2; fi
fi
if [[ $QUICK == 1 ]]; then SIZE=500; else SIZE=2000; fi
CHECKS=$SIZE   # every profile is due once in the profiled sweep
W="$BENCH_WORK/profile"
rm -rf "$W"; mkdir -p "$W"
start_sim 200 "$W/sim"
consentry_env "$W/data"
"$BIN/consentry-bench" seed --profiles "$SIZE" --tenants 200 >/dev/null
# A first sweep creates every schedule row; the profiled one is a steady-state sweep.
"$BIN/consentry-bench" sweep --checks "$SIZE" --latency-ms 0 --sim "$SIM_URL" --concurrency 16 --clock-hours 2 >/dev/null
perf record -q -e cpu-clock -F 4000 -o "$W/perf.data" -- \
  "$BIN/consentry-bench" sweep --checks "$CHECKS" --latency-ms 0 --sim "$SIM_URL" --sim-pid "$SIM_PID" \
  --concurrency 16 --clock-hours 4 >"$W/sweep.json" 2>/dev/null
perf report -i "$W/perf.data" --no-children --sort dso,sym -g none --percent-limit 0 -F overhead,dso,sym \
  2>/dev/null | grep -v '^#' | grep -v '^$' >"$W/symbols.txt"
log "sweep: $(jq -c '{checks_per_sec, cpu_secs_per_check}' "$W/sweep.json")"
awk '
  { pct = $1; sub(/%/, "", pct); line = $0 }
  line ~ /\[kernel/                                             { b["kernel: syscalls, scheduling, loopback TCP"] += pct; next }
  line ~ /rsaz|bn_|BN_|RSA|rsa_|_mont|extract_multiplier/       { b["RSA signature (aws-lc)"] += pct; next }
  line ~ /sqlite3|sqlx|pcache|wal[A-Z]|btree|Btree|Vdbe/        { b["SQLite and sqlx"] += pct; next }
  line ~ /aes_gcm|gcm_|chacha|ghash|sha256|sha512|hmac|x25519|ecdsa|ecp_|p256|rustls/ { b["TLS (rustls, aws-lc record and handshake crypto)"] += pct; next }
  line ~ /serde|json/                                           { b["JSON (serde_json)"] += pct; next }
  line ~ /h2::|hyper|http::|reqwest|hpack|huffman/              { b["HTTP (hyper, h2, reqwest)"] += pct; next }
  line ~ /malloc|free|_int_|memmove|memcpy|memset|memcmp|realloc|unlink_chunk/ { b["allocator and memory copies (libc)"] += pct; next }
  line ~ /tokio|futex|pthread|syscall|epoll|parking/            { b["async runtime and threads (tokio, libc)"] += pct; next }
  { b["everything else (Consentry, time, uuid, …)"] += pct }
  END { for (k in b) printf "%6.1f %%  %s\n", b[k], k }
' "$W/symbols.txt" | sort -rn | tee "$BENCH_RESULTS/profile.txt"
echo "top symbols: $W/symbols.txt; profile: perf report -i $W/perf.data"
