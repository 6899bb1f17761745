#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test of every crate, from one build.
# Installs and starts what the tests need, idempotently, so it runs the same on a fresh machine and in CI.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE=1

# Each step is announced with the seconds the run has taken so far, so a slow step shows in CI's log.
step() { printf '\n==> %s  (at %ss)\n' "$*" "$SECONDS"; }
trap 'printf "\n==> finished in %ss\n" "$SECONDS"' EXIT

step "rustfmt"
cargo fmt --all -- --check

step "PostgreSQL for the store tests"
# Installs (Debian package) and starts PostgreSQL when needed; each test creates and drops its own database.
# A URL already set (a server provided by the environment) is used as is.
if [[ -z "${CONSENTRY_TEST_POSTGRES_URL:-}" ]]; then
  pg_env="$(scripts/ensure-postgres.sh)"
  eval "$pg_env"
fi
export CONSENTRY_TEST_POSTGRES_URL

step "Chromium for the console's browser tests"
# Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver); installed as root when
# missing. Without them the browser test is skipped locally and fails under CI.
if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
  else
    echo "chromium and chromium-driver are missing and cannot be installed here (need root and apt-get)" >&2
  fi
fi

step "axe-core for the console's accessibility checks"
# The npm package axe-core, into target/node (git-ignored; nothing is committed). The browser test
# injects target/node/node_modules/axe-core/axe.min.js into every page; without it the test is skipped
# locally and fails under CI.
if [[ ! -f target/node/node_modules/axe-core/axe.min.js ]]; then
  if ! command -v npm >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm
  fi
  if command -v npm >/dev/null 2>&1; then
    npm install --no-save --no-package-lock --no-audit --no-fund --prefix target/node axe-core@4
  else
    echo "npm is missing and cannot be installed here (need root and apt-get): the browser test needs axe-core" >&2
  fi
fi

step "MSAL for Python for the simulator's MSAL test (in the background)"
# A virtualenv, target/msal-venv (git-ignored), with Microsoft's msal package from PyPI: entra-sim's MSAL
# test (crates/entra-sim/tests/it/msal.rs) drives the simulator with it. Skipped when msal is already
# installed there at a matching version; otherwise the install runs in the background, so its network
# time overlaps the build, and is waited for before the tests. python3's venv module comes with the
# Debian package python3-venv, installed as root when missing. Without it the MSAL test is skipped
# locally and fails under CI.
msal_venv=target/msal-venv
msal_spec='msal>=1.24,<2'
msal_version() {
  "$msal_venv/bin/python" -c 'import msal, sys
v = tuple(int(x) for x in msal.__version__.split(".")[:2])
print(msal.__version__) if (1, 24) <= v < (2, 0) else sys.exit(1)' 2>/dev/null
}
msal_pid=""
msal_log="$(mktemp)"
if installed="$(msal_version)"; then
  echo "msal $installed is in $msal_venv"
else
  (
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
      if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
      else
        echo "python3 with its venv module is missing and cannot be installed here (Debian package python3-venv; need root and apt-get): the MSAL test needs it"
        exit 1
      fi
    fi
    python3 -m venv --clear "$msal_venv"
    "$msal_venv/bin/pip" install --quiet --disable-pip-version-check "$msal_spec"
  ) >"$msal_log" 2>&1 &
  msal_pid=$!
fi

step "fuzz targets' build (in the background, at the lowest CPU priority)"
# cargo-fuzz builds the targets in fuzz/target (its own lock and flags: opt-level 1 with coverage
# instrumentation, so nothing is shared with the build below). Started now under `nice -n 19`, it
# takes only the CPU the build's serial phases (linking, proc-macro chains) and the tests' waiting
# leave idle, and is waited for at the fuzzing step. Building it in the background without `nice`,
# during the tests only, was tried: the tests then took 160 s longer.
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
fuzz_build_log="$(mktemp)"
(cd fuzz && nice -n 19 cargo fuzz build -s none) >"$fuzz_build_log" 2>&1 &
fuzz_build_pid=$!

step "build, with clippy's lints (-D warnings)"
# One build serves the lints, the tests and the doc tests. `cargo clippy` is `cargo check` with
# clippy-driver wrapping rustc for the workspace's own crates: run separately it checks every
# dependency a second time (metadata only, but the whole tree) before the test build compiles them
# all again. Here clippy-driver wraps rustc for the workspace's crates during the test build itself
# (the way cargo-clippy hands it its arguments: CLIPPY_ARGS, separated by __CLIPPY_HACKERY__), so
# each crate is linted as it is compiled, every target (lib, bins, tests) as `--all-targets` would,
# and a lint fails the build. Dependencies are built once, without clippy (cargo caps their lints).
export RUSTC_WORKSPACE_WRAPPER="$(rustc --print sysroot)/bin/clippy-driver"
if [[ ! -x "$RUSTC_WORKSPACE_WRAPPER" ]]; then
  echo "clippy-driver is missing from the toolchain: rustup component add clippy" >&2
  exit 1
fi
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-run
else
  cargo test --workspace --locked --no-run
fi

if [[ -n "$msal_pid" ]]; then
  step "MSAL for Python: waiting for the install"
  if wait "$msal_pid" && installed="$(msal_version)"; then
    echo "msal $installed installed in $msal_venv"
  else
    echo "installing msal into $msal_venv failed; the MSAL test is skipped locally and fails under CI:" >&2
    cat "$msal_log" >&2
  fi
fi
rm -f "$msal_log"

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

step "doc tests"
# The libraries from the build above (same wrapper and flags), only the examples are compiled.
cargo test --workspace --doc --locked
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS

step "fuzzing (short bounded runs)"
# cargo-fuzz works on the stable toolchain without a sanitizer (`-s none`: libFuzzer with coverage
# instrumentation, no ASan). Each target starts from its committed corpus (fuzz/corpus/<target>/, also run
# as regression tests by each crate); new inputs go to a scratch folder so the committed corpus stays as is.
# A crash leaves its input in fuzz/artifacts/<target>/: add it to the corpus and a regression test.
# The targets build at opt-level 1 (fuzz/Cargo.toml), in the background since the build step.
if ! wait "$fuzz_build_pid"; then
  echo "building the fuzz targets failed:" >&2
  cat "$fuzz_build_log" >&2
  exit 1
fi
rm -f "$fuzz_build_log"
fuzz_seconds="${CONSENTRY_FUZZ_SECONDS:-20}"
fuzz_targets=(pfx callback_query aadsts catalog)
# The targets run side by side (each its own libFuzzer process and log), so the step takes one
# target's time, not four; a target that fails has its log printed.
fuzz_logs="$(mktemp -d)"
pids=()
for target in "${fuzz_targets[@]}"; do
  (
    scratch="$(mktemp -d)"
    trap 'rm -rf "$scratch"' EXIT
    cd fuzz && cargo fuzz run -s none "$target" "$scratch" "corpus/$target" -- -max_total_time="$fuzz_seconds"
  ) >"$fuzz_logs/$target.log" 2>&1 &
  pids+=($!)
done
fuzz_failed=0
for i in "${!fuzz_targets[@]}"; do
  target="${fuzz_targets[$i]}"
  if wait "${pids[$i]}"; then
    printf '%s: %s\n' "$target" "$(grep -E '^#[0-9]+[[:space:]]+DONE' "$fuzz_logs/$target.log" | tail -1)"
  else
    fuzz_failed=1
    echo "fuzz target $target failed (its input is in fuzz/artifacts/$target/):" >&2
    cat "$fuzz_logs/$target.log" >&2
  fi
done
rm -rf "$fuzz_logs"
exit "$fuzz_failed"
