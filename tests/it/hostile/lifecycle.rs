//! Clean exit: status 0 on stdin EOF and on SIGTERM, with calls already in flight
//! answered before the process goes away.

use std::process::Command;
use std::time::Duration;

use crate::harness::{assert_pure_jsonrpc, poll_until, text, token_for, Blackhole, Server, LIMIT};
use serde_json::{json, Value};

const SUBJECT: &str = "agentL";

/// A server whose Vault accepts connections and never answers, so a kv.read stays in
/// flight for VAULT_TIMEOUT_SECS (2 s) and then fails with a `vault:` error.
fn server_with_hung_vault(hole: &Blackhole) -> Server {
    let url = hole.url();
    let mut p = Server::spawn_bare(
        SUBJECT,
        &[
            ("VAULT_ADDR", url.as_str()),
            ("VAULT_TOKEN", "lifecycle-test"),
            ("VAULT_TIMEOUT_SECS", "2"),
        ],
    );
    p.initialize();
    p
}

fn start_slow_call(p: &mut Server, hole: &Blackhole) -> Value {
    let token = token_for(SUBJECT, Some("kv.read"), &[]);
    let before = hole.accepted();
    let id = p.start_request(
        "tools/call",
        json!({"name": "kv.read", "arguments": {"path": "app/x"}, "_meta": {"token": token}}),
    );
    // In flight for real: the server has connected to Vault.
    assert!(
        poll_until(LIMIT, || (hole.accepted() > before).then_some(())).is_some(),
        "the call never reached the (hung) Vault"
    );
    id
}

fn answered_once(msgs: &[Value], id: &Value) -> Value {
    let hits: Vec<&Value> = msgs
        .iter()
        .filter(|m| &m["id"] == id && m.get("method").is_none())
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "id {id} answered {} times: {msgs:?}",
        hits.len()
    );
    hits[0].clone()
}

#[test]
fn stdin_eof_exits_zero_after_answering_in_flight_calls() {
    let hole = Blackhole::start();
    let mut p = server_with_hung_vault(&hole);
    let slow = start_slow_call(&mut p, &hole);
    let quick = p.start_request("ping", json!({}));
    // The last request has no newline: EOF ends it.
    p.send_bytes(br#"{"jsonrpc":"2.0","id":"last","method":"ping"}"#);
    p.close_stdin();
    let rest = p.read_to_eof();
    let r = answered_once(&rest, &slow);
    assert!(text(&r["result"]).starts_with("vault: "), "{r}");
    assert_eq!(answered_once(&rest, &quick)["result"], json!({}));
    assert_eq!(answered_once(&rest, &json!("last"))["result"], json!({}));
    let status = p.wait_exit(LIMIT);
    assert_eq!(status.code(), Some(0), "{status:?}; stderr: {}", p.stderr());
    assert_pure_jsonrpc(&p.stdout_log);
}

#[test]
fn stdin_eof_before_initialize_exits_zero() {
    let mut p = Server::spawn_bare(SUBJECT, &[]);
    p.close_stdin();
    assert!(p.read_to_eof().is_empty());
    let status = p.wait_exit(LIMIT);
    assert_eq!(status.code(), Some(0), "{status:?}; stderr: {}", p.stderr());
}

fn sigterm(pid: u32) {
    let st = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -TERM failed");
}

#[test]
fn sigterm_exits_zero_after_answering_in_flight_calls() {
    let hole = Blackhole::start();
    let mut p = server_with_hung_vault(&hole);
    let slow = start_slow_call(&mut p, &hole);
    // stdin stays open: the signal alone must end the process.
    sigterm(p.pid());
    let rest = p.read_to_eof();
    let r = answered_once(&rest, &slow);
    assert!(text(&r["result"]).starts_with("vault: "), "{r}");
    let status = p.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{status:?}; stderr: {}", p.stderr());
    assert_pure_jsonrpc(&p.stdout_log);
}

#[test]
fn sigterm_on_an_idle_server_exits_zero() {
    let mut p = Server::spawn_bare(SUBJECT, &[]);
    p.initialize();
    sigterm(p.pid());
    assert!(p.read_to_eof().is_empty());
    let status = p.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{status:?}; stderr: {}", p.stderr());
}
