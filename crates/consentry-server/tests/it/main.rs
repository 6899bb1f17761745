//! Integration tests of the server, on the testkit (`consentry-testkit`): the JSON API, the console, the
//! OAuth callback and consent links, re-authorization, checks, tokens, webhooks, scan profiles, the audit log,
//! the access matrix and hostile input, each over a real server on loopback or the router in memory.

mod access;
mod api;
mod audit_api;
mod audit_flows;
mod campaigns;
mod check;
mod clouds;
mod connect;
mod console;
mod email;
mod evidence;
mod hostile;
mod invitations;
mod microsoft_sign_in;
mod openapi;
mod pages;
mod reauth;
mod rollouts;
mod scan_console;
mod scan_profiles;
mod throttle;
mod tokens;
mod vendor_credentials;
mod webhooks;
