//! The `.pfx` fuzz target's committed corpus (`fuzz/corpus/pfx/`) as a regression suite: every
//! input parses or gives a specific error, never a panic.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../fuzz/corpus/{target}"));
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "empty corpus {}", dir.display());
    out
}

#[test]
fn pfx_corpus_parses_or_fails_cleanly() {
    let mut parsed = 0;
    for (name, bytes) in corpus("pfx") {
        let results = consentry_certs::fuzz_pfx(&bytes);
        for r in &results {
            if let Err(e) = r {
                assert!(!e.to_string().is_empty(), "{name}");
            }
        }
        parsed += usize::from(results.iter().any(Result::is_ok));
    }
    // The well-formed fixtures are in the corpus and still parse.
    assert!(parsed >= 3, "only {parsed} corpus files parsed");
    // Hostile shapes: empty, truncated, huge, random.
    assert!(consentry_certs::fuzz_pfx(b"").iter().all(Result::is_err));
    assert!(
        consentry_certs::fuzz_pfx(&[0x30; 4096])
            .iter()
            .all(Result::is_err)
    );
    assert!(
        consentry_certs::fuzz_pfx(&vec![0u8; consentry_certs::MAX_PFX_BYTES + 1])
            .iter()
            .all(Result::is_err)
    );
}
