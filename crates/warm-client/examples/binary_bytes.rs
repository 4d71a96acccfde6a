//! A binary-framed client sending raw bytes: `binary_bytes SOCKET MIB`.
//!
//! Sends `digest {"data": <MIB MiB of raw bytes>}` in one binary frame (`0xEB 0x57`, version,
//! flags, big-endian length, MessagePack body). The daemon hands the bytes to a JSON worker
//! as a base64 string; the worker answers with their SHA-256, printed here next to the one
//! computed locally. JSON clients can use the same daemon at the same time.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use sha2::{Digest, Sha256};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(sock), Some(mib)) = (args.next(), args.next()) else {
        eprintln!("usage: binary_bytes SOCKET MIB");
        std::process::exit(2);
    };
    let len = mib.parse::<usize>()? * 1024 * 1024;
    let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();

    let request = rmpv::Value::Map(vec![
        ("jsonrpc".into(), "2.0".into()),
        ("id".into(), 1.into()),
        ("method".into(), "digest".into()),
        (
            "params".into(),
            rmpv::Value::Map(vec![("data".into(), rmpv::Value::Binary(data.clone()))]),
        ),
    ]);
    let mut body = Vec::new();
    rmpv::encode::write_value(&mut body, &request)?;
    let mut frame = vec![0xEB, 0x57, 1, 0];
    frame.extend_from_slice(&u32::try_from(body.len())?.to_be_bytes());
    frame.extend_from_slice(&body);

    let mut stream = UnixStream::connect(sock)?;
    stream.write_all(&frame)?;
    let mut header = [0u8; 8];
    stream.read_exact(&mut header)?;
    let mut answer =
        vec![0u8; u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize];
    stream.read_exact(&mut answer)?;
    let answer = rmpv::decode::read_value(&mut &answer[..])?;
    let result = &answer["result"];
    let local: String = Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!(
        "{{\"sent_bytes\": {len}, \"worker_sha256\": {}, \"local_sha256\": \"{local}\", \"worker_len\": {}}}",
        result["sha256"], result["len"]
    );
    Ok(())
}
