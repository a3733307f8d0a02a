//! 2,000 pipelined tools/call requests (all written before any reply is read): every
//! id is answered exactly once, and a second batch of 2,000 does not grow memory.

use std::collections::HashMap;

use crate::harness::{assert_pure_jsonrpc, dead_url, rss_kib, text, token_for, Server};
use serde_json::{json, Value};

const SUBJECT: &str = "agentP";
const BATCH: u64 = 2_000;

/// Writes `BATCH` calls starting at `first`, then reads until each is answered.
/// Every third call is denied at the gate, every third has invalid arguments, the
/// rest pass the gate and fail at the (closed) Vault port.
fn batch(s: &mut Server, token: &str, first: u64) {
    let mut lines = String::new();
    for id in first..first + BATCH {
        let (tool, args) = match id % 3 {
            0 => (
                "kv.write",
                json!({"path": format!("p/{}", id % 50), "data": {"k": "v"}}),
            ),
            1 => ("kv.read", json!({"path": format!("p/{}", id % 50)})),
            _ => ("kv.read", json!({"path": "../escape"})),
        };
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                         "params": {"name": tool, "arguments": args, "_meta": {"token": token}}});
        lines.push_str(&msg.to_string());
        lines.push('\n');
    }
    s.send_bytes(lines.as_bytes());
    let mut seen: HashMap<u64, Value> = HashMap::new();
    while seen.len() < BATCH as usize {
        let m = s.next_message();
        let id = m["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("reply without a numeric id: {m}"));
        assert!((first..first + BATCH).contains(&id), "unexpected id: {m}");
        assert!(seen.insert(id, m).is_none(), "id {id} answered twice");
    }
    for (id, m) in &seen {
        let t = text(&m["result"]);
        let want = match id % 3 {
            0 => "denied: tool not granted",
            1 => "vault: ",
            _ => "invalid arguments: ",
        };
        assert!(t.starts_with(want), "id {id}: {m}");
    }
}

#[test]
fn two_thousand_pipelined_calls_are_each_answered_once_and_memory_stays_flat() {
    let dead = dead_url();
    let mut s = Server::spawn_bare(
        SUBJECT,
        &[
            ("VAULT_ADDR", dead.as_str()),
            ("VAULT_TOKEN", "pipeline-test"),
        ],
    );
    s.initialize();
    let token = token_for(SUBJECT, Some("kv.read"), &[]);
    batch(&mut s, &token, 1);
    let (rss1, hwm1) = rss_kib(s.pid());
    batch(&mut s, &token, 1 + BATCH);
    let (rss2, hwm2) = rss_kib(s.pid());
    eprintln!("VmRSS {rss1} -> {rss2} KiB, VmHWM {hwm1} -> {hwm2} KiB");
    assert!(
        rss2 < rss1 + 10 * 1024,
        "second batch grew RSS by {} KiB",
        rss2 - rss1
    );
    assert!(
        hwm2 < hwm1 + 10 * 1024,
        "second batch raised the peak by {} KiB",
        hwm2 - hwm1
    );
    // Nothing was left unanswered or answered late.
    let r = s.request("ping", json!({}));
    assert_eq!(r["result"], json!({}));
    assert_eq!(s.stdout_log.len() as u64, 2 * BATCH + 2);
    assert_pure_jsonrpc(&s.stdout_log);
    assert_eq!(s.close(), Some(0));
}
