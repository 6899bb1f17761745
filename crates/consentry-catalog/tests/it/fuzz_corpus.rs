//! The catalog fuzz target's committed corpus (`fuzz/corpus/catalog/`) as a regression suite.

use std::path::PathBuf;

#[test]
fn catalog_corpus_loads_or_fails_with_a_position() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/catalog");
    let mut loaded = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        match consentry_catalog::Catalog::from_toml_str(text, "corpus") {
            Ok(_) => loaded += 1,
            Err(e) => assert!(e.to_string().contains("corpus"), "{}: {e}", path.display()),
        }
    }
    assert!(loaded >= 1, "the default catalog in the corpus must load");
    let truncated = &include_str!("../../catalog/default.toml")[..2000];
    assert!(consentry_catalog::Catalog::from_toml_str(truncated, "corpus").is_err());
}
