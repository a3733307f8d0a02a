//! `mcpvault-http` with the official MCP Python SDK as the client, both protocol
//! generations: two subjects on one process stay in their own namespaces (checked in
//! OpenBao), tokens from `_meta` or headers, no token and a bad token refused, a
//! narrowed token narrows `tools/list`; and the HTTP defences: a foreign `Origin` gets
//! 403, an oversized body 413, `/readyz` answers for Vault.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::devstack::{bao, stack, stack_var, unique};
use crate::harness::{test_key, token_for};

/// A running `mcpvault-http` on a free loopback port, with the dev stack's Vault and
/// the test key; killed on drop.
pub(crate) struct Http {
    child: Child,
    pub(crate) addr: String,
    scheme: &'static str,
}

impl Http {
    pub(crate) fn start(extra: &[(&str, &str)]) -> Http {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcpvault-http"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("MCPVAULT_PUBLIC_KEY", &test_key().public_key)
            .env("MCPVAULT_LISTEN", "127.0.0.1:0");
        for (k, v) in stack() {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mcpvault-http");
        let err = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(err).lines();
        let addr = loop {
            let line = lines
                .next()
                .and_then(Result::ok)
                .expect("mcpvault-http exited before listening");
            if let Some(a) = line.strip_prefix("mcpvault-http: listening on ") {
                break a.trim().to_string();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let tls = extra.iter().any(|(k, _)| *k == "MCPVAULT_TLS_CERT");
        Http {
            child,
            addr,
            scheme: if tls { "https" } else { "http" },
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }
}

/// Runs tests/it/http_client.py in `mode` with `env`; its JSON output. A failing
/// client fails the test with its stderr.
pub(crate) fn python(mode: &str, env: &[(&str, &str)]) -> Value {
    let out = Command::new(stack_var("DEVSTACK_PYTHON"))
        .arg(CLIENT)
        .env("MH_MODE", mode)
        .envs(env.iter().copied())
        .output()
        .expect("run the python client");
    assert!(
        out.status.success(),
        "python client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "client output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/http_client.py");

impl Drop for Http {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `curl` status code for a request.
fn status(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "20"])
        .args(args)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn many_agents_one_process_with_the_python_sdk() {
    let h = Http::start(&[]);
    let (a, b) = (unique("httpA"), unique("httpB"));
    let (a, b) = (a.replace('-', "_"), b.replace('-', "_"));
    let token_a = token_for(&a, None, &[]);
    let token_b = token_for(&b, None, &[]);
    let narrow = token_for(&a, Some("kv.read"), &[]);
    let mut bad = token_for(&a, None, &[]);
    bad.truncate(bad.len() - 8);
    bad.push_str("AAAAAAA=");
    let path = "shared/x";
    let r = python(
        "tour",
        &[
            ("MH_URL", &h.url("/mcp")),
            ("TOKEN_A", &token_a),
            ("TOKEN_B", &token_b),
            ("TOKEN_BAD", &bad),
            ("TOKEN_NARROW", &narrow),
            ("KV_PATH", path),
        ],
    );
    for who in ["a", "b"] {
        assert_eq!(
            r[format!("modern_write_{who}")]["is_error"],
            Value::Bool(false),
            "{r}"
        );
    }
    // Each subject's write landed in its own namespace.
    for (subject, owner) in [(&a, "a"), (&b, "b")] {
        let (code, body) = bao("GET", &format!("secret/data/mcp/{subject}/{path}"), None);
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["data"]["data"]["owner"], owner);
    }
    assert_eq!(r["modern_no_token"], "denied: no token", "{r}");
    assert!(
        r["modern_bad_token"].as_str().is_some_and(
            |t| t.starts_with("denied: bad signature") || t.starts_with("denied: malformed")
        ),
        "{r}"
    );
    assert_eq!(r["legacy_x_header_a"]["data"]["owner"], "a", "{r}");
    assert_eq!(r["legacy_bearer_b"]["data"]["owner"], "b", "{r}");
    assert_eq!(r["legacy_x_header_a"]["protocol"], "2025-11-25", "{r}");
    assert_eq!(
        r["legacy_narrow_tools"],
        serde_json::json!(["kv.read"]),
        "{r}"
    );
    assert!(r["legacy_no_token_tools"].as_u64().unwrap_or(0) > 10, "{r}");

    // HTTP defences and probes.
    let mcp = h.url("/mcp");
    let post = |extra: &[&str]| {
        let mut args = vec![
            "-X",
            "POST",
            mcp.as_str(),
            "-H",
            "Content-Type: application/json",
        ];
        args.extend_from_slice(extra);
        status(&args)
    };
    assert_eq!(
        post(&["-H", "Origin: https://evil.example", "-d", "{}"]),
        "403"
    );
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let file = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(file.path(), big).expect("write");
    let at = format!("@{}", file.path().display());
    assert_eq!(post(&["--data-binary", &at]), "413");
    assert_eq!(status(&[&h.url("/healthz")]), "200");
    assert_eq!(status(&[&h.url("/readyz")]), "200");
    let metrics = Command::new("curl")
        .args(["-s", "-m", "20", &h.url("/metrics")])
        .output()
        .expect("curl");
    let metrics = String::from_utf8_lossy(&metrics.stdout).to_string();
    assert!(metrics.contains("mcpvault_calls_total{"), "{metrics}");
    for secret in [&token_a, &token_b, &a.to_string()] {
        assert!(
            !metrics.contains(secret.as_str()),
            "a token or subject in /metrics"
        );
    }
}

#[test]
fn refuses_to_start_with_a_default_token() {
    let out = Command::new(env!("CARGO_BIN_EXE_mcpvault-http"))
        .env_clear()
        .env("MCPVAULT_PUBLIC_KEY", &test_key().public_key)
        .env("MCPVAULT_TOKEN", "x")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must not be set for mcpvault-http"));
}

#[test]
fn readyz_says_why_when_vault_is_down() {
    let dead = crate::harness::dead_url();
    let h = Http::start(&[("VAULT_ADDR", dead.as_str()), ("VAULT_TOKEN", "x")]);
    let out = Command::new("curl")
        .args(["-s", "-m", "30", "-w", "\n%{http_code}", &h.url("/readyz")])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.ends_with("\n503"), "{text}");
    assert!(
        text.contains("\"ready\":false") && text.contains("vault:"),
        "{text}"
    );
}

/// `/readyz` follows Vault: 200 while it answers, 503 with a reason once it is gone,
/// 200 again when it is back on the same address (through a relay the test controls,
/// since the shared OpenBao cannot be stopped).
#[test]
fn readyz_turns_503_when_vault_stops_and_200_when_it_returns() {
    use crate::harness::{poll_until, Relay};
    use std::time::Duration;

    let vault = stack_var("VAULT_ADDR");
    let target = vault.trim_start_matches("http://").trim_end_matches('/');
    let relay = Relay::start(0, target);
    let h = Http::start(&[("VAULT_ADDR", relay.url().as_str())]);
    let ready = |want: &str| {
        poll_until(Duration::from_secs(20), || {
            let out = Command::new("curl")
                .args(["-s", "-m", "10", "-w", "\n%{http_code}", &h.url("/readyz")])
                .output()
                .ok()?;
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            text.ends_with(&format!("\n{want}")).then_some(text)
        })
    };
    assert!(ready("200").is_some(), "not ready with Vault up");
    let (port, target) = relay.stop();
    let down = ready("503").expect("still ready with Vault gone");
    assert!(
        down.contains("\"ready\":false") && down.contains("vault:"),
        "{down}"
    );
    let _relay = Relay::start(port, &target);
    assert!(ready("200").is_some(), "not ready again once Vault is back");
}

/// Two `mcpvault-http` replicas on one OpenBao: a revocation written by `mcpvault
/// revoke --vault-kv` reaches both within 5 s while the parent keeps working on both,
/// and each reports the shared list's age in `/metrics`.
#[test]
fn a_shared_revocation_reaches_both_http_replicas() {
    use std::io::{Read, Write};

    use mcpvault::token::{attenuate, AttenuateSpec};

    let list = format!("mcpvault/revoked-{}", unique("http"));
    let env = [("MCPVAULT_REVOCATION_KV", list.as_str())];
    let replicas = [Http::start(&env), Http::start(&env)];
    let subject = unique("httpR").replace('-', "_");
    let parent = token_for(&subject, None, &[]);
    let child = attenuate(&parent, None, &AttenuateSpec::default()).expect("attenuate");
    let urls: Vec<String> = replicas.iter().map(|h| h.url("/mcp")).collect();
    let mut client = Command::new(stack_var("DEVSTACK_PYTHON"))
        .arg(CLIENT)
        .env("MH_MODE", "revocation")
        .env("MH_URLS", urls.join(","))
        .env("TOKEN_PARENT", &parent)
        .env("TOKEN_CHILD", &child)
        .env("MH_LIMIT", "10")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the python client");
    let mut stdout = BufReader::new(client.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read");
    if line.trim() != "ready" {
        let out = client.wait_with_output().expect("client");
        panic!(
            "client not ready ({line:?}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Both replicas served the child: now revoke it through Vault, then let the
    // client poll.
    let revoked = crate::revocation_live::revoke_shared(&child, &list)
        .wait_with_output()
        .expect("revoke");
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let mut stdin = client.stdin.take().expect("stdin");
    stdin.write_all(b"go\n").expect("go");
    drop(stdin);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("read");
    let out = client.wait_with_output().expect("client");
    assert!(
        out.status.success(),
        "python client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(&rest).expect("client output is JSON");
    for i in 0..2 {
        let before = r["before"][i].as_str().unwrap_or_default();
        assert!(!before.starts_with("denied"), "replica {i} before: {r}");
        assert_eq!(r["last"][i], "denied: revoked", "replica {i}: {r}");
        let took = r["took"][i].as_f64().unwrap_or(f64::MAX);
        assert!(took <= 5.0, "replica {i} took {took} s: {r}");
        let parent_after = r["parent_after"][i].as_str().unwrap_or_default();
        assert!(
            !parent_after.starts_with("denied"),
            "replica {i}: the parent was refused: {r}"
        );
    }
    for h in &replicas {
        let metrics = get(&h.url("/metrics"), &[]);
        let age = gauge(&metrics, "mcpvault_revocation_list_age_seconds");
        assert!(age < 5.0, "list age {age}:\n{metrics}");
        assert!(!metrics.contains(&list), "a path in /metrics");
    }
}

/// `curl -s URL` (extra arguments first): the body.
pub(crate) fn get(url: &str, extra: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-m", "20"])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The value of an unlabelled metric (panics when absent).
pub(crate) fn gauge(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing:\n{metrics}"))
}

/// Time bounds: with a Vault that accepts and never answers, `/readyz` still answers
/// 503 within the probe bound and says why, and a tool call gets a `vault:` error
/// (the backend timeout), counted in `/metrics`; a client that never finishes its
/// headers is disconnected, and the server keeps serving.
#[test]
fn a_hung_vault_and_a_slow_client_do_not_hold_the_server() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    let hole = crate::harness::Blackhole::start();
    let h = Http::start(&[
        ("VAULT_ADDR", hole.url().as_str()),
        ("VAULT_TOKEN", "x"),
        ("VAULT_TIMEOUT_SECS", "3"),
    ]);
    let started = Instant::now();
    let out = Command::new("curl")
        .args(["-s", "-m", "30", "-w", "\n%{http_code}", &h.url("/readyz")])
        .output()
        .expect("curl");
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.ends_with("\n503"), "{text}");
    assert!(text.contains("vault: no answer within"), "{text}");
    assert!(took < Duration::from_secs(6), "readyz took {took:?}");

    let subject = unique("httpT").replace('-', "_");
    let token = token_for(&subject, None, &[]);
    let started = Instant::now();
    let r = python(
        "call",
        &[
            ("MH_URL", &h.url("/mcp")),
            ("TOOL", "kv.read"),
            ("ARGS", r#"{"path": "x"}"#),
            ("TOKEN", &token),
        ],
    );
    assert_eq!(r["is_error"], Value::Bool(true), "{r}");
    assert!(
        r["text"].as_str().is_some_and(|t| t.starts_with("vault: ")),
        "{r}"
    );
    assert!(started.elapsed() < Duration::from_secs(25), "{r}");
    let metrics = get(&h.url("/metrics"), &[]);
    assert!(
        metrics.contains("mcpvault_backend_errors_total{backend=\"vault\"} 1"),
        "{metrics}"
    );

    // Headers that never end: the connection is closed (header read timeout).
    let mut slow = std::net::TcpStream::connect(&h.addr).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(40)))
        .expect("timeout");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .expect("write");
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = slow.read_to_end(&mut buf);
    let took = started.elapsed();
    assert!(
        !matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
            || e.kind() == std::io::ErrorKind::TimedOut),
        "still open after {took:?}"
    );
    assert!(took < Duration::from_secs(20), "closed after {took:?}");
    assert!(!String::from_utf8_lossy(&buf).contains("ok"), "answered");
    assert_eq!(status(&[&h.url("/healthz")]), "200");
}
