-- wrk script for the token API: POST with the service API key (BENCH_API_KEY) and a JSON body
-- naming the app type; prints one JSON line with the rate and latency percentiles.
wrk.method = "POST"
wrk.body = '{"app_type":"custom-azure-app"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_API_KEY") or "")

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests": %d, "rps": %.2f, "p50_ms": %.3f, "p99_ms": %.3f, "socket_errors": %d, "non_2xx": %d}\n',
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.timeout, e.status))
end
