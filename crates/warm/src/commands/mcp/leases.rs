//! The leases a `warm mcp` session holds on the project's daemons, so that none of them idles
//! out under an agent that is thinking: the search daemon from the start, and each language
//! server's daemon (or worker's) as soon as a tool call has started it.
//!
//! A lease lives on one connection: it ends when this process does, however it ends (stdin
//! closed, `kill -9`), and the daemons then idle out on their TTL as usual. A daemon that
//! restarted (a new pid) is leased again after the next tool call.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use warm_client::Connection;
use warm_protocol::methods;
use warm_protocol::Framing;

use crate::commands::list::{self, Found};

/// How long taking one lease may take (a daemon that does not answer is not held).
const LEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// The session's leases, by daemon socket.
pub struct Leases {
    runtime_dir: PathBuf,
    /// The project root, canonical.
    root: PathBuf,
    held: Mutex<HashMap<PathBuf, Held>>,
}

struct Held {
    pid: u32,
    /// The lease lasts as long as this connection is open.
    _connection: Connection,
}

impl Leases {
    pub fn new(runtime_dir: PathBuf, root: &std::path::Path) -> Arc<Leases> {
        Arc::new(Leases {
            runtime_dir,
            root: root.to_owned(),
            held: Mutex::new(HashMap::new()),
        })
    }

    /// Leases every running daemon of the project this session does not hold yet. Only the
    /// project's daemons are asked (their directories' names say whose they are), not every
    /// daemon of the user, since this runs after every tool call.
    pub fn hold_running(&self) {
        let Ok(scan) = list::scan(&self.runtime_dir, Some(&self.root)) else {
            return;
        };
        let Ok(mut held) = self.held.lock() else {
            return;
        };
        for (paths, found) in scan.daemons {
            let Found::Running(status) = found else {
                continue;
            };
            if held.get(&paths.sock).is_some_and(|h| h.pid == status.pid) {
                continue;
            }
            match lease(&paths.sock) {
                Ok(connection) => {
                    held.insert(
                        paths.sock,
                        Held {
                            pid: status.pid,
                            _connection: connection,
                        },
                    );
                }
                Err(reason) => errln!(
                    "warm mcp: the {} daemon is not held for this session: {reason}",
                    status.service
                ),
            }
        }
    }

    /// [`Leases::hold_running`] on a blocking thread, not waited for: a tool call's answer
    /// does not wait on it.
    pub fn hold_running_soon(self: &Arc<Leases>) {
        let leases = Arc::clone(self);
        tokio::task::spawn_blocking(move || leases.hold_running());
    }
}

fn lease(sock: &std::path::Path) -> Result<Connection, String> {
    let mut connection = Connection::connect(sock, Framing::Ndjson).map_err(|e| e.to_string())?;
    connection
        .set_timeout(Some(LEASE_TIMEOUT))
        .map_err(|e| e.to_string())?;
    match connection.request(methods::LEASE, None, &mut |_| {}) {
        Ok(Ok(_)) => {
            // Held from now on, however long the agent thinks.
            connection.set_timeout(None).map_err(|e| e.to_string())?;
            Ok(connection)
        }
        Ok(Err(error)) => Err(error.message),
        Err(error) => Err(format!("{error:?}")),
    }
}
