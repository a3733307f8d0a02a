//! The Vault connection: AppRole login, re-login when Vault rejects the token,
//! Vault down at start (and back later), timeouts, configuration errors, and no
//! secret in the server's logs.

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::devstack::{bao, stack_var, unique, PrivateBao};
use crate::harness::{closed_port, token_for, Server};
use serde_json::{json, Value};

/// A fresh AppRole auth mount with one role using the stack's `mcpvault` policy.
/// Returns (mount, role_id, secret_id).
fn approle_mount(token_ttl: &str, token_max_ttl: &str) -> (String, String, String) {
    let mount = unique("approle");
    let (code, r) = bao(
        "POST",
        &format!("sys/auth/{mount}"),
        Some(&json!({"type": "approle"})),
    );
    assert!(code == 200 || code == 204, "enable {mount}: {r}");
    let (code, r) = bao(
        "POST",
        &format!("auth/{mount}/role/r"),
        Some(
            &json!({"token_policies": ["mcpvault"], "token_ttl": token_ttl, "token_max_ttl": token_max_ttl}),
        ),
    );
    assert!(code == 200 || code == 204, "role: {r}");
    let (_, r) = bao("GET", &format!("auth/{mount}/role/r/role-id"), None);
    let role_id = r["data"]["role_id"].as_str().expect("role_id").to_string();
    let (_, r) = bao(
        "POST",
        &format!("auth/{mount}/role/r/secret-id"),
        Some(&json!({})),
    );
    let secret_id = r["data"]["secret_id"]
        .as_str()
        .expect("secret_id")
        .to_string();
    (mount, role_id, secret_id)
}

/// Logins on `mount` seen by OpenBao's audit log.
fn logins(mount: &str) -> usize {
    std::thread::sleep(Duration::from_millis(50));
    let needle = format!("\"path\":\"auth/{mount}/login\"");
    std::fs::read_to_string(stack_var("BAO_AUDIT_LOG"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"type\":\"request\"") && l.contains(&needle))
        .count()
}

fn approle_server(mount: &str, role_id: &str, secret_id: &str) -> Server {
    Server::start(
        "agentA",
        &[
            ("VAULT_TOKEN", ""),
            ("VAULT_ROLE_ID", role_id),
            ("VAULT_SECRET_ID", secret_id),
            ("VAULT_APPROLE_MOUNT", mount),
        ],
    )
}

#[test]
fn approle_login_then_relogin_when_vault_revokes_the_token() {
    let (mount, role_id, secret_id) = approle_mount("1h", "24h");
    let mut s = approle_server(&mount, &role_id, &secret_id);
    let tok = token_for("agentA", None, &[]);
    assert_eq!(logins(&mount), 0, "no login before the first call");
    let path = format!("{}/x", unique("approle"));
    s.call_ok("kv.write", json!({"path": path, "data": {"a": 1}}), &tok);
    assert_eq!(logins(&mount), 1);
    s.call_ok("kv.read", json!({"path": path}), &tok);
    assert_eq!(logins(&mount), 1, "the token is reused");

    // Revoke every token this mount issued, behind the server's back.
    let (code, r) = bao(
        "PUT",
        &format!("sys/leases/revoke-prefix/auth/{mount}/login"),
        None,
    );
    assert!(code == 200 || code == 204, "revoke-prefix: {r}");
    let r = s.call_ok("kv.read", json!({"path": path}), &tok);
    assert_eq!(r["data"], json!({"a": 1}));
    assert_eq!(logins(&mount), 2, "one re-login after the 403");

    // A real policy denial (the policy has no `create` on transit keys) is not a
    // dead token: reported, and no further login.
    let e = s.call_err(
        "transit.encrypt",
        json!({"key": unique("nokey"), "plaintext": "aGk="}),
        Some(&tok),
    );
    assert!(e.starts_with("vault: transit.encrypt: HTTP 403"), "{e}");
    assert_eq!(logins(&mount), 2);
    let log = s.stderr();
    assert!(!log.contains(&secret_id), "secret id in the log");
    assert!(!log.contains(&role_id), "role id in the log");
}

#[test]
fn approle_token_is_replaced_before_it_expires() {
    // Max TTL 3s: renewal cannot extend it, so the server logs in again.
    let (mount, role_id, secret_id) = approle_mount("3s", "3s");
    let mut s = approle_server(&mount, &role_id, &secret_id);
    let tok = token_for("agentA", None, &[]);
    s.call_ok("transit.random", json!({}), &tok);
    assert_eq!(logins(&mount), 1);
    std::thread::sleep(Duration::from_millis(3500));
    s.call_ok("transit.random", json!({}), &tok);
    assert_eq!(logins(&mount), 2);
}

#[test]
fn approle_bad_secret_id_is_a_clear_error() {
    let (mount, role_id, _) = approle_mount("1h", "24h");
    let mut s = approle_server(&mount, &role_id, "00000000-0000-0000-0000-000000000000");
    let tok = token_for("agentA", None, &[]);
    let e = s.call_err("kv.list", json!({}), Some(&tok));
    assert!(
        e.starts_with("vault: kv.list: login failed: HTTP 400"),
        "{e}"
    );
}

/// Forwards 127.0.0.1:port to OpenBao from now on (Vault "comes back").
fn start_proxy(port: u16) {
    let target = stack_var("VAULT_ADDR")
        .trim_start_matches("http://")
        .to_string();
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind proxy");
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(upstream) = TcpStream::connect(&target) else {
                continue;
            };
            let (Ok(mut c2), Ok(mut u2)) = (client.try_clone(), upstream.try_clone()) else {
                continue;
            };
            let (mut c, mut u) = (client, upstream);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c, &mut u);
                let _ = u.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut u2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
}

#[test]
fn vault_down_at_start_then_back() {
    let port = closed_port();
    let addr = format!("http://127.0.0.1:{port}");
    let mut s = Server::start("agentA", &[("VAULT_ADDR", &addr)]);
    let tools = s.request("tools/list", json!({}));
    let n = tools["result"]["tools"].as_array().map_or(0, Vec::len);
    assert!(n >= 17, "{tools}");
    let tok = token_for("agentA", None, &[]);
    let e = s.call_err("kv.list", json!({}), Some(&tok));
    assert!(
        e.starts_with(&format!("vault: kv.list: unreachable ({addr}: ")),
        "{e}"
    );
    let e = s.call_err("db.issue_creds", json!({"role": "readonly"}), Some(&tok));
    assert!(e.starts_with("vault: db.issue_creds: unreachable"), "{e}");

    start_proxy(port);
    let path = format!("{}/back", unique("down"));
    s.call_ok(
        "kv.write",
        json!({"path": path, "data": {"ok": true}}),
        &tok,
    );
    assert_eq!(
        s.call_ok("kv.read", json!({"path": path}), &tok)["data"],
        json!({"ok": true})
    );
}

#[test]
fn a_hanging_vault_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // Accepts and never answers.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().flatten() {
            held.push(c);
        }
    });
    let addr = format!("http://127.0.0.1:{port}");
    let mut s = Server::start(
        "agentA",
        &[("VAULT_ADDR", &addr), ("VAULT_TIMEOUT_SECS", "1")],
    );
    let tok = token_for("agentA", None, &[]);
    let t0 = Instant::now();
    let e = s.call_err("kv.read", json!({"path": "x"}), Some(&tok));
    assert!(e.contains("timed out after 1s"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(10));
}

#[test]
fn bad_configuration_is_reported_per_call() {
    let tok = token_for("agentA", None, &[]);
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("VAULT_ADDR", "ftp://127.0.0.1:1")],
            "vault: kv.read: not configured (VAULT_ADDR",
        ),
        (
            &[
                ("VAULT_TOKEN", ""),
                ("VAULT_ROLE_ID", ""),
                ("VAULT_SECRET_ID", ""),
            ],
            "vault: kv.read: not configured (set VAULT_TOKEN",
        ),
        (
            &[("VAULT_TOKEN", ""), ("VAULT_SECRET_ID", "")],
            "vault: kv.read: not configured (AppRole needs both",
        ),
    ];
    for (env, want) in cases {
        let mut s = Server::start("agentA", env);
        let e = s.call_err("kv.read", json!({"path": "x"}), Some(&tok));
        assert!(e.starts_with(want), "{env:?}: {e}");
    }
}

#[test]
fn no_secret_or_token_in_logs_or_errors() {
    // Debug for everything of ours and of vaultrs/rustify/reqwest. rmcp's own
    // debug level dumps whole JSON-RPC messages, so it stays at warn.
    let mut s = Server::start("agentA", &[("MCPVAULT_LOG", "debug,rmcp=warn")]);
    let tok = token_for("agentA", None, &[]);
    let secret = format!("pw-{}", unique("leak"));
    let path = format!("{}/x", unique("leak"));
    s.call_ok(
        "kv.write",
        json!({"path": path, "data": {"password": secret}}),
        &tok,
    );
    s.call_ok("kv.read", json!({"path": path}), &tok);
    s.call_ok("kv.delete", json!({"path": path}), &tok);
    let e = s.call_err("kv.read", json!({"path": path}), Some(&tok));
    assert!(!e.contains(&secret), "{e}");
    let c = s.call_ok("db.issue_creds", json!({"role": "readonly"}), &tok);
    s.call_ok("db.revoke", json!({"lease_id": c["lease_id"]}), &tok);
    let plain = "c2VjcmV0LXBsYWludGV4dA==";
    let ct = s.call_ok(
        "transit.encrypt",
        json!({"key": "app-aes", "plaintext": plain}),
        &tok,
    );
    s.call_ok(
        "transit.decrypt",
        json!({"key": "app-aes", "ciphertext": ct["ciphertext"]}),
        &tok,
    );
    let log = s.stderr();
    let password = c["password"].as_str().expect("password");
    let vault_token = stack_var("VAULT_TOKEN");
    for (what, needle) in [
        ("kv secret", secret.as_str()),
        ("db password", password),
        ("vault token", vault_token.as_str()),
        ("capability token", tok.as_str()),
        ("plaintext", plain),
    ] {
        assert!(!log.contains(needle), "{what} found in the server log");
    }
    // Everything on stdout was JSON-RPC (next_message asserts it) and nothing
    // but the replies.
    assert!(s
        .stdout_log
        .iter()
        .all(|l| serde_json::from_str::<Value>(l).is_ok()));
}

#[test]
fn tls_with_vault_cacert_and_a_namespace() {
    let mut bao = PrivateBao::new_tls(closed_port());
    bao.start();
    let api = bao.client();
    let ca = bao.ca().to_str().expect("utf-8 path").to_string();
    let addr = bao.addr();
    let (code, r) = api.call("POST", "sys/namespaces/team1", None, Some(&json!({})));
    assert_eq!(code, 200, "{r}");
    let (code, r) = api.call(
        "POST",
        "sys/mounts/secret",
        Some("team1"),
        Some(&json!({"type": "kv", "options": {"version": "2"}})),
    );
    assert!(code == 200 || code == 204, "{r}");
    let tok = token_for("agentA", None, &[]);
    let base = [
        ("VAULT_ADDR", addr.as_str()),
        ("VAULT_TOKEN", "root"),
        ("VAULT_CACERT", ca.as_str()),
        ("VAULT_NAMESPACE", "team1"),
    ];

    let mut s = Server::start("agentA", &base);
    s.call_ok(
        "kv.write",
        json!({"path": "ns/x", "data": {"in": "team1"}}),
        &tok,
    );
    assert_eq!(
        s.call_ok("kv.read", json!({"path": "ns/x"}), &tok)["data"],
        json!({"in": "team1"})
    );
    // It is in the namespace, not in the root namespace's secret/.
    let (code, r) = api.call("GET", "secret/data/mcp/agentA/ns/x", Some("team1"), None);
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["data"]["data"], json!({"in": "team1"}));
    let (code, _) = api.call("GET", "secret/data/mcp/agentA/ns/x", None, None);
    assert_eq!(code, 404);

    // Without the CA the TLS handshake fails: a clear error, not a hang.
    let mut s = Server::start("agentA", &[base[0], base[1], base[3]]);
    let e = s.call_err("kv.read", json!({"path": "ns/x"}), Some(&tok));
    assert!(e.starts_with("vault: kv.read: unreachable ("), "{e}");
    // An unreadable CA file is a configuration error.
    let mut s = Server::start(
        "agentA",
        &[base[0], base[1], ("VAULT_CACERT", "/nonexistent/ca.pem")],
    );
    let e = s.call_err("kv.read", json!({"path": "ns/x"}), Some(&tok));
    assert!(e.starts_with("vault: kv.read: not configured ("), "{e}");
}

#[test]
fn sys_health_from_openbao() {
    // The backend read straight from the environment, as the server does. The
    // other tests only spawn child processes with their own environment.
    std::env::set_var("VAULT_ADDR", stack_var("VAULT_ADDR"));
    std::env::set_var("VAULT_TOKEN", "health-needs-no-token");
    let vault = mcpvault::backend::vault::Vault::from_env();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let h = rt.block_on(vault.health()).expect("sys/health");
    assert!(h.initialized && !h.sealed && !h.standby, "{h:?}");
    assert!(!h.version.is_empty());
}

/// A compact JWT signed with Ed25519 (`EdDSA`), as a workload identity provider
/// would issue it.
fn signed_jwt(key: &ed25519_dalek::SigningKey, sub: &str, aud: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64U;
    use base64::Engine;
    use ed25519_dalek::Signer;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let header = B64U.encode(json!({"alg": "EdDSA", "typ": "JWT"}).to_string());
    let claims = B64U.encode(
        json!({"sub": sub, "aud": aud, "iat": now, "nbf": now - 5, "exp": now + 300}).to_string(),
    );
    let input = format!("{header}.{claims}");
    let sig = B64U.encode(key.sign(input.as_bytes()).to_bytes());
    format!("{input}.{sig}")
}

/// An Ed25519 public key as PEM (SubjectPublicKeyInfo).
fn public_pem(key: &ed25519_dalek::SigningKey) -> String {
    use base64::Engine;
    let mut der = hex::decode("302a300506032b6570032100").expect("hex");
    der.extend_from_slice(key.verifying_key().as_bytes());
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(der)
    )
}

/// Workload identity: the server logs in with a JWT file (re-read at each login);
/// a JWT signed by another key is refused by Vault.
#[test]
fn jwt_login_with_a_workload_identity_file() {
    let mount = unique("jwt");
    let (code, v) = bao(
        "POST",
        &format!("sys/auth/{mount}"),
        Some(&json!({"type": "jwt"})),
    );
    assert!(code == 204 || code == 200, "{code} {v}");
    let key = ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]);
    let (code, v) = bao(
        "POST",
        &format!("auth/{mount}/config"),
        Some(&json!({"jwt_validation_pubkeys": [public_pem(&key)]})),
    );
    assert!(code == 204 || code == 200, "{code} {v}");
    let (code, v) = bao(
        "POST",
        &format!("auth/{mount}/role/agent"),
        Some(&json!({
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": ["mcpvault"],
            "token_policies": ["mcpvault"],
            "token_ttl": "10m"
        })),
    );
    assert!(code == 204 || code == 200, "{code} {v}");

    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.jwt");
    std::fs::write(&good, signed_jwt(&key, "agentA", "mcpvault")).expect("jwt");
    let other = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let bad = dir.path().join("bad.jwt");
    std::fs::write(&bad, signed_jwt(&other, "agentA", "mcpvault")).expect("jwt");

    let tok = token_for("agentA", None, &[]);
    let env = |file: &std::path::Path| -> Vec<(String, String)> {
        vec![
            ("VAULT_TOKEN".into(), String::new()),
            ("VAULT_ROLE_ID".into(), String::new()),
            ("VAULT_SECRET_ID".into(), String::new()),
            (
                "VAULT_JWT_FILE".into(),
                file.to_str().expect("utf-8").into(),
            ),
            ("VAULT_JWT_ROLE".into(), "agent".into()),
            ("VAULT_JWT_MOUNT".into(), mount.clone()),
        ]
    };
    let pairs = env(&good);
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut s = Server::start("agentA", &refs);
    let path = unique("jwt/x");
    s.call_ok("kv.write", json!({"path": path, "data": {"k": "v"}}), &tok);
    let r = s.call_ok("kv.read", json!({"path": path}), &tok);
    assert_eq!(r["data"], json!({"k": "v"}));
    let log = s.stderr();
    assert!(
        !log.contains(&std::fs::read_to_string(&good).expect("jwt")),
        "JWT in the log"
    );

    let pairs = env(&bad);
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut s = Server::start("agentA", &refs);
    let e = s.call_err("kv.read", json!({"path": path}), Some(&tok));
    assert!(e.starts_with("vault: kv.read: login failed"), "{e}");
}
