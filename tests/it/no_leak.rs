//! No leak: a whole session against the dev stack with a known secret value and a
//! known token, then stdout (outside the results that must carry the secret), stderr
//! (with the default log filter and with MCPVAULT_LOG=trace) and the audit log are
//! searched for the secret, its base64 form, the token and every 16-character piece
//! of it, the private key of the token's root, and the server's own Vault token.

use std::collections::HashSet;

use crate::devstack::stack_var;
use crate::harness::{assert_pure_jsonrpc, test_key, text, token_for, Server};
use base64::Engine;
use serde_json::{json, Value};

const SUBJECT: &str = "agentLeak";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A secret that appears nowhere else: random hex from the kernel.
fn fresh_secret() -> String {
    let bytes = std::fs::read("/proc/sys/kernel/random/uuid").expect("uuid");
    let uuid = String::from_utf8_lossy(&bytes).trim().replace('-', "");
    format!("S3cr3t-{uuid}")
}

/// Every `n`-byte window of `needle` that occurs in `hay`, if any.
fn shared_window<'a>(hay: &str, needle: &'a str, n: usize) -> Option<&'a str> {
    let windows: HashSet<&[u8]> = needle.as_bytes().windows(n).collect();
    hay.as_bytes()
        .windows(n)
        .find(|w| windows.contains(w))
        .and_then(|w| std::str::from_utf8(w).ok())
        .and_then(|w| needle.find(w).map(|i| &needle[i..i + n]))
}

struct Secrets {
    values: Vec<(&'static str, String)>,
    /// Searched by 16-byte windows, not only whole.
    pieces: Vec<(&'static str, String)>,
}

fn assert_clean(place: &str, hay: &str, s: &Secrets) {
    for (what, v) in &s.values {
        if let Some(line) = hay.lines().find(|l| l.contains(v.as_str())) {
            panic!("{what} leaks into {place}: {line:.400}");
        }
    }
    for (what, v) in &s.pieces {
        if let Some(w) = shared_window(hay, v, 16) {
            let line = hay.lines().find(|l| l.contains(w)).unwrap_or_default();
            panic!("a 16-character piece of {what} ({w:?}) leaks into {place}: {line:.400}");
        }
    }
}

struct Session {
    server: Server,
    /// Ids of responses that legitimately carry the secret (reads of it).
    carriers: HashSet<String>,
}

impl Session {
    fn req(&mut self, id: &str, method: &str, params: Value, carries: bool) -> Value {
        self.server.send_raw(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
        );
        if carries {
            self.carriers.insert(json!(id).to_string());
        }
        self.server.wait_for(&json!(id))
    }

    fn call(&mut self, id: &str, tool: &str, args: Value, token: &str, carries: bool) -> Value {
        let params = json!({"name": tool, "arguments": args, "_meta": {"token": token}});
        self.req(id, "tools/call", params, carries)["result"].clone()
    }
}

/// Runs the session; returns (stdout lines outside the carriers, stderr, audit log).
fn run_session(log_filter: Option<&str>) -> (Vec<String>, String, String, Secrets) {
    let secret = fresh_secret();
    let token = token_for(SUBJECT, None, &[]);
    let narrow = token_for(SUBJECT, Some("kv.list"), &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = dir.path().join("audit.log");
    let audit_s = audit.to_str().expect("utf-8").to_string();
    let mut extra = vec![("MCPVAULT_AUDIT_LOG", audit_s.as_str())];
    if let Some(f) = log_filter {
        extra.push(("MCPVAULT_LOG", f));
    }
    let mut server = Server::start(SUBJECT, &extra);
    let tools = server.request("tools/list", json!({}));
    assert!(tools["result"]["tools"].is_array());
    let mut s = Session {
        server,
        carriers: HashSet::new(),
    };
    let path = format!("leak/{}", &secret[7..15]);
    let b64 = B64.encode(&secret);

    let w = s.call(
        "w",
        "kv.write",
        json!({"path": path, "data": {"password": secret}}),
        &token,
        false,
    );
    assert_ne!(w["isError"], json!(true), "{w}");
    let r = s.call("r", "kv.read", json!({"path": path}), &token, true);
    assert_eq!(
        r["structuredContent"]["data"]["password"],
        json!(secret),
        "{r}"
    );
    let r = s.req(
        "res",
        "resources/read",
        json!({"uri": format!("kv://{SUBJECT}/{path}"), "_meta": {"token": token}}),
        true,
    );
    assert!(r.to_string().contains(&secret), "{r}");
    s.call("l", "kv.list", json!({"prefix": "leak/"}), &token, false);
    // A failed write: check-and-set mismatch (Vault's error must not echo the data).
    let e = s.call(
        "cas",
        "kv.write",
        json!({"path": path, "data": {"password": secret}, "cas": 99}),
        &token,
        false,
    );
    assert_eq!(e["isError"], json!(true), "{e}");
    let enc = s.call(
        "te",
        "transit.encrypt",
        json!({"key": "app-aes", "plaintext": b64}),
        &token,
        false,
    );
    let ct = enc["structuredContent"]["ciphertext"].clone();
    assert!(ct.is_string(), "{enc}");
    let dec = s.call(
        "td",
        "transit.decrypt",
        json!({"key": "app-aes", "ciphertext": ct}),
        &token,
        true,
    );
    assert_eq!(dec["structuredContent"]["plaintext"], json!(b64), "{dec}");
    let e = s.call(
        "tx",
        "transit.decrypt",
        json!({"key": "other-aes", "ciphertext": ct}),
        &token,
        false,
    );
    assert_eq!(e["isError"], json!(true), "{e}");
    let kenc = s.call(
        "ke",
        "kms.encrypt",
        json!({"key_id": "alias/app", "plaintext": b64}),
        &token,
        false,
    );
    assert_ne!(kenc["isError"], json!(true), "{kenc}");
    let kdec = s.call(
        "kd",
        "kms.decrypt",
        json!({"key_id": "alias/app", "ciphertext": kenc["structuredContent"]["ciphertext"]}),
        &token,
        true,
    );
    assert_eq!(kdec["structuredContent"]["plaintext"], json!(b64), "{kdec}");
    // Denied and invalid calls that carry the secret in their arguments.
    let d = s.call(
        "d",
        "kv.write",
        json!({"path": path, "data": {"password": secret}}),
        &narrow,
        false,
    );
    assert!(text(&d).starts_with("denied: tool not granted"), "{d}");
    let i = s.call(
        "i",
        "kv.write",
        json!({"path": format!("../{secret}"), "data": {"password": secret}}),
        &token,
        false,
    );
    assert!(text(&i).starts_with("invalid arguments"), "{i}");
    let i = s.call(
        "i2",
        "kv.write",
        json!({"path": path, "data": secret}),
        &token,
        false,
    );
    assert_eq!(i["isError"], json!(true), "{i}");
    // Malformed JSON-RPC that contains the secret and the token: errors must not echo.
    let bad = json!({"jsonrpc": "2.0", "id": "bad1", "method": "tools/call",
                     "params": {"name": 7, "arguments": {"password": secret}, "_meta": {"token": token}}});
    s.server.send_raw(&bad.to_string());
    s.server.wait_for(&json!("bad1"));
    let bad = bad.to_string();
    s.server.send_raw(&bad[..bad.len() - 1]); // truncated
    let e = s.server.next_message();
    assert_eq!(e["error"]["code"], -32700, "{e}");
    let bad = json!({"jsonrpc": "2.0", "id": "bad2", "method": "tools/call", "params": secret});
    s.server.send_raw(&bad.to_string());
    s.server.wait_for(&json!("bad2"));
    // A token passed where a tool name goes.
    let r = s.req(
        "bad3",
        "tools/call",
        json!({"name": token, "arguments": {}}),
        false,
    );
    assert!(r.get("error").is_some(), "{r}");
    // A tampered token.
    let mut forged = token.clone().into_bytes();
    let mid = forged.len() / 2;
    forged[mid] = if forged[mid] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ascii");
    let f = s.call("f", "kv.read", json!({"path": path}), &forged, false);
    assert!(text(&f).starts_with("denied: "), "{f}");

    let stdout_log = s.server.stdout_log.clone();
    // The harness deletes its stderr file with the server: keep a link to it.
    let stderr_path = dir.path().join("stderr.log");
    std::fs::hard_link(&s.server.stderr_path, &stderr_path).expect("link stderr");
    assert_eq!(s.server.close(), Some(0));
    let stderr = std::fs::read_to_string(stderr_path).expect("stderr");
    assert!(!stderr.is_empty());
    let audit = std::fs::read_to_string(&audit).expect("audit log");
    assert_pure_jsonrpc(&stdout_log);
    let carriers = s.carriers;
    let outside: Vec<String> = stdout_log
        .into_iter()
        .filter(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or(Value::Null);
            v.get("method").is_some() || !carriers.contains(&v["id"].to_string())
        })
        .collect();
    let key = test_key();
    let secrets = Secrets {
        values: vec![
            ("the secret value", secret.clone()),
            ("the secret value in base64", b64),
            ("the server's Vault token", stack_var("VAULT_TOKEN")),
        ],
        pieces: vec![
            ("the token", token),
            ("the forged token", forged),
            ("the root private key", key.private_key),
        ],
    };
    (outside, stderr, audit, secrets)
}

fn check(filter: Option<&str>) {
    let (stdout, stderr, audit, secrets) = run_session(filter);
    let label = filter.unwrap_or("default");
    assert_clean(
        &format!("stdout (log {label})"),
        &stdout.join("\n"),
        &secrets,
    );
    assert_clean(&format!("stderr (log {label})"), &stderr, &secrets);
    assert_clean(&format!("the audit log (log {label})"), &audit, &secrets);
    assert!(audit.lines().count() >= 12, "{audit}");
}

#[test]
fn a_whole_session_leaks_nothing_with_default_logging() {
    check(None);
}

#[test]
fn a_whole_session_leaks_nothing_even_at_trace_level() {
    check(Some("trace"));
    // Asking for rmcp's own trace output explicitly changes nothing.
    check(Some("trace,rmcp=trace"));
}
