//! What the search service did, counted for `search/status`: how each query was answered,
//! and how the index was kept current. A fallback (a scan instead of the index, a rebuild
//! instead of a refresh) gives the same answers more slowly, so only these counters tell a
//! user, a benchmark or a test which path really ran.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

/// How each query was answered.
#[derive(Default)]
pub(super) struct QueryCounters {
    pub index: AtomicU64,
    /// Answered from the index after checking it against the tree by metadata, with no
    /// watcher (the user's inotify limit reached): counted in `index` too.
    pub validated: AtomicU64,
    pub building: AtomicU64,
    pub unwatched: AtomicU64,
    pub barrier_timeouts: AtomicU64,
}

impl QueryCounters {
    pub fn to_json(&self) -> Value {
        json!({
            "index": get(&self.index),
            "validated": get(&self.validated),
            "building": get(&self.building),
            "unwatched": get(&self.unwatched),
            "barrier_timeouts": get(&self.barrier_timeouts),
        })
    }
}

/// How the index was kept current.
#[derive(Default)]
pub(super) struct IndexCounters {
    /// Watch events received. Changes only: reads are not asked for (a build or a search
    /// opening every file would queue an event per file).
    pub events: AtomicU64,
    /// Events dropped unread before a build (see `Shared::settle`).
    pub settled: AtomicU64,
    /// Whole builds: the first, and each one a change forced (an ignore file, lost events).
    pub builds: AtomicU64,
    /// Indexes loaded from the cache directory (stored by an earlier daemon) instead of built.
    pub loads: AtomicU64,
    /// Times the index was written to the cache directory.
    pub stores: AtomicU64,
    /// Batches of watch events applied in place, under the index's write lock (which holds up
    /// the queries reading it: a batch of barrier cookies alone must never take it).
    pub updates: AtomicU64,
    /// Rescans of directories created lately (see `Refresh::Directories`).
    pub rescans: AtomicU64,
    /// New directories watched again after the watcher named paths that no longer exist
    /// (see `Shared::rewatch`).
    pub rewatches: AtomicU64,
    pub compactions: AtomicU64,
}

impl IndexCounters {
    pub fn to_json(&self) -> Value {
        json!({
            "events": get(&self.events),
            "settled": get(&self.settled),
            "builds": get(&self.builds),
            "loads": get(&self.loads),
            "stores": get(&self.stores),
            "updates": get(&self.updates),
            "rescans": get(&self.rescans),
            "rewatches": get(&self.rewatches),
            "compactions": get(&self.compactions),
        })
    }
}

pub(super) fn count(counter: &AtomicU64) {
    add(counter, 1);
}

pub(super) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}
