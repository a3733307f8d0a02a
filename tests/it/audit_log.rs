//! The audit log (`MCPVAULT_AUDIT_LOG`): hash-chained JSON lines, one per refusal
//! (deny, invalid) and two per allowed call (its intent, written before the backend
//! is touched, and its outcome), with who, what, which resource, why and which token;
//! never the token itself. Any edit, deletion or cut of the head breaks the chain; a
//! call whose intent cannot be written never reaches the backend.

use std::path::Path;

use crate::harness::{dead_url, last_revocation_id, text, token_for, Server};
use mcpvault::audit::verify_chain;
use serde_json::{json, Value};

const SUBJECT: &str = "agentA";

fn spawn(log: &Path) -> Server {
    let dead = dead_url();
    let mut s = Server::spawn_bare(
        SUBJECT,
        &[
            ("VAULT_ADDR", dead.as_str()),
            ("VAULT_TOKEN", "audit-test"),
            ("MCPVAULT_AUDIT_LOG", log.to_str().expect("utf-8 path")),
        ],
    );
    s.initialize();
    s
}

/// tools/call with a string id of our choosing (it becomes the entry's request_id).
fn call(s: &mut Server, id: &str, tool: &str, args: Value, token: Option<&str>) -> String {
    let mut params = json!({"name": tool, "arguments": args});
    if let Some(t) = token {
        params["_meta"] = json!({"token": t});
    }
    s.send_raw(
        &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}).to_string(),
    );
    text(&s.wait_for(&json!(id))["result"])
}

fn entries(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

/// The entry that closes a request: its outcome (after its intent) for an allowed
/// call, its only entry for a refusal.
fn by_request<'a>(entries: &'a [Value], id: &str) -> &'a Value {
    let hits: Vec<&Value> = entries.iter().filter(|e| e["request_id"] == id).collect();
    if hits.len() == 2 {
        let (intent, outcome) = (hits[0], hits[1]);
        assert_eq!(intent["phase"], "intent", "{intent}");
        assert_eq!(intent["outcome"], Value::Null, "{intent}");
        assert_eq!(outcome["phase"], "outcome", "{outcome}");
        for same in ["decision", "tool", "resource", "token_id", "chain"] {
            assert_eq!(intent[same], outcome[same], "{same}: {intent} / {outcome}");
        }
        return outcome;
    }
    assert_eq!(hits.len(), 1, "entries for {id}: {hits:?}");
    assert_eq!(hits[0]["phase"], Value::Null, "{}", hits[0]);
    hits[0]
}

#[test]
fn every_decision_is_logged_with_its_fields_and_the_chain_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("audit.log");
    let mut s = spawn(&log);
    let token = token_for(SUBJECT, Some("kv.read"), &["kv:app/*"]);

    let t = call(
        &mut s,
        "a-allow",
        "kv.read",
        json!({"path": "app/db"}),
        Some(&token),
    );
    assert!(t.starts_with("vault: "), "{t}");
    let t = call(
        &mut s,
        "a-deny",
        "kv.write",
        json!({"path": "app/db", "data": {"k": "v"}}),
        Some(&token),
    );
    assert!(t.starts_with("denied: tool not granted"), "{t}");
    let t = call(
        &mut s,
        "a-resource",
        "kv.read",
        json!({"path": "other/x"}),
        Some(&token),
    );
    assert!(t.starts_with("denied: resource not granted"), "{t}");
    let t = call(
        &mut s,
        "a-notoken",
        "kv.read",
        json!({"path": "app/db"}),
        None,
    );
    assert_eq!(t, "denied: no token");
    let t = call(
        &mut s,
        "a-invalid",
        "kv.read",
        json!({"path": "../agentB/x"}),
        Some(&token),
    );
    assert!(t.starts_with("invalid arguments: "), "{t}");
    assert_eq!(s.close(), Some(0));

    let text = std::fs::read_to_string(&log).expect("audit log");
    let all = entries(&text);
    assert_eq!(all.len(), 6, "{text}");
    for e in &all {
        for field in [
            "ts",
            "subject",
            "tool",
            "resource",
            "decision",
            "reason",
            "token_id",
            "request_id",
            "phase",
            "chain",
            "seq",
            "prev",
            "hash",
        ] {
            assert!(e.get(field).is_some(), "no {field} in {e}");
        }
        assert_eq!(e["subject"], SUBJECT);
        assert!(e["ts"].as_f64().is_some_and(|t| t > 1.7e9), "{e}");
    }

    let allow = by_request(&all, "a-allow");
    assert_eq!(allow["decision"], "allow");
    assert_eq!(allow["tool"], "kv.read");
    assert_eq!(allow["resource"], "kv:app/db");
    assert_eq!(allow["reason"], Value::Null);
    assert_eq!(allow["token_id"], json!(last_revocation_id(&token)));
    assert_eq!(allow["outcome"], "error"); // Vault is down
    assert!(allow["backend_ms"].as_f64().is_some(), "{allow}");

    let deny = by_request(&all, "a-deny");
    assert_eq!(
        (&deny["decision"], &deny["tool"], &deny["resource"]),
        (&json!("deny"), &json!("kv.write"), &json!("kv:app/db"))
    );
    assert!(deny["reason"]
        .as_str()
        .unwrap_or_default()
        .starts_with("tool not granted"));

    let res = by_request(&all, "a-resource");
    assert_eq!(res["decision"], "deny");
    assert!(res["reason"]
        .as_str()
        .unwrap_or_default()
        .starts_with("resource not granted"));

    let none = by_request(&all, "a-notoken");
    assert_eq!(
        (&none["decision"], &none["reason"]),
        (&json!("deny"), &json!("no token"))
    );

    let invalid = by_request(&all, "a-invalid");
    assert_eq!(invalid["decision"], "invalid");
    assert!(
        invalid["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("path"),
        "{invalid}"
    );

    // Never the token.
    assert!(!text.contains(&token), "the token is in the audit log");
    assert!(!text.contains(&token[token.len() / 2..token.len() / 2 + 16]));

    assert_eq!(verify_chain(&text), Ok(6));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&log).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "audit log mode {mode:o}");
    }
}

#[test]
fn edits_deletions_and_cuts_break_the_chain_and_restarts_continue_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("audit.log");
    let token = token_for(SUBJECT, Some("kv.read"), &[]);
    for round in 0..2 {
        // A second process appends to the same file and continues the chain.
        let mut s = spawn(&log);
        for i in 0..3 {
            call(
                &mut s,
                &format!("r{round}-{i}"),
                "kv.read",
                json!({"path": format!("p{i}")}),
                Some(&token),
            );
        }
        call(
            &mut s,
            &format!("r{round}-deny"),
            "kv.list",
            json!({}),
            Some(&token),
        );
        assert_eq!(s.close(), Some(0));
    }
    let text = std::fs::read_to_string(&log).expect("audit log");
    // Per process: three reads (intent + outcome each) and a denial.
    assert_eq!(verify_chain(&text), Ok(14));
    let lines: Vec<&str> = text.lines().collect();

    // Rewriting the decision of the seventh entry (a denial), as valid JSON.
    let mut e: Value = serde_json::from_str(lines[6]).expect("json");
    assert_eq!(e["decision"], "deny", "{e}");
    e["decision"] = json!("allow");
    let line7 = e.to_string();
    let mut edited = lines.clone();
    edited[6] = &line7;
    let (line, why) = verify_chain(&edited.join("\n")).expect_err("edit not detected");
    assert_eq!(line, 7, "{why}");
    // Changing nothing but the timestamp of the third entry.
    let mut e: Value = serde_json::from_str(lines[2]).expect("json");
    e["ts"] = json!(1);
    let mut retimed = lines.clone();
    let line3 = e.to_string();
    retimed[2] = &line3;
    assert_eq!(
        verify_chain(&retimed.join("\n"))
            .expect_err("edit not detected")
            .0,
        3
    );
    // Deleting an entry in the middle.
    let mut cut = lines.clone();
    cut.remove(5);
    assert_eq!(
        verify_chain(&cut.join("\n"))
            .expect_err("deletion not detected")
            .0,
        6
    );
    // Swapping two entries.
    let mut swapped = lines.clone();
    swapped.swap(1, 2);
    assert!(verify_chain(&swapped.join("\n")).is_err());
    // Cutting the head.
    assert_eq!(
        verify_chain(&lines[2..].join("\n"))
            .expect_err("cut not detected")
            .0,
        1
    );
    // A forged line appended at the end with a made-up hash.
    let mut forged: Value = serde_json::from_str(lines[13]).expect("json");
    forged["prev"] = forged["hash"].clone();
    forged["tool"] = json!("kv.destroy");
    let forged = format!("{text}{forged}\n");
    assert_eq!(
        verify_chain(&forged).expect_err("forgery not detected").0,
        15
    );
}

/// `mcpvault audit verify FILE` on a real log: exit 0 and the entry count when intact,
/// exit 1 naming the line when edited, exit 2 when unreadable.
#[test]
fn the_cli_verifies_a_real_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("audit.log");
    let mut s = spawn(&log);
    let token = token_for(SUBJECT, Some("kv.read"), &[]);
    call(&mut s, "c1", "kv.read", json!({"path": "a"}), Some(&token));
    call(
        &mut s,
        "c2",
        "kv.write",
        json!({"path": "a", "data": {}}),
        Some(&token),
    );
    call(
        &mut s,
        "c3",
        "kv.read",
        json!({"path": "../a"}),
        Some(&token),
    );
    assert_eq!(s.close(), Some(0));

    let verify = |path: &Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcpvault"))
            .args(["audit", "verify"])
            .arg(path)
            .output()
            .expect("run mcpvault");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, stdout, _) = verify(&log);
    assert_eq!(code, Some(0), "{stdout}");
    // c1 allowed (intent + outcome), c2 denied, c3 invalid.
    assert!(stdout.contains("4 entries"), "{stdout}");

    let text = std::fs::read_to_string(&log).expect("read");
    let edited = dir.path().join("edited.log");
    std::fs::write(&edited, text.replacen("kv.write", "kv.read", 1)).expect("write");
    let (code, _, stderr) = verify(&edited);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");

    let (code, _, stderr) = verify(&dir.path().join("missing.log"));
    assert_eq!(code, Some(2), "{stderr}");
}
