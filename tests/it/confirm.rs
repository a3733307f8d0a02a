//! Human confirmation (`mint --confirm`) with the official MCP Python SDK as the
//! client (`tests/it/confirm_client.py`), on both protocol generations: 2025-11-25
//! (`ClientSession`, the server sends `elicitation/create`) and 2026-07-28
//! (`Client`, an input-required result and the retry). What happened is checked in
//! OpenBao (the secret, and its audit log for requests on the path) and in
//! mcpvault's audit log. The SDK comes from the dev stack's venv; without it the
//! tests fail, they are never skipped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use mcpvault::token::{mint, parse_tools, MintSpec};
use serde_json::{json, Value};

use crate::devstack::{bao, stack, stack_var, unique};
use crate::harness::{poll_until, test_key};

const SUBJECT: &str = "agentA";

fn python() -> PathBuf {
    let python = PathBuf::from(stack_var("DEVSTACK_PYTHON"));
    let probe = Command::new(&python)
        .args(["-c", "import mcp.client.client, mcp.types"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        probe.status.success(),
        "the MCP Python SDK is missing from {} (tools/devstack.sh installs it): {}",
        python.display(),
        String::from_utf8_lossy(&probe.stderr)
    );
    python
}

/// A token for the kv tools that reveals kv values and requires confirmation for
/// `confirm` (a `--confirm` list).
fn token(confirm: &str) -> String {
    let spec = MintSpec {
        tools: Some(parse_tools("kv.*").expect("tools")),
        subject: Some(SUBJECT.into()),
        reveal: vec!["kv:*".parse().expect("pattern")],
        confirm: parse_tools(confirm).expect("confirm"),
        ..MintSpec::default()
    };
    mint(&test_key(), &spec).expect("mint")
}

struct Run {
    /// One JSON object per call result the client printed.
    results: Vec<Value>,
    /// mcpvault's audit log entries.
    audit: Vec<Value>,
}

/// Runs `confirm_client.py SCENARIO` against a fresh mcpvault-stdio (dev stack env,
/// audit log in a temp dir, `extra` env on top); the client must finish within a
/// minute.
fn run(
    scenario: &str,
    token: &str,
    tool: &str,
    args: &Value,
    other: &Value,
    extra: &[(&str, &str)],
) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = dir.path().join("audit.log");
    let mut env: HashMap<String, String> = stack().clone();
    env.insert("SUBJECT".into(), SUBJECT.into());
    env.insert("MCPVAULT_PUBLIC_KEY".into(), test_key().public_key);
    env.insert("MCPVAULT_AUDIT_LOG".into(), audit.to_string_lossy().into());
    env.insert("PATH".into(), std::env::var("PATH").unwrap_or_default());
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/confirm_client.py");
    let stderr = dir.path().join("client.stderr");
    let mut child = Command::new(python())
        .arg(&script)
        .arg(scenario)
        .env("CONFIRM_SERVER_BIN", env!("CARGO_BIN_EXE_mcpvault-stdio"))
        .env(
            "CONFIRM_SERVER_ENV",
            serde_json::to_string(&env).expect("env json"),
        )
        .env("CONFIRM_SERVER_STDERR", dir.path().join("server.stderr"))
        .env("CONFIRM_TOKEN", token)
        .env("CONFIRM_TOOL", tool)
        .env("CONFIRM_ARGS", args.to_string())
        .env("CONFIRM_OTHER_ARGS", other.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("spawn the Python client");
    let status = poll_until(Duration::from_secs(60), || child.try_wait().ok().flatten());
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{scenario}: the client did not finish within a minute");
    };
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        use std::io::Read;
        let _ = o.read_to_string(&mut out);
    }
    let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    assert!(
        status.success(),
        "{scenario}: client failed ({status}): {out}\nclient stderr: {}\nserver stderr: {}",
        read(stderr.clone()),
        read(dir.path().join("server.stderr"))
    );
    let results = out
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{scenario}: not JSON ({e}): {l}"))
        })
        .collect();
    let audit = read(audit)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    Run { results, audit }
}

/// OpenBao's audit-log request entries on this subject's `path` (the dev stack's
/// file audit device records request paths in clear).
fn bao_requests_on(path: &str) -> usize {
    let needle = format!("mcp/{SUBJECT}/{path}\"");
    std::fs::read_to_string(stack_var("BAO_AUDIT_LOG"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"type\":\"request\"") && l.contains(&needle))
        .count()
}

fn stored(path: &str) -> bool {
    bao("GET", &format!("secret/data/mcp/{SUBJECT}/{path}"), None).0 == 200
}

fn write_args(path: &str) -> Value {
    json!({"path": path, "data": {"k": "confirmed"}})
}

/// One confirmation-guarded `kv.write` of `path` through `scenario`, no retry state.
fn write(scenario: &str, token: &str, path: &str, env: &[(&str, &str)]) -> Run {
    run(
        scenario,
        token,
        "kv.write",
        &write_args(path),
        &json!({}),
        env,
    )
}

fn decisions(run: &Run, tool: &str) -> Vec<(String, String)> {
    run.audit
        .iter()
        .filter(|e| e["tool"] == tool)
        .map(|e| {
            (
                e["decision"].as_str().unwrap_or("").to_string(),
                e["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn only(run: &Run) -> &Value {
    assert_eq!(run.results.len(), 1, "{:?}", run.results);
    &run.results[0]
}

const UNSUPPORTED: &str =
    "denied: confirmation required, but the client does not support elicitation";

#[test]
fn accepted_calls_reach_openbao_on_both_generations() {
    let t = token("kv.write");
    for scenario in ["legacy-accept", "modern-accept"] {
        let path = unique("confirm-yes");
        let r = write(scenario, &t, &path, &[]);
        let res = only(&r);
        assert_eq!(res["is_error"], false, "{scenario}: {res}");
        assert_eq!(res["asked"], 1, "{scenario}: {res}");
        assert!(
            stored(&path),
            "{scenario}: the accepted write is not in OpenBao"
        );
        assert!(
            bao_requests_on(&path) > 0,
            "{scenario}: OpenBao's audit log shows no request"
        );
        let d = decisions(&r, "kv.write");
        let allowed = d.iter().filter(|(dec, _)| dec == "allow").count();
        assert_eq!(allowed, 2, "{scenario}: intent and outcome: {d:?}");
        if scenario == "modern-accept" {
            assert_eq!(
                d[0],
                ("pending".into(), "confirmation requested".into()),
                "{d:?}"
            );
        }
    }
}

#[test]
fn declined_calls_never_reach_openbao() {
    let t = token("kv.*");
    for scenario in ["legacy-decline", "modern-decline"] {
        let path = unique("confirm-no");
        let r = write(scenario, &t, &path, &[]);
        let res = only(&r);
        assert_eq!(res["is_error"], true, "{scenario}: {res}");
        assert_eq!(res["text"], "denied: declined by user", "{scenario}: {res}");
        assert_eq!(res["asked"], 1, "{scenario}: {res}");
        assert_eq!(
            bao_requests_on(&path),
            0,
            "{scenario}: OpenBao saw the declined write"
        );
        assert!(
            !stored(&path),
            "{scenario}: the declined write is in OpenBao"
        );
        let d = decisions(&r, "kv.write");
        assert!(d.iter().all(|(dec, _)| dec != "allow"), "{scenario}: {d:?}");
        assert!(
            d.contains(&("deny".into(), "declined by user".into())),
            "{scenario}: {d:?}"
        );
    }
}

#[test]
fn clients_without_elicitation_are_refused_with_the_exact_text() {
    let t = token("*");
    for scenario in ["legacy-nocap", "modern-nocap"] {
        let path = unique("confirm-nocap");
        let r = write(scenario, &t, &path, &[]);
        let res = only(&r);
        assert_eq!(res["text"], UNSUPPORTED, "{scenario}: {res}");
        assert_eq!(res["asked"], 0, "{scenario}: {res}");
        assert_eq!(bao_requests_on(&path), 0, "{scenario}");
        let d = decisions(&r, "kv.write");
        assert!(
            d.contains(&("deny".into(), UNSUPPORTED["denied: ".len()..].into())),
            "{d:?}"
        );
    }
}

#[test]
fn an_altered_or_replayed_request_state_is_refused() {
    let t = token("kv.write");
    let (path, other) = (unique("confirm-state"), unique("confirm-other"));
    let r = run(
        "modern-tamper",
        &t,
        "kv.write",
        &write_args(&path),
        &write_args(&other),
        &[],
    );
    assert_eq!(r.results.len(), 5, "{:?}", r.results);
    assert_eq!(r.results[0]["input_required"], true, "{:?}", r.results);
    let altered = "denied: confirmation rejected: request state altered, or issued for \
                   another token, tool or arguments";
    assert_eq!(
        r.results[1]["text"], altered,
        "altered state: {:?}",
        r.results
    );
    assert_eq!(
        r.results[2]["text"], altered,
        "other arguments: {:?}",
        r.results
    );
    assert_eq!(
        r.results[3]["is_error"], false,
        "the right retry: {:?}",
        r.results
    );
    assert_eq!(
        r.results[4]["text"], "denied: confirmation rejected: request state already used",
        "replay: {:?}",
        r.results
    );
    assert!(stored(&path));
    assert_eq!(
        bao_requests_on(&other),
        0,
        "the state was used for other arguments"
    );
    assert!(!stored(&other));
    let d = decisions(&r, "kv.write");
    assert_eq!(
        d.iter().filter(|(dec, _)| dec == "deny").count(),
        3,
        "{d:?}"
    );
}

#[test]
fn an_unanswered_question_times_out() {
    let t = token("kv.write");
    let path = unique("confirm-timeout");
    let r = write(
        "legacy-hang",
        &t,
        &path,
        &[("MCPVAULT_CONFIRM_TIMEOUT", "1")],
    );
    let res = only(&r);
    assert_eq!(res["text"], "denied: confirmation timed out", "{res}");
    assert_eq!(res["asked"], 1, "{res}");
    assert_eq!(bao_requests_on(&path), 0);
    let d = decisions(&r, "kv.write");
    assert!(
        d.contains(&("deny".into(), "confirmation timed out".into())),
        "{d:?}"
    );
}

#[test]
fn tools_without_a_requirement_are_not_asked() {
    let t = token("kv.delete");
    let path = unique("confirm-none");
    let r = write("legacy-accept", &t, &path, &[]);
    let res = only(&r);
    assert_eq!(res["is_error"], false, "{res}");
    assert_eq!(res["asked"], 0, "{res}");
    assert!(stored(&path));
}
