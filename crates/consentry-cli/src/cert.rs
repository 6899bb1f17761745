//! `consentry cert`: self-signed certificates for custom Azure apps.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum CertCmd {
    /// Create a self-signed certificate: a .pfx (with a password) to give Consentry, and a .cer to upload
    /// to the custom app in Microsoft Entra ID (App registrations > the app > Certificates & secrets).
    New {
        /// Subject common name, e.g. "Consentry custom app".
        #[arg(long)]
        subject: String,
        /// Validity in years.
        #[arg(long, default_value_t = 2)]
        years: u32,
        /// Folder to write NAME.pfx and NAME.cer into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Base file name (default: derived from the subject).
        #[arg(long)]
        name: Option<String>,
        /// The .pfx password; read from CONSENTRY_CERT_PASSWORD when not given, generated when neither is set.
        #[arg(long, env = "CONSENTRY_CERT_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

/// Runs a certificate command.
pub fn run(cmd: CertCmd) -> anyhow::Result<()> {
    match cmd {
        CertCmd::New {
            subject,
            years,
            out,
            name,
            password,
        } => cert_new(&subject, years, &out, name, password),
    }
}

fn cert_new(
    subject: &str,
    years: u32,
    out: &std::path::Path,
    name: Option<String>,
    password: Option<String>,
) -> anyhow::Result<()> {
    use base64::Engine;
    let (password, generated) = match password {
        Some(p) if !p.is_empty() => (p, false),
        _ => {
            let bytes: [u8; 18] = rand::random();
            (
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
                true,
            )
        }
    };
    let pair = consentry_certs::generate_self_signed(
        subject,
        years,
        &password,
        time::OffsetDateTime::now_utc(),
    )?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let base = name.unwrap_or_else(|| {
        let slug: String = subject
            .trim_start_matches("CN=")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let slug = slug.trim_matches('-').to_string();
        if slug.is_empty() {
            "custom-app".into()
        } else {
            slug
        }
    });
    let (pfx, cer) = pair.write_to_dir(out, &base)?;
    println!(
        "Created a self-signed certificate valid until {}:",
        pair.not_after.date()
    );
    println!(
        "  {}  (private: give it to Consentry with its password when you re-authorize)",
        pfx.display()
    );
    println!(
        "  {}  (public: upload it to the custom app in Microsoft Entra ID)",
        cer.display()
    );
    println!("  SHA-1 thumbprint: {}", pair.sha1_thumbprint);
    if generated {
        println!("  password: {password}  (generated; keep it safe, it is not stored anywhere)");
    }
    Ok(())
}
