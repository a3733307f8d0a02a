//! Every denial reason through the real server, path attacks, and proof that a
//! denied call never reaches Vault: OpenBao's file audit log counts every request
//! it receives; the count must not move over the denied calls, and must move for an
//! allowed one (so the check can fail).
//!
//! The tests of this file share one lock: the audit count is global to the stack,
//! and a parallel test's requests would make it move.

use std::sync::Mutex;
use std::time::Duration;

use crate::devstack::{unique, vault_audit_requests};
use crate::harness::{test_key, token_for, Server};
use mcpvault::token::{attenuate, generate_keypair, inspect, mint, AttenuateSpec, MintSpec};
use serde_json::{json, Value};

static AUDIT: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    AUDIT.lock().unwrap_or_else(|p| p.into_inner())
}

/// OpenBao writes the audit entry before it answers, but give the file a moment.
fn audit_count() -> usize {
    std::thread::sleep(Duration::from_millis(50));
    vault_audit_requests()
}

fn mint_for(subject: &str, f: impl FnOnce(&mut MintSpec)) -> String {
    let mut spec = MintSpec {
        subject: Some(subject.into()),
        ..MintSpec::default()
    };
    f(&mut spec);
    mint(&test_key(), &spec).expect("mint")
}

#[test]
fn every_denial_reason_and_none_reaches_vault() {
    let _g = lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let revocations = dir.path().join("revoked.txt");
    std::fs::write(&revocations, "").expect("revocation file");
    let rev = revocations.to_str().expect("utf-8 path").to_string();
    let mut s = Server::start("agentA", &[("MCPVAULT_REVOCATION_FILE", &rev)]);
    let good = token_for("agentA", None, &[]);
    let path = format!("{}/seed", unique("deny"));
    // Warm up: the first allowed call also looks the Vault token up.
    s.call_ok("kv.write", json!({"path": path, "data": {"k": "v"}}), &good);

    // Tokens for each reason, built before counting.
    let other_key = generate_keypair();
    let forged = mint(
        &other_key,
        &MintSpec {
            subject: Some("agentA".into()),
            ..MintSpec::default()
        },
    )
    .expect("mint with another key");
    let short = mint_for("agentA", |m| m.ttl = Duration::from_secs(1));
    let revoked = token_for("agentA", None, &[]);
    let id = inspect(&revoked)
        .expect("inspect")
        .revocation_ids
        .last()
        .cloned()
        .expect("revocation id");
    std::fs::write(&revocations, format!("{id}\n")).expect("revoke");
    let agent_b = token_for("agentB", None, &[]);
    let list_only = token_for("agentA", Some("kv.list"), &[]);
    let elsewhere = token_for("agentA", None, &["kv:elsewhere/*"]);
    let app_keys = token_for("agentA", None, &["transit:app-*", "db:readonly"]);
    let mut deep = token_for("agentA", None, &[]);
    for _ in 0..4 {
        // Minted with the default max depth 3: the fourth block is one too many.
        deep = attenuate(&deep, None, &AttenuateSpec::default()).expect("attenuate");
    }
    std::thread::sleep(Duration::from_millis(2100));

    let before = audit_count();
    let read = json!({"path": path});
    let cases: Vec<(&str, Value, Option<&str>, &str)> = vec![
        ("kv.read", read.clone(), None, "denied: no token"),
        (
            "kv.read",
            read.clone(),
            Some("not-a-token"),
            "denied: malformed token",
        ),
        (
            "kv.read",
            read.clone(),
            Some(&forged),
            "denied: bad signature",
        ),
        ("kv.read", read.clone(), Some(&short), "denied: expired"),
        ("kv.read", read.clone(), Some(&revoked), "denied: revoked"),
        (
            "kv.read",
            read.clone(),
            Some(&agent_b),
            "denied: wrong subject",
        ),
        (
            "kv.read",
            read.clone(),
            Some(&list_only),
            "denied: tool not granted",
        ),
        (
            "kv.write",
            json!({"path": path, "data": {}}),
            Some(&list_only),
            "denied: tool not granted",
        ),
        (
            "kv.read",
            read.clone(),
            Some(&elsewhere),
            "denied: resource not granted",
        ),
        (
            "kv.list",
            json!({}),
            Some(&elsewhere),
            "denied: resource not granted",
        ),
        (
            "kv.read",
            read.clone(),
            Some(&deep),
            "denied: delegation too deep",
        ),
        (
            "transit.encrypt",
            json!({"key": "other-aes", "plaintext": "aGk="}),
            Some(&app_keys),
            "denied: resource not granted",
        ),
        (
            "db.issue_creds",
            json!({"role": "app"}),
            Some(&app_keys),
            "denied: resource not granted",
        ),
        (
            "db.revoke",
            json!({"lease_id": "database/creds/app/abc123"}),
            Some(&app_keys),
            "denied: resource not granted",
        ),
        (
            "ssh.sign",
            json!({"role": "ca-user", "public_key": "ssh-ed25519 AAAA"}),
            Some(&list_only),
            "denied: tool not granted",
        ),
    ];
    for (tool, args, token, want) in &cases {
        let e = s.call_err(tool, args.clone(), *token);
        assert!(
            e.starts_with(want),
            "{tool} {args}: want {want:?}, got {e:?}"
        );
    }

    // Path and lease attacks are refused before any I/O, whatever the token allows.
    let long = "a/".repeat(2048) + "b";
    let attacks = [
        "../agentB/x",
        "a/../../agentB/x",
        "%2e%2e/agentB/x",
        "..%2fagentB",
        "/etc/passwd",
        "/mcp/agentB/x",
        "a\u{0}b",
        "a\nb",
        "a//b",
        "./a",
        "a/",
        "a?version=1",
        "a#b",
        "a\\..\\b",
        long.as_str(),
    ];
    for p in attacks {
        for tool in ["kv.read", "kv.write", "kv.delete"] {
            let e = s.call_err(tool, json!({"path": p, "data": {}}), Some(&good));
            assert!(
                e.starts_with("invalid arguments: invalid `path`"),
                "{tool} {p:?}: {e}"
            );
        }
    }
    for prefix in ["../", "../agentB/", "/", "%2e%2e/"] {
        let e = s.call_err("kv.list", json!({"prefix": prefix}), Some(&good));
        assert!(e.starts_with("invalid arguments"), "{prefix:?}: {e}");
    }
    for lease in [
        "sys/leases/x",
        "auth/token/create",
        "database/creds/readonly",
        "database/creds/../creds/app/x",
        "secret/data/mcp/agentB/x",
    ] {
        for tool in ["db.renew", "db.revoke"] {
            let e = s.call_err(tool, json!({"lease_id": lease}), Some(&good));
            assert!(e.starts_with("invalid arguments"), "{tool} {lease:?}: {e}");
        }
    }
    for key in ["../keys/x", "a/b", ""] {
        let e = s.call_err(
            "transit.encrypt",
            json!({"key": key, "plaintext": "aGk="}),
            Some(&good),
        );
        assert!(e.starts_with("invalid arguments"), "{key:?}: {e}");
    }
    // Resources and prompts pass the same gate.
    let r = s.request(
        "resources/read",
        json!({"uri": "kv://agentB/x", "_meta": {"token": good}}),
    );
    assert!(
        r["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("denied: ")),
        "{r}"
    );
    let r = s.request(
        "resources/read",
        json!({"uri": format!("kv://agentA/{path}")}),
    );
    assert_eq!(r["error"]["message"], "denied: no token", "{r}");
    let r = s.request(
        "prompts/get",
        json!({"name": "kv_read", "arguments": {"path": path}, "_meta": {"token": revoked}}),
    );
    assert_eq!(r["error"]["message"], "denied: revoked", "{r}");

    let after_denials = audit_count();
    assert_eq!(
        after_denials,
        before,
        "a denied or invalid call reached Vault ({} audit requests)",
        after_denials - before
    );
    // The same read with a good token does reach Vault: the count can move.
    let ok = s.call_ok("kv.read", read, &good);
    assert_eq!(ok["data"], json!({"k": "v"}));
    assert!(
        audit_count() > after_denials,
        "allowed call not seen in the audit log"
    );
}

#[test]
fn default_token_from_env_and_revocation_takes_effect_live() {
    let _g = lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let revocations = dir.path().join("revoked.txt");
    std::fs::write(&revocations, "").expect("revocation file");
    let tok = token_for("agentA", Some("kv.*"), &[]);
    let mut s = Server::start(
        "agentA",
        &[
            ("MCPVAULT_TOKEN", &tok),
            (
                "MCPVAULT_REVOCATION_FILE",
                revocations.to_str().expect("path"),
            ),
        ],
    );
    let path = format!("{}/x", unique("deftok"));
    // No _meta: the server's MCPVAULT_TOKEN applies.
    let r = s.call("kv.write", json!({"path": path, "data": {"a": 1}}), None);
    assert_ne!(r["isError"], json!(true), "{r}");
    let e = s.call_err("transit.random", json!({}), None);
    assert!(e.starts_with("denied: tool not granted"), "{e}");
    let id = inspect(&tok).expect("inspect").revocation_ids[0].clone();
    std::fs::write(&revocations, format!("{id}\n")).expect("revoke");
    // The server re-stats the list at most once a second.
    std::thread::sleep(Duration::from_millis(1100));
    let before = audit_count();
    let e = s.call_err("kv.read", json!({"path": path}), None);
    assert_eq!(e, "denied: revoked");
    assert_eq!(audit_count(), before);
}
