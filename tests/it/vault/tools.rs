//! Every Vault tool's happy path through the real `mcpvault-stdio` over pipes,
//! against the dev stack's OpenBao and PostgreSQL, with the real effect checked
//! outside mcpvault (curl with the root token, psql, ssh-keygen).

use crate::devstack::{bao, psql_login, unique, BaoApi};
use crate::harness::{token_for, Server};
use base64::Engine;
use serde_json::{json, Value};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

const VAULT_TOOLS: [&str; 17] = [
    "kv.read",
    "kv.write",
    "kv.list",
    "kv.delete",
    "kv.undelete",
    "kv.destroy",
    "transit.encrypt",
    "transit.decrypt",
    "transit.sign",
    "transit.verify",
    "transit.rewrap",
    "transit.random",
    "db.issue_creds",
    "db.renew",
    "db.revoke",
    "ssh.otp",
    "ssh.sign",
];

fn agent_a() -> (Server, String) {
    (Server::start("agentA", &[]), token_for("agentA", None, &[]))
}

#[test]
fn tools_list_has_every_vault_tool_with_schemas_and_hints() {
    let mut s = Server::start("agentA", &[]);
    let r = s.request("tools/list", json!({}));
    let tools = r["result"]["tools"].as_array().expect("tools").clone();
    for name in VAULT_TOOLS {
        let t = tools
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from tools/list"));
        assert_eq!(t["inputSchema"]["type"], "object", "{name}");
        assert_eq!(t["outputSchema"]["type"], "object", "{name}");
        assert!(
            t["description"].as_str().is_some_and(|d| d.len() > 40),
            "{name} needs a description"
        );
        let a = &t["annotations"];
        let destructive = matches!(name, "kv.delete" | "kv.destroy" | "db.revoke");
        let read_only = name == "kv.read" || name == "kv.list" || name.starts_with("transit.");
        assert_eq!(a["readOnlyHint"], json!(read_only), "{name}: {a}");
        if !read_only {
            assert_eq!(a["destructiveHint"], json!(destructive), "{name}: {a}");
        }
    }
    let read = tools
        .iter()
        .find(|t| t["name"] == "kv.read")
        .expect("kv.read");
    assert_eq!(read["inputSchema"]["required"], json!(["path"]));
}

#[test]
fn kv_round_trip_lands_in_the_subject_namespace() {
    let (mut s, tok) = agent_a();
    let dir = unique("kv");
    let path = format!("{dir}/db");
    let secret = json!({"user": "app", "password": "s3cr3t-value"});

    let w = s.call_ok("kv.write", json!({"path": path, "data": secret}), &tok);
    assert_eq!(w, json!({"path": path, "version": 1}));
    // Where it really is: secret/data/mcp/agentA/<path>, read by curl as root.
    let (code, raw) = bao("GET", &format!("secret/data/mcp/agentA/{path}"), None);
    assert_eq!(code, 200, "{raw}");
    assert_eq!(raw["data"]["data"], secret);
    assert_eq!(raw["data"]["metadata"]["version"], 1);

    let r = s.call_ok("kv.read", json!({"path": path}), &tok);
    assert_eq!(r["data"], secret);
    assert_eq!(r["version"], 1);
    assert_eq!(r["path"], path);
    assert!(
        r["created_time"].as_str().is_some_and(|t| t.contains('T')),
        "{r}"
    );

    // Check-and-set: version 1 -> 2 works once, a stale cas fails.
    let v2 = json!({"user": "app", "password": "rotated"});
    let w = s.call_ok(
        "kv.write",
        json!({"path": path, "data": v2, "cas": 1}),
        &tok,
    );
    assert_eq!(w["version"], 2);
    let e = s.call_err(
        "kv.write",
        json!({"path": path, "data": v2, "cas": 1}),
        Some(&tok),
    );
    assert!(
        e.starts_with("vault: kv.write: HTTP 400") && e.contains("check-and-set"),
        "{e}"
    );

    let old = s.call_ok("kv.read", json!({"path": path, "version": 1}), &tok);
    assert_eq!(old["data"], secret);
    assert_eq!(old["version"], 1);

    let l = s.call_ok("kv.list", json!({"prefix": format!("{dir}/")}), &tok);
    assert_eq!(l, json!({"prefix": format!("{dir}/"), "keys": ["db"]}));
    let root = s.call_ok("kv.list", json!({}), &tok);
    assert_eq!(root["prefix"], "");
    assert!(
        root["keys"]
            .as_array()
            .expect("keys")
            .contains(&json!(format!("{dir}/"))),
        "{root}"
    );
    let empty = s.call_ok("kv.list", json!({"prefix": format!("{dir}-none/")}), &tok);
    assert_eq!(empty["keys"], json!([]));

    // Soft delete: Vault keeps the metadata, the read explains how to restore.
    let d = s.call_ok("kv.delete", json!({"path": path}), &tok);
    assert_eq!(d, json!({"path": path, "deleted": true}));
    let (code, raw) = bao("GET", &format!("secret/data/mcp/agentA/{path}"), None);
    assert_eq!(code, 404);
    assert!(raw["data"]["metadata"]["deletion_time"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    let e = s.call_err("kv.read", json!({"path": path}), Some(&tok));
    assert!(
        e.starts_with("vault: kv.read: ") && e.contains("is deleted") && e.contains("kv.undelete"),
        "{e}"
    );
    assert!(!e.contains("rotated"), "no secret in errors: {e}");

    let u = s.call_ok("kv.undelete", json!({"path": path, "versions": [2]}), &tok);
    assert_eq!(u, json!({"path": path, "versions": [2]}));
    assert_eq!(
        s.call_ok("kv.read", json!({"path": path}), &tok)["data"],
        v2
    );

    let x = s.call_ok("kv.destroy", json!({"path": path, "versions": [1]}), &tok);
    assert_eq!(x, json!({"path": path, "versions": [1]}));
    let (_, meta) = bao("GET", &format!("secret/metadata/mcp/agentA/{path}"), None);
    assert_eq!(meta["data"]["versions"]["1"]["destroyed"], true, "{meta}");
    let e = s.call_err("kv.read", json!({"path": path, "version": 1}), Some(&tok));
    assert!(e.contains("destroyed"), "{e}");

    let e = s.call_err(
        "kv.read",
        json!({"path": format!("{dir}/missing")}),
        Some(&tok),
    );
    assert_eq!(e, format!("vault: kv.read: no secret at `{dir}/missing`"));
    let e = s.call_err(
        "kv.destroy",
        json!({"path": path, "versions": []}),
        Some(&tok),
    );
    assert!(e.starts_with("invalid arguments"), "{e}");
}

#[test]
fn another_subject_cannot_reach_agent_a_data() {
    let (mut a, tok_a) = agent_a();
    let dir = unique("iso");
    let path = format!("{dir}/x");
    a.call_ok(
        "kv.write",
        json!({"path": path, "data": {"k": "agentA-only"}}),
        &tok_a,
    );

    let mut b = Server::start("agentB", &[]);
    let tok_b = token_for("agentB", None, &[]);
    // The same relative path is agentB's own namespace, where nothing is.
    let e = b.call_err("kv.read", json!({"path": path}), Some(&tok_b));
    assert!(e.contains("no secret at"), "{e}");
    let root = b.call_ok("kv.list", json!({}), &tok_b);
    assert!(!root["keys"].to_string().contains(&dir), "{root}");
    for attack in [
        format!("../agentA/{path}"),
        format!("%2e%2e/agentA/{path}"),
        format!("/mcp/agentA/{path}"),
    ] {
        let e = b.call_err("kv.read", json!({"path": attack}), Some(&tok_b));
        assert!(
            e.starts_with("invalid arguments: invalid `path`"),
            "{attack}: {e}"
        );
    }
    // agentA's token is refused by agentB's server outright.
    let e = b.call_err("kv.read", json!({"path": path}), Some(&tok_a));
    assert!(e.starts_with("denied: wrong subject"), "{e}");
    let (code, _) = bao("GET", &format!("secret/data/mcp/agentB/{path}"), None);
    assert_eq!(code, 404);
}

#[test]
fn transit_encrypt_decrypt_rewrap_sign_verify_random() {
    let (mut s, tok) = agent_a();
    let plain = B64.encode(b"attack at dawn");
    let c = s.call_ok(
        "transit.encrypt",
        json!({"key": "app-aes", "plaintext": plain}),
        &tok,
    );
    let ct = c["ciphertext"].as_str().expect("ciphertext").to_string();
    assert!(ct.starts_with("vault:v"), "{ct}");
    // OpenBao itself decrypts it to the same bytes.
    let (code, raw) = bao(
        "POST",
        "transit/decrypt/app-aes",
        Some(&json!({"ciphertext": ct})),
    );
    assert_eq!(code, 200, "{raw}");
    assert_eq!(raw["data"]["plaintext"], plain);
    let d = s.call_ok(
        "transit.decrypt",
        json!({"key": "app-aes", "ciphertext": ct}),
        &tok,
    );
    assert_eq!(d, json!({"plaintext": plain}));
    // Decrypting with another key fails cleanly.
    let e = s.call_err(
        "transit.decrypt",
        json!({"key": "other-aes", "ciphertext": ct}),
        Some(&tok),
    );
    assert!(e.starts_with("vault: transit.decrypt: HTTP 400"), "{e}");

    // Rotate, then rewrap moves the ciphertext to a newer key version.
    let (code, _) = bao("POST", "transit/keys/app-aes/rotate", Some(&json!({})));
    assert!(code == 200 || code == 204, "rotate: {code}");
    let version = |c: &str| -> u32 {
        c.strip_prefix("vault:v")
            .and_then(|r| r.split(':').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("bad ciphertext {c}"))
    };
    let rw = s.call_ok(
        "transit.rewrap",
        json!({"key": "app-aes", "ciphertext": ct}),
        &tok,
    );
    let rct = rw["ciphertext"].as_str().expect("ciphertext").to_string();
    assert!(version(&rct) > version(&ct), "{ct} -> {rct}");
    let d = s.call_ok(
        "transit.decrypt",
        json!({"key": "app-aes", "ciphertext": rct}),
        &tok,
    );
    assert_eq!(d["plaintext"], plain);

    // ed25519 signatures: no hash_algorithm.
    let input = B64.encode(b"release v1.2.3");
    let sig = s.call_ok(
        "transit.sign",
        json!({"key": "app-ed25519", "input": input}),
        &tok,
    )["signature"]
        .as_str()
        .expect("signature")
        .to_string();
    assert!(sig.starts_with("vault:v1:"), "{sig}");
    let ok = s.call_ok(
        "transit.verify",
        json!({"key": "app-ed25519", "input": input, "signature": sig}),
        &tok,
    );
    assert_eq!(ok, json!({"valid": true}));
    let other = B64.encode(b"release v6.6.6");
    let bad = s.call_ok(
        "transit.verify",
        json!({"key": "app-ed25519", "input": other, "signature": sig}),
        &tok,
    );
    assert_eq!(bad, json!({"valid": false}));
    let (_, raw) = bao(
        "POST",
        "transit/verify/app-ed25519",
        Some(&json!({"input": input, "signature": sig})),
    );
    assert_eq!(raw["data"]["valid"], true);
    let e = s.call_err(
        "transit.sign",
        json!({"key": "app-ed25519", "input": "not base64!"}),
        Some(&tok),
    );
    assert_eq!(e, "invalid arguments: `input` must be standard base64");
    let e = s.call_err(
        "transit.sign",
        json!({"key": "app-ed25519", "input": input, "hash_algorithm": "md5"}),
        Some(&tok),
    );
    assert!(!e.starts_with("vault:"), "refused before Vault: {e}");

    let hex = s.call_ok(
        "transit.random",
        json!({"bytes": 16, "format": "hex"}),
        &tok,
    );
    let h = hex["random"].as_str().expect("random");
    assert!(
        h.len() == 32 && h.chars().all(|c| c.is_ascii_hexdigit()),
        "{h}"
    );
    let b = s.call_ok("transit.random", json!({}), &tok);
    let bytes = B64
        .decode(b["random"].as_str().expect("random"))
        .expect("base64");
    assert_eq!(bytes.len(), 32);
    for n in [0, 1025] {
        let e = s.call_err("transit.random", json!({"bytes": n}), Some(&tok));
        assert!(e.starts_with("invalid arguments: `bytes`"), "{e}");
    }
}

#[test]
fn db_creds_log_in_and_stop_working_after_revoke() {
    let (mut s, tok) = agent_a();
    let c = s.call_ok("db.issue_creds", json!({"role": "readonly"}), &tok);
    let user = c["username"].as_str().expect("username").to_string();
    let pass = c["password"].as_str().expect("password").to_string();
    let lease = c["lease_id"].as_str().expect("lease_id").to_string();
    assert!(lease.starts_with("database/creds/readonly/"), "{lease}");
    assert!(c["lease_duration"].as_u64().is_some_and(|d| d > 0), "{c}");
    assert_eq!(c["renewable"], true);
    assert_eq!(psql_login(&user, &pass).as_deref(), Ok(user.as_str()));

    let r = s.call_ok(
        "db.renew",
        json!({"lease_id": lease, "increment": 600}),
        &tok,
    );
    assert_eq!(r["lease_id"], lease);
    assert!(r["lease_duration"].as_u64().is_some_and(|d| d > 0), "{r}");

    let v = s.call_ok("db.revoke", json!({"lease_id": lease}), &tok);
    assert_eq!(v, json!({"lease_id": lease, "revoked": true}));
    let after = psql_login(&user, &pass);
    assert!(after.is_err(), "login still works after revoke: {after:?}");
    let e = s.call_err("db.renew", json!({"lease_id": lease}), Some(&tok));
    assert!(e.starts_with("vault: db.renew: HTTP 400"), "{e}");
    // Never in the server's logs.
    assert!(!s.stderr().contains(&pass));
}

#[test]
fn ssh_sign_gives_a_certificate_ssh_keygen_accepts() {
    let (mut s, tok) = agent_a();
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("id");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "mcpvault-test", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
    let public_key = std::fs::read_to_string(dir.path().join("id.pub")).expect("pub");
    let r = s.call_ok(
        "ssh.sign",
        json!({"role": "ca-user", "public_key": public_key, "valid_principals": ["ubuntu"], "ttl": "10m"}),
        &tok,
    );
    let cert = r["signed_key"].as_str().expect("signed_key");
    let serial = r["serial_number"].as_str().expect("serial_number");
    let cert_path = dir.path().join("id-cert.pub");
    std::fs::write(&cert_path, format!("{cert}\n")).expect("write cert");
    let out = std::process::Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(&cert_path)
        .output()
        .expect("ssh-keygen -L");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listing}");
    assert!(listing.contains("user certificate"), "{listing}");
    assert!(listing.contains("ubuntu"), "{listing}");
    let serial_dec = u64::from_str_radix(serial, 16).expect("hex serial");
    assert!(
        listing.contains(&format!("Serial: {serial_dec}")),
        "{listing}"
    );
    // Signed by the engine's CA.
    let (code, ca) = BaoApi::stack()
        .raw("GET", "ssh/public_key", None, None)
        .expect("ssh/public_key");
    assert_eq!(code, 200, "{ca}");
    let ca_path = dir.path().join("ca.pub");
    std::fs::write(&ca_path, ca).expect("ca");
    let fp = std::process::Command::new("ssh-keygen")
        .arg("-l")
        .arg("-f")
        .arg(&ca_path)
        .output()
        .expect("fingerprint");
    let fp = String::from_utf8_lossy(&fp.stdout);
    let sha = fp
        .split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .unwrap_or_else(|| panic!("no fingerprint in {fp}"));
    assert!(
        listing.contains(sha),
        "not signed by the CA {sha}: {listing}"
    );

    let e = s.call_err(
        "ssh.sign",
        json!({"role": "ca-user", "public_key": "-----BEGIN OPENSSH PRIVATE KEY-----"}),
        Some(&tok),
    );
    assert!(e.starts_with("invalid arguments: `public_key`"), "{e}");
}

#[test]
fn ssh_otp_is_a_one_time_password_vault_knows() {
    let (mut s, tok) = agent_a();
    let r = s.call_ok(
        "ssh.otp",
        json!({"role": "otp-role", "ip": "127.0.0.1", "username": "ubuntu"}),
        &tok,
    );
    assert_eq!(r["username"], "ubuntu");
    assert_eq!(r["ip"], "127.0.0.1");
    assert_eq!(r["port"], 22);
    let otp = r["key"].as_str().expect("key");
    // What the SSH helper on the host does: verify (and consume) the OTP.
    let (code, v) = bao("PUT", "ssh/verify", Some(&json!({"otp": otp})));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"]["username"], "ubuntu");
    assert_eq!(v["data"]["ip"], "127.0.0.1");
    let (code, _) = bao("PUT", "ssh/verify", Some(&json!({"otp": otp})));
    assert_ne!(code, 200, "an OTP works once");

    let e = s.call_err(
        "ssh.otp",
        json!({"role": "otp-role", "ip": "10.0.0.1; rm", "username": "ubuntu"}),
        Some(&tok),
    );
    assert!(e.starts_with("invalid arguments: `ip`"), "{e}");
    let e = s.call_err(
        "ssh.otp",
        json!({"role": "otp-role", "ip": "192.168.9.9", "username": "ubuntu"}),
        Some(&tok),
    );
    assert!(
        e.starts_with("vault: ssh.otp: HTTP 400"),
        "outside the role's CIDR: {e}"
    );
}

fn resource_text(r: &Value) -> Value {
    let text = r["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {r}"));
    serde_json::from_str(text).expect("resource JSON")
}

#[test]
fn kv_resources_and_prompts() {
    let (mut s, tok) = agent_a();
    let dir = unique("res");
    let path = format!("{dir}/r");
    s.call_ok("kv.write", json!({"path": path, "data": {"k": "v"}}), &tok);

    let l = s.request("resources/list", json!({}));
    assert_eq!(l["result"]["resources"][0]["uri"], "kv://agentA/");
    let t = s.request("resources/templates/list", json!({}));
    assert_eq!(
        t["result"]["resourceTemplates"][0]["uriTemplate"],
        "kv://agentA/{path}"
    );

    let meta = json!({"token": tok});
    let r = s.request(
        "resources/read",
        json!({"uri": format!("kv://agentA/{path}"), "_meta": meta}),
    );
    assert_eq!(resource_text(&r), json!({"data": {"k": "v"}, "version": 1}));
    let r = s.request(
        "resources/read",
        json!({"uri": format!("kv://agentA/{dir}/"), "_meta": meta}),
    );
    assert_eq!(resource_text(&r), json!({"keys": ["r"]}));

    // `?version=N` reads an older version; any other query is refused.
    s.call_ok("kv.write", json!({"path": path, "data": {"k": "v2"}}), &tok);
    let r = s.request(
        "resources/read",
        json!({"uri": format!("kv://agentA/{path}?version=1"), "_meta": meta}),
    );
    assert_eq!(resource_text(&r), json!({"data": {"k": "v"}, "version": 1}));
    let r = s.request(
        "resources/read",
        json!({"uri": format!("kv://agentA/{path}"), "_meta": meta}),
    );
    assert_eq!(
        resource_text(&r),
        json!({"data": {"k": "v2"}, "version": 2})
    );
    for bad in ["?version=0", "?version=x", "?v=1", "/?version=1"] {
        let r = s.request(
            "resources/read",
            json!({"uri": format!("kv://agentA/{path}{bad}"), "_meta": meta}),
        );
        let m = r["error"]["message"].as_str().unwrap_or_default();
        assert!(m.starts_with("invalid arguments: "), "{bad}: {r}");
    }

    let denied = |r: &Value| {
        r["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let r = s.request(
        "resources/read",
        json!({"uri": format!("kv://agentB/{path}"), "_meta": meta}),
    );
    assert!(denied(&r).starts_with("denied: "), "{r}");
    let r = s.request(
        "resources/read",
        json!({"uri": format!("kv://agentA/{path}")}),
    );
    assert_eq!(denied(&r), "denied: no token", "{r}");
    let narrow = token_for("agentA", None, &["kv:elsewhere/*"]);
    let r = s.request(
        "resources/read",
        json!({"uri": format!("kv://agentA/{path}"), "_meta": {"token": narrow}}),
    );
    assert!(
        denied(&r).starts_with("denied: resource not granted"),
        "{r}"
    );
    let r = s.request(
        "resources/read",
        json!({"uri": "kv://agentA/../agentB/x", "_meta": meta}),
    );
    assert!(
        r["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("invalid")),
        "{r}"
    );

    let p = s.request("prompts/list", json!({}));
    let names: Vec<&str> = p["result"]["prompts"]
        .as_array()
        .expect("prompts")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["kv_read", "kv_write"]);
    let g = s.request(
        "prompts/get",
        json!({"name": "kv_read", "arguments": {"path": path}, "_meta": meta}),
    );
    let text = g["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{g}"));
    assert!(text.contains("kv.read") && text.contains(&path), "{text}");
    let g = s.request(
        "prompts/get",
        json!({"name": "kv_write", "arguments": {"path": path, "description": "the staging login"}, "_meta": meta}),
    );
    let text = g["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{g}"));
    assert!(
        text.contains("kv.write") && text.contains("the staging login"),
        "{text}"
    );
    let read_only = token_for("agentA", Some("kv.read"), &[]);
    let g = s.request(
        "prompts/get",
        json!({"name": "kv_write", "arguments": {"path": path, "description": "x"}, "_meta": {"token": read_only}}),
    );
    assert!(denied(&g).starts_with("denied: tool not granted"), "{g}");
    let g = s.request(
        "prompts/get",
        json!({"name": "kv_read", "arguments": {"path": "../x"}, "_meta": meta}),
    );
    assert!(g.get("error").is_some(), "{g}");
}

/// A fresh ed25519 key pair in `dir` (`id`, `id.pub`); returns the public key line.
fn ssh_public_key(dir: &std::path::Path) -> String {
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(dir.join("id"))
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
    std::fs::read_to_string(dir.join("id.pub")).expect("pub")
}

/// A token for agentA that expires in `secs` (and reveals what it reads).
fn short_token(secs: u64, resources: &[&str]) -> String {
    use mcpvault::token::{mint, MintSpec, ResourcePattern};
    let patterns = |list: &[&str]| -> Vec<ResourcePattern> {
        list.iter()
            .map(|r| r.parse::<ResourcePattern>().expect("resource"))
            .collect()
    };
    let spec = MintSpec {
        subject: Some("agentA".into()),
        ttl: std::time::Duration::from_secs(secs),
        resources: patterns(resources),
        reveal: patterns(&["db:*", "ssh:*", "kv:*"]),
        ..MintSpec::default()
    };
    mint(&crate::harness::test_key(), &spec).expect("mint")
}

/// Seconds between the two times of `ssh-keygen -L`'s "Valid: from A to B" line.
fn cert_validity_secs(listing: &str) -> i64 {
    // Days since 1970-01-01 of a civil date (proleptic Gregorian).
    fn days(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146097 + doe - 719468
    }
    fn secs(t: &str) -> i64 {
        let n: Vec<i64> = t
            .split(['-', 'T', ':'])
            .map(|p| p.parse().expect("number"))
            .collect();
        days(n[0], n[1], n[2]) * 86400 + n[3] * 3600 + n[4] * 60 + n[5]
    }
    let line = listing
        .lines()
        .find(|l| l.trim_start().starts_with("Valid: from "))
        .unwrap_or_else(|| panic!("no validity in {listing}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    secs(words[4]) - secs(words[2])
}

#[test]
fn credentials_never_outlive_the_token() {
    let mut s = Server::start("agentA", &[]);
    let tok = short_token(60, &[]);

    // An SSH certificate asked for 72 hours ends with the token.
    let dir = tempfile::tempdir().expect("tempdir");
    let public_key = ssh_public_key(dir.path());
    let r = s.call_ok(
        "ssh.sign",
        json!({"role": "ca-user", "public_key": public_key, "valid_principals": ["root"], "ttl": "72h"}),
        &tok,
    );
    let capped = r["capped_to_seconds"].as_u64().expect("capped_to_seconds");
    assert!((1..=60).contains(&capped), "{r}");
    let cert_path = dir.path().join("id-cert.pub");
    let cert = r["signed_key"].as_str().expect("signed_key");
    std::fs::write(&cert_path, format!("{cert}\n")).expect("write");
    let out = std::process::Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(&cert_path)
        .output()
        .expect("ssh-keygen -L");
    let listing = String::from_utf8_lossy(&out.stdout);
    // Vault backdates the start by 30 s against clock skew.
    let validity = cert_validity_secs(&listing);
    assert!(validity <= 60 + 30 + 5, "valid for {validity} s: {listing}");

    // A long-lived token asking for less gets what it asked, uncapped.
    let long = token_for("agentA", None, &[]);
    let r = s.call_ok(
        "ssh.sign",
        json!({"role": "ca-user", "public_key": public_key, "ttl": "10m"}),
        &long,
    );
    assert_eq!(r.get("capped_to_seconds"), None, "{r}");

    // A database lease renewed for an hour through a 60 s token: cut to the token.
    let c = s.call_ok("db.issue_creds", json!({"role": "readonly"}), &tok);
    let lease = c["lease_id"].as_str().expect("lease_id").to_string();
    let r = s.call_ok(
        "db.renew",
        json!({"lease_id": lease, "increment": 3600}),
        &tok,
    );
    let capped = r["capped_to_seconds"].as_u64().expect("capped_to_seconds");
    assert!((1..=60).contains(&capped), "{r}");
    let d = r["lease_duration"].as_u64().expect("lease_duration");
    assert!(d <= 60, "lease renewed for {d} s: {r}");
    s.call_ok("db.revoke", json!({"lease_id": lease}), &tok);
}

#[test]
fn ssh_principals_are_a_resource() {
    let mut s = Server::start("agentA", &[]);
    let tok = token_for("agentA", None, &["ssh_principal:deploy-*"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let public_key = ssh_public_key(dir.path());
    let sign = |s: &mut Server, principals: Value| {
        let mut args = json!({"role": "ca-user", "public_key": public_key, "ttl": "5m"});
        if !principals.is_null() {
            args["valid_principals"] = principals;
        }
        s.call("ssh.sign", args, Some(&tok))
    };
    let r = sign(&mut s, json!(["deploy-a", "deploy-b"]));
    assert_ne!(r["isError"], json!(true), "{r}");
    // One principal outside the grant refuses the whole certificate.
    for principals in [json!(["deploy-a", "root"]), json!("deploy-a,root")] {
        let r = sign(&mut s, principals);
        assert_eq!(r["isError"], json!(true), "{r}");
        let t = r["content"][0]["text"].as_str().unwrap_or_default();
        assert_eq!(
            t,
            "denied: resource not granted: ssh_principal:root \
             (token admits ssh_principal:deploy-*)"
        );
    }
    // None named (the role's default user) is refused when principals are restricted.
    let r = sign(&mut s, Value::Null);
    let t = r["content"][0]["text"].as_str().unwrap_or_default();
    assert!(
        t.starts_with("denied: resource not granted: ssh_principal"),
        "{t}"
    );
    // The OTP username is a principal too.
    let e = s.call_err(
        "ssh.otp",
        json!({"role": "otp-role", "ip": "127.0.0.1", "username": "ubuntu"}),
        Some(&tok),
    );
    assert_eq!(
        e,
        "denied: resource not granted: ssh_principal:ubuntu (token admits ssh_principal:deploy-*)"
    );
}

/// `mcpvault policy` makes Vault a second gate: a server whose Vault token holds only
/// the generated policy serves its subject, and Vault itself refuses another
/// subject's namespace and ungranted keys.
#[test]
fn the_generated_policy_is_enough_and_vault_refuses_the_rest() {
    let root = crate::harness::test_key().public_key;
    let tok = token_for(
        "agentA",
        Some("kv.*,transit.encrypt,db.*,ssh.sign"),
        &["kv:pol/*", "transit:app-aes", "db:readonly", "ssh:ca-user"],
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcpvault"))
        .args([
            "policy",
            "--subject",
            "agentA",
            "--token",
            &tok,
            "--pubkey",
            &root,
        ])
        .output()
        .expect("mcpvault policy");
    let hcl = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(hcl.contains("secret/data/mcp/agentA/pol/*"), "{hcl}");
    assert!(!hcl.contains("transit/decrypt"), "{hcl}");

    let name = unique("pol");
    let (code, v) = bao(
        "PUT",
        &format!("sys/policies/acl/{name}"),
        Some(&json!({"policy": hcl})),
    );
    assert!(code == 204 || code == 200, "{code} {v}");
    let (code, v) = bao(
        "POST",
        "auth/token/create",
        Some(&json!({"policies": [name], "no_default_policy": true, "ttl": "10m"})),
    );
    assert_eq!(code, 200, "{v}");
    let vault_token = v["auth"]["client_token"]
        .as_str()
        .expect("client_token")
        .to_string();

    // Only that Vault identity: no root token, no AppRole.
    let env = [
        ("VAULT_TOKEN", vault_token.as_str()),
        ("VAULT_ROLE_ID", ""),
        ("VAULT_SECRET_ID", ""),
    ];
    let mut a = Server::start("agentA", &env);
    let path = format!("pol/{}", unique("x"));
    a.call_ok("kv.write", json!({"path": path, "data": {"k": "v"}}), &tok);
    let r = a.call_ok("kv.read", json!({"path": path}), &tok);
    assert_eq!(r["data"], json!({"k": "v"}));
    a.call_ok("kv.list", json!({"prefix": "pol/"}), &tok);
    a.call_ok(
        "transit.encrypt",
        json!({"key": "app-aes", "plaintext": "aGk="}),
        &tok,
    );
    // Database credentials, through a child token the policy lets it create.
    let c = a.call_ok("db.issue_creds", json!({"role": "readonly"}), &tok);
    let lease = c["lease_id"].as_str().expect("lease_id").to_string();
    let user = c["username"].as_str().expect("username").to_string();
    let pass = c["password"].as_str().expect("password").to_string();
    assert_eq!(psql_login(&user, &pass).as_deref(), Ok(user.as_str()));
    a.call_ok(
        "db.renew",
        json!({"lease_id": lease, "increment": 60}),
        &tok,
    );
    a.call_ok("db.revoke", json!({"lease_id": lease}), &tok);
    // An SSH certificate (the role's TTLs are readable to it).
    let dir = tempfile::tempdir().expect("tempdir");
    let public_key = ssh_public_key(dir.path());
    a.call_ok(
        "ssh.sign",
        json!({"role": "ca-user", "public_key": public_key, "valid_principals": ["ubuntu"]}),
        &tok,
    );

    // The same Vault identity serving another subject: Vault refuses, whatever
    // mcpvault's own checks would say (the capability token here allows it).
    let tok_b = token_for("agentB", None, &[]);
    let mut b = Server::start("agentB", &env);
    let e = b.call_err("kv.read", json!({"path": path}), Some(&tok_b));
    assert!(e.starts_with("vault: kv.read: HTTP 403"), "{e}");
    let e = b.call_err(
        "transit.decrypt",
        json!({"key": "app-aes", "ciphertext": "vault:v1:AAAA"}),
        Some(&tok_b),
    );
    assert!(e.starts_with("vault: transit.decrypt: HTTP 403"), "{e}");
}

/// Database credentials end with the token that obtained them (Vault caps a lease at
/// its child token's TTL and revokes it when the token expires): a login that works
/// stops working once a 15-second token has expired, though the role's TTL is 1 h.
#[test]
fn database_credentials_die_with_an_expiring_token() {
    let mut s = Server::start("agentA", &[]);
    let tok = short_token(15, &[]);
    let c = s.call_ok("db.issue_creds", json!({"role": "readonly"}), &tok);
    let user = c["username"].as_str().expect("username").to_string();
    let pass = c["password"].as_str().expect("password").to_string();
    let d = c["lease_duration"].as_u64().expect("lease_duration");
    assert!(d <= 15, "lease of {d} s through a 15 s token: {c}");
    assert_eq!(c["capped_to_seconds"].as_u64(), Some(d), "{c}");
    assert_eq!(psql_login(&user, &pass).as_deref(), Ok(user.as_str()));
    let gone = crate::harness::poll_until(std::time::Duration::from_secs(60), || {
        psql_login(&user, &pass).is_err().then_some(())
    });
    assert!(gone.is_some(), "credentials outlived their token");
}

/// Revoking a token revokes, within seconds, the leases obtained through it and its
/// descendants; credentials of its parent keep working.
#[test]
fn revoking_a_token_revokes_its_database_credentials() {
    use mcpvault::token::{attenuate, AttenuateSpec};
    let dir = tempfile::tempdir().expect("tempdir");
    let list = dir.path().join("revoked.txt");
    std::fs::write(&list, "").expect("list");
    let mut s = Server::start(
        "agentA",
        &[("MCPVAULT_REVOCATION_FILE", list.to_str().expect("utf-8"))],
    );
    let parent = token_for("agentA", None, &[]);
    let child = attenuate(&parent, None, &AttenuateSpec::default()).expect("attenuate");
    let grandchild = attenuate(&child, None, &AttenuateSpec::default()).expect("attenuate");
    let login = |s: &mut Server, tok: &str| {
        let c = s.call_ok("db.issue_creds", json!({"role": "readonly"}), tok);
        let u = c["username"].as_str().expect("username").to_string();
        let p = c["password"].as_str().expect("password").to_string();
        assert_eq!(psql_login(&u, &p).as_deref(), Ok(u.as_str()));
        (u, p)
    };
    let (pu, pp) = login(&mut s, &parent);
    let (cu, cp) = login(&mut s, &child);
    let (gu, gp) = login(&mut s, &grandchild);

    // Revoke the middle token: it and what derives from it lose their credentials.
    std::fs::write(
        &list,
        format!("{}\n", crate::harness::last_revocation_id(&child)),
    )
    .expect("revoke");
    let started = std::time::Instant::now();
    let gone = crate::harness::poll_until(std::time::Duration::from_secs(30), || {
        (psql_login(&cu, &cp).is_err() && psql_login(&gu, &gp).is_err()).then_some(())
    });
    assert!(gone.is_some(), "revoked token's credentials still work");
    eprintln!(
        "leases revoked {:?} after the revocation",
        started.elapsed()
    );
    assert_eq!(psql_login(&pu, &pp).as_deref(), Ok(pu.as_str()));
    let e = s.call_err("db.issue_creds", json!({"role": "readonly"}), Some(&child));
    assert_eq!(e, "denied: revoked");
}

/// The capability -> child token mapping outlives the server: a token revoked after
/// a restart still loses the credentials it obtained before.
#[test]
fn revocation_after_a_restart_still_revokes_earlier_credentials() {
    use mcpvault::token::{attenuate, AttenuateSpec};
    let dir = tempfile::tempdir().expect("tempdir");
    let list = dir.path().join("revoked.txt");
    std::fs::write(&list, "").expect("list");
    let env = [("MCPVAULT_REVOCATION_FILE", list.to_str().expect("utf-8"))];
    let parent = token_for("agentA", None, &[]);
    let tok = attenuate(&parent, None, &AttenuateSpec::default()).expect("attenuate");
    let mut first = Server::start("agentA", &env);
    let c = first.call_ok("db.issue_creds", json!({"role": "readonly"}), &tok);
    let user = c["username"].as_str().expect("username").to_string();
    let pass = c["password"].as_str().expect("password").to_string();
    assert_eq!(first.close(), Some(0));
    assert_eq!(psql_login(&user, &pass).as_deref(), Ok(user.as_str()));

    let _second = Server::start("agentA", &env);
    std::fs::write(
        &list,
        format!("{}\n", crate::harness::last_revocation_id(&tok)),
    )
    .expect("revoke");
    let gone = crate::harness::poll_until(std::time::Duration::from_secs(30), || {
        psql_login(&user, &pass).is_err().then_some(())
    });
    assert!(
        gone.is_some(),
        "credentials survived the revocation after a restart"
    );
}
