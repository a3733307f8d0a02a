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

struct Http {
    child: Child,
    addr: String,
}

impl Http {
    fn start(extra: &[(&str, &str)]) -> Http {
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
        Http { child, addr }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

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
    let out = Command::new(stack_var("DEVSTACK_PYTHON"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/http_client.py"
        ))
        .env("MH_URL", h.url("/mcp"))
        .env("TOKEN_A", &token_a)
        .env("TOKEN_B", &token_b)
        .env("TOKEN_BAD", &bad)
        .env("TOKEN_NARROW", &narrow)
        .env("KV_PATH", path)
        .output()
        .expect("run the python client");
    assert!(
        out.status.success(),
        "python client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).expect("client output is JSON");
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
