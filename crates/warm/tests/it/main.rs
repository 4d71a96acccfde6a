//! Integration tests of the `warm` binary: real daemons in private runtime directories.

mod support;

mod as_nobody;
mod binary;
mod client;
mod docs;
mod doctor;
mod examples;
mod faults;
mod framing;
mod hostile;
mod lifecycle;
mod load;
mod lsp;
mod lsp_servers;
mod mcp;
mod mcp_sessions;
mod onboarding;
mod recovery;
mod rg_compat;
mod search;
mod systemd;
mod trust;
mod ttl;
mod workers;
