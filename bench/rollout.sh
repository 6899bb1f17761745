#!/usr/bin/env bash
# A permission rollout at scale, on PostgreSQL: 30,000 custom-app profiles over 10,000 tenants (full) or
# 1,000 over 300 (--quick), then the catalog's next version adds an application permission to them.
#   - the first report enrolls every profile (one INSERT … SELECT) and reads them back (one SELECT);
#   - a further report reads and assesses them (median of 5);
# each against the baseline of counting the same profiles by status (the console banner's statement),
# measured in the same run. Target: a few set-based statements, not one per profile: the transactions the
# whole command commits are counted from PostgreSQL's statistics (pg_stat_database).
# Then a consent campaign over that rollout (every tenant is one organization's, as a campaign is): starting it (who is affected, a link per tenant, a member per
# profile, one transaction of multi-row inserts) and reading it back in full, against the same baseline;
# its transactions are counted the same way.
#
# Usage: bench/rollout.sh [--quick]
source "$(dirname "$0")/lib.sh"
bench_build

if [[ $QUICK == 1 ]]; then PROFILES=1000; TENANTS=300; else PROFILES=30000; TENANTS=10000; fi
W="$BENCH_WORK/rollout"
rm -rf "$W"; mkdir -p "$W"
start_sim 10 "$W/sim"
eval "$("$BENCH_ROOT/scripts/ensure-postgres.sh")"
ADMIN_URL="$CONSENTRY_TEST_POSTGRES_URL"
unset CONSENTRY_TEST_POSTGRES_URL   # not a configuration key of Consentry
PG_URL="${ADMIN_URL%/*}/consentry_bench_rollout"
psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS consentry_bench_rollout" -c "CREATE DATABASE consentry_bench_rollout" >&2
consentry_env "$W/data" "$PG_URL"
log "rollout: seeding $PROFILES profiles over $TENANTS tenants"
# One organization holds every tenant: a campaign is an organization's, so this is the largest one.
"$BIN/consentry-bench" seed --profiles "$PROFILES" --tenants "$TENANTS" --tenants-per-org "$TENANTS" \
  --invalid-every 0 >/dev/null
psql -q "$PG_URL" -c "VACUUM ANALYZE" >&2
xacts() {
  sleep 1   # the server's statistics of the bench's connections, flushed when they close
  psql -At "$ADMIN_URL" -c "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'consentry_bench_rollout'"
}
before="$(xacts)"
out="$("$BIN/consentry-bench" rollout --runs 5)"
statements="$(( $(xacts) - before ))"
echo "$out" >"$BENCH_RESULTS/rollout.json"
log "rollout: $out"
base="$(jqn "$out" .baseline_count_ms)"
# Set-based, not one statement per profile: the whole command (start-up, six reports, five counts) commits
# a few dozen transactions at most, whatever the number of profiles.
record rollout "$PROFILES profiles: transactions of the whole command (6 reports, 5 counts)" \
  "$statements" - - "< 100" "$(verdict "$statements < 100")"
record rollout "$PROFILES profiles, $TENANTS tenants (PostgreSQL): first report ms (enrolls all)" \
  "$(calc "$(jqn "$out" .first_report_ms)")" "$(calc "$base")" "$(calc "$(jqn "$out" .first_report_ratio)")" - -
record rollout "$PROFILES profiles, $TENANTS tenants (PostgreSQL): report ms (median of 5)" \
  "$(calc "$(jqn "$out" .report_ms)")" "$(calc "$base")" "$(calc "$(jqn "$out" .report_ratio)")" - -
before="$(xacts)"
out="$("$BIN/consentry-bench" campaign)"
statements="$(( $(xacts) - before ))"
echo "$out" >"$BENCH_RESULTS/campaign.json"
log "campaign: $out"
base="$(jqn "$out" .baseline_count_ms)"
record rollout "$PROFILES profiles: transactions of starting a campaign (with start-up and a read)" \
  "$statements" - - "< 100" "$(verdict "$statements < 100")"
record rollout "$PROFILES profiles, $TENANTS tenants (PostgreSQL): campaign start ms" \
  "$(calc "$(jqn "$out" .start_ms)")" "$(calc "$base")" "$(calc "$(jqn "$out" .start_ratio)")" - -
record rollout "$PROFILES profiles, $TENANTS tenants (PostgreSQL): campaign read ms" \
  "$(calc "$(jqn "$out" .show_ms)")" "$(calc "$base")" "$(calc "$(jqn "$out" .show_ratio)")" - -
psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS consentry_bench_rollout" >&2
