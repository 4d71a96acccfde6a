//! One socket, three framings: each client is answered in the framing it spoke.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::json;
use warm_client::Connection;
use warm_protocol::Framing;

use crate::support::*;

fn start_echo(env: &TestEnv) -> std::path::PathBuf {
    let status = env.json(&["-s", "echo", "start"]);
    std::path::PathBuf::from(status["socket"].as_str().expect("socket"))
}

#[test]
fn ndjson_lsp_and_binary_clients_share_one_socket() {
    let env = TestEnv::new();
    let sock = start_echo(&env);
    let threads: Vec<_> = [Framing::Ndjson, Framing::Lsp, Framing::Binary]
        .into_iter()
        .map(|framing| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                let mut connection = Connection::connect(&sock, framing).expect("connect");
                connection
                    .set_timeout(Some(Duration::from_secs(10)))
                    .expect("timeout");
                for i in 0..300 {
                    let params = json!({ "framing": framing.name(), "i": i, "text": "é😀" });
                    let result = connection
                        .request("echo", Some(&params), &mut |_| {})
                        .expect("answer")
                        .expect("result");
                    assert_eq!(result, params);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("client thread");
    }
}

/// Writes `request`, then reads until the peer has sent one whole answer in `framing` (or the
/// 10 s deadline passes), however the bytes are split across reads.
fn raw_exchange(sock: &std::path::Path, request: &[u8]) -> Vec<u8> {
    let mut stream = UnixStream::connect(sock).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request).expect("write");
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !is_complete(&answer) {
        let n = stream.read(&mut chunk).expect("read before the deadline");
        assert!(n > 0, "connection closed after {answer:?}");
        answer.extend_from_slice(&chunk[..n]);
    }
    answer
}

/// Whether `bytes` hold one whole frame of the framing their first byte announces.
fn is_complete(bytes: &[u8]) -> bool {
    match bytes.first() {
        None => false,
        Some(0xEB) => {
            bytes.len() >= 8 && {
                let len = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
                bytes.len() >= 8 + len
            }
        }
        Some(b'C') => {
            let text = String::from_utf8_lossy(bytes);
            text.split_once("\r\n\r\n").is_some_and(|(headers, body)| {
                headers
                    .trim_start_matches("Content-Length: ")
                    .parse::<usize>()
                    .is_ok_and(|len| body.len() >= len)
            })
        }
        Some(_) => bytes.ends_with(b"\n"),
    }
}

/// A ping's answer: id 1, and a TTL report.
fn assert_ping_answer(answer: &serde_json::Value) {
    assert_eq!(answer["id"], 1, "{answer}");
    assert_eq!(answer["jsonrpc"], "2.0", "{answer}");
    assert!(answer["result"]["ttl_secs"].is_u64(), "{answer}");
}

#[test]
fn answers_come_back_in_the_framing_of_the_request() {
    let env = TestEnv::new();
    let sock = start_echo(&env);
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"daemon/ping"}"#;

    let ndjson = raw_exchange(&sock, &[&body[..], b"\n"].concat());
    assert!(
        ndjson.starts_with(b"{") && ndjson.ends_with(b"\n"),
        "{ndjson:?}"
    );
    assert_ping_answer(&serde_json::from_slice(&ndjson).expect("one JSON line"));

    let lsp = raw_exchange(
        &sock,
        &[
            format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes(),
            &body[..],
        ]
        .concat(),
    );
    let text = String::from_utf8_lossy(&lsp);
    let (headers, answer_body) = text.split_once("\r\n\r\n").expect("headers, then a body");
    assert_eq!(
        headers,
        format!("Content-Length: {}", answer_body.len()),
        "{text}"
    );
    assert_ping_answer(&serde_json::from_str(answer_body).expect("a JSON body"));

    let message: serde_json::Value = serde_json::from_slice(body).expect("json");
    let packed = rmp_serde::to_vec_named(&message).expect("msgpack");
    let mut frame = vec![0xEB, 0x57, 1, 0];
    frame.extend_from_slice(&(packed.len() as u32).to_be_bytes());
    frame.extend_from_slice(&packed);
    let binary = raw_exchange(&sock, &frame);
    assert_eq!(&binary[..4], &[0xEB, 0x57, 1, 0]);
    let len = u32::from_be_bytes([binary[4], binary[5], binary[6], binary[7]]) as usize;
    let answer: serde_json::Value =
        rmp_serde::from_slice(&binary[8..8 + len]).expect("msgpack answer");
    assert_ping_answer(&answer);
}

#[test]
fn batches_are_answered_as_batches() {
    let env = TestEnv::new();
    let sock = start_echo(&env);
    let batch = br#"[{"jsonrpc":"2.0","id":1,"method":"echo","params":[1]},{"jsonrpc":"2.0","method":"echo"},{"jsonrpc":"2.0","id":2,"method":"daemon/ping"},{"jsonrpc":"2.0","id":3,"method":"nope"}]"#;
    let answer = raw_exchange(&sock, &[&batch[..], b"\n"].concat());
    let answer: serde_json::Value = serde_json::from_slice(&answer).expect("json");
    let answers = answer.as_array().expect("batch answer");
    assert_eq!(
        answers.len(),
        3,
        "the notification gets no answer: {answer}"
    );
    assert_eq!(answers[0]["result"], json!([1]));
    assert!(answers[1]["result"]["ttl_secs"].is_u64());
    assert_eq!(answers[2]["error"]["code"], -32601);
}
