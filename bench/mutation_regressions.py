"""Each guarantee warm makes, broken on purpose: apply one plausible mutation to the source,
run the test named after the guarantee N times, and require that it fails every time. A test
that passes with its mutant in place proves nothing (issue 13).

Usage: mutation_regressions.py ROOT RUNS [NAME...]
RUNS 0 only checks that every mutation's text is in the source, once (scripts/test does, so
that a refactoring that moves a text fails at once, not at the end of CI).
Every mutation is an exact text replacement; one whose text is no longer in the source fails
the run (the list must follow the code). The source is restored after each mutant, whatever
happens.
"""
import subprocess
import sys
import time

# (name, file, original text, mutated text, nextest filter)
MUTANTS = [
    ("barrier returns at once",
     "crates/warm-search/src/service/mod.rs",
     "    async fn barrier(&self) -> bool {\n",
     "    async fn barrier(&self) -> bool {\n        if std::hint::black_box(true) { return true; }\n",
     "search::the_barrier_makes_every_change_visible_even_when_the_indexer_lags"),
    ("the index is never used",
     "crates/warm-search/src/service/mod.rs",
     "        if !*self.built.borrow() && !self.wait_for_load().await {\n            let (files, bytes)",
     "        if std::hint::black_box(true) || !*self.built.borrow() && !self.wait_for_load().await {\n            let (files, bytes)",
     "search::each_answer_says_whether_the_index_or_a_scan_served_it"),
    ("documents not reopened in a new server",
     "crates/warm-lsp/src/documents.rs",
     "let existing = open.get_mut(path).filter(|d| d.pid == worker.pid);",
     "let existing = open.get_mut(path).filter(|d| d.pid == worker.pid || std::hint::black_box(true));",
     "lsp::a_replaced_server_gets_every_document_opened_again"),
    ("busy answers not retried",
     "crates/warm-client/src/client.rs",
     "Ok(Err(error)) if error.kind() == ErrorCode::Busy => {",
     "Ok(Err(error)) if error.kind() == ErrorCode::Busy && std::hint::black_box(false) => {",
     "client::busy_answers_are_retried_by_the_client_until_every_call_succeeds"),
    ("-32003 answered instead of resent",
     "crates/warm-client/src/client.rs",
     "Ok(Err(error)) if error.kind() == ErrorCode::ShuttingDown => {",
     "Ok(Err(error)) if error.kind() == ErrorCode::ShuttingDown && std::hint::black_box(false) => {",
     "client::a_request_refused_by_a_draining_daemon_is_resent_to_a_new_one"),
    ("no spawn.lock",
     "crates/warm-client/src/client.rs",
     "        let _spawn_lock = LockFile::acquire_until(&self.paths.spawn_lock, deadline)",
     "        let _spawn_lock = LockFile::acquire_until(&self.paths.spawn_lock.with_extension(std::process::id().to_string()), deadline)",
     "lifecycle::racing_first_calls_to_a_slow_starting_daemon_spawn_it_once"),
    ("requests in flight do not hold the TTL",
     "crates/warm-daemon/src/activity.rs",
     "(!s.ttl.is_zero() && s.in_flight == 0 && s.leases == 0)",
     "(!s.ttl.is_zero() && s.leases == 0)",
     "ttl::running_request_holds_the_daemon_past_its_ttl"),
    ("the supervisor never replaces an exited worker",
     "crates/warm-worker/src/pool.rs",
     "                let _ = pool.fill(slot, true);",
     "                let _ = std::hint::black_box(slot);",
     "workers::an_idle_worker_that_dies_is_replaced_before_any_request_needs_it"),
    ("UTF-16 files indexed as their bytes (rg transcodes them)",
     "crates/warm-search/src/index/mod.rs",
     "Ok(n) if size == 0 && has_utf16_bom(&buffer[..n]) => {",
     "Ok(n) if size == 0 && has_utf16_bom(&buffer[..n]) && std::hint::black_box(false) => {",
     "rg_compat::the_shim_answers_as_ripgrep_from_the_index"),
    ("the ignored and hidden names beside the index never listed",
     "crates/warm-search/src/excluded.rs",
     "            if !admitted.contains(path.as_path()) && !is_cookie(&path) {",
     "            if std::hint::black_box(false) && !admitted.contains(path.as_path()) && !is_cookie(&path) {",
     "rg_compat::globs_and_types_read_the_ignored_and_hidden_files_they_admit_from_the_index"),
    ("the watcher's thread niced with the build",
     "crates/warm-search/src/service/mod.rs",
     "                indexer.watch(tx);\n                crate::index::lower_priority();\n",
     "                crate::index::lower_priority();\n                indexer.watch(tx);\n",
     "search::the_watchers_thread_is_not_niced_with_the_build"),
    ("a FUSE or network file system indexed as a local one",
     "crates/warm-search/src/special.rs",
     "        .find(|(m, _)| *m == magic)",
     "        .find(|(m, _)| *m == magic && std::hint::black_box(false))",
     "search::a_project_on_a_fuse_mount_never_answers_from_a_stale_index"),
    ("unversioned diagnostics of the previous content accepted",
     "crates/warm-lsp/src/service.rs",
     "fresh_after: self.shared.documents.sync_counter(),",
     "fresh_after: std::hint::black_box(0),",
     "lsp::unversioned_diagnostics_are_for_the_content_just_synced"),
    ("other open documents not brought up to date before a query",
     "crates/warm-lsp/src/documents.rs",
     "    pub async fn refresh_open(&self, worker: &WorkerProcess) -> Result<bool, ErrorObject> {\n",
     "    pub async fn refresh_open(&self, worker: &WorkerProcess) -> Result<bool, ErrorObject> {\n        if std::hint::black_box(true) { return Ok(false); }\n",
     "lsp::every_open_document_is_brought_up_to_date_before_a_query"),
    # Read-your-writes against real servers (issue 17), each against a fresh direct client.
    ("a watched file's change not sent to a server that watches it",
     "crates/warm-lsp/src/watched.rs",
     'let params = json!({ "changes": changes });',
     'let params = json!({ "changes": std::hint::black_box(Vec::<Value>::new()) });',
     "lsp_servers::pyright"),
    ("changed files not opened in a server that watches none",
     "crates/warm-lsp/src/service.rs",
     ".take(MAX_OPENED_PER_QUERY)",
     ".take(std::hint::black_box(0))",
     "lsp_servers::bash"),
    ("a file not checked again after a change elsewhere (clangd's stale headers)",
     "crates/warm-lsp/src/service.rs",
     "if elsewhere_changed && synced.synced_at <= before",
     "if std::hint::black_box(false) && elsewhere_changed && synced.synced_at <= before",
     "lsp_servers::clangd"),
    ("a query sent before the server has read the project",
     "crates/warm-lsp/src/readiness.rs",
     "if for_file && self.ready_message.is_some() {",
     "if std::hint::black_box(false) && for_file && self.ready_message.is_some() {",
     "lsp_servers::typescript"),
    ("diagnostics published before a change elsewhere taken as current",
     "crates/warm-lsp/src/diagnostics.rs",
     "let matches = entry.arrived_at >= wanted.fresh_after",
     "let matches = std::hint::black_box(true)",
     "lsp_servers::pyright"),
    ("a stored index loaded without comparing stamps (files changed while no daemon ran kept)",
     "crates/warm-search/src/index/persist.rs",
     "match id.filter(|&id| now.is_some() && self.entries[id as usize].stamp == *now) {",
     "match id.filter(|&id| now.is_some() || self.entries[id as usize].stamp == *now) {",
     "search::store::changes_made_while_no_daemon_ran_are_seen_by_the_first_query_after_a_restart"),
    ("a corrupted stored index used (its checksum never checked)",
     "crates/warm-search/src/store.rs",
     "    if crc32fast::hash(&map[HEADER..]) != checksum {",
     "    if crc32fast::hash(&map[HEADER..]) != checksum && std::hint::black_box(false) {",
     "search::store::a_corrupted_or_truncated_stored_index_is_detected_and_rebuilt"),
    ("without a watcher, the index answers unchecked",
     "crates/warm-search/src/service/mod.rs",
     "                shared.revalidate();\n",
     "                std::hint::black_box(&shared);\n",
     "search::store::without_a_watcher_each_query_checks_the_index_by_metadata"),
]


def run_test(root, test_filter):
    result = subprocess.run(
        ["cargo", "nextest", "run", "-p", "warm", "--test", "it", "--no-fail-fast",
         "--status-level", "none", "--final-status-level", "none", test_filter],
        cwd=root, capture_output=True, text=True)
    return result.returncode == 0


def check_texts(root):
    stale = [(name, path) for name, path, original, _, _ in MUTANTS
             if open(f"{root}/{path}").read().count(original) != 1]
    for name, path in stale:
        print(f"FAIL {name}: the text to mutate is not (once) in {path}; update the list")
    return not stale


def main():
    root, runs, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    if runs == 0:
        sys.exit(0 if check_texts(root) else 1)
    # Built once, unmutated: the tests must pass first, or a failure proves nothing.
    subprocess.run(["cargo", "build", "--tests", "-p", "warm", "--quiet"], cwd=root, check=True)
    survivors, rows = [], []
    for name, path, original, mutated, test_filter in MUTANTS:
        if names and name not in names:
            continue
        if not run_test(root, test_filter):
            print(f"FAIL {name}: {test_filter} fails without its mutant")
            survivors.append(name)
            continue
        source = open(f"{root}/{path}").read()
        if source.count(original) != 1:
            print(f"FAIL {name}: the text to mutate is not (once) in {path}; update the list")
            survivors.append(name)
            continue
        started = time.time()
        try:
            open(f"{root}/{path}", "w").write(source.replace(original, mutated))
            passed = sum(run_test(root, test_filter) for _ in range(runs))
        finally:
            open(f"{root}/{path}", "w").write(source)
        killed = runs - passed
        rows.append((name, killed, runs, time.time() - started))
        print(f"{'ok  ' if passed == 0 else 'FAIL'} {name}: killed {killed}/{runs} by {test_filter}", flush=True)
        if passed:
            survivors.append(name)
    print(f"\n{len(rows) - len([r for r in rows if r[1] < r[2]])} of {len(rows)} mutants killed on every run")
    if survivors:
        print("surviving: " + "; ".join(survivors))
        sys.exit(1)


main()
