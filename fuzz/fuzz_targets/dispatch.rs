//! A whole daemon connection: framing detection, decoding, dispatch to the built-in methods
//! and the echo service, and the answers written back. The input is what one client sends
//! before it closes its side.
#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::Semaphore;
use warm_daemon::state::Shared;
use warm_daemon::{echo::EchoService, DaemonOptions, Shutdown};
use warm_runtime::{DaemonPaths, Identity};
use warm_protocol::Framing;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    options: DaemonOptions,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let identity = Identity::new("echo", dir.path()).expect("identity");
        let mut paths = DaemonPaths::new(dir.path(), &identity).expect("paths");
        // Millions of inputs write events (bad frames, rejected connections): keep none.
        paths.events = PathBuf::from("/dev/null");
        let mut options = DaemonOptions::new(identity, paths, "fuzz");
        options.limits = warm_fuzz::limits();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Fixture {
            runtime,
            options,
            _dir: dir,
        }
    })
}

async fn exchange(options: DaemonOptions, sent: &[u8]) -> Vec<u8> {
    let shared = Arc::new(Shared::new(
        options,
        Arc::new(EchoService),
        Shutdown::new(),
    ));
    let (client, server) = UnixStream::pair().expect("socket pair");
    let permit = Arc::new(Semaphore::new(1))
        .try_acquire_owned()
        .expect("a fresh permit");
    let connection = tokio::spawn(warm_daemon::connection::serve(server, shared, permit));
    let (mut reader, mut writer) = client.into_split();
    // Both directions at once: a daemon blocked writing answers nobody reads would stop
    // reading too, and so would this side.
    let send = async {
        let _ = writer.write_all(sent).await;
        let _ = writer.shutdown().await;
    };
    let mut received = Vec::new();
    let receive = reader.read_to_end(&mut received);
    let (_, read) = tokio::join!(send, receive);
    read.expect("reading the answers");
    connection.await.expect("the connection task ends cleanly");
    received
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let received = fixture
        .runtime
        .block_on(exchange(fixture.options.clone(), data));
    // An unknown first byte closes the connection without a word; otherwise every byte
    // written back is a well-formed frame in the client's own framing.
    match data.first().and_then(|&b| Framing::detect(b)) {
        Some(framing) => warm_fuzz::check_answers(framing, &received),
        None => assert!(received.is_empty(), "answered a client of unknown framing"),
    }
});
