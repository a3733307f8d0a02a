//! Hostile input on stdin, through the real binary: every bad line gets a JSON-RPC
//! error (or a tool error), the server keeps answering the next request, and stdout
//! carries JSON-RPC only. No backend is needed: Vault points at a closed port (or at a
//! listener that never answers, where a request must stay in flight).

use crate::harness::{assert_pure_jsonrpc, dead_url, text, token_for, Blackhole, Server};
use serde_json::{json, Value};

const SUBJECT: &str = "agentH";

fn spawn(vault_addr: &str, extra: &[(&str, &str)]) -> Server {
    let mut env = vec![
        ("VAULT_ADDR", vault_addr),
        ("VAULT_TOKEN", "hostile-test-vault-token"),
        ("VAULT_TIMEOUT_SECS", "3"),
    ];
    env.extend_from_slice(extra);
    Server::spawn_bare(SUBJECT, &env)
}

fn started() -> Server {
    let mut s = spawn(&dead_url(), &[]);
    s.initialize();
    s
}

fn assert_serving(s: &mut Server) {
    let r = s.request("ping", json!({}));
    assert_eq!(r["result"], json!({}), "ping after hostile input: {r}");
}

/// Sends one raw line and returns the single message it provokes.
fn reply_to(s: &mut Server, line: &[u8]) -> Value {
    let mut bytes = line.to_vec();
    bytes.push(b'\n');
    s.send_bytes(&bytes);
    s.next_message()
}

fn assert_error(reply: &Value, code: i64, id: Value, what: &str) {
    assert_eq!(reply["error"]["code"], json!(code), "{what}: {reply}");
    assert_eq!(reply["id"], id, "{what}: {reply}");
    assert!(reply.get("result").is_none(), "{what}: {reply}");
}

#[test]
fn malformed_lines_get_json_rpc_errors_and_the_server_keeps_serving() {
    let mut s = started();
    let cases: &[(&str, &[u8], i64, Value)] = &[
        ("not JSON", b"this is not json", -32700, Value::Null),
        (
            "truncated JSON",
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list""#,
            -32700,
            Value::Null,
        ),
        (
            "invalid UTF-8",
            b"\xff\xfe\x00\x80garbage",
            -32700,
            Value::Null,
        ),
        (
            "invalid UTF-8 inside a string",
            b"{\"jsonrpc\":\"2.0\",\"id\":\"\xc3\x28\",\"method\":\"ping\"}",
            -32700,
            Value::Null,
        ),
        (
            "a batch",
            br#"[{"jsonrpc":"2.0","id":2,"method":"ping"}]"#,
            -32600,
            Value::Null,
        ),
        ("an empty batch", b"[]", -32600, Value::Null),
        ("a number", b"42", -32600, Value::Null),
        ("a string", br#""ping""#, -32600, Value::Null),
        ("null", b"null", -32600, Value::Null),
        (
            "no jsonrpc member",
            br#"{"id":3,"method":"ping"}"#,
            -32600,
            json!(3),
        ),
        (
            "jsonrpc 1.0",
            br#"{"jsonrpc":"1.0","id":4,"method":"ping"}"#,
            -32600,
            json!(4),
        ),
        (
            "an object id",
            br#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#,
            -32600,
            Value::Null,
        ),
        (
            "a fractional id",
            br#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
            -32600,
            Value::Null,
        ),
        (
            "an id beyond i64",
            br#"{"jsonrpc":"2.0","id":99999999999999999999,"method":"ping"}"#,
            -32600,
            Value::Null,
        ),
        (
            "a numeric method",
            br#"{"jsonrpc":"2.0","id":5,"method":42}"#,
            -32600,
            json!(5),
        ),
        (
            "params of the wrong type",
            br#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":"kv.read"}"#,
            -32602,
            json!(6),
        ),
        (
            "initialize without params",
            br#"{"jsonrpc":"2.0","id":7,"method":"initialize"}"#,
            -32602,
            json!(7),
        ),
    ];
    for (what, line, code, id) in cases {
        let r = reply_to(&mut s, line);
        assert_error(&r, *code, id.clone(), what);
        assert_serving(&mut s);
    }
    // Ids refused for their shape were never put in flight: reusing them works.
    for id in [json!(6), json!(7)] {
        s.send_raw(&json!({"jsonrpc": "2.0", "id": id, "method": "ping"}).to_string());
        assert_eq!(s.wait_for(&id)["result"], json!({}));
    }
    assert_pure_jsonrpc(&s.stdout_log);
    assert_eq!(s.close(), Some(0));
}

#[test]
fn a_four_megabyte_line_is_refused_without_hurting_the_session() {
    let mut s = started();
    let huge = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "kv.read", "arguments": {"path": "a".repeat(4 << 20)}},
    })
    .to_string();
    let r = reply_to(&mut s, huge.as_bytes());
    assert_error(&r, -32600, Value::Null, "4 MB line");
    let msg = r["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("1048576-byte limit"), "{msg}");
    assert_serving(&mut s);
    // A bound of its own.
    let mut s2 = spawn(&dead_url(), &[("MCPVAULT_MAX_MESSAGE_BYTES", "2000")]);
    s2.initialize();
    let r = reply_to(
        &mut s2,
        format!("{{\"x\":\"{}\"}}", "y".repeat(3000)).as_bytes(),
    );
    assert_error(&r, -32600, Value::Null, "line over a custom bound");
    assert_serving(&mut s2);
    assert_pure_jsonrpc(&s.stdout_log);
    assert_pure_jsonrpc(&s2.stdout_log);
}

#[test]
fn unknown_methods_and_tools_are_json_rpc_errors() {
    let mut s = started();
    let r = s.request("no/such/method", json!({}));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    assert_serving(&mut s);
    // A notification with an unknown method is ignored (no reply to a notification).
    s.send_raw(r#"{"jsonrpc":"2.0","method":"notifications/no_such_thing"}"#);
    s.send_raw(r#"{"jsonrpc":"2.0","method":"$/lsp/thing","params":[1,2]}"#);
    assert_serving(&mut s);
    let token = token_for(SUBJECT, None, &[]);
    for name in ["no.such", "kv.read2", "", "kv.*", "../kv.read"] {
        let r = s.request(
            "tools/call",
            json!({"name": name, "arguments": {}, "_meta": {"token": token}}),
        );
        assert_eq!(r["error"]["code"], -32602, "{name:?}: {r}");
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("unknown tool"),
            "{r}"
        );
        assert_serving(&mut s);
    }
    assert_pure_jsonrpc(&s.stdout_log);
    assert!(!s.stdout_log.iter().any(|l| l.contains(&token)));
}

/// The error a bad tools/call provokes: a tool error's text or a JSON-RPC error.
fn call_failure(s: &mut Server, params: Value) -> String {
    let r = s.request("tools/call", params);
    if let Some(e) = r.get("error") {
        assert_eq!(e["code"], -32602, "{r}");
        return format!("jsonrpc: {}", e["message"]);
    }
    assert_eq!(r["result"]["isError"], json!(true), "should fail: {r}");
    text(&r["result"])
}

#[test]
fn bad_arguments_are_refused_before_any_backend() {
    let mut s = started();
    let token = token_for(SUBJECT, None, &[]);
    let meta = json!({"token": token});
    let tool_cases: Vec<(&str, Value, &str)> = vec![
        ("kv.read", json!({"path": 5}), "`path` must be a string"),
        ("kv.read", json!({"path": ["a"]}), "`path` must be a string"),
        ("kv.read", json!({}), "missing required argument `path`"),
        (
            "kv.read",
            json!({"path": "a".repeat(600_000)}),
            "longer than 512",
        ),
        ("kv.read", json!({"path": "../agentB/secret"}), "'..'"),
        ("kv.read", json!({"path": "/etc/passwd"}), "relative"),
        ("kv.read", json!({"path": "a%2f..%2fb"}), "'%'"),
        ("kv.read", json!({"path": "a\u{0}b"}), "control"),
        ("kv.list", json!({"prefix": 7}), "`prefix` must be a string"),
        (
            "kv.write",
            json!({"data": {"k": "v"}}),
            "missing required argument `path`",
        ),
        (
            "transit.encrypt",
            json!({"key": 7, "plaintext": "aGk="}),
            "`key` must be a string",
        ),
        (
            "transit.encrypt",
            json!({"key": "a/b", "plaintext": "aGk="}),
            "invalid `key`",
        ),
        (
            "db.renew",
            json!({"lease_id": "sys/leases/anything"}),
            "invalid `lease_id`",
        ),
        (
            "ssh.sign",
            json!({"public_key": "ssh-ed25519 AAAA"}),
            "missing required argument `role`",
        ),
        (
            "kms.encrypt",
            json!({"key_id": 5, "plaintext": "aGk="}),
            "`key_id` must be a string",
        ),
        (
            "kms.encrypt",
            json!({"key_id": "x".repeat(3000), "plaintext": "aGk="}),
            "invalid `key_id`",
        ),
    ];
    for (tool, args, want) in tool_cases {
        let r = s.call(tool, args.clone(), Some(&token));
        assert_eq!(r["isError"], json!(true), "{tool} {args:.80}: {r:.300}");
        let t = text(&r);
        assert!(t.starts_with("invalid arguments: "), "{tool}: {t}");
        assert!(t.contains(want), "{tool}: {t} lacks {want:?}");
        assert!(t.len() < 300, "the error echoes the input: {t:.300}");
        assert_serving(&mut s);
    }
    // Arguments that pass the gate but not the tool's own schema.
    let t = call_failure(
        &mut s,
        json!({"name": "kv.write", "arguments": {"path": "a", "data": "not an object"}, "_meta": meta}),
    );
    assert!(t.starts_with("invalid arguments: "), "{t}");
    assert!(
        !t.contains("not an object"),
        "the error echoes the value: {t}"
    );
    assert_serving(&mut s);
    let t = call_failure(
        &mut s,
        json!({"name": "kv.read", "arguments": {"path": "a", "version": "two"}, "_meta": meta}),
    );
    assert!(t.starts_with("invalid arguments: "), "{t}");
    assert!(!t.contains("two"), "the error echoes the value: {t}");
    assert_serving(&mut s);
    // Malformed tools/call envelopes: JSON-RPC invalid params.
    for params in [
        json!({"name": "kv.read", "arguments": "path=a", "_meta": meta}),
        json!({"name": 5, "arguments": {}}),
        json!({"arguments": {"path": "a"}}),
        json!("kv.read"),
    ] {
        let r = s.request("tools/call", params.clone());
        assert_eq!(r["error"]["code"], -32602, "{params}: {r}");
        assert_serving(&mut s);
    }
    s.send_raw(r#"{"jsonrpc":"2.0","id":"np","method":"tools/call"}"#);
    let r = s.wait_for(&json!("np"));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    assert_serving(&mut s);
    assert_pure_jsonrpc(&s.stdout_log);
    assert!(!s.stdout_log.iter().any(|l| l.contains(&token)));
}

#[test]
fn requests_before_initialize_are_answered_and_do_not_end_the_session() {
    let mut s = spawn(&dead_url(), &[]);
    assert_serving(&mut s); // ping is allowed before initialize
                            // A notification or a stray response before initialize used to end rmcp's
                            // session: the guard drops them.
    s.send_raw(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    s.send_raw(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#);
    s.send_raw(r#"{"jsonrpc":"2.0","id":"r1","result":{}}"#);
    s.send_raw(r#"{"jsonrpc":"2.0","id":"r2","error":{"code":1,"message":"x"}}"#);
    assert_serving(&mut s);
    let r = s.request("tools/list", json!({}));
    assert!(
        r.get("error").is_some(),
        "tools/list before initialize: {r}"
    );
    let token = token_for(SUBJECT, None, &[]);
    let r = s.request(
        "tools/call",
        json!({"name": "kv.read", "arguments": {"path": "a"}, "_meta": {"token": token}}),
    );
    assert!(
        r.get("error").is_some(),
        "tools/call before initialize: {r}"
    );
    assert_serving(&mut s);
    let init = s.initialize();
    assert_eq!(init["result"]["serverInfo"]["name"], "mcpvault", "{init}");
    let tools = s.request("tools/list", json!({}));
    assert!(
        tools["result"]["tools"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{tools}"
    );
    assert_pure_jsonrpc(&s.stdout_log);
    assert_eq!(s.close(), Some(0));
}

#[test]
fn duplicate_ids_are_refused_while_in_flight_and_freed_after() {
    // Vault accepts and never answers: a kv.read stays in flight for VAULT_TIMEOUT_SECS.
    let hole = Blackhole::start();
    let mut s = spawn(&hole.url(), &[]);
    s.initialize();
    let token = token_for(SUBJECT, None, &[]);
    let slow = |id: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": "kv.read", "arguments": {"path": "a"}, "_meta": {"token": token}}})
        .to_string()
    };
    s.send_raw(&slow("dup"));
    let r = reply_to(&mut s, br#"{"jsonrpc":"2.0","id":"dup","method":"ping"}"#);
    assert_error(&r, -32600, json!("dup"), "duplicate id while in flight");
    assert!(r["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("in flight"));
    // The original still gets its own answer, a clear backend error.
    let first = s.wait_for(&json!("dup"));
    let t = text(&first["result"]);
    assert!(t.starts_with("vault: "), "{first}");
    // Once answered, the id can be used again.
    s.send_raw(r#"{"jsonrpc":"2.0","id":"dup","method":"ping"}"#);
    assert_eq!(s.wait_for(&json!("dup"))["result"], json!({}));

    // 9 and 9.0 are the same id to rmcp, and so to the duplicate check.
    s.send_raw(&slow("n").replace("\"n\"", "9"));
    let r = reply_to(&mut s, br#"{"jsonrpc":"2.0","id":9.0,"method":"ping"}"#);
    assert_error(&r, -32600, json!(9), "9.0 while 9 is in flight");
    let _ = s.wait_for(&json!(9));
    // A request that rmcp cannot read is answered by the guard and not kept in flight.
    let r = reply_to(
        &mut s,
        br#"{"jsonrpc":"2.0","id":78,"method":"tools/call","params":{"name":7}}"#,
    );
    assert_error(&r, -32602, json!(78), "unreadable tools/call");
    s.send_raw(r#"{"jsonrpc":"2.0","id":78,"method":"ping"}"#);
    assert_eq!(s.wait_for(&json!(78))["result"], json!({}));
    // A cancelled request is never answered (MCP): its id is free at once.
    s.send_raw(&slow("c1"));
    s.send_raw(
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"c1","reason":"test"}}"#,
    );
    s.send_raw(r#"{"jsonrpc":"2.0","id":"c1","method":"ping"}"#);
    let r = s.wait_for(&json!("c1"));
    assert_eq!(r["result"], json!({}), "ping reusing a cancelled id: {r}");
    assert_pure_jsonrpc(&s.stdout_log);
    assert!(!s.stdout_log.iter().any(|l| l.contains(&token)));
}
