//! Helpers for the Vault pipe tests: direct access to the dev stack (OpenBao with
//! its root token, PostgreSQL) to check the real effect of a tool call without
//! going through mcpvault.
#![allow(dead_code)]

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::common::stack_var;

/// A path segment unique to this test process and call, so tests sharing one
/// dev stack (and reruns against a kept stack) never see each other's data.
pub fn unique(label: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    format!(
        "{label}-{}-{t}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `METHOD /v1/{path}` against OpenBao with the stack's root token, by curl:
/// an independent client, so a test does not trust mcpvault to check mcpvault.
/// Returns the HTTP status and the body as JSON (Null when empty).
pub fn bao(method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-X", method, "-w", "\n%{http_code}", "-H"])
        .arg(format!("X-Vault-Token: {}", stack_var("VAULT_TOKEN")));
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(b.to_string());
    }
    cmd.arg(format!("{}/v1/{path}", stack_var("VAULT_ADDR")));
    let out = cmd.output().expect("run curl");
    assert!(out.status.success(), "curl failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').expect("curl status line");
    let code: u16 = code.trim().parse().expect("status");
    let json = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("bad JSON from bao ({e}): {body}"))
    };
    (code, json)
}

/// Logs in to the stack's PostgreSQL as `user` and returns `current_user`, or the
/// error text when the login fails.
pub fn psql_login(user: &str, password: &str) -> Result<String, String> {
    let out = Command::new(format!("{}/psql", stack_var("PG_BIN")))
        .args(["-h", &stack_var("PG_HOST"), "-p", &stack_var("PG_PORT")])
        .args([
            "-U",
            user,
            "-d",
            "postgres",
            "-w",
            "-tAXc",
            "select current_user",
        ])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .expect("run psql");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}
