//! Backend faults, each answered with a clear `vault:` / `kms:` tool error within a
//! bound, and recovery by the same process when the backend returns: Vault down at
//! start, killed and restarted mid-session, hung (slower than VAULT_TIMEOUT_SECS), its
//! token revoked or expired (AppRole logs in again; a static token cannot), KMS down
//! or hung. Each test runs its OWN `bao server -dev` (BAO_BIN from the dev stack) on a
//! free port, never the shared one.

mod common;
mod hostile_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{stack_var, token_for, Server};
use hostile_support::{closed_port, dead_url, poll_until, text, Blackhole};
use serde_json::{json, Value};

const SUBJECT: &str = "agentF";
/// VAULT_TIMEOUT_SECS for these servers.
const VAULT_TIMEOUT: u64 = 2;
/// Slack on top of a timeout for a loaded CI machine.
const MARGIN: Duration = Duration::from_secs(8);

/// A private OpenBao dev server (in-memory, root token `root`).
struct Bao {
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Bao {
    fn new(port: u16) -> Bao {
        Bao {
            port,
            child: None,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts it and waits (bounded) until it answers.
    fn start(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("bao.log"))
            .expect("bao log");
        let child = Command::new(stack_var("BAO_BIN"))
            .args(["server", "-dev", "-dev-root-token-id=root"])
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

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bao.log")).unwrap_or_default()
    }

    /// `METHOD /v1/PATH` with the root token, by curl: (status, body). Status 0 when
    /// nothing answered.
    fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-m", "5", "-X", method, "-w", "\n%{http_code}"])
            .args(["-H", "X-Vault-Token: root"]);
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
                .arg(b.to_string());
        }
        let out = cmd
            .arg(format!("{}/v1/{path}", self.addr()))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let Some((body, code)) = text.rsplit_once('\n') else {
            return (0, Value::Null);
        };
        let code = code.trim().parse().unwrap_or(0);
        (code, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    /// Writes `{v: value}` at the subject's `app/x` (dev mode mounts KV v2 at secret/).
    fn put_secret(&self, value: &str) {
        let (code, body) = self.api(
            "POST",
            &format!("secret/data/mcp/{SUBJECT}/app/x"),
            Some(&json!({"data": {"v": value}})),
        );
        assert_eq!(code, 200, "{body}");
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.kill();
    }
}

fn server(env: &[(&str, &str)]) -> Server {
    let mut base = vec![("VAULT_TIMEOUT_SECS", "2")];
    base.extend_from_slice(env);
    let mut s = Server::spawn_bare(SUBJECT, &base);
    s.initialize();
    s
}

/// kv.read of `app/x`: (result, how long it took).
fn kv_read(s: &mut Server, token: &str) -> (Value, Duration) {
    let t0 = Instant::now();
    let r = s.call("kv.read", json!({"path": "app/x"}), Some(token));
    (r, t0.elapsed())
}

fn assert_vault_error(r: &Value, took: Duration, bound: Duration) -> String {
    let t = text(r);
    assert_eq!(r["isError"], json!(true), "{r}");
    assert!(t.starts_with("vault: kv.read: "), "{t}");
    assert!(
        took <= bound,
        "answered after {took:?} (bound {bound:?}): {t}"
    );
    t
}

fn assert_value(r: &Value, want: &str) {
    assert_ne!(r["isError"], json!(true), "{r}");
    assert_eq!(r["structuredContent"]["data"]["v"], want, "{r}");
}

#[test]
fn vault_down_at_start_killed_and_restarted_the_same_process_recovers() {
    let mut bao = Bao::new(closed_port());
    let addr = bao.addr();
    let mut s = server(&[("VAULT_ADDR", addr.as_str()), ("VAULT_TOKEN", "root")]);
    let token = token_for(SUBJECT, Some("kv.read"), &[]);
    // Down at start: the protocol works, the call says what failed.
    let tools = s.request("tools/list", json!({}));
    assert!(tools["result"]["tools"]
        .as_array()
        .is_some_and(|t| t.len() > 5));
    let (r, took) = kv_read(&mut s, &token);
    let t = assert_vault_error(&r, took, MARGIN);
    assert!(t.contains("unreachable"), "{t}");

    bao.start();
    bao.put_secret("one");
    let (r, _) = kv_read(&mut s, &token);
    assert_value(&r, "one");

    // Killed mid-session.
    bao.kill();
    let (r, took) = kv_read(&mut s, &token);
    let t = assert_vault_error(&r, took, Duration::from_secs(VAULT_TIMEOUT) + MARGIN);
    assert!(t.contains("unreachable"), "{t}");

    // Back again (a dev server starts empty).
    bao.start();
    bao.put_secret("two");
    let (r, _) = kv_read(&mut s, &token);
    assert_value(&r, "two");
    assert!(!s.stdout_log.iter().any(|l| l.contains("\"root\"")));
    assert_eq!(s.close(), Some(0));
}

#[test]
fn a_hung_vault_times_out_with_a_clear_error_and_no_retry_storm() {
    let hole = Blackhole::start();
    let url = hole.url();
    let mut s = server(&[("VAULT_ADDR", url.as_str()), ("VAULT_TOKEN", "root")]);
    let token = token_for(SUBJECT, Some("kv.read"), &[]);
    // Per call: the token lookup (first use) and the read itself, at most.
    let per_call = Duration::from_secs(2 * VAULT_TIMEOUT) + MARGIN;
    let (r, took) = kv_read(&mut s, &token);
    let t = assert_vault_error(&r, took, per_call);
    assert!(t.contains("timed out after 2s"), "{t}");
    let after_one = hole.accepted();
    assert!(
        (1..=2).contains(&after_one),
        "{after_one} connections for one call"
    );

    // Twenty pipelined calls: each answered within the bound, one attempt each.
    let t0 = Instant::now();
    let mut ids = Vec::new();
    for i in 0..20 {
        let id = format!("hung-{i}");
        s.send_raw(
            &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                    "params": {"name": "kv.read", "arguments": {"path": "app/x"},
                               "_meta": {"token": token}}})
            .to_string(),
        );
        ids.push(id);
    }
    // Replies come in any order (clients match on id): collect until all are in.
    let mut pending: std::collections::HashSet<Value> = ids.iter().map(|id| json!(id)).collect();
    while !pending.is_empty() {
        let r = s.next_message();
        let Some(id) = r.get("id") else { continue };
        if pending.remove(id) {
            assert!(text(&r["result"]).starts_with("vault: kv.read: "), "{r}");
        }
    }
    assert!(
        t0.elapsed() <= per_call,
        "20 hung calls took {:?}",
        t0.elapsed()
    );
    let conns = hole.accepted() - after_one;
    assert!(
        conns <= 2 * 20,
        "{conns} connections for 20 calls: a retry storm"
    );
}

/// Enables AppRole on `bao` with a role whose tokens live `ttl` seconds and may read
/// the subject's KV; returns (role_id, secret_id).
fn approle(bao: &Bao, ttl: u32) -> (String, String) {
    let ok = |(code, body): (u16, Value)| {
        assert!((200..300).contains(&code), "{code}: {body}");
        body
    };
    ok(bao.api(
        "POST",
        "sys/auth/approle",
        Some(&json!({"type": "approle"})),
    ));
    let policy = format!(
        "path \"secret/data/mcp/{SUBJECT}/*\" {{ capabilities = [\"read\"] }}\n\
         path \"auth/token/lookup-self\" {{ capabilities = [\"read\"] }}\n\
         path \"auth/token/renew-self\" {{ capabilities = [\"update\"] }}"
    );
    ok(bao.api(
        "PUT",
        "sys/policies/acl/faults",
        Some(&json!({"policy": policy})),
    ));
    ok(bao.api(
        "POST",
        "auth/approle/role/faults",
        Some(&json!({"token_policies": ["faults"], "token_ttl": ttl, "token_max_ttl": ttl})),
    ));
    let role = ok(bao.api("GET", "auth/approle/role/faults/role-id", None));
    let secret = ok(bao.api("POST", "auth/approle/role/faults/secret-id", None));
    (
        role["data"]["role_id"]
            .as_str()
            .expect("role_id")
            .to_string(),
        secret["data"]["secret_id"]
            .as_str()
            .expect("secret_id")
            .to_string(),
    )
}

#[test]
fn approle_logs_in_again_after_its_token_is_revoked_or_expires() {
    let mut bao = Bao::new(closed_port());
    bao.start();
    bao.put_secret("approle");
    // Tokens live 4 s: the session must renew or log in again on its own.
    let (role_id, secret_id) = approle(&bao, 4);
    let addr = bao.addr();
    let mut s = server(&[
        ("VAULT_ADDR", addr.as_str()),
        ("VAULT_ROLE_ID", role_id.as_str()),
        ("VAULT_SECRET_ID", secret_id.as_str()),
    ]);
    let token = token_for(SUBJECT, Some("kv.read"), &[]);
    let (r, _) = kv_read(&mut s, &token);
    assert_value(&r, "approle");

    // Every AppRole token revoked behind the server's back.
    let (code, body) = bao.api("PUT", "sys/leases/revoke-prefix/auth/approle/login", None);
    assert!((200..300).contains(&code), "{code}: {body}");
    let (r, _) = kv_read(&mut s, &token);
    assert_value(&r, "approle");

    // Calls keep working across several token lifetimes.
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        let (r, _) = kv_read(&mut s, &token);
        assert_value(&r, "approle");
    }
    assert!(!s.stderr().contains(&secret_id), "the secret id is logged");
}

#[test]
fn a_revoked_static_token_is_a_clear_vault_error() {
    let mut bao = Bao::new(closed_port());
    bao.start();
    bao.put_secret("static");
    let (code, created) = bao.api(
        "POST",
        "auth/token/create",
        Some(&json!({"policies": ["default"], "no_default_policy": false, "ttl": "1h"})),
    );
    assert_eq!(code, 200, "{created}");
    let vault_token = created["auth"]["client_token"]
        .as_str()
        .expect("token")
        .to_string();
    let addr = bao.addr();
    let mut s = server(&[
        ("VAULT_ADDR", addr.as_str()),
        ("VAULT_TOKEN", vault_token.as_str()),
    ]);
    let token = token_for(SUBJECT, Some("kv.read"), &[]);
    // Its policy does not allow the read: Vault's 403 comes through as such.
    let (r, took) = kv_read(&mut s, &token);
    let t = assert_vault_error(&r, took, MARGIN);
    assert!(t.contains("403"), "{t}");
    let (code, body) = bao.api(
        "POST",
        "auth/token/revoke",
        Some(&json!({"token": vault_token})),
    );
    assert!((200..300).contains(&code), "{code}: {body}");
    let (r, took) = kv_read(&mut s, &token);
    let t = assert_vault_error(&r, took, MARGIN);
    assert!(t.contains("403"), "{t}");
    assert!(!t.contains(&vault_token) && !s.stderr().contains(&vault_token));
}

fn kms_server(endpoint: &str) -> Server {
    server(&[
        ("AWS_ENDPOINT_URL_KMS", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "faults-test"),
        ("AWS_SECRET_ACCESS_KEY", "faults-test-secret"),
        ("VAULT_ADDR", &dead_url()),
        ("VAULT_TOKEN", "unused"),
    ])
}

fn kms_encrypt(s: &mut Server, token: &str) -> (Value, Duration) {
    let t0 = Instant::now();
    let r = s.call(
        "kms.encrypt",
        json!({"key_id": "alias/app", "plaintext": "aGVsbG8="}),
        Some(token),
    );
    (r, t0.elapsed())
}

/// The KMS backend's whole-operation timeout (src/backend/kms.rs), plus slack.
const KMS_BOUND: Duration = Duration::from_secs(10 + 8);

/// moto (from the dev stack's venv) on `port`, with `alias/app`.
fn start_moto(port: u16, dir: &Path) -> Child {
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

#[test]
fn kms_down_then_up_the_same_process_recovers() {
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut s = kms_server(&url);
    let token = token_for(SUBJECT, Some("kms.*"), &[]);
    let (r, took) = kms_encrypt(&mut s, &token);
    assert_eq!(r["isError"], json!(true), "{r}");
    assert!(text(&r).starts_with("kms: "), "{r}");
    assert!(took <= KMS_BOUND, "answered after {took:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let mut moto = start_moto(port, dir.path());
    let (r, _) = kms_encrypt(&mut s, &token);
    let _ = moto.kill();
    let _ = moto.wait();
    assert_ne!(r["isError"], json!(true), "{r}");
    assert!(r["structuredContent"]["ciphertext"].is_string(), "{r}");
    assert!(!s.stderr().contains("faults-test-secret"));
}

#[test]
fn a_hung_kms_times_out_with_a_clear_error() {
    let hole = Blackhole::start();
    let mut s = kms_server(&hole.url());
    let token = token_for(SUBJECT, Some("kms.*"), &[]);
    let (r, took) = kms_encrypt(&mut s, &token);
    assert_eq!(r["isError"], json!(true), "{r}");
    assert!(text(&r).starts_with("kms: "), "{r}");
    assert!(took <= KMS_BOUND, "answered after {took:?}");
    assert!(
        hole.accepted() <= 3,
        "{} connections for one call",
        hole.accepted()
    );
}
