//! The AADSTS fuzz target's committed corpus (`fuzz/corpus/aadsts/`: real error bodies and
//! redirect queries) as a regression suite.

use std::path::PathBuf;

#[test]
fn aadsts_corpus_is_classified_without_panics() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/aadsts");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let out = consentry_entra::fuzz_errors(&bytes);
        // Every committed sample is a real error and is recognized as one.
        assert!(!out.is_empty(), "{} was not recognized", path.display());
        files += 1;
    }
    assert!(files >= 10, "{files}");
    for hostile in [
        &b""[..],
        b"{",
        b"{\"error\":5}",
        b"error=",
        b"error=%FF%00&error_description=AADSTS",
        &[0xff; 300],
    ] {
        let _ = consentry_entra::fuzz_errors(hostile);
    }
}
