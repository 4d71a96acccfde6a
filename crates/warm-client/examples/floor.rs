//! The floor for a local round trip: a minimal Unix-socket line echo server and client, std
//! only, no protocol. `bench/peers` compares every daemon (warm included) with it.
//!
//! ```text
//! floor serve SOCKET          # answer each line with the same line, a thread per client
//! floor call SOCKET           # one-shot: connect, one line, one answer, exit
//! floor loop SOCKET N         # persistent: N round trips; prints each one's µs as JSON
//! ```

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Instant;

const LINE: &[u8] = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n";

fn serve(path: &str) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    for stream in listener.incoming() {
        let stream = stream?;
        std::thread::spawn(move || {
            let mut writer = match stream.try_clone() {
                Ok(writer) => writer,
                Err(_) => return,
            };
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                if writer.write_all(&line).is_err() {
                    return;
                }
                line.clear();
            }
        });
    }
    Ok(())
}

fn round_trip(writer: &mut UnixStream, reader: &mut BufReader<UnixStream>) -> std::io::Result<()> {
    writer.write_all(LINE)?;
    let mut answer = Vec::new();
    reader.read_until(b'\n', &mut answer)?;
    if answer != LINE {
        return Err(std::io::Error::other("wrong answer"));
    }
    Ok(())
}

fn connect(path: &str) -> std::io::Result<(UnixStream, BufReader<UnixStream>)> {
    let stream = UnixStream::connect(path)?;
    Ok((stream.try_clone()?, BufReader::new(stream)))
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("serve"), Some(path)) => serve(path),
        (Some("call"), Some(path)) => {
            let (mut writer, mut reader) = connect(path)?;
            round_trip(&mut writer, &mut reader)
        }
        (Some("loop"), Some(path)) => {
            let count: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(1000);
            let (mut writer, mut reader) = connect(path)?;
            let mut micros = Vec::with_capacity(count);
            for _ in 0..count {
                let start = Instant::now();
                round_trip(&mut writer, &mut reader)?;
                micros.push(start.elapsed().as_secs_f64() * 1e6);
            }
            let list: Vec<String> = micros.iter().map(|m| format!("{m:.1}")).collect();
            println!("[{}]", list.join(","));
            Ok(())
        }
        _ => {
            eprintln!("usage: floor serve|call SOCKET | floor loop SOCKET N");
            std::process::exit(2);
        }
    }
}
