//! The stdio framing guard between the process's stdin/stdout and rmcp.
//!
//! rmcp silently drops lines it cannot parse, answers some malformed requests with an
//! error that carries no id, ends the whole session when a notification or a response
//! arrives before `initialize`, and has no notion of a duplicate in-flight id. A
//! careful client deserves an answer to every request, so this layer reads stdin
//! itself, bounds each message, checks every message against rmcp's own message type
//! (so what it forwards is exactly what rmcp can read), answers the rest with a
//! JSON-RPC error carrying the request's id, and forwards everything else to rmcp over
//! an in-memory pipe. A single writer task owns stdout, so lines from rmcp and from
//! this guard never interleave.
//!
//! Why each part exists, since rmcp's own stdio transport is not enough:
//! - `read_bounded`: rmcp's reader drops an over-long line silently; the contract
//!   answers it with `-32600`, so the line must be measured here, without buffering it.
//! - `Judge::judge`/`diagnose`: rmcp drops unparsable lines (the contract wants
//!   `-32700`), answers batches and non-objects without an id, quits on a notification
//!   or response before `initialize`, and reads typed methods with bad params as
//!   unknown methods (`-32601` instead of `-32602`).
//! - the in-flight id set and `outgoing`: rmcp has no notion of a duplicate in-flight
//!   id; replies retire ids (read with a field-skipping parse, not a second tree).
//! - `SyncStdout` and the writer task: one writer, batched flushes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use rmcp::model::{ClientJsonRpcMessage, ClientNotification, ClientRequest, JsonRpcMessage};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

pub use crate::config::DEFAULT_MAX_MESSAGE_BYTES;

/// RFC 8259 lets a parser ignore a leading UTF-8 byte order mark; rmcp does.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The client requests rmcp 3.9 has a typed form for. A request with one of these
/// methods that rmcp reads as a `CustomRequest` has params that do not fit the type:
/// rmcp would answer "method not found"; the right answer is "invalid params".
const TYPED_METHODS: &[&str] = &[
    "ping",
    "initialize",
    "server/discover",
    "completion/complete",
    "logging/setLevel",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/directory/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "subscriptions/listen",
    "tools/call",
    "tools/list",
    "tasks/get",
    "tasks/update",
    "tasks/cancel",
    "skills/list",
    "skills/get",
];

type InFlight = Arc<Mutex<HashSet<String>>>;

fn error_line(id: Value, code: i64, message: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}).to_string()
}

/// The in-flight key of a request id, as rmcp reads it and as its response carries
/// it: `1`, `1.0` and `1e0` are all the request `1`.
fn id_key(id: &rmcp::model::RequestId) -> String {
    id.clone().into_json_value().to_string()
}

/// `id` as rmcp reads a request id (a string, or an integer that fits i64, possibly
/// written in float form) and writes it back in its responses: `2.0` is `2`.
fn usable_id(id: &Value) -> Option<Value> {
    serde_json::from_value::<rmcp::model::RequestId>(id.clone())
        .ok()
        .map(rmcp::model::RequestId::into_json_value)
}

/// What to do with one line read from the client.
#[derive(Debug, PartialEq)]
enum Verdict {
    Forward,
    Skip,
    Reply(String),
}

/// The guard's state: ids rmcp has not answered yet, and whether an `initialize`
/// request has been forwarded (before it, rmcp quits on a notification or response).
struct Judge {
    in_flight: InFlight,
    initialized: bool,
}

impl Judge {
    fn new(in_flight: InFlight) -> Self {
        Judge {
            in_flight,
            initialized: false,
        }
    }

    fn flight(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn judge(&mut self, line: &[u8]) -> Verdict {
        let line = line.strip_prefix(UTF8_BOM).unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Verdict::Skip;
        }
        // The common case: one typed parse, the same rmcp will do.
        match serde_json::from_slice::<ClientJsonRpcMessage>(line) {
            Ok(msg) => self.admit(&msg),
            Err(_) => diagnose(line),
        }
    }

    fn admit(&mut self, msg: &ClientJsonRpcMessage) -> Verdict {
        match msg {
            JsonRpcMessage::Request(r) => {
                if let ClientRequest::CustomRequest(c) = &r.request {
                    if TYPED_METHODS.contains(&c.method.as_str()) {
                        return Verdict::Reply(invalid_params(
                            r.id.clone().into_json_value(),
                            &c.method,
                        ));
                    }
                }
                if !self.flight().insert(id_key(&r.id)) {
                    return Verdict::Reply(error_line(
                        r.id.clone().into_json_value(),
                        -32600,
                        "Invalid Request: a request with this id is still in flight",
                    ));
                }
                if matches!(r.request, ClientRequest::InitializeRequest(_)) {
                    self.initialized = true;
                }
                Verdict::Forward
            }
            JsonRpcMessage::Notification(n) => {
                if !self.initialized {
                    tracing::debug!("notification before initialize dropped");
                    return Verdict::Skip;
                }
                // A cancelled request gets no response (rmcp drops it): its id is free.
                if let ClientNotification::CancelledNotification(c) = &n.notification {
                    if let Some(id) = &c.params.request_id {
                        self.flight().remove(&id_key(id));
                    }
                }
                Verdict::Forward
            }
            JsonRpcMessage::Response(_) | JsonRpcMessage::Error(_) => {
                if self.initialized {
                    Verdict::Forward
                } else {
                    tracing::debug!("response before initialize dropped");
                    Verdict::Skip
                }
            }
        }
    }
}

/// Why a line is not a message rmcp can read, as the reply to send; or `Forward` for
/// a malformed notification or response (no id to answer: rmcp ignores it or answers
/// with a null id).
fn diagnose(line: &[u8]) -> Verdict {
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
    let id = obj.get("id").and_then(usable_id);
    let reply_id = id.clone().unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Verdict::Reply(error_line(
            reply_id,
            -32600,
            "Invalid Request: \"jsonrpc\" must be \"2.0\"",
        ));
    }
    let Some(method) = obj.get("method") else {
        return Verdict::Forward;
    };
    if !obj.contains_key("id") {
        return Verdict::Forward;
    }
    let msg = match (id, method.as_str()) {
        (None, _) => "Invalid Request: id must be a string or an integer".to_string(),
        (Some(_), None) => "Invalid Request: method must be a string".to_string(),
        (Some(_), Some(m)) => return Verdict::Reply(invalid_params(reply_id, m)),
    };
    Verdict::Reply(error_line(reply_id, -32600, &msg))
}

/// Never echoes serde's message: it quotes values, which may be secrets.
fn invalid_params(id: Value, method: &str) -> String {
    let m: String = method.chars().take(64).collect();
    error_line(
        id,
        -32602,
        &format!("Invalid params: the params do not match the MCP schema of {m:?}"),
    )
}

/// One line read by `read_bounded`.
#[derive(Debug, PartialEq)]
enum Line {
    /// A message (in the buffer, with its newline if it had one).
    Message,
    /// A line over the bound, consumed and discarded; its length without newline.
    Oversized(usize),
}

/// Reads one line whose content (without the newline) is at most `max` bytes.
/// Returns `Ok(None)` at EOF; an over-long line is consumed without being buffered.
async fn read_bounded<R: AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    max: usize,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Line>> {
    buf.clear();
    let mut content = 0usize;
    let mut overflow = false;
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(match (content, overflow) {
                (0, _) => None,
                (n, true) => Some(Line::Oversized(n)),
                (_, false) => Some(Line::Message),
            });
        }
        let newline = chunk.iter().position(|&b| b == b'\n');
        let take = newline.map_or(chunk.len(), |i| i + 1);
        content += newline.unwrap_or(take);
        if !overflow {
            if content > max {
                overflow = true;
                buf.clear();
                buf.shrink_to(64 * 1024);
            } else {
                buf.extend_from_slice(&chunk[..take]);
            }
        }
        r.consume(take);
        if newline.is_some() {
            return Ok(Some(if overflow {
                Line::Oversized(content)
            } else {
                Line::Message
            }));
        }
    }
}

fn oversized_reply(len: usize, max: usize) -> String {
    error_line(
        Value::Null,
        -32600,
        &format!("Invalid Request: message of {len} bytes exceeds the {max}-byte limit"),
    )
}

/// What the guard does with a byte stream, without rmcp behind it: the replies it
/// writes itself and the lines it forwards. For fuzzing and regression tests.
#[derive(Debug, Default)]
pub struct Trace {
    pub replies: Vec<String>,
    pub forwarded: Vec<Vec<u8>>,
    pub skipped: usize,
}

/// Feeds `input` through the same bounded reader and judge as `run` (no request is
/// ever answered, so ids stay in flight).
pub async fn replay(input: &[u8], max_message: usize) -> std::io::Result<Trace> {
    let mut reader = BufReader::with_capacity(4096, input);
    let mut judge = Judge::new(Default::default());
    let mut buf = Vec::new();
    let mut trace = Trace::default();
    while let Some(line) = read_bounded(&mut reader, max_message, &mut buf).await? {
        match line {
            Line::Oversized(n) => trace.replies.push(oversized_reply(n, max_message)),
            Line::Message => match judge.judge(&buf) {
                Verdict::Forward => trace.forwarded.push(buf.clone()),
                Verdict::Skip => trace.skipped += 1,
                Verdict::Reply(l) => trace.replies.push(l),
            },
        }
    }
    Ok(trace)
}

/// A line rmcp wrote: retires the id of a response, and gives an id-less error reply
/// (rmcp's answer to a malformed notification) the `"id": null` JSON-RPC requires.
fn outgoing(line: String, in_flight: &InFlight) -> String {
    /// Only what retiring an id needs: the other fields (a result may be large) are
    /// skipped by the scanner, never built into a tree.
    #[derive(serde::Deserialize)]
    struct Envelope {
        id: Option<Value>,
        method: Option<serde::de::IgnoredAny>,
    }
    let Ok(env) = serde_json::from_str::<Envelope>(&line) else {
        return line;
    };
    match env {
        // A request or notification of rmcp's own (to the client): no id to retire.
        Envelope {
            method: Some(_), ..
        } => line,
        Envelope {
            id: Some(id),
            method: None,
        } => {
            in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id.to_string());
            line
        }
        // rmcp answers some malformed requests without an id (or a null one): give
        // the reply the `"id": null` JSON-RPC requires. Rare, so a full parse is fine.
        Envelope {
            id: None,
            method: None,
        } => match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(mut v)) => {
                v.insert("id".into(), Value::Null);
                Value::Object(v).to_string()
            }
            _ => line,
        },
    }
}

/// The process's stdout written directly, without tokio's blocking-pool handoff per
/// write (that handoff was a large share of a call's latency). A pipe write only
/// blocks when the client stops reading, and then nothing could progress anyway.
pub struct SyncStdout(std::io::Stdout);

impl SyncStdout {
    pub fn new() -> Self {
        SyncStdout(std::io::stdout())
    }
}

impl Default for SyncStdout {
    fn default() -> Self {
        Self::new()
    }
}

impl AsyncWrite for SyncStdout {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::io::Write;
        std::task::Poll::Ready(self.0.lock().write(buf))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::io::Write;
        std::task::Poll::Ready(self.0.lock().flush())
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.poll_flush(cx)
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
    // rmcp drops longer lines without a word: never forward one.
    let max_message = max_message.clamp(1, rmcp::transport::async_rw::DEFAULT_MAX_LINE_LENGTH - 1);
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
            if tx_out.send(outgoing(line, &flight_out)).await.is_err() {
                break;
            }
        }
    });

    // stdin -> rmcp, answering what rmcp would drop or mishandle.
    let tx_in = tx.clone();
    let pump_in = tokio::spawn(async move {
        let mut reader = BufReader::with_capacity(64 * 1024, input);
        let mut buf = Vec::with_capacity(4096);
        let mut judge = Judge::new(in_flight);
        tokio::pin!(shutdown);
        loop {
            let read = tokio::select! {
                r = read_bounded(&mut reader, max_message, &mut buf) => r,
                _ = &mut shutdown => break,
            };
            let reply = match read {
                Ok(None) | Err(_) => break,
                Ok(Some(Line::Oversized(len))) => {
                    tracing::warn!(len, "oversized message discarded");
                    oversized_reply(len, max_message)
                }
                Ok(Some(Line::Message)) => match judge.judge(&buf) {
                    Verdict::Skip => continue,
                    Verdict::Reply(line) => line,
                    Verdict::Forward => {
                        if !buf.ends_with(b"\n") {
                            buf.push(b'\n');
                        }
                        if to_rmcp.write_all(&buf).await.is_err() {
                            break;
                        }
                        continue;
                    }
                },
            };
            if tx_in.send(reply).await.is_err() {
                break;
            }
        }
        // EOF or shutdown: closing rmcp's input makes it finish in-flight calls and stop.
        let _ = to_rmcp.shutdown().await;
    });
    drop(tx);

    let writer = tokio::spawn(async move {
        // One write and one flush per batch: under load, replies that are already
        // queued go out together instead of one syscall round each.
        let mut buf = Vec::with_capacity(64 * 1024);
        while let Some(line) = rx.recv().await {
            buf.clear();
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            while buf.len() < 256 * 1024 {
                match rx.try_recv() {
                    Ok(more) => {
                        buf.extend_from_slice(more.as_bytes());
                        buf.push(b'\n');
                    }
                    Err(_) => break,
                }
            }
            output.write_all(&buf).await?;
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
        Judge::new(Default::default()).judge(s.as_bytes())
    }

    fn reply(v: Verdict) -> Value {
        match v {
            Verdict::Reply(l) => serde_json::from_str(&l).unwrap(),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn answers_what_rmcp_would_drop() {
        assert_eq!(reply(judge_str("garbage"))["error"]["code"], -32700);
        assert_eq!(
            reply(judge_str("{\"jsonrpc\":\"2.0\""))["error"]["code"],
            -32700
        );
        let bad_utf8 = reply(Judge::new(Default::default()).judge(b"\xff\xfe"));
        assert!(bad_utf8["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid UTF-8"));
        assert!(reply(judge_str("[1,2]"))["error"]["message"]
            .as_str()
            .unwrap()
            .contains("batches"));
        let no_version = reply(judge_str("{\"id\":1,\"method\":\"ping\"}"));
        assert_eq!(no_version["id"], 1);
        assert_eq!(no_version["error"]["code"], -32600);
        assert_eq!(judge_str("   "), Verdict::Skip);
        assert_eq!(
            judge_str("\u{feff}{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}"),
            Verdict::Forward
        );
    }

    #[test]
    fn requests_rmcp_cannot_read_are_answered_with_their_id() {
        let r = reply(judge_str(
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":"oops"}"#,
        ));
        assert_eq!(
            (r["id"].clone(), r["error"]["code"].clone()),
            (json!(5), json!(-32602))
        );
        assert!(!r.to_string().contains("oops"), "{r}");
        // rmcp reads this as a custom request and would say "method not found".
        let r = reply(judge_str(
            r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":7}}"#,
        ));
        assert_eq!(
            (r["id"].clone(), r["error"]["code"].clone()),
            (json!(8), json!(-32602))
        );
        let r = reply(judge_str(r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#));
        assert_eq!(
            (r["id"].clone(), r["error"]["code"].clone()),
            (Value::Null, json!(-32600))
        );
        let r = reply(judge_str(r#"{"jsonrpc":"2.0","id":"x","method":7}"#));
        assert_eq!(
            (r["id"].clone(), r["error"]["code"].clone()),
            (json!("x"), json!(-32600))
        );
    }

    #[test]
    fn duplicate_in_flight_id_is_refused_and_freed_by_its_response() {
        let set: InFlight = Default::default();
        let mut j = Judge::new(set.clone());
        let line = b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}";
        assert_eq!(j.judge(line), Verdict::Forward);
        // 7.0 is the same request id for rmcp.
        let same = b"{\"jsonrpc\":\"2.0\",\"id\":7.0,\"method\":\"ping\"}";
        assert!(matches!(j.judge(same), Verdict::Reply(l) if l.contains("in flight")));
        outgoing(r#"{"jsonrpc":"2.0","id":7,"result":{}}"#.into(), &set);
        assert_eq!(j.judge(line), Verdict::Forward);
    }

    #[test]
    fn nothing_but_requests_reaches_rmcp_before_initialize() {
        let set: InFlight = Default::default();
        let mut j = Judge::new(set.clone());
        let note = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        let resp = br#"{"jsonrpc":"2.0","id":9,"result":{}}"#;
        assert_eq!(j.judge(note), Verdict::Skip);
        assert_eq!(j.judge(resp), Verdict::Skip);
        let init = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
        assert_eq!(j.judge(init), Verdict::Forward);
        assert_eq!(j.judge(note), Verdict::Forward);
        // A cancelled request's id is free again (rmcp sends no response for it).
        let slow = br#"{"jsonrpc":"2.0","id":"s","method":"ping"}"#;
        assert_eq!(j.judge(slow), Verdict::Forward);
        let cancel =
            br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"s"}}"#;
        assert_eq!(j.judge(cancel), Verdict::Forward);
        assert_eq!(j.judge(slow), Verdict::Forward);
    }

    #[test]
    fn id_less_errors_from_rmcp_get_a_null_id() {
        let set: InFlight = Default::default();
        let out = outgoing(
            r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid request"}}"#.into(),
            &set,
        );
        assert_eq!(
            serde_json::from_str::<Value>(&out).unwrap()["id"],
            Value::Null
        );
    }

    #[tokio::test]
    async fn bounded_reader_discards_long_lines_and_recovers() {
        let data = format!("{}\nshort\n{}", "x".repeat(100), "y".repeat(10));
        let mut r = BufReader::with_capacity(8, data.as_bytes());
        let mut buf = Vec::new();
        assert_eq!(
            read_bounded(&mut r, 10, &mut buf).await.unwrap(),
            Some(Line::Oversized(100))
        );
        assert_eq!(
            read_bounded(&mut r, 10, &mut buf).await.unwrap(),
            Some(Line::Message)
        );
        assert_eq!(buf, b"short\n");
        // Exactly at the bound, without a final newline: still a message.
        assert_eq!(
            read_bounded(&mut r, 10, &mut buf).await.unwrap(),
            Some(Line::Message)
        );
        assert_eq!(buf, b"yyyyyyyyyy");
        assert_eq!(read_bounded(&mut r, 10, &mut buf).await.unwrap(), None);
    }

    #[tokio::test]
    async fn replay_accounts_for_every_line() {
        let t = replay(
            b"x\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n\n",
            1024,
        )
        .await
        .unwrap();
        assert_eq!((t.replies.len(), t.forwarded.len(), t.skipped), (1, 1, 1));
    }
}
