//! Shared harness for pipe tests: spawns the real `mcpvault-stdio` binary and talks
//! newline-delimited JSON-RPC to it over stdin/stdout, like an agent host does.
//!
//! Integration tests need the dev stack (`tools/devstack.sh up`); `tools/test.sh`
//! starts it and exports `MCPVAULT_DEVSTACK_ENV`. Without it they fail loudly rather
//! than skip.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::time::Duration;

use mcpvault::token::{mint, parse_tools, KeyFile, MintSpec, ResourcePattern};
use serde_json::{json, Value};

/// Generous upper bound for one reply: a hang fails the test instead of blocking CI.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// The dev stack's env file as a map (VAULT_ADDR, VAULT_TOKEN, ...).
pub fn stack() -> &'static HashMap<String, String> {
    static STACK: OnceLock<HashMap<String, String>> = OnceLock::new();
    STACK.get_or_init(|| {
        let path = std::env::var("MCPVAULT_DEVSTACK_ENV").unwrap_or_else(|_| {
            panic!("MCPVAULT_DEVSTACK_ENV is not set: run the tests with tools/test.sh (it starts OpenBao, PostgreSQL and moto)")
        });
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches(|c| c == '"' || c == '\'').to_string()))
            .collect()
    })
}

pub fn stack_var(name: &str) -> String {
    stack()
        .get(name)
        .cloned()
        .unwrap_or_else(|| panic!("dev stack env lacks {name}"))
}

/// The committed test key (fixtures/keys/test.json): a test-only key.
pub fn test_key() -> KeyFile {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/test.json");
    let text = std::fs::read_to_string(&path).expect("fixtures/keys/test.json");
    serde_json::from_str(&text).expect("key file json")
}

/// Mints with the test key: `tools` as for `--tools` (None = all), `resources` as
/// `KIND:PATTERN` strings.
pub fn token_for(subject: &str, tools: Option<&str>, resources: &[&str]) -> String {
    let spec = MintSpec {
        tools: tools.map(|t| parse_tools(t).expect("tools")),
        subject: Some(subject.to_string()),
        resources: resources
            .iter()
            .map(|r| r.parse::<ResourcePattern>().expect("resource"))
            .collect(),
        ..MintSpec::default()
    };
    mint(&test_key(), &spec).expect("mint")
}

pub struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: u64,
    /// Every stdout line seen, for purity / leak checks.
    pub stdout_log: Vec<String>,
    pub stderr_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Spawns the server for `subject` with the dev stack's env, the test public key,
    /// and `extra` env on top (an empty value removes a variable).
    pub fn spawn(subject: &str, extra: &[(&str, &str)]) -> Server {
        let mut env: HashMap<String, String> = HashMap::new();
        if let Ok(path) = std::env::var("MCPVAULT_DEVSTACK_ENV") {
            let _ = path;
            for (k, v) in stack() {
                env.insert(k.clone(), v.clone());
            }
        }
        Self::spawn_with_env(subject, env, extra)
    }

    /// Like `spawn` but without the dev stack (for tests that need no backend).
    pub fn spawn_bare(subject: &str, extra: &[(&str, &str)]) -> Server {
        Self::spawn_with_env(subject, HashMap::new(), extra)
    }

    fn spawn_with_env(
        subject: &str,
        mut env: HashMap<String, String>,
        extra: &[(&str, &str)],
    ) -> Server {
        env.insert("SUBJECT".into(), subject.into());
        env.insert("MCPVAULT_PUBLIC_KEY".into(), test_key().public_key);
        for (k, v) in extra {
            env.insert((*k).into(), (*v).into());
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let stderr_path = dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcpvault-stdio"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        for (k, v) in &env {
            if !v.is_empty() {
                cmd.env(k, v);
            }
        }
        let mut child = cmd.spawn().expect("spawn mcpvault-stdio");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        Server {
            stdin: child.stdin.take(),
            child,
            lines: rx,
            next_id: 1000,
            stdout_log: Vec::new(),
            stderr_path,
            _dir: dir,
        }
    }

    /// Spawns and completes the initialize handshake.
    pub fn start(subject: &str, extra: &[(&str, &str)]) -> Server {
        let mut s = Self::spawn(subject, extra);
        s.initialize();
        s
    }

    pub fn initialize(&mut self) -> Value {
        let r = self.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "mcpvault-tests", "version": "0"}}),
        );
        self.send_raw(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        r
    }

    pub fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).expect("write");
        stdin.write_all(b"\n").expect("write");
        stdin.flush().expect("flush");
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write");
        stdin.flush().expect("flush");
    }

    /// Next stdout line as JSON (every stdout line must be JSON: that is asserted).
    pub fn next_message(&mut self) -> Value {
        match self.lines.recv_timeout(REPLY_TIMEOUT) {
            Ok(line) => {
                self.stdout_log.push(line.clone());
                serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("non-JSON on stdout ({e}): {line}"))
            }
            Err(RecvTimeoutError::Timeout) => panic!(
                "no reply within {REPLY_TIMEOUT:?}; stderr: {}",
                self.stderr()
            ),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("server closed stdout; stderr: {}", self.stderr())
            }
        }
    }

    /// Reads messages until the response with `id` (others are kept in stdout_log).
    pub fn wait_for(&mut self, id: &Value) -> Value {
        loop {
            let m = self.next_message();
            if m.get("id") == Some(id) && (m.get("result").is_some() || m.get("error").is_some()) {
                return m;
            }
        }
    }

    /// Sends a request and returns the whole response envelope.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = json!(self.next_id);
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_raw(&msg.to_string());
        self.wait_for(&id)
    }

    /// tools/call with `token` in `_meta.token` (None: no `_meta`). Returns `result`.
    pub fn call(&mut self, tool: &str, args: Value, token: Option<&str>) -> Value {
        let mut params = json!({"name": tool, "arguments": args});
        if let Some(t) = token {
            params["_meta"] = json!({"token": t});
        }
        let r = self.request("tools/call", params);
        r.get("result")
            .cloned()
            .unwrap_or_else(|| panic!("expected a result, got {r}"))
    }

    /// Like `call` but asserts success and returns `structuredContent`.
    pub fn call_ok(&mut self, tool: &str, args: Value, token: &str) -> Value {
        let r = self.call(tool, args, Some(token));
        assert_ne!(r["isError"], json!(true), "{tool} failed: {r}");
        r["structuredContent"].clone()
    }

    /// Like `call` but asserts `isError` and returns the error text.
    pub fn call_err(&mut self, tool: &str, args: Value, token: Option<&str>) -> String {
        let r = self.call(tool, args, token);
        assert_eq!(r["isError"], json!(true), "{tool} should fail: {r}");
        r["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Closes stdin and waits for exit; returns the exit code.
    pub fn close(mut self) -> Option<i32> {
        drop(self.stdin.take());
        let status = self.child.wait().expect("wait");
        status.code()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Number of request lines in OpenBao's file audit log (the stack declares one).
/// Used to prove that a denied call never reached Vault.
pub fn vault_audit_requests() -> usize {
    let path = stack_var("BAO_AUDIT_LOG");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"type\":\"request\""))
        .count()
}
