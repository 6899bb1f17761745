//! Integration tests of the store, one binary: SQLite and PostgreSQL (PostgreSQL needs
//! `CONSENTRY_TEST_POSTGRES_URL`; without it those tests are skipped with a note, except in CI).

mod accounts;
mod audit_chain;
mod both;
mod key_rotation;
mod postgres;
mod schedule;
mod sqlite;
