//! The one spawn harness: runs the real `mcpvault-stdio` binary and talks
//! newline-delimited JSON-RPC to it over stdin/stdout, like an agent host does, with
//! full control over its lifetime (stdin EOF, signals, exit status). Also the test
//! key and token minting, stand-in backends that refuse or never answer, bounded
//! polling, and the "stdout is JSON-RPC only" check.
//!
//! Reaching the dev stack itself (OpenBao, PostgreSQL, moto) is `crate::devstack`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcpvault::token::{mint, parse_tools, KeyFile, MintSpec, ResourcePattern};
use serde_json::{json, Value};

/// Generous upper bound for one reply, or for EOF after stdin closes: a hang fails
/// the test instead of blocking CI.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// The same bound, under the name the lifecycle tests use.
pub const LIMIT: Duration = REPLY_TIMEOUT;

/// The committed test key (fixtures/keys/test.json): a test-only key.
pub fn test_key() -> KeyFile {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/test.json");
    let text = std::fs::read_to_string(&path).expect("fixtures/keys/test.json");
    serde_json::from_str(&text).expect("key file json")
}

/// Mints with the test key: `tools` as for `--tools` (None = all), `resources` as
/// `KIND:PATTERN` strings. It reveals every kind's values (`--reveal kv:* ...`): the
/// tests using it check what the backends return. Handles are tested with
/// [`sealed_token_for`] and [`token_revealing`].
pub fn token_for(subject: &str, tools: Option<&str>, resources: &[&str]) -> String {
    token_revealing(
        subject,
        tools,
        resources,
        &["kv:*", "transit:*", "db:*", "ssh:*", "kms:*"],
    )
}

/// Like [`token_for`], revealing nothing: every secret value comes back as a handle.
pub fn sealed_token_for(subject: &str, tools: Option<&str>, resources: &[&str]) -> String {
    token_revealing(subject, tools, resources, &[])
}

/// Like [`token_for`], revealing only `reveal` (`KIND:PATTERN` strings).
pub fn token_revealing(
    subject: &str,
    tools: Option<&str>,
    resources: &[&str],
    reveal: &[&str],
) -> String {
    let patterns = |list: &[&str]| -> Vec<ResourcePattern> {
        list.iter()
            .map(|r| r.parse::<ResourcePattern>().expect("resource"))
            .collect()
    };
    let spec = MintSpec {
        tools: tools.map(|t| parse_tools(t).expect("tools")),
        subject: Some(subject.to_string()),
        resources: patterns(resources),
        reveal: patterns(reveal),
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
    /// Spawns the server for `subject` with the dev stack's env (when
    /// `MCPVAULT_DEVSTACK_ENV` is set), the test public key, and `extra` env on top
    /// (an empty value removes a variable).
    pub fn spawn(subject: &str, extra: &[(&str, &str)]) -> Server {
        let mut env: HashMap<String, String> = HashMap::new();
        if std::env::var_os("MCPVAULT_DEVSTACK_ENV").is_some() {
            for (k, v) in crate::devstack::stack() {
                env.insert(k.clone(), v.clone());
            }
        }
        Self::spawn_with_env(subject, env, extra)
    }

    /// Like `spawn` but without the dev stack: only PATH, SUBJECT, the test public
    /// key and `extra` (for tests that bring their own backends or need none).
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
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
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

    /// The initialize handshake; asserts a result and returns the whole reply.
    pub fn initialize(&mut self) -> Value {
        let r = self.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "mcpvault-tests", "version": "0"}}),
        );
        assert!(r.get("result").is_some(), "initialize failed: {r}");
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

    pub fn send(&mut self, msg: &Value) {
        self.send_raw(&msg.to_string());
    }

    /// The next stdout message, `None` at EOF; panics after `REPLY_TIMEOUT`. Every
    /// stdout line must be JSON: that is asserted.
    pub fn next(&mut self) -> Option<Value> {
        match self.lines.recv_timeout(REPLY_TIMEOUT) {
            Ok(line) => {
                self.stdout_log.push(line.clone());
                Some(
                    serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("non-JSON on stdout ({e}): {line:.200}")),
                )
            }
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => panic!(
                "no reply within {REPLY_TIMEOUT:?}; stderr: {}",
                self.stderr()
            ),
        }
    }

    /// Next stdout message; panics at EOF.
    pub fn next_message(&mut self) -> Value {
        self.next()
            .unwrap_or_else(|| panic!("server closed stdout; stderr: {}", self.stderr()))
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

    /// Sends a request and returns its id (the reply is read later).
    pub fn start_request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = json!(self.next_id);
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// Sends a request and returns the whole response envelope.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.start_request(method, params);
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

    /// Closes stdin and waits for exit; returns the exit code.
    pub fn close(mut self) -> Option<i32> {
        self.close_stdin();
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

/// A loopback TCP relay to a backend that can be taken down and brought back on the
/// same port: a Vault that stops and returns, as the server sees it. Stopping closes
/// the listener and every relayed connection.
pub struct Relay {
    pub port: u16,
    target: String,
    open: Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    /// Relays `127.0.0.1:<port>` (0: any free port) to `target` (`host:port`).
    pub fn start(port: u16, target: &str) -> Relay {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind relay");
        let port = listener.local_addr().expect("addr").port();
        let open: Arc<std::sync::Mutex<Vec<std::net::TcpStream>>> = Default::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (conns, stopped, to) = (open.clone(), stop.clone(), target.to_string());
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { break };
                let Ok(upstream) = std::net::TcpStream::connect(&to) else {
                    continue;
                };
                let pairs = [
                    (client.try_clone(), upstream.try_clone()),
                    (upstream.try_clone(), client.try_clone()),
                ];
                conns.lock().expect("relay list").extend([client, upstream]);
                for pair in pairs {
                    if let (Ok(mut from), Ok(mut into)) = pair {
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut from, &mut into);
                            let _ = into.shutdown(std::net::Shutdown::Write);
                        });
                    }
                }
            }
        });
        Relay {
            port,
            target: target.to_string(),
            open,
            stop,
            accept: Some(accept),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Takes the backend away: no listener, every relayed connection closed.
    pub fn stop(mut self) -> (u16, String) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which sees the flag and drops the listener.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for c in self.open.lock().expect("relay list").drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        (self.port, std::mem::take(&mut self.target))
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
