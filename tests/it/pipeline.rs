//! The request pipeline as an agent host and an operator see it: the audit log
//! written ahead and failing closed, per-process chains, signed checkpoints, the tool
//! surface a process registers, the `_meta` token keys, and configuration problems
//! reported all at once. Backends here are stand-ins that count connections
//! (`Blackhole`), so "nothing reached the backend" is observed, not assumed.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::harness::{dead_url, poll_until, test_key, text, token_for, Blackhole, Server};
use mcpvault::audit::{verify, verify_chain};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

const SUBJECT: &str = "agentA";

fn spawn(extra: &[(&str, &str)]) -> Server {
    let mut s = Server::spawn_bare(SUBJECT, extra);
    s.initialize();
    s
}

fn entries(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

fn cli(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mcpvault"))
        .args(args)
        .output()
        .expect("run mcpvault");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[cfg(target_os = "linux")]
#[test]
fn a_call_that_cannot_be_audited_never_reaches_the_backend() {
    let vault = Blackhole::start();
    let url = vault.url();
    let mut s = spawn(&[
        ("VAULT_ADDR", url.as_str()),
        ("VAULT_TOKEN", "t"),
        ("MCPVAULT_AUDIT_LOG", "/dev/full"),
    ]);
    let token = token_for(SUBJECT, Some("kv.read"), &[]);
    let e = s.call_err("kv.read", json!({"path": "app/db"}), Some(&token));
    assert_eq!(e, "denied: audit log unavailable");
    assert_eq!(vault.accepted(), 0, "a backend was contacted");
    // The process keeps serving (and keeps refusing) and says why on stderr.
    let e = s.call_err("kv.read", json!({"path": "app/db"}), Some(&token));
    assert_eq!(e, "denied: audit log unavailable");
    assert_eq!(vault.accepted(), 0);
    assert!(
        s.stderr().contains("audit log unavailable"),
        "{}",
        s.stderr()
    );
}

#[test]
fn a_process_killed_mid_call_leaves_the_intent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("audit.log");
    let vault = Blackhole::start(); // accepts, never answers: the call hangs
    let url = vault.url();
    let mut s = spawn(&[
        ("VAULT_ADDR", url.as_str()),
        ("VAULT_TOKEN", "t"),
        ("VAULT_TIMEOUT_SECS", "60"),
        ("MCPVAULT_AUDIT_LOG", log.to_str().expect("utf-8")),
    ]);
    let token = token_for(SUBJECT, Some("kv.read"), &[]);
    s.send_raw(
        &json!({"jsonrpc": "2.0", "id": "hung", "method": "tools/call",
                "params": {"name": "kv.read", "arguments": {"path": "app/db"},
                           "_meta": {"token": token}}})
        .to_string(),
    );
    // The backend is contacted only after the intent is on disk.
    poll_until(Duration::from_secs(20), || {
        (vault.accepted() > 0).then_some(())
    })
    .expect("the call never reached the stand-in backend");
    let before_kill = entries(&log);
    let status = Command::new("kill")
        .args(["-KILL", &s.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let after = entries(&log);
    assert_eq!(before_kill, after);
    let mine: Vec<&Value> = after.iter().filter(|e| e["request_id"] == "hung").collect();
    assert_eq!(mine.len(), 1, "{after:?}");
    assert_eq!(
        (
            &mine[0]["decision"],
            &mine[0]["phase"],
            &mine[0]["resource"]
        ),
        (&json!("allow"), &json!("intent"), &json!("kv:app/db"))
    );
    let text = std::fs::read_to_string(&log).expect("log");
    assert_eq!(verify_chain(&text), Ok(1));
}

#[test]
fn two_processes_append_to_one_file_and_both_chains_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("audit.log");
    let dead = dead_url();
    let env = [
        ("VAULT_ADDR", dead.as_str()),
        ("VAULT_TOKEN", "t"),
        ("MCPVAULT_AUDIT_LOG", log.to_str().expect("utf-8")),
        ("MCPVAULT_AUDIT_SYNC", "batch"),
    ];
    let mut a = spawn(&env);
    let mut b = spawn(&env);
    let token = token_for(SUBJECT, Some("kv.read"), &["kv:app/*"]);
    for i in 0..10 {
        // Allowed (fails at the dead backend: intent + outcome) and denied calls.
        a.call("kv.read", json!({"path": format!("app/{i}")}), Some(&token));
        b.call(
            "kv.read",
            json!({"path": format!("other/{i}")}),
            Some(&token),
        );
        b.call("kv.read", json!({"path": format!("app/{i}")}), Some(&token));
    }
    assert_eq!(a.close(), Some(0));
    assert_eq!(b.close(), Some(0));
    let text = std::fs::read_to_string(&log).expect("log");
    let r = verify(&text, None).unwrap_or_else(|(l, why)| panic!("line {l}: {why}"));
    assert_eq!((r.entries, r.chains), (50, 2), "{r:?}");
}

#[test]
fn a_failed_resource_read_is_audited_with_its_real_outcome() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("audit.log");
    let dead = dead_url();
    let mut s = spawn(&[
        ("VAULT_ADDR", dead.as_str()),
        ("VAULT_TOKEN", "t"),
        ("MCPVAULT_AUDIT_LOG", log.to_str().expect("utf-8")),
    ]);
    let token = token_for(SUBJECT, Some("kv.read"), &[]);
    let r = s.request(
        "resources/read",
        json!({"uri": "kv://agentA/app/db", "_meta": {"token": token}}),
    );
    let msg = r["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.starts_with("vault: kv.read: "), "{r}");
    assert_eq!(s.close(), Some(0));
    let all = entries(&log);
    let last = all.last().expect("an entry");
    assert_eq!(
        (&last["tool"], &last["phase"], &last["outcome"]),
        (&json!("kv.read"), &json!("outcome"), &json!("error")),
        "{all:?}"
    );
    assert!(last["backend_ms"].as_f64().is_some(), "{last}");
}

/// The attack the signatures exist for: edit an entry and recompute every hash (and
/// checkpoint head) after it, as someone with write access to the file would.
fn rewrite_consistently(text: &str, edit: impl Fn(&mut Map<String, Value>) -> bool) -> String {
    let mut prev = "0".repeat(64);
    let mut edited = false;
    let mut out = String::new();
    for line in text.lines() {
        let mut e: Map<String, Value> = serde_json::from_str(line).expect("json");
        if !edited {
            edited = edit(&mut e);
        }
        e.remove("hash");
        e.insert("prev".into(), Value::from(prev.clone()));
        if e["type"] == "checkpoint" {
            e.insert("head".into(), Value::from(prev.clone()));
        }
        let mut h = Sha256::new();
        h.update(prev.as_bytes());
        h.update(Value::Object(e.clone()).to_string().as_bytes());
        prev = hex::encode(h.finalize());
        e.insert("hash".into(), Value::from(prev.clone()));
        out.push_str(&Value::Object(e).to_string());
        out.push('\n');
    }
    assert!(edited, "nothing to edit");
    out
}

#[test]
fn signed_checkpoints_catch_a_rewritten_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("audit.log");
    let key = dir.path().join("audit-key.json");
    let key_s = key.to_str().expect("utf-8");
    let (code, pubkey, err) = cli(&["keygen", "--output", key_s]);
    assert_eq!(code, Some(0), "{err}");
    let pubkey = pubkey.trim().to_string();
    let dead = dead_url();
    let mut s = spawn(&[
        ("VAULT_ADDR", dead.as_str()),
        ("VAULT_TOKEN", "t"),
        ("MCPVAULT_AUDIT_LOG", log.to_str().expect("utf-8")),
        ("MCPVAULT_AUDIT_KEY", key_s),
    ]);
    let token = token_for(SUBJECT, Some("kv.read"), &[]);
    s.call("kv.read", json!({"path": "a"}), Some(&token));
    s.call("kv.write", json!({"path": "a", "data": {}}), Some(&token));
    // Exit signs what came since the last checkpoint.
    assert_eq!(s.close(), Some(0));
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(!text.contains(&test_key().private_key));
    let log_s = log.to_str().expect("utf-8");

    let (code, out, err) = cli(&["audit", "verify", log_s, "--pubkey", &pubkey]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("1 signed checkpoint(s) verified"), "{out}");
    assert!(out.contains("0 entries after the last checkpoint"), "{out}");
    let (code, _, err) = cli(&[
        "audit",
        "verify",
        log_s,
        "--pubkey",
        &pubkey,
        "--require-signed",
    ]);
    assert_eq!(code, Some(0), "{err}");

    // Another key does not verify it.
    let other = dir.path().join("other.json");
    let (_, other_pub, _) = cli(&["keygen", "--output", other.to_str().expect("utf-8")]);
    let (code, _, err) = cli(&["audit", "verify", log_s, "--pubkey", other_pub.trim()]);
    assert_eq!(code, Some(1), "{err}");

    // Flip the denial to an allow and recompute every hash: the chain alone passes
    // (so the rewrite is consistent), the signature does not.
    let forged = rewrite_consistently(&text, |e| {
        if e["decision"] == "deny" {
            e.insert("decision".into(), json!("allow"));
            true
        } else {
            false
        }
    });
    let forged_path = dir.path().join("forged.log");
    std::fs::write(&forged_path, forged).expect("write");
    let forged_s = forged_path.to_str().expect("utf-8");
    let (code, out, err) = cli(&["audit", "verify", forged_s]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, _, err) = cli(&["audit", "verify", forged_s, "--pubkey", &pubkey]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("signature"), "{err}");

    // Entries after the last checkpoint (a process without the key appended them)
    // are reported, and refused with --require-signed.
    let mut s = spawn(&[
        ("VAULT_ADDR", dead.as_str()),
        ("VAULT_TOKEN", "t"),
        ("MCPVAULT_AUDIT_LOG", log_s),
    ]);
    s.call("kv.read", json!({"path": "b"}), Some(&token));
    assert_eq!(s.close(), Some(0)); // no key: nothing signed
    let (code, out, _) = cli(&["audit", "verify", log_s, "--pubkey", &pubkey]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("2 entries after the last checkpoint"), "{out}");
    let (code, _, err) = cli(&[
        "audit",
        "verify",
        log_s,
        "--pubkey",
        &pubkey,
        "--require-signed",
    ]);
    assert_eq!(code, Some(1), "{err}");
}

fn tool_names(s: &mut Server) -> Vec<String> {
    let r = s.request("tools/list", json!({}));
    let mut names: Vec<String> = r["result"]["tools"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn read_only_and_allow_listed_processes_register_only_those_tools() {
    let dead = dead_url();
    let mut s = spawn(&[("VAULT_ADDR", dead.as_str()), ("MCPVAULT_READ_ONLY", "1")]);
    let names = tool_names(&mut s);
    let want = [
        "kms.decrypt",
        "kms.verify",
        "kv.list",
        "kv.metadata",
        "kv.read",
        "transit.decrypt",
        "transit.encrypt",
        "transit.random",
        "transit.verify",
    ];
    assert_eq!(names, want);
    let token = token_for(SUBJECT, None, &[]);
    let r = s.request(
        "tools/call",
        json!({"name": "kv.write", "arguments": {"path": "a", "data": {}},
               "_meta": {"token": token}}),
    );
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let msg = r["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("unknown tool"), "{r}");

    let mut s = spawn(&[
        ("VAULT_ADDR", dead.as_str()),
        ("MCPVAULT_TOOLS", "kv.read,transit.*"),
    ]);
    let names = tool_names(&mut s);
    assert!(names.contains(&"kv.read".to_string()), "{names:?}");
    assert!(names
        .iter()
        .all(|n| n == "kv.read" || n.starts_with("transit.")));
    assert_eq!(names.len(), 7, "{names:?}");
}

#[test]
fn a_default_token_narrows_the_tool_list() {
    let dead = dead_url();
    let token = token_for(SUBJECT, Some("kv.read,kv.list"), &[]);
    let mut s = spawn(&[("VAULT_ADDR", dead.as_str()), ("MCPVAULT_TOKEN", &token)]);
    assert_eq!(tool_names(&mut s), ["kv.list", "kv.read"]);
    // Without a default token every registered tool is listed.
    let mut s = spawn(&[("VAULT_ADDR", dead.as_str())]);
    assert!(tool_names(&mut s).len() >= 20);
}

#[test]
fn the_prefixed_meta_key_is_accepted_and_conflicting_tokens_refused() {
    let vault = Blackhole::start();
    let url = vault.url();
    let mut s = spawn(&[
        ("VAULT_ADDR", url.as_str()),
        ("VAULT_TOKEN", "t"),
        ("VAULT_TIMEOUT_SECS", "1"),
    ]);
    let token = token_for(SUBJECT, Some("kv.list"), &[]);
    let other = token_for(SUBJECT, Some("kv.read"), &[]);
    let call = |s: &mut Server, meta: Value| {
        let r = s.request(
            "tools/call",
            json!({"name": "kv.list", "arguments": {}, "_meta": meta}),
        );
        text(&r["result"])
    };
    // Accepted: it reaches the (hung) backend and times out there.
    let t = call(&mut s, json!({"dev.mcpvault/token": token}));
    assert!(t.starts_with("vault: kv.list: "), "{t}");
    let reached = vault.accepted();
    assert!(reached > 0);
    let t = call(&mut s, json!({"dev.mcpvault/token": token, "token": other}));
    assert_eq!(t, "denied: conflicting tokens");
    assert_eq!(
        vault.accepted(),
        reached,
        "a refused call reached the backend"
    );
    let t = call(&mut s, json!({"dev.mcpvault/token": token, "token": token}));
    assert!(t.starts_with("vault: kv.list: "), "{t}");
}

#[test]
fn every_configuration_problem_is_reported_at_once() {
    let out = Command::new(env!("CARGO_BIN_EXE_mcpvault-stdio"))
        .env_clear()
        .env("SUBJECT", "a/b")
        .env("KV_MOUNT", "../x")
        .env("MCPVAULT_RATE_LIMIT", "fast")
        .env("MCPVAULT_AUDIT_SYNC", "sometimes")
        .output()
        .expect("run mcpvault-stdio");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "stdout is the protocol");
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "SUBJECT \"a/b\" is invalid",
        "MCPVAULT_PUBLIC_KEY or MCPVAULT_PUBLIC_KEY_FILE is required",
        "KV_MOUNT",
        "MCPVAULT_RATE_LIMIT",
        "MCPVAULT_AUDIT_SYNC",
    ] {
        assert!(err.contains(want), "{want} missing from:\n{err}");
    }
}
