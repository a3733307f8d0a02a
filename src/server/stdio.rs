//! The stdio framing guard between the process's stdin/stdout and rmcp.
//!
//! rmcp silently drops lines it cannot parse and has no notion of a duplicate
//! in-flight id. A careful client deserves an answer to every line, so this layer
//! reads stdin itself, bounds each message, answers malformed input with a JSON-RPC
//! error, and forwards everything else to rmcp over an in-memory pipe. A single
//! writer task owns stdout, so lines from rmcp and from this guard never interleave.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Default bound on one JSON-RPC message (one line), in bytes.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

type InFlight = Arc<Mutex<HashSet<String>>>;

fn error_line(id: Value, code: i64, message: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}).to_string()
}

/// What to do with one line read from the client.
#[derive(Debug, PartialEq)]
enum Verdict {
    Forward,
    Skip,
    Reply(String),
}

fn judge(line: &[u8], in_flight: &InFlight) -> Verdict {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Verdict::Skip;
    }
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            let what = if std::str::from_utf8(line).is_err() {
                "invalid UTF-8"
            } else {
                "not valid JSON"
            };
            return Verdict::Reply(error_line(
                Value::Null,
                -32700,
                &format!(
                    "Parse error: {what} (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            ));
        }
    };
    let Some(obj) = value.as_object() else {
        let msg = if value.is_array() {
            "Invalid Request: batches are not supported; send one message per line"
        } else {
            "Invalid Request: expected a JSON-RPC object"
        };
        return Verdict::Reply(error_line(Value::Null, -32600, msg));
    };
    let id = obj.get("id").cloned();
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Verdict::Reply(error_line(
            id.unwrap_or(Value::Null),
            -32600,
            "Invalid Request: \"jsonrpc\" must be \"2.0\"",
        ));
    }
    if let (Some(id), Some(_method)) = (&id, obj.get("method")) {
        if !(id.is_string() || id.is_number()) {
            return Verdict::Reply(error_line(
                Value::Null,
                -32600,
                "Invalid Request: id must be a string or number",
            ));
        }
        let key = id.to_string();
        let mut set = in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if !set.insert(key) {
            return Verdict::Reply(error_line(
                id.clone(),
                -32600,
                "Invalid Request: a request with this id is still in flight",
            ));
        }
    }
    Verdict::Forward
}

/// Reads one line of at most `max` bytes. Returns `Ok(None)` at EOF, and
/// `Ok(Some(Err(len)))` for an over-long line, which is consumed and discarded.
async fn read_bounded<R: AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    max: usize,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Result<(), usize>>> {
    buf.clear();
    let mut total = 0usize;
    let mut overflow = false;
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(if total == 0 {
                None
            } else if overflow {
                Some(Err(total))
            } else {
                Some(Ok(()))
            });
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        total += take;
        if !overflow {
            if total > max + 1 {
                overflow = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&chunk[..take]);
            }
        }
        r.consume(take);
        if done {
            return Ok(Some(if overflow { Err(total) } else { Ok(()) }));
        }
    }
}

/// Runs `serve` (rmcp on one end of a pipe) behind the guard until stdin closes or
/// `shutdown` fires, then lets rmcp finish in-flight calls and flushes their replies.
pub async fn run<R, W, F, Fut>(
    input: R,
    mut output: W,
    max_message: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    serve: F,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
    F: FnOnce(tokio::io::DuplexStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let (from_rmcp, mut to_rmcp) = tokio::io::split(ours);
    let (tx, mut rx) = mpsc::channel::<String>(1024);
    let in_flight: InFlight = Arc::new(Mutex::new(HashSet::new()));

    let rmcp_task = tokio::spawn(serve(theirs));

    // rmcp -> stdout (via the writer). Responses retire their id from the in-flight set.
    let tx_out = tx.clone();
    let flight_out = in_flight.clone();
    let pump_out = tokio::spawn(async move {
        let mut lines = BufReader::new(from_rmcp).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v.get("method").is_none() {
                    if let Some(id) = v.get("id") {
                        flight_out
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&id.to_string());
                    }
                }
            }
            if tx_out.send(line).await.is_err() {
                break;
            }
        }
    });

    // stdin -> rmcp, answering what rmcp would drop.
    let tx_in = tx.clone();
    let pump_in = tokio::spawn(async move {
        let mut reader = BufReader::with_capacity(64 * 1024, input);
        let mut buf = Vec::with_capacity(4096);
        tokio::pin!(shutdown);
        loop {
            let read = tokio::select! {
                r = read_bounded(&mut reader, max_message, &mut buf) => r,
                _ = &mut shutdown => break,
            };
            match read {
                Ok(None) | Err(_) => break,
                Ok(Some(Err(len))) => {
                    let msg = format!("Invalid Request: message of {len} bytes exceeds the {max_message}-byte limit");
                    tracing::warn!(len, "oversized message discarded");
                    if tx_in
                        .send(error_line(Value::Null, -32600, &msg))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Ok(Some(Ok(()))) => match judge(&buf, &in_flight) {
                    Verdict::Skip => {}
                    Verdict::Reply(line) => {
                        if tx_in.send(line).await.is_err() {
                            break;
                        }
                    }
                    Verdict::Forward => {
                        if !buf.ends_with(b"\n") {
                            buf.push(b'\n');
                        }
                        if to_rmcp.write_all(&buf).await.is_err() {
                            break;
                        }
                    }
                },
            }
        }
        // EOF or shutdown: closing rmcp's input makes it finish in-flight calls and stop.
        let _ = to_rmcp.shutdown().await;
    });
    drop(tx);

    let writer = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            output.write_all(line.as_bytes()).await?;
            output.write_all(b"\n").await?;
            output.flush().await?;
        }
        Ok::<(), std::io::Error>(())
    });

    let _ = pump_in.await;
    let _ = rmcp_task.await;
    let _ = pump_out.await;
    writer.await.unwrap_or(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge_str(s: &str) -> Verdict {
        judge(s.as_bytes(), &Arc::new(Mutex::new(HashSet::new())))
    }

    #[test]
    fn answers_what_rmcp_would_drop() {
        assert!(matches!(judge_str("garbage"), Verdict::Reply(l) if l.contains("-32700")));
        assert!(
            matches!(judge_str("{\"jsonrpc\":\"2.0\""), Verdict::Reply(l) if l.contains("-32700"))
        );
        assert!(
            matches!(judge(b"\xff\xfe", &Default::default()), Verdict::Reply(l) if l.contains("invalid UTF-8"))
        );
        assert!(matches!(judge_str("[1,2]"), Verdict::Reply(l) if l.contains("batches")));
        assert!(
            matches!(judge_str("{\"id\":1,\"method\":\"x\"}"), Verdict::Reply(l) if l.contains("jsonrpc"))
        );
        assert_eq!(judge_str("   "), Verdict::Skip);
        assert_eq!(
            judge_str("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}"),
            Verdict::Forward
        );
    }

    #[test]
    fn duplicate_in_flight_id_is_refused() {
        let set: InFlight = Default::default();
        let line = b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}";
        assert_eq!(judge(line, &set), Verdict::Forward);
        assert!(matches!(judge(line, &set), Verdict::Reply(l) if l.contains("in flight")));
        set.lock().unwrap().remove("7");
        assert_eq!(judge(line, &set), Verdict::Forward);
    }

    #[tokio::test]
    async fn bounded_reader_discards_long_lines_and_recovers() {
        let data = format!("{}\nshort\n", "x".repeat(100));
        let mut r = BufReader::with_capacity(8, data.as_bytes());
        let mut buf = Vec::new();
        assert_eq!(
            read_bounded(&mut r, 10, &mut buf).await.unwrap(),
            Some(Err(101))
        );
        assert_eq!(
            read_bounded(&mut r, 10, &mut buf).await.unwrap(),
            Some(Ok(()))
        );
        assert_eq!(buf, b"short\n");
        assert_eq!(read_bounded(&mut r, 10, &mut buf).await.unwrap(), None);
    }
}
