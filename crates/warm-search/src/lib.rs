//! The `search` service of warm: code search that answers like ripgrep, from a per-project
//! daemon holding a trigram index that a file watcher keeps fresh.
//!
//! # Layout
//! - [`trigram`]: trigram extraction and compact posting lists.
//! - [`query`]: from a regex to the trigrams a matching file must contain.
//! - [`index`]: [`Index`], the project's files by ripgrep's rules and their trigrams.
//! - [`excluded`]: the names of the ignored and hidden entries beside them.
//! - [`special`]: what the index never reads (FIFOs, devices, `/proc` and the like).
//! - [`protocol`]: the `search/*` requests and answers, typed for both sides.
//! - [`service`]: [`SearchService`], the daemon side: build, watch, barrier, candidates.
//! - [`wire`]: paths between daemon and client, as bytes when they are not UTF-8.
//! - [`budget`]: the user's inotify instances: a reserve kept free, idle daemons evicted.
//! - [`rg`]: ripgrep's command line: its flags, parsed by its rules, and how each is answered.
//! - [`scan`]: the client side: which files a search reads, by a walk or over candidates.
//! - [`output`]: the client side: matching and printing like ripgrep.

// A library never writes to the terminal of the program that embeds it: it logs (tracing)
// or returns what it has to say.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod budget;
pub mod excluded;
pub mod index;
pub mod query;
pub mod special;
pub mod store;
pub mod trigram;
pub mod wire;

pub use index::Index;
pub use query::Query;
pub mod protocol;
pub mod service;
pub use service::SearchService;
pub mod output;
pub mod rg;
pub mod scan;
