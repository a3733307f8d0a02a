//! The stdio framing guard between the process's stdin/stdout and rmcp.
//!
//! rmcp silently drops lines it cannot parse, answers some malformed requests with an
//! error that carries no id, ends the whole session when a notification or a response
//! arrives before `initialize`, and has no notion of a duplicate in-flight id. A
//! careful client deserves an answer to every request, so this layer reads stdin
//! itself, bounds each message, checks every message against rmcp's own message type
//! (so what it forwards is exactly what rmcp can read), answers the rest with a
//! JSON-RPC error carrying the request's id, and hands everything else to rmcp as the
//! message it already parsed, over a typed channel (`Pipe`, an rmcp `Transport`): each
//! line is parsed once, and rmcp's replies are serialized once, by the writer. A single
//! writer task owns stdout, so lines from rmcp and from this guard never interleave.
//!
//! Why each part exists, since rmcp's own stdio transport is not enough:
//! - `read_bounded`: rmcp's reader drops an over-long line silently; the contract
//!   answers it with `-32600`, so the line must be measured here, without buffering it.
//! - `Judge::judge`/`diagnose`: rmcp drops unparsable lines (the contract wants
//!   `-32700`), answers batches and non-objects without an id, quits on a notification
//!   or response before `initialize`, and reads typed methods with bad params as
//!   unknown methods (`-32601` instead of `-32602`). Only typed messages reach rmcp, so
//!   the guard also answers what rmcp's line reader used to (a malformed notification
//!   or response: `-32600`, `"id": null`) and drops what it ignored.
//! - the in-flight id set and `put`: rmcp has no notion of a duplicate in-flight id;
//!   replies retire ids (read from the typed reply, just before it is written).
//! - `SyncStdout` and the writer task: one writer, batched flushes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ClientRequest, JsonRpcMessage, ServerJsonRpcMessage,
};
use rmcp::RoleServer;
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
// The large variant is the common one and moves on into rmcp's channel: a box would
// only add an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Verdict {
    /// Hand rmcp the message, as parsed here.
    Forward(ClientJsonRpcMessage),
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
        // The common case: one typed parse, the only one: rmcp gets its result.
        match serde_json::from_slice::<ClientJsonRpcMessage>(line) {
            Ok(msg) => match self.admit(&msg) {
                None => Verdict::Forward(msg),
                Some(refusal) => refusal,
            },
            Err(_) => diagnose(line),
        }
    }

    /// `None` to forward `msg`, or what to do instead.
    fn admit(&mut self, msg: &ClientJsonRpcMessage) -> Option<Verdict> {
        match msg {
            JsonRpcMessage::Request(r) => {
                if let ClientRequest::CustomRequest(c) = &r.request {
                    if TYPED_METHODS.contains(&c.method.as_str()) {
                        return Some(Verdict::Reply(invalid_params(
                            r.id.clone().into_json_value(),
                            &c.method,
                        )));
                    }
                }
                if !self.flight().insert(id_key(&r.id)) {
                    return Some(Verdict::Reply(error_line(
                        r.id.clone().into_json_value(),
                        -32600,
                        "Invalid Request: a request with this id is still in flight",
                    )));
                }
                if matches!(r.request, ClientRequest::InitializeRequest(_)) {
                    self.initialized = true;
                }
                None
            }
            JsonRpcMessage::Notification(n) => {
                if !self.initialized {
                    tracing::debug!("notification before initialize dropped");
                    return Some(Verdict::Skip);
                }
                // A cancelled request gets no response (rmcp drops it): its id is free.
                if let ClientNotification::CancelledNotification(c) = &n.notification {
                    if let Some(id) = &c.params.request_id {
                        self.flight().remove(&id_key(id));
                    }
                }
                None
            }
            JsonRpcMessage::Response(_) | JsonRpcMessage::Error(_) => {
                (!self.initialized).then(|| {
                    tracing::debug!("response before initialize dropped");
                    Verdict::Skip
                })
            }
        }
    }
}

/// Why a line is not a message rmcp can read, as the reply to send (`Skip` for a
/// notification rmcp's line reader ignored).
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
    // No id to answer with. rmcp's line reader (before this guard handed it typed
    // messages) answered these with an id-less -32600, and ignored a notification whose
    // method it does not know: keep both.
    let Some(method) = obj.get("method") else {
        return Verdict::Reply(error_line(
            Value::Null,
            -32600,
            "Invalid Request: no method, and not a valid JSON-RPC response",
        ));
    };
    if !obj.contains_key("id") {
        return match method.as_str() {
            Some(m) if !rmcp_knows(m) => Verdict::Skip,
            _ => Verdict::Reply(error_line(
                Value::Null,
                -32600,
                "Invalid Request: not a valid MCP notification",
            )),
        };
    }
    let msg = match (id, method.as_str()) {
        (None, _) => "Invalid Request: id must be a string or an integer".to_string(),
        (Some(_), None) => "Invalid Request: method must be a string".to_string(),
        (Some(_), Some(m)) => return Verdict::Reply(invalid_params(reply_id, m)),
    };
    Verdict::Reply(error_line(reply_id, -32600, &msg))
}

/// Whether rmcp 3.9's line reader counted `method` as standard MCP (its
/// `is_standard_method`): a malformed notification with any other method was ignored.
fn rmcp_knows(method: &str) -> bool {
    matches!(
        method,
        "initialize"
            | "ping"
            | "server/discover"
            | "prompts/get"
            | "prompts/list"
            | "resources/list"
            | "resources/read"
            | "resources/subscribe"
            | "resources/unsubscribe"
            | "resources/templates/list"
            | "subscriptions/listen"
            | "tools/call"
            | "tools/list"
            | "completion/complete"
            | "elicitation/create"
            | "logging/setLevel"
            | "roots/list"
            | "sampling/createMessage"
            | "notifications/cancelled"
            | "notifications/initialized"
            | "notifications/message"
            | "notifications/progress"
            | "notifications/prompts/list_changed"
            | "notifications/resources/list_changed"
            | "notifications/resources/updated"
            | "notifications/roots/list_changed"
            | "notifications/subscriptions/acknowledged"
            | "notifications/tools/list_changed"
    )
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
                Verdict::Forward(_) => trace.forwarded.push(buf.clone()),
                Verdict::Skip => trace.skipped += 1,
                Verdict::Reply(l) => trace.replies.push(l),
            },
        }
    }
    Ok(trace)
}

/// What the writer task puts on stdout, one line each.
// Most are rmcp's: a box would add an allocation per reply to save slot space.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Out {
    /// A reply of the guard's own.
    Line(String),
    /// A message from rmcp: serialized by the writer, straight into its batch.
    Rmcp(ServerJsonRpcMessage),
}

/// Appends `out` and a newline to `buf`. A reply from rmcp retires its id here, just
/// before it is written: the client cannot reuse the id before it sees the reply.
fn put(buf: &mut Vec<u8>, out: Out, in_flight: &InFlight) {
    let msg = match out {
        Out::Line(line) => {
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            return;
        }
        Out::Rmcp(msg) => msg,
    };
    let id = match &msg {
        JsonRpcMessage::Response(r) => Some(&r.id),
        JsonRpcMessage::Error(e) => e.id.as_ref(),
        // A request or notification of rmcp's own (to the client): no id to retire.
        JsonRpcMessage::Request(_) | JsonRpcMessage::Notification(_) => None,
    };
    if let Some(id) = id {
        in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id_key(id));
    }
    let start = buf.len();
    let written = match &msg {
        // rmcp's error type leaves out an absent id, and JSON-RPC requires `"id": null`.
        // Its service sets one on every error it sends today; this keeps the line valid
        // if that changes (its old line reader did send id-less errors).
        JsonRpcMessage::Error(e) if e.id.is_none() => serde_json::to_writer(
            &mut *buf,
            &NullIdError {
                jsonrpc: "2.0",
                id: (),
                error: &e.error,
            },
        ),
        _ => serde_json::to_writer(&mut *buf, &msg),
    };
    if let Err(err) = written {
        // Never half a line on stdout; a request still gets an answer.
        buf.truncate(start);
        tracing::error!(%err, "a reply could not be serialized");
        let Some(id) = id else { return };
        let line = error_line(
            id.clone().into_json_value(),
            -32603,
            "Internal error: the reply could not be serialized",
        );
        buf.extend_from_slice(line.as_bytes());
    }
    buf.push(b'\n');
}

/// An error reply with `"id": null` (`()` serializes as `null`).
#[derive(serde::Serialize)]
struct NullIdError<'a> {
    jsonrpc: &'static str,
    id: (),
    error: &'a rmcp::model::ErrorData,
}

/// The writer task has stopped: stdout is gone.
#[derive(Debug, thiserror::Error)]
#[error("the stdout writer has stopped")]
pub struct WriterClosed;

/// rmcp's end of the guard, an rmcp `Transport`: the client's messages as the guard
/// parsed them, and rmcp's replies straight to the writer task, over bounded channels
/// (a full one makes the sender wait; nothing is dropped). Implemented directly rather
/// than as rmcp's `(Sink, Stream)` pair, whose adapter takes a lock on every send.
pub struct Pipe {
    from_client: mpsc::Receiver<ClientJsonRpcMessage>,
    to_writer: Option<mpsc::Sender<Out>>,
}

impl rmcp::transport::Transport<RoleServer> for Pipe {
    type Error = WriterClosed;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl std::future::Future<Output = Result<(), WriterClosed>> + Send + 'static {
        // The future must be 'static (rmcp may run it as a task of its own): it owns
        // a sender.
        let to_writer = self.to_writer.clone();
        async move {
            match to_writer {
                Some(tx) => tx.send(Out::Rmcp(item)).await.map_err(|_| WriterClosed),
                None => Err(WriterClosed),
            }
        }
    }

    /// Cancel-safe (rmcp polls it in a `select!`): `mpsc::Receiver::recv` is.
    fn receive(
        &mut self,
    ) -> impl std::future::Future<Output = Option<ClientJsonRpcMessage>> + Send {
        self.from_client.recv()
    }

    async fn close(&mut self) -> Result<(), WriterClosed> {
        // rmcp has sent its last reply: the writer may end once the guard's are out.
        self.to_writer = None;
        Ok(())
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

/// Runs `serve` (rmcp on the guard's `Pipe`) behind the guard until stdin closes or
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
    F: FnOnce(Pipe) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    // The bound rmcp's line reader had (it dropped longer lines). rmcp reads no lines
    // now, but a configured limit keeps meaning what it did.
    let max_message = max_message.clamp(1, rmcp::transport::async_rw::DEFAULT_MAX_LINE_LENGTH - 1);
    // Few slots: rmcp takes a message each time its loop turns, and one slot may hold
    // a message of up to `max_message` bytes.
    let (to_rmcp, from_client) = mpsc::channel::<ClientJsonRpcMessage>(64);
    let (tx, mut rx) = mpsc::channel::<Out>(1024);
    let in_flight: InFlight = Arc::new(Mutex::new(HashSet::new()));

    let rmcp_task = tokio::spawn(serve(Pipe {
        from_client,
        to_writer: Some(tx.clone()),
    }));

    // stdin -> rmcp, answering what rmcp would drop or mishandle.
    let flight_in = in_flight.clone();
    let pump_in = tokio::spawn(async move {
        let mut reader = BufReader::with_capacity(64 * 1024, input);
        let mut buf = Vec::with_capacity(4096);
        let mut judge = Judge::new(flight_in);
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
                    Verdict::Forward(msg) => {
                        if to_rmcp.send(msg).await.is_err() {
                            break;
                        }
                        continue;
                    }
                },
            };
            if tx.send(Out::Line(reply)).await.is_err() {
                break;
            }
        }
        // EOF or shutdown: closing rmcp's input makes it finish in-flight calls and stop.
        drop(to_rmcp);
    });

    let writer = tokio::spawn(async move {
        // One write and one flush per batch: under load, replies that are already
        // queued go out together instead of one syscall round each.
        let mut buf = Vec::with_capacity(64 * 1024);
        while let Some(out) = rx.recv().await {
            buf.clear();
            put(&mut buf, out, &in_flight);
            while buf.len() < 256 * 1024 {
                match rx.try_recv() {
                    Ok(more) => put(&mut buf, more, &in_flight),
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
    writer.await.unwrap_or(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge_str(s: &str) -> Verdict {
        Judge::new(Default::default()).judge(s.as_bytes())
    }

    fn forwarded(v: &Verdict) -> bool {
        matches!(v, Verdict::Forward(_))
    }

    /// What the writer task would write for `out`.
    fn written(out: Out, set: &InFlight) -> Value {
        let mut buf = Vec::new();
        put(&mut buf, out, set);
        assert_eq!(buf.pop(), Some(b'\n'));
        serde_json::from_slice(&buf).unwrap()
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
        assert!(matches!(judge_str("   "), Verdict::Skip));
        assert!(forwarded(&judge_str(
            "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}"
        )));
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
        assert!(forwarded(&j.judge(line)));
        // 7.0 is the same request id for rmcp.
        let same = b"{\"jsonrpc\":\"2.0\",\"id\":7.0,\"method\":\"ping\"}";
        assert!(matches!(j.judge(same), Verdict::Reply(l) if l.contains("in flight")));
        let done = ServerJsonRpcMessage::response(
            rmcp::model::ServerResult::empty(()),
            rmcp::model::RequestId::Number(7),
        );
        assert_eq!(written(Out::Rmcp(done), &set)["id"], 7);
        assert!(forwarded(&j.judge(line)));
    }

    #[test]
    fn nothing_but_requests_reaches_rmcp_before_initialize() {
        let set: InFlight = Default::default();
        let mut j = Judge::new(set.clone());
        let note = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        let resp = br#"{"jsonrpc":"2.0","id":9,"result":{}}"#;
        assert!(matches!(j.judge(note), Verdict::Skip));
        assert!(matches!(j.judge(resp), Verdict::Skip));
        let init = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
        assert!(forwarded(&j.judge(init)));
        assert!(forwarded(&j.judge(note)));
        // A cancelled request's id is free again (rmcp sends no response for it).
        let slow = br#"{"jsonrpc":"2.0","id":"s","method":"ping"}"#;
        assert!(forwarded(&j.judge(slow)));
        let cancel =
            br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"s"}}"#;
        assert!(forwarded(&j.judge(cancel)));
        assert!(forwarded(&j.judge(slow)));
    }

    #[test]
    fn id_less_errors_from_rmcp_get_a_null_id() {
        let set: InFlight = Default::default();
        let err = ServerJsonRpcMessage::error(
            rmcp::model::ErrorData::invalid_request("Invalid request", None),
            None,
        );
        let out = written(Out::Rmcp(err), &set);
        assert_eq!(out.get("id"), Some(&Value::Null), "{out}");
        assert_eq!(out["error"]["code"], -32600, "{out}");
    }

    #[test]
    fn malformed_notifications_and_responses_are_answered_as_rmcp_did() {
        // rmcp's line reader answered these with an id-less -32600 (now the guard's).
        for line in [
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":"x"}"#,
            r#"{"jsonrpc":"2.0","method":7}"#,
            r#"{"jsonrpc":"2.0","id":3,"result":{},"error":{"code":1,"message":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":3}"#,
        ] {
            let r = reply(judge_str(line));
            assert_eq!(
                (r["id"].clone(), r["error"]["code"].clone()),
                (Value::Null, json!(-32600)),
                "{line}"
            );
        }
        // ... and ignored a malformed notification whose method it does not know.
        assert!(matches!(
            judge_str(r#"{"jsonrpc":"2.0","method":"x/y","params":7}"#),
            Verdict::Skip
        ));
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

    /// The whole path with rmcp behind it: typed messages in, typed replies out, the
    /// guard's own replies beside them, and every reply flushed when stdin ends.
    #[tokio::test]
    async fn run_serves_rmcp_and_flushes_every_reply_at_eof() {
        use rmcp::ServiceExt;
        use tokio::io::AsyncReadExt;
        struct Nop;
        impl rmcp::ServerHandler for Nop {}
        let input = concat!(
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#,
            "\n",
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            "\n",
            r#"{"jsonrpc":"2.0","id":"p","method":"ping"}"#,
            "\n",
            "garbage\n",
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":"x"}"#,
            "\n",
        );
        let (output, mut stdout) = tokio::io::duplex(1 << 20);
        run(
            input.as_bytes(),
            output,
            1024,
            std::future::pending(),
            |pipe| async move {
                if let Ok(running) = Nop.serve(pipe).await {
                    let _ = running.waiting().await;
                }
            },
        )
        .await
        .unwrap();
        let mut out = String::new();
        stdout.read_to_string(&mut out).await.unwrap();
        let replies: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let by_id = |id: Value| replies.iter().filter(move |r| r["id"] == id);
        assert!(
            by_id(json!(1)).any(|r| r["result"]["serverInfo"].is_object()),
            "{out}"
        );
        assert!(by_id(json!("p")).any(|r| r["result"] == json!({})), "{out}");
        let mut null: Vec<_> = by_id(Value::Null)
            .map(|r| r["error"]["code"].clone())
            .collect();
        null.sort_by_key(|c| c.as_i64());
        assert_eq!(null, [json!(-32700), json!(-32600)], "{out}");
        assert_eq!(replies.len(), 4, "{out}");
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
