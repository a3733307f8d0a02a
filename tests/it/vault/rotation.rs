//! Secrets the agent uses without seeing them, against the dev stack's OpenBao:
//! `kv.metadata` (ages and versions, never a value), `kv.generate` (rotation: a new
//! random value nobody is shown, the other fields kept, check-and-set) and response
//! wrapping (`wrap_ttl` on kv.read and db.issue_creds: a single-use Vault wrapping
//! token, unwrapped here by curl as the consumer would).

use std::time::Duration;

use crate::devstack::{bao, psql_login, stack_var, unique, BaoApi};
use crate::harness::{sealed_token_for, test_key, token_for, Server};
use mcpvault::token::{mint, MintSpec, ResourcePattern};
use serde_json::{json, Value};

const HANDLE: &str = "mcpvault:handle:";

fn kv(path: &str) -> String {
    format!("secret/data/mcp/agentA/{path}")
}

/// A token for agentA that expires in `secs` and reveals `reveal` (`KIND:PATTERN`).
fn short_token(secs: u64, reveal: &[&str]) -> String {
    let reveal = reveal
        .iter()
        .map(|r| r.parse::<ResourcePattern>().expect("pattern"))
        .collect();
    let spec = MintSpec {
        subject: Some("agentA".into()),
        ttl: Duration::from_secs(secs),
        reveal,
        ..MintSpec::default()
    };
    mint(&test_key(), &spec).expect("mint")
}

/// `sys/wrapping/unwrap` with the wrapping token itself, as a consumer outside the
/// model does: (status, body).
fn unwrap(wrap_token: &str) -> (u16, Value) {
    let api = BaoApi {
        addr: stack_var("VAULT_ADDR"),
        token: wrap_token.to_string(),
        ca: None,
        max_secs: 30,
    };
    api.api("POST", "sys/wrapping/unwrap", None)
}

#[test]
fn kv_metadata_shows_versions_and_ages_never_a_value() {
    let mut s = Server::start("agentA", &[]);
    let tok = token_for("agentA", None, &[]);
    let path = format!("{}/db", unique("meta"));
    let secret = format!("meta-value-{}", unique("v"));
    s.call_ok(
        "kv.write",
        json!({"path": path, "data": {"password": "first"}}),
        &tok,
    );
    s.call_ok(
        "kv.write",
        json!({"path": path, "data": {"password": secret}}),
        &tok,
    );
    let (code, r) = bao(
        "POST",
        &format!("secret/metadata/mcp/agentA/{path}"),
        Some(&json!({"custom_metadata": {"owner": "team-a"}})),
    );
    assert!(code == 200 || code == 204, "{r}");

    let r = s.call(
        "kv.metadata",
        json!({"path": path, "max_age_days": 30}),
        Some(&tok),
    );
    assert_ne!(r["isError"], json!(true), "{r}");
    assert!(!r.to_string().contains(&secret), "a value in {r}");
    assert!(!r.to_string().contains("first"), "a value in {r}");
    let m = &r["structuredContent"];
    assert_eq!(m["path"], json!(path));
    assert_eq!(m["current_version"], 2, "{m}");
    assert_eq!(m["custom_metadata"], json!({"owner": "team-a"}));
    assert_eq!(m["rotation_due"], false, "{m}");
    let age = m["age_seconds"].as_u64().expect("age_seconds");
    assert!(age < 600, "a version written just now is {age} s old");
    let versions = m["versions"].as_object().expect("versions");
    assert_eq!(versions.keys().collect::<Vec<_>>(), ["1", "2"], "{m}");
    assert!(versions["2"]["created_time"].is_string(), "{m}");
    assert_eq!(versions["2"]["destroyed"], false);
    assert!(
        m["created_time"].is_string() && m["updated_time"].is_string(),
        "{m}"
    );

    // A policy of 0 days: always due. Without a policy: no verdict.
    let m = s.call_ok(
        "kv.metadata",
        json!({"path": path, "max_age_days": 0}),
        &tok,
    );
    assert_eq!(m["rotation_due"], true, "{m}");
    let m = s.call_ok("kv.metadata", json!({"path": path}), &tok);
    assert_eq!(m.get("rotation_due"), None, "{m}");

    // Deleted and destroyed versions are reported as such.
    s.call_ok("kv.delete", json!({"path": path}), &tok);
    s.call_ok("kv.destroy", json!({"path": path, "versions": [1]}), &tok);
    let m = s.call_ok("kv.metadata", json!({"path": path}), &tok);
    assert!(m["versions"]["2"]["deletion_time"].is_string(), "{m}");
    assert_eq!(m["versions"]["1"]["destroyed"], true, "{m}");
    assert_eq!(m["versions"]["1"]["deletion_time"], Value::Null, "{m}");

    let e = s.call_err(
        "kv.metadata",
        json!({"path": format!("{path}-none")}),
        Some(&tok),
    );
    assert!(e.starts_with("vault: kv.metadata: no secret at"), "{e}");
    let e = s.call_err(
        "kv.metadata",
        json!({"path": path, "max_age_days": 36501}),
        Some(&tok),
    );
    assert!(
        e.starts_with("invalid arguments: invalid `max_age_days`"),
        "{e}"
    );
    // The scope is the path: a token for another path is refused.
    let other = token_for("agentA", None, &["kv:elsewhere/*"]);
    let e = s.call_err("kv.metadata", json!({"path": path}), Some(&other));
    assert!(e.starts_with("denied: resource not granted"), "{e}");
    assert!(!s.stderr().contains(&secret));
}

#[test]
fn kv_generate_rotates_one_field_and_keeps_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = dir.path().join("audit.log");
    let audit_s = audit.to_str().expect("utf-8").to_string();
    let mut s = Server::start("agentA", &[("MCPVAULT_AUDIT_LOG", audit_s.as_str())]);
    let revealing = token_for("agentA", None, &[]);
    let sealed = sealed_token_for("agentA", None, &[]);
    let path = format!("{}/db", unique("gen"));
    let old = format!("old-{}", unique("pw"));
    s.call_ok(
        "kv.write",
        json!({"path": path, "data": {"user": "app", "password": old, "port": 5432}}),
        &revealing,
    );

    // Revealing token: the new value in clear, and it is what Vault now holds.
    let g = s.call_ok(
        "kv.generate",
        json!({"path": path, "field": "password"}),
        &revealing,
    );
    assert_eq!(g["path"], json!(path));
    assert_eq!(g["field"], "password");
    assert_eq!(g["version"], 2, "{g}");
    let v1 = g["value"].as_str().expect("value").to_string();
    assert_eq!(v1.len(), 32, "default length");
    assert!(v1.bytes().all(|c| c.is_ascii_alphanumeric()), "{v1}");
    let (_, raw) = bao("GET", &kv(&path), None);
    assert_eq!(
        raw["data"]["data"],
        json!({"user": "app", "password": v1, "port": 5432}),
        "other fields kept, types too"
    );
    assert_eq!(raw["data"]["metadata"]["version"], 2);

    // The check-and-set went with the write: Vault's audit log shows the version read.
    let audit_bao = std::fs::read_to_string(stack_var("BAO_AUDIT_LOG")).expect("bao audit");
    let full = kv(&path);
    let cas_sent = audit_bao
        .lines()
        .filter(|l| l.contains("\"type\":\"request\""))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|e| {
            e["request"]["path"] == json!(full)
                && e["request"]["operation"] == "update"
                && e["request"]["data"]["options"]["cas"] == 1
        });
    assert!(
        cas_sent,
        "no write of {full} with cas 1 in OpenBao's audit log"
    );

    // Sealed token: a handle; the value, read with a revealing token, is 64 hex.
    let g = s.call_ok(
        "kv.generate",
        json!({"path": path, "field": "password", "length": 64, "charset": "hex"}),
        &sealed,
    );
    let h = g["value"].as_str().expect("value");
    assert!(h.starts_with(HANDLE), "{g}");
    assert_eq!(g["version"], 3);
    let r = s.call_ok("kv.read", json!({"path": path}), &revealing);
    let v2 = r["data"]["password"]
        .as_str()
        .expect("password")
        .to_string();
    assert_eq!(v2.len(), 64);
    assert!(
        v2.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
        "{v2}"
    );
    assert_eq!(r["data"]["user"], "app");
    assert!(!g.to_string().contains(&v2));

    let g = s.call_ok(
        "kv.generate",
        json!({"path": path, "field": "api_key", "length": 16, "charset": "base64url"}),
        &revealing,
    );
    let v3 = g["value"].as_str().expect("value").to_string();
    assert_eq!(v3.len(), 16);
    assert!(
        v3.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
        "{v3}"
    );
    let (_, raw) = bao("GET", &kv(&path), None);
    assert_eq!(
        raw["data"]["data"]["password"],
        json!(v2),
        "only api_key changed"
    );
    assert_eq!(raw["data"]["data"]["api_key"], json!(v3));

    // A missing secret is created with the one field.
    let fresh = format!("{}/new", unique("gen"));
    let g = s.call_ok(
        "kv.generate",
        json!({"path": fresh, "field": "token"}),
        &revealing,
    );
    assert_eq!(g["version"], 1);
    let (_, raw) = bao("GET", &kv(&fresh), None);
    assert_eq!(raw["data"]["data"], json!({"token": g["value"]}));

    // Bad arguments are refused before Vault; a deleted latest version is not
    // overwritten (its other fields would be lost).
    for (args, what) in [
        (
            json!({"path": path, "field": "p", "length": 15}),
            "`length`",
        ),
        (
            json!({"path": path, "field": "p", "length": 257}),
            "`length`",
        ),
        (json!({"path": path, "field": ""}), "`field`"),
    ] {
        let e = s.call_err("kv.generate", args, Some(&revealing));
        assert!(
            e.starts_with(&format!("invalid arguments: invalid {what}")),
            "{e}"
        );
    }
    let e = s.call_err(
        "kv.generate",
        json!({"path": path, "field": "p", "charset": "emoji"}),
        Some(&revealing),
    );
    assert!(e.contains("charset") || e.contains("emoji"), "{e}");
    s.call_ok("kv.delete", json!({"path": path}), &revealing);
    let e = s.call_err(
        "kv.generate",
        json!({"path": path, "field": "password"}),
        Some(&revealing),
    );
    assert!(e.contains("is deleted: kv.undelete versions [4]"), "{e}");
    let (_, meta) = bao("GET", &format!("secret/metadata/mcp/agentA/{path}"), None);
    assert_eq!(meta["data"]["current_version"], 4, "nothing written");

    // The rotation is on record (the pipeline's intent and outcome lines, resource
    // label and decision) and no generated value is anywhere but in results.
    let log = std::fs::read_to_string(&audit).expect("audit log");
    let rotations: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["tool"] == "kv.generate" && e["phase"] == "outcome")
        .collect();
    assert!(rotations.len() >= 4, "{log}");
    assert!(
        rotations
            .iter()
            .any(|e| e["resource"] == json!(format!("kv:{path}"))
                && e["decision"] == "allow"
                && e["outcome"] == "ok"),
        "{log}"
    );
    let stderr = s.stderr();
    for v in [&v1, &v2, &v3] {
        assert!(!log.contains(v.as_str()), "a value in the audit log");
        assert!(!stderr.contains(v.as_str()), "a value on stderr");
    }
}

/// Concurrent rotations of one secret: each either writes its own version or fails
/// cleanly with nothing written; no update is lost (versions written == successes).
#[test]
fn concurrent_generates_never_lose_an_update() {
    let mut s = Server::start("agentA", &[]);
    let tok = token_for("agentA", None, &[]);
    let path = format!("{}/db", unique("cas"));
    s.call_ok(
        "kv.write",
        json!({"path": path, "data": {"user": "app"}}),
        &tok,
    );
    let ids: Vec<Value> = (0..8)
        .map(|i| {
            s.start_request(
                "tools/call",
                json!({"name": "kv.generate",
                       "arguments": {"path": path, "field": format!("f{i}")},
                       "_meta": {"token": tok}}),
            )
        })
        .collect();
    // Replies come in any order: collect them all (`wait_for` drops the others).
    let mut replies = std::collections::HashMap::new();
    while replies.len() < ids.len() {
        let m = s.next_message();
        if ids.contains(&m["id"]) {
            replies.insert(m["id"].to_string(), m["result"].clone());
        }
    }
    let mut ok = 0;
    for r in replies.values() {
        if r["isError"] == json!(true) {
            let e = r["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(
                e.starts_with("vault: kv.generate: ")
                    && e.contains("changed while generating")
                    && e.contains("nothing was written"),
                "{e}"
            );
        } else {
            ok += 1;
        }
    }
    assert!(ok >= 1);
    let (_, raw) = bao("GET", &kv(&path), None);
    assert_eq!(raw["data"]["metadata"]["version"], 1 + ok, "{raw}");
    // The last version holds the user and the fields of the calls that won, each
    // written on top of the previous one.
    let data = raw["data"]["data"].as_object().expect("data");
    assert_eq!(data["user"], "app");
    assert_eq!(data.len(), 1 + ok as usize, "{raw}");
}

#[test]
fn wrapped_kv_read_unwraps_once_outside_the_model() {
    let mut s = Server::start("agentA", &[]);
    let revealing = token_for("agentA", None, &[]);
    let sealed = sealed_token_for("agentA", None, &[]);
    let path = format!("{}/db", unique("wrap"));
    let secret = format!("wrapped-{}", unique("v"));
    s.call_ok(
        "kv.write",
        json!({"path": path, "data": {"password": secret}}),
        &revealing,
    );

    let r = s.call(
        "kv.read",
        json!({"path": path, "wrap_ttl": 120}),
        Some(&revealing),
    );
    assert_ne!(r["isError"], json!(true), "{r}");
    assert!(!r.to_string().contains(&secret), "the secret in {r}");
    let w = &r["structuredContent"];
    assert_eq!(w.get("data"), None, "{w}");
    assert_eq!(w["wrap_ttl"], 120, "{w}");
    assert_eq!(w["creation_path"], json!(kv(&path)), "{w}");
    let token = w["wrap_token"].as_str().expect("wrap_token").to_string();
    assert!(!token.starts_with(HANDLE), "a revealing token sees it");

    let (code, body) = unwrap(&token);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["data"]["password"], json!(secret));
    let (code, _) = unwrap(&token);
    assert_ne!(code, 200, "a wrapping token unwraps once");

    // A sealed token gets a handle for the wrapping token itself.
    let w = s.call_ok("kv.read", json!({"path": path, "wrap_ttl": 60}), &sealed);
    assert!(
        w["wrap_token"]
            .as_str()
            .is_some_and(|t| t.starts_with(HANDLE)),
        "{w}"
    );

    // An older version by number; a deleted one is an error, not a wrapped 404.
    s.call_ok(
        "kv.write",
        json!({"path": path, "data": {"password": "newer"}}),
        &revealing,
    );
    let w = s.call_ok(
        "kv.read",
        json!({"path": path, "version": 1, "wrap_ttl": 60}),
        &revealing,
    );
    let (code, body) = unwrap(w["wrap_token"].as_str().expect("wrap_token"));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["data"]["password"], json!(secret));
    s.call_ok("kv.delete", json!({"path": path}), &revealing);
    let e = s.call_err(
        "kv.read",
        json!({"path": path, "wrap_ttl": 60}),
        Some(&revealing),
    );
    assert!(e.contains("version 2 is deleted"), "{e}");
    let e = s.call_err(
        "kv.read",
        json!({"path": format!("{path}-none"), "wrap_ttl": 60}),
        Some(&revealing),
    );
    assert!(e.starts_with("vault: kv.read: no secret at"), "{e}");
    for bad in [0, 86_401] {
        let e = s.call_err(
            "kv.read",
            json!({"path": path, "wrap_ttl": bad}),
            Some(&revealing),
        );
        assert!(
            e.starts_with("invalid arguments: invalid `wrap_ttl`"),
            "{e}"
        );
    }
    assert!(!s.stderr().contains(&secret));
    assert!(!s.stderr().contains(&token));
}

#[test]
fn wrap_ttl_is_cut_to_the_tokens_remaining_lifetime() {
    let mut s = Server::start("agentA", &[]);
    let tok = short_token(30, &["kv:*"]);
    let path = format!("{}/db", unique("wrapttl"));
    s.call_ok("kv.write", json!({"path": path, "data": {"k": "v"}}), &tok);
    let w = s.call_ok("kv.read", json!({"path": path, "wrap_ttl": 3600}), &tok);
    let ttl = w["wrap_ttl"].as_u64().expect("wrap_ttl");
    assert!((1..=30).contains(&ttl), "{w}");
    // Vault agrees: the wrapping token's own TTL.
    let token = w["wrap_token"].as_str().expect("wrap_token");
    let (code, look) = bao(
        "POST",
        "sys/wrapping/lookup",
        Some(&json!({"token": token})),
    );
    assert_eq!(code, 200, "{look}");
    let vault_ttl = look["data"]["creation_ttl"].as_u64().expect("creation_ttl");
    assert!(vault_ttl <= 30, "{look}");
}

/// Wrapped database credentials: the consumer unwraps them once and they log in. The
/// lease is still the capability token's child token's (Vault registers it against
/// the requesting token before wrapping), so the login stops working once a 15-second
/// token has expired, though the role's TTL is 1 h and nobody revoked anything.
#[test]
fn wrapped_db_creds_unwrap_once_and_still_end_with_the_token() {
    let mut s = Server::start("agentA", &[]);
    let tok = short_token(15, &["kv:*", "db:*"]);
    let w = s.call_ok(
        "db.issue_creds",
        json!({"role": "readonly", "wrap_ttl": 600}),
        &tok,
    );
    assert_eq!(w.get("password"), None, "{w}");
    assert_eq!(w["creation_path"], "database/creds/readonly", "{w}");
    assert!(
        w["wrap_ttl"]
            .as_u64()
            .is_some_and(|t| (1..=15).contains(&t)),
        "{w}"
    );
    let token = w["wrap_token"].as_str().expect("wrap_token").to_string();
    assert!(!token.starts_with(HANDLE));

    let (code, body) = unwrap(&token);
    assert_eq!(code, 200, "{body}");
    let user = body["data"]["username"]
        .as_str()
        .expect("username")
        .to_string();
    let pass = body["data"]["password"]
        .as_str()
        .expect("password")
        .to_string();
    assert!(body["lease_id"]
        .as_str()
        .is_some_and(|l| l.starts_with("database/creds/readonly/")));
    assert_eq!(psql_login(&user, &pass).as_deref(), Ok(user.as_str()));
    let (code, _) = unwrap(&token);
    assert_ne!(code, 200, "a wrapping token unwraps once");

    // A sealed token: the wrapping token is a handle.
    let sealed = short_token(15, &[]);
    let w = s.call_ok(
        "db.issue_creds",
        json!({"role": "readonly", "wrap_ttl": 60}),
        &sealed,
    );
    assert!(
        w["wrap_token"]
            .as_str()
            .is_some_and(|t| t.starts_with(HANDLE)),
        "{w}"
    );

    let gone = crate::harness::poll_until(Duration::from_secs(60), || {
        psql_login(&user, &pass).is_err().then_some(())
    });
    assert!(gone.is_some(), "wrapped credentials outlived their token");
    assert!(!s.stderr().contains(&pass));
}
