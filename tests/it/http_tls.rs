//! `mcpvault-http` over TLS and mTLS (rustls), with the official MCP Python SDK as the
//! client: a throwaway CA, server and client certificates made with `rcgen` for each
//! test. A client trusting the CA calls a tool over https; under
//! `MCPVAULT_TLS_CLIENT_CA` a client without a certificate, or with one from another
//! CA, is refused at the handshake (nothing reaches the pipeline: the audit log stays
//! empty) and the server keeps serving; bad TLS configuration stops startup with
//! exit 2 and names the file.

use std::path::PathBuf;
use std::process::Command;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::Value;

use crate::devstack::unique;
use crate::harness::{test_key, token_for};
use crate::http_server::{gauge, get, python, Http};

/// PEM files of one throwaway PKI.
struct Pki {
    dir: tempfile::TempDir,
}

/// Parameters of a test certificate: `sans` (names or IP addresses), valid for a day.
fn params(cn: &str, sans: &[&str]) -> CertificateParams {
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut p = CertificateParams::new(sans).expect("certificate params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.not_before = rcgen::date_time_ymd(2000, 1, 1);
    p.not_after = rcgen::date_time_ymd(2100, 1, 1);
    p.use_authority_key_identifier_extension = true;
    p
}

impl Pki {
    /// CA `ca`, a server certificate for localhost / 127.0.0.1 (`server`), a client
    /// certificate from `ca` (`client`), and one from another CA (`stranger`); each
    /// as `NAME.pem` + `NAME.key`.
    fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        let save = |name: &str, cert: &str, key: &KeyPair| {
            let d = pki.dir.path();
            std::fs::write(d.join(format!("{name}.pem")), cert).expect("write cert");
            std::fs::write(d.join(format!("{name}.key")), key.serialize_pem()).expect("write key");
        };
        let ca = |cn: &str| {
            let mut p = params(cn, &[]);
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let key = KeyPair::generate().expect("key");
            let cert = p.self_signed(&key).expect("self-sign");
            save(cn, &cert.pem(), &key);
            Issuer::new(p, key)
        };
        let (ours, other) = (ca("ca"), ca("other-ca"));
        for (name, issuer, sans, usage) in [
            (
                "server",
                &ours,
                &["localhost", "127.0.0.1"][..],
                ExtendedKeyUsagePurpose::ServerAuth,
            ),
            (
                "client",
                &ours,
                &[][..],
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
            (
                "stranger",
                &other,
                &[][..],
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
        ] {
            let mut p = params(name, sans);
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = vec![usage];
            let key = KeyPair::generate().expect("key");
            let cert = p.signed_by(&key, issuer).expect("sign");
            save(name, &cert.pem(), &key);
        }
        pki
    }

    fn path(&self, file: &str) -> String {
        self.dir.path().join(file).display().to_string()
    }

    fn server_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("MCPVAULT_TLS_CERT", self.path("server.pem")),
            ("MCPVAULT_TLS_KEY", self.path("server.key")),
        ]
    }
}

fn start(env: &[(&'static str, String)]) -> Http {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Http::start(&env)
}

/// One `kv.write` through the Python SDK on `h`, trusting `pki`'s CA when `ca`, with
/// `client` (`"client"`, `"stranger"`) as the client certificate when given.
fn write(h: &Http, pki: &Pki, ca: bool, client: Option<&str>, token: &str) -> Value {
    let mut env = vec![
        ("MH_URL", h.url("/mcp")),
        ("TOOL", "kv.write".to_string()),
        (
            "ARGS",
            r#"{"path": "tls/x", "data": {"over": "tls"}}"#.to_string(),
        ),
        ("TOKEN", token.to_string()),
    ];
    if ca {
        env.push(("MH_CA", pki.path("ca.pem")));
    }
    if let Some(c) = client {
        env.push(("MH_CERT", pki.path(&format!("{c}.pem"))));
        env.push(("MH_KEY", pki.path(&format!("{c}.key"))));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    python("call", &env)
}

fn refused(r: &Value) -> bool {
    r["error"].as_str().is_some_and(|e| !e.is_empty())
}

#[test]
fn https_with_the_python_sdk() {
    let pki = Pki::new();
    let h = start(&pki.server_env());
    assert!(h.url("/mcp").starts_with("https://"));
    let subject = unique("tls").replace('-', "_");
    let token = token_for(&subject, None, &[]);
    let r = write(&h, &pki, true, None, &token);
    assert_eq!(r["is_error"], Value::Bool(false), "{r}");
    let (code, body) =
        crate::devstack::bao("GET", &format!("secret/data/mcp/{subject}/tls/x"), None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["data"]["over"], "tls");
    // Without the CA the client does not trust the server: the certificate is checked.
    let r = write(&h, &pki, false, None, &token);
    assert!(refused(&r), "{r}");
    // Plain HTTP on the TLS port gets no answer, and the server keeps serving.
    let plain = format!("http://{}/healthz", h.addr);
    assert_eq!(
        get(&plain, &["-o", "/dev/null", "-w", "%{http_code}"]),
        "000"
    );
    let ca = pki.path("ca.pem");
    assert_eq!(get(&h.url("/healthz"), &["--cacert", &ca]), "ok\n");
    let metrics = get(&h.url("/metrics"), &["--cacert", &ca]);
    assert!(
        gauge(&metrics, "mcpvault_tls_handshake_failures_total") >= 2.0,
        "{metrics}"
    );
}

#[test]
fn mtls_refuses_clients_without_a_certificate_from_the_ca() {
    let pki = Pki::new();
    let audit = pki.dir.path().join("audit.log");
    let mut env = pki.server_env();
    env.push(("MCPVAULT_TLS_CLIENT_CA", pki.path("ca.pem")));
    env.push(("MCPVAULT_AUDIT_LOG", audit.display().to_string()));
    let h = start(&env);
    let subject = unique("mtls").replace('-', "_");
    let token = token_for(&subject, None, &[]);

    let r = write(&h, &pki, true, None, &token);
    assert!(refused(&r), "no client certificate: {r}");
    let r = write(&h, &pki, true, Some("stranger"), &token);
    assert!(refused(&r), "another CA's certificate: {r}");
    // Refused at the handshake: no call reached the pipeline (it audits every call
    // before any backend request), so Vault saw nothing of them.
    let entries = std::fs::read_to_string(&audit).unwrap_or_default();
    assert!(
        !entries.contains("kv.write"),
        "a refused connection reached the pipeline:\n{entries}"
    );

    // The server kept accepting: a client with a certificate from the CA works.
    let r = write(&h, &pki, true, Some("client"), &token);
    assert_eq!(r["is_error"], Value::Bool(false), "{r}");
    let entries = std::fs::read_to_string(&audit).unwrap_or_default();
    assert!(entries.contains("kv.write"), "{entries}");

    let tls = ["--cacert", &pki.path("ca.pem")];
    let with_cert = [
        "--cacert",
        &pki.path("ca.pem"),
        "--cert",
        &pki.path("client.pem"),
        "--key",
        &pki.path("client.key"),
    ];
    assert_eq!(
        get(&h.url("/healthz"), &tls),
        "",
        "probe without a certificate"
    );
    let metrics = get(&h.url("/metrics"), &with_cert);
    assert!(
        gauge(&metrics, "mcpvault_tls_handshake_failures_total") >= 3.0,
        "{metrics}"
    );
}

/// `mcpvault-http` with the test key, `env` and nothing else: its exit code and stderr.
fn run_bare(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mcpvault-http"))
        .env_clear()
        .env("MCPVAULT_PUBLIC_KEY", &test_key().public_key)
        .env("MCPVAULT_LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .output()
        .expect("run mcpvault-http");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn bad_tls_configuration_stops_startup_naming_the_file() {
    let pki = Pki::new();
    let (cert, key, ca) = (
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem"),
    );
    let missing: PathBuf = pki.dir.path().join("nowhere.pem");
    let missing = missing.display().to_string();
    let garbage = pki.path("garbage.pem");
    let other_key = pki.path("client.key");
    std::fs::write(&garbage, "-----BEGIN PRIVATE KEY-----\nnot base64 !!\n").expect("write");
    // (environment, what stderr must say)
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            vec![("MCPVAULT_TLS_CERT", &cert)],
            vec!["MCPVAULT_TLS_KEY is not"],
        ),
        (
            vec![("MCPVAULT_TLS_KEY", &key)],
            vec!["MCPVAULT_TLS_CERT is not"],
        ),
        (
            vec![("MCPVAULT_TLS_CLIENT_CA", &ca)],
            vec!["MCPVAULT_TLS_CLIENT_CA needs MCPVAULT_TLS_CERT"],
        ),
        (
            vec![("MCPVAULT_TLS_CERT", &missing), ("MCPVAULT_TLS_KEY", &key)],
            vec!["MCPVAULT_TLS_CERT: cannot read", &missing],
        ),
        (
            vec![("MCPVAULT_TLS_CERT", &cert), ("MCPVAULT_TLS_KEY", &garbage)],
            vec!["MCPVAULT_TLS_KEY", &garbage],
        ),
        // A key where the certificate should be, a certificate where the key should
        // be: both reported at once.
        (
            vec![("MCPVAULT_TLS_CERT", &key), ("MCPVAULT_TLS_KEY", &cert)],
            vec![
                "MCPVAULT_TLS_CERT",
                "no PEM CERTIFICATE",
                "MCPVAULT_TLS_KEY",
                "no PEM private key",
            ],
        ),
        (
            vec![
                ("MCPVAULT_TLS_CERT", &cert),
                ("MCPVAULT_TLS_KEY", &key),
                ("MCPVAULT_TLS_CLIENT_CA", &missing),
            ],
            vec!["MCPVAULT_TLS_CLIENT_CA: cannot read", &missing],
        ),
        // A key that is not the certificate's.
        (
            vec![
                ("MCPVAULT_TLS_CERT", &cert),
                ("MCPVAULT_TLS_KEY", &other_key),
            ],
            vec!["unusable together", &cert],
        ),
    ];
    for (env, wants) in cases {
        let (code, err) = run_bare(&env);
        assert_eq!(code, Some(2), "{env:?}: {err}");
        for want in wants {
            assert!(err.contains(want), "{env:?}: {want:?} missing from: {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
        assert!(!err.contains("listening on"), "{err}");
        // Nothing of a key file is ever quoted.
        assert!(!err.contains("not base64"), "{err}");
    }
}
