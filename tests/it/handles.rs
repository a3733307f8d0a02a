//! Secrets the agent uses without seeing them: handles instead of values unless the
//! token grants reveal, bound to the token that read them, and never laundered into a
//! place the token could read them back in clear. Against the dev stack's OpenBao;
//! what was stored is checked in OpenBao itself.

use mcpvault::token::{attenuate, AttenuateSpec, ResourcePattern};
use serde_json::{json, Value};

use crate::devstack::{bao, unique};
use crate::harness::{sealed_token_for, text, token_for, token_revealing, Server};

const SUBJECT: &str = "agentH";

fn is_handle(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.starts_with("mcpvault:handle:") && s.len() >= 16 + 22)
}

fn seed(path: &str, data: Value) {
    crate::devstack::seed_kv(SUBJECT, path, data);
}

/// What OpenBao holds at `path` in SUBJECT's namespace.
fn stored(path: &str) -> Value {
    let (code, body) = bao("GET", &format!("secret/data/mcp/{SUBJECT}/{path}"), None);
    assert_eq!(code, 200, "read {path}: {body}");
    body["data"]["data"].clone()
}

fn narrowed(token: &str, reveal: Option<&[&str]>, resources: &[&str]) -> String {
    let parse = |l: &[&str]| -> Vec<ResourcePattern> {
        l.iter().map(|p| p.parse().expect("pattern")).collect()
    };
    let spec = AttenuateSpec {
        reveal: reveal.map(parse),
        resources: parse(resources),
        ..AttenuateSpec::default()
    };
    attenuate(token, None, &spec).expect("attenuate")
}

#[test]
fn values_are_handles_unless_the_token_reveals_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = dir.path().join("audit.log");
    let mut s = Server::start(
        SUBJECT,
        &[("MCPVAULT_AUDIT_LOG", audit.to_str().expect("utf-8"))],
    );
    let path = unique("h/seal");
    let secret = format!("pw-{}", unique("v"));
    seed(
        &path,
        json!({"user": "app", "password": secret, "port": 5432}),
    );

    // Sealed: keys visible, every value a handle; the secret is nowhere.
    let sealed = sealed_token_for(SUBJECT, None, &[]);
    let r = s.call("kv.read", json!({"path": path}), Some(&sealed));
    let data = &r["structuredContent"]["data"];
    assert!(
        ["user", "password", "port"]
            .iter()
            .all(|k| is_handle(&data[k])),
        "{r}"
    );
    assert!(!r.to_string().contains(&secret), "{r}");
    // The kv:// resource too.
    let res = s.request(
        "resources/read",
        json!({"uri": format!("kv://{SUBJECT}/{path}"), "_meta": {"token": sealed}}),
    );
    assert!(!res.to_string().contains(&secret), "{res}");
    assert!(res.to_string().contains("mcpvault:handle:"), "{res}");

    // Reveal granted on this path: values in clear; on another path only: handles.
    let reveals = token_revealing(SUBJECT, None, &[], &["kv:h/*"]);
    let clear = s.call_ok("kv.read", json!({"path": path}), &reveals);
    assert_eq!(clear["data"]["password"], json!(secret));
    assert_eq!(clear["data"]["port"], json!(5432));
    let elsewhere = token_revealing(SUBJECT, None, &[], &["kv:other/*"]);
    let r = s.call_ok("kv.read", json!({"path": path}), &elsewhere);
    assert!(is_handle(&r["data"]["password"]), "{r}");

    // Attenuation narrows reveal, and adding it grants nothing.
    let narrowed_away = narrowed(&reveals, Some(&["kv:other/*"]), &[]);
    let r = s.call_ok("kv.read", json!({"path": path}), &narrowed_away);
    assert!(is_handle(&r["data"]["password"]), "{r}");
    let dropped = narrowed(&reveals, Some(&[]), &[]);
    let r = s.call_ok("kv.read", json!({"path": path}), &dropped);
    assert!(is_handle(&r["data"]["password"]), "{r}");
    let added = narrowed(&sealed, Some(&["kv:*"]), &[]);
    let r = s.call_ok("kv.read", json!({"path": path}), &added);
    assert!(is_handle(&r["data"]["password"]), "{r}");

    // Neither stderr nor the audit log holds the value.
    assert!(!s.stderr().contains(&secret));
    let log = std::fs::read_to_string(&audit).expect("audit log");
    assert!(!log.contains(&secret), "{log}");
    s.close();

    // MCPVAULT_REVEAL=never: handles whatever the token says.
    let mut never = Server::start(SUBJECT, &[("MCPVAULT_REVEAL", "never")]);
    let r = never.call_ok("kv.read", json!({"path": path}), &reveals);
    assert!(is_handle(&r["data"]["password"]), "{r}");
}

#[test]
fn a_handle_copies_a_secret_without_showing_it_and_is_never_laundered() {
    let mut s = Server::start(SUBJECT, &[]);
    let src = unique("h/src");
    let secret = format!("pw-{}", unique("v"));
    seed(&src, json!({"password": secret}));
    // Reveals kv:pub/* and transit:app-aes only; reads h/* as handles.
    let tok = token_revealing(SUBJECT, None, &[], &["kv:pub/*", "transit:app-aes"]);
    let r = s.call_ok("kv.read", json!({"path": src}), &tok);
    let h = r["data"]["password"].as_str().expect("handle").to_string();
    assert!(h.starts_with("mcpvault:handle:"), "{r}");

    // Copy into a path the token cannot reveal: the exact value lands in OpenBao.
    let copy = unique("h/copy");
    s.call_ok(
        "kv.write",
        json!({"path": copy, "data": {"password": h, "note": "copied"}}),
        &tok,
    );
    assert_eq!(stored(&copy), json!({"password": secret, "note": "copied"}));

    // Laundering: into a path it may reveal, or under a transit key whose plaintexts
    // it may reveal. Nothing is written.
    let laundry = unique("pub/laundry");
    let e = s.call_err(
        "kv.write",
        json!({"path": laundry, "data": {"password": h}}),
        Some(&tok),
    );
    assert_eq!(e, "denied: handle would become revealable");
    let (code, _) = bao("GET", &format!("secret/data/mcp/{SUBJECT}/{laundry}"), None);
    assert_eq!(code, 404, "the laundering write reached OpenBao");
    let e = s.call_err(
        "transit.encrypt",
        json!({"key": "app-aes", "plaintext": h}),
        Some(&tok),
    );
    assert_eq!(e, "denied: handle would become revealable");

    // A token that may reveal the source may put it anywhere; a sealed token may
    // encrypt it (it cannot decrypt it in clear either).
    let both = token_revealing(SUBJECT, None, &[], &["kv:pub/*", "kv:h/*"]);
    let h2 = s.call_ok("kv.read", json!({"path": src}), &both);
    assert_eq!(h2["data"]["password"], json!(secret));
    let sealed = sealed_token_for(SUBJECT, None, &[]);
    let hs = s.call_ok("kv.read", json!({"path": src}), &sealed)["data"]["password"].clone();
    let c = s.call_ok(
        "transit.encrypt",
        json!({"key": "app-aes", "plaintext": hs}),
        &sealed,
    );
    let ciphertext = c["ciphertext"].as_str().expect("ciphertext");
    // Sealed decrypt: a handle again; a revealing token sees the original bytes.
    let d = s.call_ok(
        "transit.decrypt",
        json!({"key": "app-aes", "ciphertext": ciphertext}),
        &sealed,
    );
    assert!(is_handle(&d["plaintext"]), "{d}");
    let d = s.call_ok(
        "transit.decrypt",
        json!({"key": "app-aes", "ciphertext": ciphertext}),
        &token_for(SUBJECT, None, &[]),
    );
    use base64::Engine;
    let plain = base64::engine::general_purpose::STANDARD
        .decode(d["plaintext"].as_str().expect("plaintext"))
        .expect("base64");
    assert_eq!(plain, secret.as_bytes());
}

#[test]
fn a_handle_belongs_to_its_token_and_descendants_still_granted_its_source() {
    let mut s = Server::start(SUBJECT, &[]);
    let src = unique("h/own");
    seed(&src, json!({"k": "v-own"}));
    let parent = sealed_token_for(SUBJECT, None, &[]);
    let child = narrowed(&parent, None, &["kv:h/*"]);
    let sibling = narrowed(&parent, None, &["kv:h/*"]);
    let h = s.call_ok("kv.read", json!({"path": src}), &child)["data"]["k"].clone();
    let dest = unique("h/dest");
    let write = |s: &mut Server, tok: &str| {
        s.call(
            "kv.write",
            json!({"path": dest, "data": {"k": h}}),
            Some(tok),
        )
    };
    // The parent and a sibling do not know it; a stranger neither.
    for other in [&parent, &sibling, &sealed_token_for(SUBJECT, None, &[])] {
        let r = write(&mut s, other);
        assert_eq!(text(&r), "denied: unknown handle", "{r}");
    }
    // The creator and its descendants do, while granted the source resource.
    let grandchild = narrowed(&child, None, &["kv:h/*"]);
    for ok in [&child, &grandchild] {
        let r = write(&mut s, ok);
        assert_ne!(r["isError"], json!(true), "{r}");
    }
    let elsewhere = narrowed(&child, None, &["kv:h/dest*", "kv:h/own-none"]);
    let r = write(&mut s, &elsewhere);
    assert!(
        text(&r).starts_with("denied: resource not granted: kv:h/own"),
        "{r}"
    );
    // A well-formed id this server never issued, and a malformed one.
    let unknown = format!("mcpvault:handle:{}", "A".repeat(32));
    let r = s.call(
        "kv.write",
        json!({"path": dest, "data": {"k": unknown}}),
        Some(&child),
    );
    assert_eq!(text(&r), "denied: unknown handle", "{r}");
}

#[test]
fn handles_expire() {
    let mut s = Server::start(SUBJECT, &[("MCPVAULT_HANDLE_TTL", "1")]);
    let src = unique("h/exp");
    seed(&src, json!({"k": "v-exp"}));
    let tok = sealed_token_for(SUBJECT, None, &[]);
    let h = s.call_ok("kv.read", json!({"path": src}), &tok)["data"]["k"].clone();
    let dest = unique("h/exp-dest");
    // Expiry is a matter of the clock: poll until it has passed.
    let expired = crate::harness::poll_until(std::time::Duration::from_secs(30), || {
        let r = s.call(
            "kv.write",
            json!({"path": dest, "data": {"k": h}}),
            Some(&tok),
        );
        (text(&r) == "denied: handle expired").then_some(())
    });
    assert!(expired.is_some(), "the handle never expired");
}

#[test]
fn database_passwords_are_handles_for_a_sealed_token() {
    let mut s = Server::start(SUBJECT, &[]);
    let tok = sealed_token_for(SUBJECT, None, &[]);
    let c = s.call_ok("db.issue_creds", json!({"role": "readonly"}), &tok);
    assert!(is_handle(&c["password"]), "{c}");
    assert!(c["username"].as_str().is_some_and(|u| !u.is_empty()), "{c}");
    let lease = c["lease_id"].as_str().expect("lease").to_string();
    s.call_ok("db.revoke", json!({"lease_id": lease}), &tok);
}
