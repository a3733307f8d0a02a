//! Backend faults, each answered with a clear `vault:` / `kms:` tool error within a
//! bound, and recovery by the same process when the backend returns: Vault down at
//! start, killed and restarted mid-session, hung (slower than VAULT_TIMEOUT_SECS), its
//! token revoked or expired (AppRole logs in again; a static token cannot), KMS down
//! or hung. Each test runs its OWN `bao server -dev` (BAO_BIN from the dev stack) on a
//! free port, never the shared one.

use std::time::{Duration, Instant};

use crate::devstack::{start_moto, PrivateBao};
use crate::harness::{closed_port, dead_url, text, token_for, Blackhole, Server};
use serde_json::{json, Value};

const SUBJECT: &str = "agentF";
/// VAULT_TIMEOUT_SECS for these servers.
const VAULT_TIMEOUT: u64 = 2;
/// Slack on top of a timeout for a loaded CI machine.
const MARGIN: Duration = Duration::from_secs(8);

/// Writes `{v: value}` at the subject's `app/x` (dev mode mounts KV v2 at secret/).
fn put_secret(bao: &PrivateBao, value: &str) {
    let (code, body) = bao.api(
        "POST",
        &format!("secret/data/mcp/{SUBJECT}/app/x"),
        Some(&json!({"data": {"v": value}})),
    );
    assert_eq!(code, 200, "{body}");
}

fn server(env: &[(&str, &str)]) -> Server {
    let mut base = vec![("VAULT_TIMEOUT_SECS", "2")];
    base.extend_from_slice(env);
    let mut s = Server::spawn_bare(SUBJECT, &base);
    s.initialize();
    s
}

/// kv.read of `app/x`: (result, how long it took).
fn kv_read(s: &mut Server, token: &str) -> (Value, Duration) {
    let t0 = Instant::now();
    let r = s.call("kv.read", json!({"path": "app/x"}), Some(token));
    (r, t0.elapsed())
}

fn assert_vault_error(r: &Value, took: Duration, bound: Duration) -> String {
    let t = text(r);
    assert_eq!(r["isError"], json!(true), "{r}");
    assert!(t.starts_with("vault: kv.read: "), "{t}");
    assert!(
        took <= bound,
        "answered after {took:?} (bound {bound:?}): {t}"
    );
    t
}

fn assert_value(r: &Value, want: &str) {
    assert_ne!(r["isError"], json!(true), "{r}");
    assert_eq!(r["structuredContent"]["data"]["v"], want, "{r}");
}

#[test]
fn vault_down_at_start_killed_and_restarted_the_same_process_recovers() {
    let mut bao = PrivateBao::new(closed_port());
    let addr = bao.addr();
    let mut s = server(&[("VAULT_ADDR", addr.as_str()), ("VAULT_TOKEN", "root")]);
    let token = token_for(SUBJECT, Some("kv.read"), &[]);
    // Down at start: the protocol works, the call says what failed.
    let tools = s.request("tools/list", json!({}));
    assert!(tools["result"]["tools"]
        .as_array()
        .is_some_and(|t| t.len() > 5));
    let (r, took) = kv_read(&mut s, &token);
    let t = assert_vault_error(&r, took, MARGIN);
    assert!(t.contains("unreachable"), "{t}");

    bao.start();
    put_secret(&bao, "one");
    let (r, _) = kv_read(&mut s, &token);
    assert_value(&r, "one");

    // Killed mid-session.
    bao.kill();
    let (r, took) = kv_read(&mut s, &token);
    let t = assert_vault_error(&r, took, Duration::from_secs(VAULT_TIMEOUT) + MARGIN);
    assert!(t.contains("unreachable"), "{t}");

    // Back again (a dev server starts empty).
    bao.start();
    put_secret(&bao, "two");
    let (r, _) = kv_read(&mut s, &token);
    assert_value(&r, "two");
    assert!(!s.stdout_log.iter().any(|l| l.contains("\"root\"")));
    assert_eq!(s.close(), Some(0));
}

#[test]
fn a_hung_vault_times_out_with_a_clear_error_and_no_retry_storm() {
    let hole = Blackhole::start();
    let url = hole.url();
    let mut s = server(&[("VAULT_ADDR", url.as_str()), ("VAULT_TOKEN", "root")]);
    let token = token_for(SUBJECT, Some("kv.read"), &[]);
    // Per call: the token lookup (first use) and the read itself, at most.
    let per_call = Duration::from_secs(2 * VAULT_TIMEOUT) + MARGIN;
    let (r, took) = kv_read(&mut s, &token);
    let t = assert_vault_error(&r, took, per_call);
    assert!(t.contains("timed out after 2s"), "{t}");
    let after_one = hole.accepted();
    assert!(
        (1..=2).contains(&after_one),
        "{after_one} connections for one call"
    );

    // Twenty pipelined calls: each answered within the bound, one attempt each.
    let t0 = Instant::now();
    let mut ids = Vec::new();
    for i in 0..20 {
        let id = format!("hung-{i}");
        s.send_raw(
            &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                    "params": {"name": "kv.read", "arguments": {"path": "app/x"},
                               "_meta": {"token": token}}})
            .to_string(),
        );
        ids.push(id);
    }
    // Replies come in any order (clients match on id): collect until all are in.
    let mut pending: std::collections::HashSet<Value> = ids.iter().map(|id| json!(id)).collect();
    while !pending.is_empty() {
        let r = s.next_message();
        let Some(id) = r.get("id") else { continue };
        if pending.remove(id) {
            assert!(text(&r["result"]).starts_with("vault: kv.read: "), "{r}");
        }
    }
    assert!(
        t0.elapsed() <= per_call,
        "20 hung calls took {:?}",
        t0.elapsed()
    );
    let conns = hole.accepted() - after_one;
    assert!(
        conns <= 2 * 20,
        "{conns} connections for 20 calls: a retry storm"
    );
}

/// Enables AppRole on `bao` with a role whose tokens live `ttl` seconds and may read
/// the subject's KV; returns (role_id, secret_id).
fn approle(bao: &PrivateBao, ttl: u32) -> (String, String) {
    let ok = |(code, body): (u16, Value)| {
        assert!((200..300).contains(&code), "{code}: {body}");
        body
    };
    ok(bao.api(
        "POST",
        "sys/auth/approle",
        Some(&json!({"type": "approle"})),
    ));
    let policy = format!(
        "path \"secret/data/mcp/{SUBJECT}/*\" {{ capabilities = [\"read\"] }}\n\
         path \"auth/token/lookup-self\" {{ capabilities = [\"read\"] }}\n\
         path \"auth/token/renew-self\" {{ capabilities = [\"update\"] }}"
    );
    ok(bao.api(
        "PUT",
        "sys/policies/acl/faults",
        Some(&json!({"policy": policy})),
    ));
    ok(bao.api(
        "POST",
        "auth/approle/role/faults",
        Some(&json!({"token_policies": ["faults"], "token_ttl": ttl, "token_max_ttl": ttl})),
    ));
    let role = ok(bao.api("GET", "auth/approle/role/faults/role-id", None));
    let secret = ok(bao.api("POST", "auth/approle/role/faults/secret-id", None));
    (
        role["data"]["role_id"]
            .as_str()
            .expect("role_id")
            .to_string(),
        secret["data"]["secret_id"]
            .as_str()
            .expect("secret_id")
            .to_string(),
    )
}

#[test]
fn approle_logs_in_again_after_its_token_is_revoked_or_expires() {
    let mut bao = PrivateBao::new(closed_port());
    bao.start();
    put_secret(&bao, "approle");
    // Tokens live 4 s: the session must renew or log in again on its own.
    let (role_id, secret_id) = approle(&bao, 4);
    let addr = bao.addr();
    let mut s = server(&[
        ("VAULT_ADDR", addr.as_str()),
        ("VAULT_ROLE_ID", role_id.as_str()),
        ("VAULT_SECRET_ID", secret_id.as_str()),
    ]);
    let token = token_for(SUBJECT, Some("kv.read"), &[]);
    let (r, _) = kv_read(&mut s, &token);
    assert_value(&r, "approle");

    // Every AppRole token revoked behind the server's back.
    let (code, body) = bao.api("PUT", "sys/leases/revoke-prefix/auth/approle/login", None);
    assert!((200..300).contains(&code), "{code}: {body}");
    let (r, _) = kv_read(&mut s, &token);
    assert_value(&r, "approle");

    // Calls keep working across several token lifetimes.
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        let (r, _) = kv_read(&mut s, &token);
        assert_value(&r, "approle");
    }
    assert!(!s.stderr().contains(&secret_id), "the secret id is logged");
}

#[test]
fn a_revoked_static_token_is_a_clear_vault_error() {
    let mut bao = PrivateBao::new(closed_port());
    bao.start();
    put_secret(&bao, "static");
    let (code, created) = bao.api(
        "POST",
        "auth/token/create",
        Some(&json!({"policies": ["default"], "no_default_policy": false, "ttl": "1h"})),
    );
    assert_eq!(code, 200, "{created}");
    let vault_token = created["auth"]["client_token"]
        .as_str()
        .expect("token")
        .to_string();
    let addr = bao.addr();
    let mut s = server(&[
        ("VAULT_ADDR", addr.as_str()),
        ("VAULT_TOKEN", vault_token.as_str()),
    ]);
    let token = token_for(SUBJECT, Some("kv.read"), &[]);
    // Its policy does not allow the read: Vault's 403 comes through as such.
    let (r, took) = kv_read(&mut s, &token);
    let t = assert_vault_error(&r, took, MARGIN);
    assert!(t.contains("403"), "{t}");
    let (code, body) = bao.api(
        "POST",
        "auth/token/revoke",
        Some(&json!({"token": vault_token})),
    );
    assert!((200..300).contains(&code), "{code}: {body}");
    let (r, took) = kv_read(&mut s, &token);
    let t = assert_vault_error(&r, took, MARGIN);
    assert!(t.contains("403"), "{t}");
    assert!(!t.contains(&vault_token) && !s.stderr().contains(&vault_token));
}

fn kms_server(endpoint: &str) -> Server {
    server(&[
        ("AWS_ENDPOINT_URL_KMS", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "faults-test"),
        ("AWS_SECRET_ACCESS_KEY", "faults-test-secret"),
        ("VAULT_ADDR", &dead_url()),
        ("VAULT_TOKEN", "unused"),
    ])
}

fn kms_encrypt(s: &mut Server, token: &str) -> (Value, Duration) {
    let t0 = Instant::now();
    let r = s.call(
        "kms.encrypt",
        json!({"key_id": "alias/app", "plaintext": "aGVsbG8="}),
        Some(token),
    );
    (r, t0.elapsed())
}

/// The KMS backend's whole-operation timeout (src/backend/kms.rs), plus slack.
const KMS_BOUND: Duration = Duration::from_secs(10 + 8);

#[test]
fn kms_down_then_up_the_same_process_recovers() {
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut s = kms_server(&url);
    let token = token_for(SUBJECT, Some("kms.*"), &[]);
    let (r, took) = kms_encrypt(&mut s, &token);
    assert_eq!(r["isError"], json!(true), "{r}");
    assert!(text(&r).starts_with("kms: "), "{r}");
    assert!(took <= KMS_BOUND, "answered after {took:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let mut moto = start_moto(port, dir.path());
    let (r, _) = kms_encrypt(&mut s, &token);
    let _ = moto.kill();
    let _ = moto.wait();
    assert_ne!(r["isError"], json!(true), "{r}");
    assert!(r["structuredContent"]["ciphertext"].is_string(), "{r}");
    assert!(!s.stderr().contains("faults-test-secret"));
}

#[test]
fn a_hung_kms_times_out_with_a_clear_error() {
    let hole = Blackhole::start();
    let mut s = kms_server(&hole.url());
    let token = token_for(SUBJECT, Some("kms.*"), &[]);
    let (r, took) = kms_encrypt(&mut s, &token);
    assert_eq!(r["isError"], json!(true), "{r}");
    assert!(text(&r).starts_with("kms: "), "{r}");
    assert!(took <= KMS_BOUND, "answered after {took:?}");
    assert!(
        hole.accepted() <= 3,
        "{} connections for one call",
        hole.accepted()
    );
}
