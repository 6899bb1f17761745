//! The console in headless Chromium (see `browser`).

mod browser;
