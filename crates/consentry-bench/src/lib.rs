//! Benchmark drivers for Consentry (`bench/run.sh` runs them; `docs/PERFORMANCE.md` has the numbers).
//!
//! - [`scenario::bench_scenario`]: an entra-sim scenario with many customer tenants, each owning a
//!   custom app with the demo certificate, consented by its administrator.
//! - [`seed`]: writes organizations, tenants and authorized certificate-based (custom app) profiles
//!   straight into a Consentry store through the `Store` port, so that 100k profiles take seconds.
//! - [`sign`]: the CPU rate of client-assertion signatures through `consentry-certs`, on all cores.
//! - [`procfs`]: process CPU time and resident memory from `/proc`.
//! - [`stats`] computes latency percentiles.
//! - [`throttle`]: a sweep against entra-sim's throttling limits, with the limit-implied minimum
//!   duration.
//!
//! Every figure the suite reports is a ratio against a baseline measured in the same run; nothing here
//! asserts a duration.

pub mod procfs;
pub mod scenario;
pub mod seed;
pub mod sign;
pub mod stats;
pub mod throttle;

/// Why a benchmark step failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// `/proc` could not be read or parsed.
    #[error("reading {path} failed: {reason}; the benchmarks need Linux /proc")]
    Proc {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The bundled demo certificate could not be used.
    #[error("the demo certificate cannot be used: {0}")]
    Certificate(String),
}
