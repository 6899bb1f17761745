//! The CPU rate of client-assertion signatures: the limit of certificate-based checks when nothing
//! else costs anything. Signs through [`ClientCertificate::client_assertion`], the code path every
//! certificate-based check and token acquisition uses.

use std::time::{Duration, Instant};

use consentry_certs::{AssertionAlg, ClientCertificate};
use time::OffsetDateTime;

use crate::BenchError;

/// The demo custom app's `.pfx` (RSA-2048, registered on the bench scenario's custom apps).
pub const DEMO_PFX: &[u8] = include_bytes!("../../entra-sim/scenarios/contoso-custom-app/cert.pfx");
/// Its password (a demo value).
pub const DEMO_PFX_PASSWORD: &str = "demo-pfx-password";

/// The demo certificate, parsed.
pub fn demo_certificate() -> Result<ClientCertificate, BenchError> {
    ClientCertificate::from_pfx(DEMO_PFX, DEMO_PFX_PASSWORD, OffsetDateTime::now_utc())
        .map_err(|e| BenchError::Certificate(e.to_string()))
}

/// CPU seconds to open the demo `.pfx` once (`ClientCertificate::from_pfx`: PBKDF2 key derivation),
/// averaged over `n` opens on this thread.
pub fn pfx_open_cpu_secs(n: u32) -> Result<f64, BenchError> {
    let cpu0 = crate::procfs::cpu_seconds("self")?;
    for _ in 0..n.max(1) {
        demo_certificate()?;
    }
    Ok((crate::procfs::cpu_seconds("self")? - cpu0) / f64::from(n.max(1)))
}

/// What [`measure`] found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SignRate {
    /// Threads signing at once (one per logical CPU).
    pub threads: usize,
    /// Signatures per second over all threads.
    pub per_sec_all_cores: f64,
    /// Process CPU seconds per signature (the single-signature cost, amortized).
    pub cpu_secs_per_sig: f64,
    /// Signatures made.
    pub signatures: u64,
}

/// Signs RS256 client assertions on `threads` threads for `duration`.
pub fn measure(
    threads: usize,
    duration: Duration,
    alg: AssertionAlg,
) -> Result<SignRate, BenchError> {
    let cert = demo_certificate()?;
    let audience = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token";
    let client_id = "c0a70000-0000-4000-8000-0000000c0570";
    // Warm up (page in the code, fill caches).
    for _ in 0..20 {
        cert.client_assertion(client_id, audience, alg, OffsetDateTime::now_utc())
            .map_err(|e| BenchError::Certificate(e.to_string()))?;
    }
    let cpu0 = crate::procfs::cpu_seconds("self")?;
    let started = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                let cert = &cert;
                s.spawn(move || {
                    let mut n = 0u64;
                    let until = Instant::now() + duration;
                    while Instant::now() < until {
                        if cert
                            .client_assertion(client_id, audience, alg, OffsetDateTime::now_utc())
                            .is_ok()
                        {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = crate::procfs::cpu_seconds("self")? - cpu0;
    Ok(SignRate {
        threads: threads.max(1),
        per_sec_all_cores: total as f64 / elapsed,
        cpu_secs_per_sig: cpu / total.max(1) as f64,
        signatures: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_on_every_thread_and_accounts_cpu() {
        let r = measure(2, Duration::from_millis(200), AssertionAlg::Rs256X5t).unwrap();
        assert_eq!(r.threads, 2);
        assert!(r.signatures > 0);
        assert!(r.per_sec_all_cores > 0.0 && r.cpu_secs_per_sig > 0.0);
    }
}
