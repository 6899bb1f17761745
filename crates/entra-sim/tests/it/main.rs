//! Integration tests: the simulator over real HTTPS on 127.0.0.1:0, driven by reqwest as a plain
//! HTTP client (forms parsed out of the HTML, redirects followed by hand).

mod support;

mod applications;
mod batch;
mod certificates;
mod clouds;
mod control_faults;
mod device_code;
mod flows;
mod graph;
mod msal;
mod signins;
mod throttling;
mod token_errors;
mod viva_engage;
