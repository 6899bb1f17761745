#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test of every crate.
# Installs and starts what the tests need, idempotently, so it runs the same on a fresh machine and in CI.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE=1

step() { printf '\n==> %s\n' "$*"; }

step "rustfmt"
cargo fmt --all -- --check

step "clippy (-D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "PostgreSQL for the store tests"
# Installs (Debian package) and starts PostgreSQL when needed; each test creates and drops its own database.
# A URL already set (a server provided by the environment) is used as is.
if [[ -z "${CONSENTRY_TEST_POSTGRES_URL:-}" ]]; then
  pg_env="$(scripts/ensure-postgres.sh)"
  eval "$pg_env"
fi
export CONSENTRY_TEST_POSTGRES_URL

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

step "doc tests"
cargo test --workspace --doc --locked
