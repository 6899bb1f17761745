//! Integration tests of the `consentry` binary, run as an operator runs it (`CARGO_BIN_EXE_consentry`) on a
//! data folder of each test's own, with entra-sim and PostgreSQL where a test needs them.

mod run;

mod apps_cli;
mod audit_cli;
mod check;
mod check_composed;
mod cli;
mod config_env;
mod crash;
mod db_copy;
mod doctor;
mod email_cli;
mod going_live;
mod replicas;
mod scan_profiles;
mod users;
