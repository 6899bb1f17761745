//! Browser end-to-end tests of the web console: headless Chromium, driven over WebDriver
//! (chromedriver) by `fantoccini`, against Consentry and entra-sim on loopback. The tests live in
//! `tests/`; this library is empty. See `tests/browser.rs` for how Chromium is found or skipped.
