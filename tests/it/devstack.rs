//! The one way tests reach the dev stack (`tools/devstack.sh up`; `tools/test.sh`
//! starts it and exports `MCPVAULT_DEVSTACK_ENV`): its env file, OpenBao's HTTP API
//! by curl (an independent client, so a test does not trust mcpvault to check
//! mcpvault), OpenBao's audit log, PostgreSQL logins, and private OpenBao / moto
//! servers started from the stack's binaries for tests that must break them.
//!
//! Without `MCPVAULT_DEVSTACK_ENV` the tests that need the stack fail loudly (the
//! message says how to run them); nothing is skipped.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::harness::poll_until;

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

/// An OpenBao HTTP API client: curl with a token, optionally a CA file (TLS) and a
/// per-request time limit.
pub struct BaoApi {
    pub addr: String,
    pub token: String,
    pub ca: Option<PathBuf>,
    pub max_secs: u32,
}

impl BaoApi {
    /// The dev stack's OpenBao with its root token.
    pub fn stack() -> BaoApi {
        BaoApi {
            addr: stack_var("VAULT_ADDR"),
            token: stack_var("VAULT_TOKEN"),
            ca: None,
            max_secs: 60,
        }
    }

    /// `METHOD /v1/{path}` (in namespace `ns` when given): the HTTP status and the
    /// raw body; `None` when nothing answered (refused, timed out, TLS failure).
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        ns: Option<&str>,
        body: Option<&Value>,
    ) -> Option<(u16, String)> {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-X", method, "-w", "\n%{http_code}"])
            .args(["-m", &self.max_secs.to_string()])
            .arg("-H")
            .arg(format!("X-Vault-Token: {}", self.token));
        if let Some(ca) = &self.ca {
            cmd.arg("--cacert").arg(ca);
        }
        if let Some(ns) = ns {
            cmd.args(["-H", &format!("X-Vault-Namespace: {ns}")]);
        }
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
                .arg(b.to_string());
        }
        let out = cmd
            .arg(format!("{}/v1/{path}", self.addr))
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n')?;
        match code.trim().parse() {
            Ok(0) | Err(_) => None,
            Ok(code) => Some((code, body.to_string())),
        }
    }

    /// Like `raw`, the body as JSON (Null when empty or not JSON); status 0 when
    /// nothing answered.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        ns: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        match self.raw(method, path, ns, body) {
            None => (0, Value::Null),
            Some((code, body)) => (code, serde_json::from_str(&body).unwrap_or(Value::Null)),
        }
    }

    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.call(method, path, None, body)
    }
}

/// `METHOD /v1/{path}` against the dev stack's OpenBao with its root token. Returns
/// the HTTP status and the body as JSON (Null when empty); panics when OpenBao does
/// not answer or answers something that is not JSON.
pub fn bao(method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let (code, text) = BaoApi::stack()
        .raw(method, path, None, body)
        .unwrap_or_else(|| {
            panic!("curl {method} /v1/{path}: no answer from the dev stack's OpenBao")
        });
    let json = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON from bao ({e}): {text}"))
    };
    (code, json)
}

/// Writes `data` at `path` in `subject`'s KV namespace directly in OpenBao (a
/// secret the test puts there, not one the server wrote).
pub fn seed_kv(subject: &str, path: &str, data: Value) {
    let (code, body) = bao(
        "POST",
        &format!("secret/data/mcp/{subject}/{path}"),
        Some(&json!({ "data": data })),
    );
    assert_eq!(code, 200, "seed {subject}/{path}: {body}");
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

/// A private OpenBao dev server (the stack's BAO_BIN, in-memory, root token
/// `root`) on `port`, never the shared one: for tests that stop, restart or
/// reconfigure it. Killed on drop.
pub struct PrivateBao {
    pub port: u16,
    tls: bool,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl PrivateBao {
    /// Plain HTTP on `port` (not started yet).
    pub fn new(port: u16) -> PrivateBao {
        PrivateBao {
            port,
            tls: false,
            child: None,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// `-dev-tls` (its own CA, see `ca`) on `port` (not started yet).
    pub fn new_tls(port: u16) -> PrivateBao {
        PrivateBao {
            port,
            tls: true,
            child: None,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn addr(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The CA file of a TLS server.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("vault-ca.pem")
    }

    /// Its API as root.
    pub fn client(&self) -> BaoApi {
        BaoApi {
            addr: self.addr(),
            token: "root".into(),
            ca: self.tls.then(|| self.ca()),
            max_secs: 5,
        }
    }

    /// `METHOD /v1/PATH` as root: (status, body). Status 0 when nothing answered.
    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.client().api(method, path, body)
    }

    /// Starts it and waits (bounded) until it answers.
    pub fn start(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("bao.log"))
            .expect("bao log");
        let mut cmd = Command::new(stack_var("BAO_BIN"));
        cmd.args(["server", "-dev", "-dev-root-token-id=root"]);
        if self.tls {
            cmd.arg("-dev-tls")
                .arg(format!("-dev-tls-cert-dir={}", self.dir.path().display()));
        }
        let child = cmd
            .arg(format!("-dev-listen-address=127.0.0.1:{}", self.port))
            // -dev writes a token helper file under HOME: keep it in our temp dir.
            .env("HOME", self.dir.path())
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start bao");
        self.child = Some(child);
        let up = poll_until(Duration::from_secs(30), || {
            (self.api("GET", "sys/health", None).0 == 200).then_some(())
        });
        assert!(up.is_some(), "bao did not come up: {}", self.log());
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bao.log")).unwrap_or_default()
    }
}

impl Drop for PrivateBao {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A private moto server (from the dev stack's venv) on `port`, with `alias/app`;
/// waits (bounded) until the key exists. The caller kills it.
pub fn start_moto(port: u16, dir: &Path) -> Child {
    let python = PathBuf::from(stack_var("DEVSTACK_PYTHON"));
    let moto = python.with_file_name("moto_server");
    let child = Command::new(moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir(dir)
        .spawn()
        .expect("start moto");
    let url = format!("http://127.0.0.1:{port}");
    let script = "import boto3,sys\n\
        k=boto3.client('kms',endpoint_url=sys.argv[1],region_name='us-east-1',\
        aws_access_key_id='x',aws_secret_access_key='y')\n\
        i=k.create_key()['KeyMetadata']['KeyId']\n\
        k.create_alias(AliasName='alias/app',TargetKeyId=i)\n";
    let made = poll_until(Duration::from_secs(30), || {
        Command::new(&python)
            .args(["-c", script, &url])
            .stderr(Stdio::null())
            .status()
            .ok()
            .filter(|s| s.success())
    });
    assert!(made.is_some(), "moto did not come up on {url}");
    child
}
