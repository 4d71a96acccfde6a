//! The MCP stdio transport, with every line checked before the SDK sees it: a line that is
//! not JSON (or too long) is answered with a JSON-RPC parse error, as the protocol asks,
//! instead of being dropped without a word, and the session goes on.

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// The longest message line taken (a tool call's arguments): 4 MiB.
const MAX_LINE: usize = 4 << 20;

/// A reader and a writer for the SDK: stdin's well-formed lines, and stdout, shared with the
/// parse errors answered here.
pub fn checked() -> (impl AsyncRead, impl AsyncWrite) {
    let (sdk_in, mut feed) = tokio::io::duplex(1 << 16);
    let (sdk_out, drain) = tokio::io::duplex(1 << 16);
    let (errors_tx, errors_rx) = mpsc::channel::<String>(16);
    tokio::spawn(async move {
        let mut lines = BufReader::new(tokio::io::stdin());
        let mut line = Vec::new();
        loop {
            line.clear();
            let size = match read_line(&mut lines, &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(size) => size,
            };
            let text = line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            let error = if line.len() > MAX_LINE {
                Some(format!("a message of {size} bytes; at most {MAX_LINE}"))
            } else {
                serde_json::from_slice::<serde_json::Value>(text)
                    .err()
                    .map(|e| format!("not JSON: {e}"))
            };
            match error {
                Some(message) => {
                    let answer = json!({
                        "jsonrpc": "2.0",
                        "id": null,
                        "error": { "code": -32700, "message": format!("parse error: {message}") },
                    });
                    if errors_tx.send(answer.to_string()).await.is_err() {
                        break;
                    }
                }
                None => {
                    if feed.write_all(text).await.is_err() || feed.write_all(b"\n").await.is_err() {
                        break;
                    }
                }
            }
        }
        // stdin closed: so is the SDK's input, which ends the session.
        let _ = feed.shutdown().await;
    });
    tokio::spawn(write_out(drain, errors_rx));
    (sdk_in, sdk_out)
}

/// Reads one line (up to its `\n`), keeping at most `MAX_LINE + 1` bytes of it.
async fn read_line(
    reader: &mut BufReader<tokio::io::Stdin>,
    line: &mut Vec<u8>,
) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Ok(total);
        }
        let (chunk, done) = match buffer.iter().position(|&b| b == b'\n') {
            Some(end) => (&buffer[..=end], true),
            None => (buffer, false),
        };
        let take = chunk.len();
        let room = (MAX_LINE + 1).saturating_sub(line.len());
        line.extend_from_slice(&chunk[..take.min(room)]);
        total += take;
        reader.consume(take);
        if done {
            return Ok(total);
        }
    }
}

/// Copies the SDK's output to stdout line by line, with the parse errors between lines.
async fn write_out(drain: tokio::io::DuplexStream, mut errors: mpsc::Receiver<String>) {
    let mut stdout = tokio::io::stdout();
    let mut lines = BufReader::new(drain).lines();
    loop {
        let line = tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => line,
                _ => break,
            },
            Some(error) = errors.recv() => error,
        };
        if stdout.write_all(line.as_bytes()).await.is_err()
            || stdout.write_all(b"\n").await.is_err()
            || stdout.flush().await.is_err()
        {
            break;
        }
    }
}
