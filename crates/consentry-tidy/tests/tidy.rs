//! The architecture's invariants, checked on this workspace's source tree (see the crate doc).

use std::path::PathBuf;

use consentry_tidy::{
    Disk, forbidden_dependencies, missing_crate_docs, missing_doc_paths, module_cycles,
    store_call_violations, store_calls,
};

fn workspace() -> Disk {
    Disk::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

fn assert_none(check: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "{check}:\n  {}", problems.join("\n  "));
}

#[test]
fn the_domain_depends_on_no_http_sql_or_http_client_crate() {
    assert_none(
        "consentry-domain's dependencies",
        forbidden_dependencies(&workspace(), "consentry-domain"),
    );
}

#[test]
fn only_the_domain_calls_store_on_the_services() {
    let calls = store_calls(&workspace(), "consentry-domain");
    assert_none(
        ".store() outside consentry-domain",
        store_call_violations(&calls, &[]),
    );
}

#[test]
fn the_domains_modules_form_no_cycle() {
    assert_none(
        "consentry-domain's modules",
        module_cycles(&workspace(), "consentry-domain", &[]),
    );
}

#[test]
fn entra_sims_modules_form_no_cycle() {
    assert_none(
        "entra-sim's modules",
        module_cycles(&workspace(), "entra-sim", &[]),
    );
}

#[test]
fn every_crate_has_a_crate_doc() {
    assert_none("crate docs", missing_crate_docs(&workspace()));
}

#[test]
fn every_path_the_architecture_names_exists() {
    assert_none(
        "docs/ARCHITECTURE.md",
        missing_doc_paths(&workspace(), "docs/ARCHITECTURE.md"),
    );
}
