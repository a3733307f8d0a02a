//! `kms.*` against a real KMS endpoint: moto's server from the dev stack
//! (aliases alias/app, alias/other, alias/sign-ecc, alias/sign-rsa).

use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::devstack::stack_var;
use crate::harness::{dead_url, token_for, Server};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const SUBJECT: &str = "agentA";

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn unb64(v: &Value) -> Vec<u8> {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("expected a base64 string, got {v}"));
    B64.decode(s)
        .unwrap_or_else(|e| panic!("bad base64 from the server ({e}): {s}"))
}

fn kms_token() -> String {
    token_for(SUBJECT, Some("kms.*"), &[])
}

#[test]
fn encrypt_decrypt_round_trip_without_context() {
    let mut s = Server::start(SUBJECT, &[]);
    let t = token_for(SUBJECT, Some("kms.*"), &["kms:alias/app"]);
    let secret = b"round trip without context";
    let enc = s.call_ok(
        "kms.encrypt",
        json!({"plaintext": b64(secret), "key_id": "alias/app"}),
        &t,
    );
    let key_arn = enc["key_id"].as_str().unwrap_or_default().to_string();
    assert!(
        key_arn.ends_with(&stack_var("KMS_KEY_ID")),
        "key_id should be alias/app's ARN: {enc}"
    );
    assert_ne!(unb64(&enc["ciphertext"]), secret.to_vec());
    let dec = s.call_ok(
        "kms.decrypt",
        json!({"ciphertext": enc["ciphertext"], "key_id": "alias/app"}),
        &t,
    );
    assert_eq!(unb64(&dec["plaintext"]), secret.to_vec());
    assert_eq!(dec["key_id"], json!(key_arn));
}

#[test]
fn encryption_context_is_required_and_exact() {
    let mut s = Server::start(SUBJECT, &[]);
    let t = kms_token();
    let secret = "context-bound secret 7f3a";
    let ctx = json!({"tenant": "acme", "purpose": "test"});
    let enc = s.call_ok(
        "kms.encrypt",
        json!({"plaintext": b64(secret.as_bytes()), "key_id": "alias/app", "encryption_context": ctx}),
        &t,
    );
    let dec = s.call_ok(
        "kms.decrypt",
        json!({"ciphertext": enc["ciphertext"], "key_id": "alias/app", "encryption_context": ctx}),
        &t,
    );
    assert_eq!(unb64(&dec["plaintext"]), secret.as_bytes());

    for wrong in [
        json!({"tenant": "acme", "purpose": "other"}),
        json!({"tenant": "acme"}),
        Value::Null,
    ] {
        let mut args = json!({"ciphertext": enc["ciphertext"], "key_id": "alias/app"});
        if !wrong.is_null() {
            args["encryption_context"] = wrong.clone();
        }
        let err = s.call_err("kms.decrypt", args, Some(&t));
        assert!(
            err.starts_with("kms: decrypt: "),
            "context {wrong}: expected a kms decrypt error, got {err}"
        );
        assert!(!err.contains(secret) && !err.contains(&b64(secret.as_bytes())));
    }
    assert!(!s.stderr().contains(secret) && !s.stderr().contains(&b64(secret.as_bytes())));
}

#[test]
fn decrypt_refuses_a_ciphertext_of_another_key() {
    // The token only allows alias/app; a ciphertext made under alias/other must not
    // decrypt through it (the server always names the key to KMS).
    let mut s = Server::start(SUBJECT, &[]);
    let all = kms_token();
    let app_only = token_for(SUBJECT, Some("kms.*"), &["kms:alias/app"]);
    let enc = s.call_ok(
        "kms.encrypt",
        json!({"plaintext": b64(b"other key's data"), "key_id": "alias/other"}),
        &all,
    );
    let err = s.call_err(
        "kms.decrypt",
        json!({"ciphertext": enc["ciphertext"], "key_id": "alias/app"}),
        Some(&app_only),
    );
    assert!(err.starts_with("kms: decrypt: "), "{err}");
    assert!(!err.contains(&b64(b"other key's data")));
}

#[test]
fn default_key_is_used_and_authorized() {
    let mut s = Server::start(SUBJECT, &[("AWS_KMS_DEFAULT_KEY_ID", "alias/app")]);
    let t = token_for(SUBJECT, Some("kms.*"), &["kms:alias/app"]);
    let enc = s.call_ok("kms.encrypt", json!({"plaintext": b64(b"dflt")}), &t);
    assert!(enc["key_id"]
        .as_str()
        .is_some_and(|k| k.ends_with(&stack_var("KMS_KEY_ID"))));
    let dec = s.call_ok("kms.decrypt", json!({"ciphertext": enc["ciphertext"]}), &t);
    assert_eq!(unb64(&dec["plaintext"]), b"dflt");

    // The default key is the resource: a token for another key cannot use it.
    let other = token_for(SUBJECT, Some("kms.*"), &["kms:alias/other"]);
    let err = s.call_err("kms.encrypt", json!({"plaintext": b64(b"x")}), Some(&other));
    assert!(err.starts_with("denied: resource not granted"), "{err}");
}

#[test]
fn generate_data_key_sizes() {
    let mut s = Server::start(SUBJECT, &[]);
    let t = kms_token();
    let ctx = json!({"file": "a.bin"});
    let dk = s.call_ok(
        "kms.generate_data_key",
        json!({"key_id": "alias/app", "key_spec": "AES_256", "encryption_context": ctx}),
        &t,
    );
    let plain = unb64(&dk["plaintext"]);
    assert_eq!(plain.len(), 32);
    assert!(dk["key_id"]
        .as_str()
        .is_some_and(|k| k.ends_with(&stack_var("KMS_KEY_ID"))));
    // The wrapped copy decrypts back to the same data key.
    let dec = s.call_ok(
        "kms.decrypt",
        json!({"ciphertext": dk["ciphertext"], "key_id": "alias/app", "encryption_context": ctx}),
        &t,
    );
    assert_eq!(unb64(&dec["plaintext"]), plain);

    let dflt = s.call_ok("kms.generate_data_key", json!({"key_id": "alias/app"}), &t);
    assert_eq!(unb64(&dflt["plaintext"]).len(), 32, "AES_256 by default");
    let k128 = s.call_ok(
        "kms.generate_data_key",
        json!({"key_id": "alias/app", "key_spec": "AES_128"}),
        &t,
    );
    assert_eq!(unb64(&k128["plaintext"]).len(), 16);
    for n in [1usize, 64, 1024] {
        let r = s.call_ok(
            "kms.generate_data_key",
            json!({"key_id": "alias/app", "number_of_bytes": n}),
            &t,
        );
        assert_eq!(unb64(&r["plaintext"]).len(), n);
    }
}

#[test]
fn ecc_sign_verify() {
    let mut s = Server::start(SUBJECT, &[]);
    let t = token_for(SUBJECT, Some("kms.*"), &["kms:alias/sign-*"]);
    let msg = b"release v1.2.3";
    let alg = "ECDSA_SHA_256";
    let key = "alias/sign-ecc";
    let sig = s.call_ok(
        "kms.sign",
        json!({"key_id": key, "message": b64(msg), "signing_algorithm": alg}),
        &t,
    );
    assert!(sig["key_id"]
        .as_str()
        .is_some_and(|k| k.starts_with("arn:aws:kms:")));
    let verify = |s: &mut Server, m: &[u8], sig: &Value| -> Value {
        s.call_ok(
            "kms.verify",
            json!({"key_id": key, "message": b64(m), "signature": sig, "signing_algorithm": alg}),
            &t,
        )["valid"]
            .clone()
    };
    assert_eq!(verify(&mut s, msg, &sig["signature"]), json!(true));
    assert_eq!(
        verify(&mut s, b"release v1.2.4", &sig["signature"]),
        json!(false)
    );

    // By digest. (moto does not implement MessageType=DIGEST: it hashes the digest
    // again, so only digest-to-digest checks agree there; on AWS a digest signature
    // also verifies against the message.)
    let digest = Sha256::digest(msg);
    let dsig = s.call_ok(
        "kms.sign",
        json!({"key_id": key, "message_digest": b64(&digest), "signing_algorithm": alg}),
        &t,
    );
    let verify_digest = |s: &mut Server, d: &[u8]| -> Value {
        s.call_ok(
            "kms.verify",
            json!({"key_id": key, "message_digest": b64(d), "signature": dsig["signature"], "signing_algorithm": alg}),
            &t,
        )["valid"]
            .clone()
    };
    assert_eq!(verify_digest(&mut s, &digest), json!(true));
    assert_eq!(
        verify_digest(&mut s, &Sha256::digest(b"other")),
        json!(false)
    );
}

#[test]
fn rsa_sign_verify() {
    let mut s = Server::start(SUBJECT, &[]);
    let t = token_for(
        SUBJECT,
        Some("kms.sign,kms.verify"),
        &["kms:alias/sign-rsa"],
    );
    let key = "alias/sign-rsa";
    let msg = b"an RSA-signed message";
    for alg in ["RSASSA_PSS_SHA_256", "RSASSA_PKCS1_V1_5_SHA_256"] {
        let sig = s.call_ok(
            "kms.sign",
            json!({"key_id": key, "message": b64(msg), "signing_algorithm": alg}),
            &t,
        );
        let good = unb64(&sig["signature"]);
        assert_eq!(good.len(), 256, "RSA_2048 signature");
        let mut bad = good.clone();
        bad[10] ^= 0x01;
        for (sig_bytes, expect) in [(good, true), (bad, false)] {
            let r = s.call_ok(
                "kms.verify",
                json!({"key_id": key, "message": b64(msg), "signature": b64(&sig_bytes), "signing_algorithm": alg}),
                &t,
            );
            assert_eq!(r["valid"], json!(expect), "{alg}");
        }
    }
}

#[test]
fn token_key_restriction_denies_before_any_request() {
    // KMS is a closed port here: a call that reached it would fail with `kms: ...`,
    // so a `denied: ...` answer proves the gate stopped it first.
    let url = dead_url();
    let mut s = Server::start(SUBJECT, &[("AWS_ENDPOINT_URL_KMS", &url)]);
    let t = token_for(SUBJECT, Some("kms.*"), &["kms:alias/app"]);
    let calls = [
        (
            "kms.encrypt",
            json!({"plaintext": b64(b"x"), "key_id": "alias/other"}),
        ),
        (
            "kms.decrypt",
            json!({"ciphertext": b64(b"x"), "key_id": "alias/other"}),
        ),
        (
            "kms.generate_data_key",
            json!({"key_id": "alias/application"}),
        ),
        (
            "kms.sign",
            json!({"key_id": "alias/sign-ecc", "message": b64(b"m"), "signing_algorithm": "ECDSA_SHA_256"}),
        ),
        (
            "kms.verify",
            json!({"key_id": stack_var("KMS_KEY_ID"), "message": b64(b"m"), "signature": b64(b"s"), "signing_algorithm": "ECDSA_SHA_256"}),
        ),
    ];
    for (tool, args) in calls {
        let err = s.call_err(tool, args, Some(&t));
        assert!(
            err.starts_with("denied: resource not granted"),
            "{tool}: {err}"
        );
    }
    // A token for KMS tools cannot name the key through another tool family either.
    let kv_only = token_for(SUBJECT, Some("kv.*"), &[]);
    let err = s.call_err(
        "kms.encrypt",
        json!({"plaintext": b64(b"x"), "key_id": "alias/app"}),
        Some(&kv_only),
    );
    assert!(err.starts_with("denied: tool not granted"), "{err}");
    // The granted key does go out, and fails on the closed port.
    let err = s.call_err(
        "kms.encrypt",
        json!({"plaintext": b64(b"x"), "key_id": "alias/app"}),
        Some(&t),
    );
    assert!(err.starts_with("kms: encrypt: "), "{err}");
}

#[test]
fn invalid_arguments_are_refused_before_any_request() {
    let url = dead_url();
    let mut s = Server::start(SUBJECT, &[("AWS_ENDPOINT_URL_KMS", &url)]);
    let t = kms_token();
    let ecc = |extra: Value| {
        let mut a = json!({"key_id": "alias/sign-ecc", "signing_algorithm": "ECDSA_SHA_256"});
        if let (Some(a), Some(e)) = (a.as_object_mut(), extra.as_object()) {
            a.extend(e.clone());
        }
        a
    };
    let cases = [
        (
            "kms.encrypt",
            json!({"plaintext": "not base64 !!", "key_id": "alias/app"}),
            "`plaintext` is not valid base64",
        ),
        (
            "kms.encrypt",
            json!({"plaintext": "", "key_id": "alias/app"}),
            "`plaintext` must decode to 1-4096 bytes",
        ),
        (
            "kms.encrypt",
            json!({"plaintext": b64(&[0u8; 4097]), "key_id": "alias/app"}),
            "`plaintext` must decode to 1-4096 bytes",
        ),
        (
            "kms.decrypt",
            json!({"ciphertext": "%%%", "key_id": "alias/app"}),
            "`ciphertext` is not valid base64",
        ),
        (
            "kms.sign",
            ecc(json!({})),
            "one of `message` or `message_digest` is required",
        ),
        (
            "kms.sign",
            ecc(json!({"message": b64(b"m"), "message_digest": b64(&[0u8; 32])})),
            "not both",
        ),
        (
            "kms.verify",
            ecc(json!({"message": b64(b"m"), "signature": "@@"})),
            "`signature` is not valid base64",
        ),
        (
            "kms.verify",
            ecc(json!({"signature": b64(b"s")})),
            "one of `message` or `message_digest` is required",
        ),
        (
            "kms.generate_data_key",
            json!({"key_id": "alias/app", "key_spec": "AES_256", "number_of_bytes": 8}),
            "not both",
        ),
        (
            "kms.generate_data_key",
            json!({"key_id": "alias/app", "number_of_bytes": 0}),
            "`number_of_bytes` must be 1-1024",
        ),
        (
            "kms.generate_data_key",
            json!({"key_id": "alias/app", "number_of_bytes": 1025}),
            "`number_of_bytes` must be 1-1024",
        ),
    ];
    for (tool, args, want) in cases {
        let err = s.call_err(tool, args.clone(), Some(&t));
        assert!(
            err.starts_with("invalid arguments: ") && err.contains(want),
            "{tool} {args}: expected `{want}`, got {err}"
        );
    }
    // Values outside the schema's enums are refused by argument parsing (no request).
    for (tool, args) in [
        (
            "kms.generate_data_key",
            json!({"key_id": "alias/app", "key_spec": "AES_512"}),
        ),
        (
            "kms.sign",
            ecc(json!({"message": b64(b"m"), "signing_algorithm": "MD5"})),
        ),
    ] {
        let err = s.call_err(tool, args, Some(&t));
        assert!(!err.starts_with("kms:"), "{tool}: {err}");
    }
    // Without key_id and without AWS_KMS_DEFAULT_KEY_ID there is nothing to authorize.
    let err = s.call_err("kms.encrypt", json!({"plaintext": b64(b"x")}), Some(&t));
    assert!(
        err.starts_with("invalid arguments: ") && err.contains("key_id"),
        "{err}"
    );
}

#[test]
fn unreachable_kms_fails_fast_with_a_kms_error() {
    let url = dead_url();
    let mut s = Server::start(SUBJECT, &[("AWS_ENDPOINT_URL_KMS", &url)]);
    let t = kms_token();
    let started = Instant::now();
    let err = s.call_err(
        "kms.encrypt",
        json!({"plaintext": b64(b"unreachable secret"), "key_id": "alias/app"}),
        Some(&t),
    );
    assert!(err.starts_with("kms: encrypt: "), "{err}");
    assert!(!err.contains(&b64(b"unreachable secret")));
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
    // The legacy variable is honoured too.
    let mut s = Server::start(
        SUBJECT,
        &[("AWS_ENDPOINT_URL_KMS", ""), ("AWS_KMS_ENDPOINT", &url)],
    );
    let err = s.call_err(
        "kms.decrypt",
        json!({"ciphertext": b64(b"c"), "key_id": "alias/app"}),
        Some(&t),
    );
    assert!(
        err.starts_with("kms: decrypt: ") && err.contains("onnection refused"),
        "{err}"
    );
}

#[test]
fn silent_kms_endpoint_times_out() {
    // Accepts connections and never answers: the operation timeout must end the call.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in listener.incoming().take(4) {
            conns.push(c);
        }
        std::thread::sleep(Duration::from_secs(20));
    });
    let mut s = Server::start(SUBJECT, &[("AWS_ENDPOINT_URL_KMS", &url)]);
    let t = kms_token();
    let started = Instant::now();
    let err = s.call_err(
        "kms.generate_data_key",
        json!({"key_id": "alias/app"}),
        Some(&t),
    );
    let took = started.elapsed();
    assert!(err.starts_with("kms: generate_data_key: "), "{err}");
    assert!(
        err.contains("timeout") || err.contains("timed out"),
        "{err}"
    );
    assert!(took < Duration::from_secs(13), "took {took:?}");
    drop(held);
}

#[test]
fn without_any_aws_config_the_server_starts_and_kms_fails_cleanly() {
    let mut s = Server::spawn_bare(SUBJECT, &[]);
    s.initialize();
    let tools = s.request("tools/list", json!({}));
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    for n in [
        "kms.encrypt",
        "kms.decrypt",
        "kms.generate_data_key",
        "kms.sign",
        "kms.verify",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let t = kms_token();
    for _ in 0..2 {
        let err = s.call_err(
            "kms.encrypt",
            json!({"plaintext": b64(b"bare"), "key_id": "alias/app"}),
            Some(&t),
        );
        assert!(err.starts_with("kms: encrypt: "), "{err}");
    }
    // Still serving.
    let err = s.call_err(
        "kms.verify",
        json!({"key_id": "alias/app", "message": b64(b"m"), "signature": b64(b"s"), "signing_algorithm": "ECDSA_SHA_256"}),
        Some(&t),
    );
    assert!(err.starts_with("kms: verify: "), "{err}");
    assert_eq!(s.close(), Some(0));
}

#[test]
fn kms_tools_advertise_schemas_and_annotations() {
    let mut s = Server::spawn_bare(SUBJECT, &[]);
    s.initialize();
    let tools = s.request("tools/list", json!({}));
    let list = tools["result"]["tools"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let get = |name: &str| -> Value {
        list.iter()
            .find(|t| t["name"] == json!(name))
            .cloned()
            .unwrap_or_else(|| panic!("{name} not listed"))
    };
    for (name, out_field) in [
        ("kms.encrypt", "ciphertext"),
        ("kms.decrypt", "plaintext"),
        ("kms.generate_data_key", "ciphertext"),
        ("kms.sign", "signature"),
        ("kms.verify", "valid"),
    ] {
        let t = get(name);
        assert!(
            t["description"].as_str().is_some_and(|d| d.len() > 40),
            "{name}"
        );
        assert!(
            t["inputSchema"]["properties"]["key_id"].is_object(),
            "{name}: {t}"
        );
        assert!(
            t["outputSchema"]["properties"][out_field].is_object(),
            "{name}: {t}"
        );
        assert_eq!(t["annotations"]["destructiveHint"], json!(false), "{name}");
    }
    assert_eq!(
        get("kms.verify")["annotations"]["readOnlyHint"],
        json!(true)
    );
    assert_eq!(
        get("kms.decrypt")["annotations"]["readOnlyHint"],
        json!(false)
    );
    let gdk = get("kms.generate_data_key");
    assert_eq!(
        gdk["inputSchema"]["properties"]["number_of_bytes"]["maximum"],
        json!(1024)
    );
}

/// `kms.decrypt` without `key_id` and without a default key touches the whole `kms`
/// kind: a token that does not restrict KMS keys may (KMS finds the key from the
/// ciphertext and the result names it), one restricted to keys may not, and nothing
/// is sent for it.
#[test]
fn decrypt_without_a_key_needs_a_token_that_does_not_restrict_keys() {
    let mut s = Server::start(SUBJECT, &[]);
    let open = kms_token();
    let enc = s.call_ok(
        "kms.encrypt",
        json!({"plaintext": b64(b"keyless"), "key_id": "alias/app"}),
        &open,
    );
    let dec = s.call_ok(
        "kms.decrypt",
        json!({"ciphertext": enc["ciphertext"]}),
        &open,
    );
    assert_eq!(unb64(&dec["plaintext"]), b"keyless".to_vec());
    assert_eq!(dec["key_id"], enc["key_id"], "{dec}");

    let narrow = token_for(SUBJECT, Some("kms.*"), &["kms:alias/app"]);
    let err = s.call_err(
        "kms.decrypt",
        json!({"ciphertext": enc["ciphertext"]}),
        Some(&narrow),
    );
    assert!(
        err.starts_with("denied: resource not granted: kms (none named"),
        "{err}"
    );
}
