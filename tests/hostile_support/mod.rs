//! Helpers for the hostile, fault, revocation and audit tests: dead and hung backends,
//! bounded polling, and the "stdout is JSON-RPC only" check.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Bound on any single reply or on EOF after stdin closes.
pub const LIMIT: Duration = Duration::from_secs(30);

/// The server process with full control over its lifetime (stdin EOF, signals, exit
/// status), which the shared harness's `Server` does not expose.
pub struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: u64,
    pub stdout_log: Vec<String>,
    stderr_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Proc {
    /// `mcpvault-stdio` with only PATH, SUBJECT, the test public key and `env`.
    pub fn spawn(subject: &str, public_key: &str, env: &[(&str, &str)]) -> Proc {
        let dir = tempfile::tempdir().expect("tempdir");
        let stderr_path = dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcpvault-stdio"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SUBJECT", subject)
            .env("MCPVAULT_PUBLIC_KEY", public_key)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        let mut child = cmd.spawn().expect("spawn mcpvault-stdio");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            stdin: child.stdin.take(),
            child,
            lines,
            next_id: 0,
            stdout_log: Vec::new(),
            stderr_path,
            _dir: dir,
        }
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write");
        stdin.flush().expect("flush");
    }

    pub fn send(&mut self, msg: &Value) {
        self.send_bytes(format!("{msg}\n").as_bytes());
    }

    /// Sends a request and returns its id (the reply is read later).
    pub fn start_request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = json!(self.next_id);
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    pub fn initialize(&mut self) {
        let id = self.start_request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "mcpvault-hostile", "version": "0"}}),
        );
        assert!(self.wait_for(&id).get("result").is_some());
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    }

    /// The next stdout message, `None` at EOF; panics after `LIMIT`.
    pub fn next(&mut self) -> Option<Value> {
        match self.lines.recv_timeout(LIMIT) {
            Ok(line) => {
                self.stdout_log.push(line.clone());
                Some(
                    serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("non-JSON on stdout ({e}): {line:.200}")),
                )
            }
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => {
                panic!("nothing on stdout for {LIMIT:?}; stderr: {}", self.stderr())
            }
        }
    }

    /// Reads until the response with `id`.
    pub fn wait_for(&mut self, id: &Value) -> Value {
        loop {
            let m = self
                .next()
                .unwrap_or_else(|| panic!("EOF before reply {id}"));
            if &m["id"] == id && m.get("method").is_none() {
                return m;
            }
        }
    }

    /// EOF on the server's stdin.
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// Every message left before the server closes stdout.
    pub fn read_to_eof(&mut self) -> Vec<Value> {
        std::iter::from_fn(|| self.next()).collect()
    }

    /// Polls for exit up to `limit`; panics if the process is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let found = poll_until(limit, || self.child.try_wait().expect("try_wait"));
        found.unwrap_or_else(|| panic!("still running after {limit:?}; stderr: {}", self.stderr()))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port with nothing listening on it (bound, then released).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `http://127.0.0.1:<closed port>`: connections are refused at once.
pub fn dead_url() -> String {
    format!("http://127.0.0.1:{}", closed_port())
}

/// A backend that accepts connections and never answers (a hung Vault or KMS). It
/// counts connections, so a test can see how often the server retried.
pub struct Blackhole {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Blackhole {
    pub fn start() -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                match conn {
                    Ok(c) => {
                        count.fetch_add(1, Ordering::SeqCst);
                        held.push(c);
                    }
                    Err(_) => break,
                }
            }
        });
        Blackhole { port, accepted }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Calls `f` until it returns `Some` or `limit` has passed (then `None`). This is a
/// bounded poll for state the server notices on its own (a file change, a backend
/// coming back), never a substitute for reading a reply.
pub fn poll_until<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every stdout line is exactly one JSON-RPC 2.0 message: a response (id plus result
/// or error with an integer code and a message) or a server notification/request.
pub fn assert_pure_jsonrpc(lines: &[String]) {
    assert!(!lines.is_empty(), "no stdout at all");
    for line in lines {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:.200}"));
        assert_eq!(v["jsonrpc"], "2.0", "not JSON-RPC 2.0: {line:.200}");
        if v.get("method").is_some() {
            continue;
        }
        assert!(v.get("id").is_some(), "response without id: {line:.200}");
        match (v.get("result"), v.get("error")) {
            (Some(_), None) => {}
            (None, Some(e)) => {
                assert!(
                    e["code"].is_i64(),
                    "error without integer code: {line:.200}"
                );
                assert!(
                    e["message"].is_string(),
                    "error without message: {line:.200}"
                );
            }
            _ => panic!("neither result nor error: {line:.200}"),
        }
    }
}

/// (VmRSS, VmHWM) of a process in KiB, from /proc.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The text of a tool result (`content[0].text`), whether or not it is an error.
pub fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Hex of the revocation id of the token's last block (what `mcpvault revoke` writes).
pub fn last_revocation_id(token: &str) -> String {
    mcpvault::token::inspect(token)
        .expect("inspect")
        .revocation_ids
        .last()
        .expect("a revocation id")
        .clone()
}
