//! `http.request` against a loopback HTTP server of the test's own (a std listener
//! that records every request it receives): secrets passed by handle reach the
//! destination exactly and come back nowhere (result, stderr, audit log), echoes of
//! them are redacted, the token's URL patterns hold against URL tricks, redirects are
//! returned rather than followed, and non-public destinations are refused with
//! nothing sent. kv.read (for the handle) runs against the dev stack's OpenBao.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{json, Value};

use crate::devstack::unique;
use crate::harness::{sealed_token_for, text, Server};

const SUBJECT: &str = "agentW";
const LOOPBACK: (&str, &str) = ("MCPVAULT_HTTP_ALLOW_NETS", "127.0.0.1/32");

/// One request as the test server saw it.
#[derive(Debug, Clone)]
struct Seen {
    line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A one-request-per-connection HTTP/1.1 server on 127.0.0.1. Paths: `/echo` sends
/// back the bearer token it got (raw, base64, hex, percent-encoded, and in a header),
/// `/redirect` answers 302 to another host, `/big` sends 2 MiB; anything else `ok`.
struct Upstream {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let log = log.clone();
                std::thread::spawn(move || serve(conn, &log));
            }
        });
        Upstream { port, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

fn serve(conn: TcpStream, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim_end().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let seen = Seen {
        line: line.trim_end().to_string(),
        headers,
        body,
    };
    log.lock().expect("lock").push(seen.clone());
    let path = seen.line.split(' ').nth(1).unwrap_or("/");
    let (status, extra, out): (&str, String, Vec<u8>) = if path.starts_with("/echo") {
        let got = seen
            .header("authorization")
            .unwrap_or("")
            .trim_start_matches("Bearer ")
            .to_string();
        let body = format!(
            "raw={got} b64={} hex={} pct={}",
            base64::engine::general_purpose::STANDARD.encode(&got),
            hex::encode(&got),
            percent(&got)
        );
        ("200 OK", format!("X-Echo: {got}\r\n"), body.into_bytes())
    } else if path.starts_with("/redirect") {
        (
            "302 Found",
            "Location: http://example.com/elsewhere\r\n".into(),
            Vec::new(),
        )
    } else if path.starts_with("/big") {
        ("200 OK", String::new(), vec![b'a'; 2 << 20])
    } else {
        ("200 OK", String::new(), b"ok".to_vec())
    };
    let mut conn = reader.into_inner();
    let head = format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        out.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(&out);
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|c| {
            if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
                (c as char).to_string()
            } else {
                format!("%{c:02X}")
            }
        })
        .collect()
}

fn seed(path: &str, data: Value) {
    crate::devstack::seed_kv(SUBJECT, path, data);
}

/// A secret in KV, read back as a handle with `token`.
fn handle_for(s: &mut Server, token: &str, secret: &str) -> String {
    let path = unique("http/key");
    seed(&path, json!({ "token": secret }));
    let r = s.call_ok("kv.read", json!({ "path": path }), token);
    let h = r["data"]["token"].as_str().expect("a handle").to_string();
    assert!(h.starts_with("mcpvault:handle:"), "{r}");
    h
}

#[test]
fn a_handle_reaches_the_destination_and_comes_back_nowhere() {
    let up = Upstream::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = dir.path().join("audit.log");
    let mut s = Server::start(
        SUBJECT,
        &[
            LOOPBACK,
            ("MCPVAULT_AUDIT_LOG", audit.to_str().expect("utf-8")),
        ],
    );
    let token = sealed_token_for(SUBJECT, None, &[&format!("http:{}", up.url("/echo*"))]);
    // Characters that percent-encode, so each encoding differs from the value.
    let secret = format!("s3cr3t/+={}", unique("v"));
    let h = handle_for(&mut s, &token, &secret);
    let r = s.call(
        "http.request",
        json!({
            "method": "GET",
            "url": up.url("/echo?q=query-is-private"),
            "headers": { "Authorization": format!("Bearer {{{{{h}}}}}") },
        }),
        Some(&token),
    );
    assert_ne!(r["isError"], json!(true), "{r}");
    let seen = up.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {secret}").as_str())
    );
    assert!(
        seen[0].line.contains("/echo?q=query-is-private"),
        "{seen:?}"
    );
    let out = &r["structuredContent"];
    assert_eq!(out["status"], json!(200));
    assert_eq!(
        out["body"],
        json!("raw=[redacted] b64=[redacted] hex=[redacted] pct=[redacted]"),
        "{r}"
    );
    assert_eq!(out["headers"]["x-echo"], json!("[redacted]"), "{r}");
    assert_eq!(out["truncated"], json!(false));
    assert!(!r.to_string().contains(&secret), "{r}");
    let log = std::fs::read_to_string(&audit).expect("audit log");
    assert!(log.contains("http:http://127.0.0.1:"), "{log}");
    let stderr = s.stderr();
    for place in [&log, &stderr] {
        assert!(!place.contains(&secret), "secret leaked");
        assert!(!place.contains("query-is-private"), "query leaked: {place}");
    }
}

#[test]
fn denials_and_errors_never_show_the_query_or_a_secret() {
    let up = Upstream::start();
    let mut s = Server::start(SUBJECT, &[LOOPBACK]);
    let token = sealed_token_for(SUBJECT, None, &[&format!("http:{}", up.url("/v1/*"))]);
    let secret = format!("pw-{}", unique("v"));
    let h = handle_for(&mut s, &token, &secret);
    let e = s.call_err(
        "http.request",
        json!({"method": "GET", "url": up.url("/admin?q=query-is-private"),
               "headers": {"X-Key": format!("{{{{{h}}}}}")}}),
        Some(&token),
    );
    assert!(
        e.starts_with("denied: resource not granted: http:http://127.0.0.1:"),
        "{e}"
    );
    assert!(!e.contains("query-is-private"), "{e}");
    let stderr = s.stderr();
    assert!(!stderr.contains("query-is-private"), "{stderr}");
    assert!(!stderr.contains(&secret), "secret in stderr");
    assert!(up.seen().is_empty());
}

#[test]
fn url_patterns_hold_against_tricks() {
    let up = Upstream::start();
    let mut s = Server::start(SUBJECT, &[LOOPBACK]);
    let token = sealed_token_for(SUBJECT, None, &[&format!("http:{}", up.url("/v1/*"))]);
    let p = up.port;
    let ok = s.call_ok(
        "http.request",
        json!({"method": "GET", "url": up.url("/v1/x")}),
        &token,
    );
    assert_eq!(ok["body"], json!("ok"));
    for (url, want) in [
        (
            format!("http://127.0.0.1:{p}/v1x"),
            "denied: resource not granted",
        ),
        (
            format!("http://127.0.0.1:{p}/v1/../admin"),
            "denied: resource not granted",
        ),
        (
            format!("http://127.0.0.1:{p}/v1/%2e%2e/admin"),
            "denied: resource not granted",
        ),
        (
            format!("http://127.0.0.1:{p}/v1/..%2fadmin"),
            "invalid arguments: invalid `url`",
        ),
        (
            format!("http://127.0.0.1:{p}\\v1\\..\\admin"),
            "denied: resource not granted",
        ),
        (
            format!("http://127.0.0.1:{}/v1/x", p + 1),
            "denied: resource not granted",
        ),
        (
            format!("https://127.0.0.1:{p}/v1/x"),
            "denied: resource not granted",
        ),
        (
            format!("http://127.0.0.1:{p}@evil.example/v1/x"),
            "invalid arguments: invalid `url`: userinfo",
        ),
        (
            format!("http://user@127.0.0.1:{p}/v1/x"),
            "invalid arguments: invalid `url`: userinfo",
        ),
        (
            format!("http://127.0.0.1.nip.io:{p}/v1/x"),
            "denied: resource not granted",
        ),
        (format!("http://2130706433:{p}/v1/x"), ""),
        (
            "ftp://127.0.0.1/v1/x".to_string(),
            "invalid arguments: invalid `url`",
        ),
        ("not a url".to_string(), "invalid arguments: invalid `url`"),
    ] {
        let r = s.call(
            "http.request",
            json!({"method": "GET", "url": url}),
            Some(&token),
        );
        let t = text(&r);
        if want.is_empty() {
            // 2130706433 is 127.0.0.1 to a URL parser: the same destination, granted.
            assert_ne!(r["isError"], json!(true), "{url}: {r}");
            continue;
        }
        assert_eq!(r["isError"], json!(true), "{url}: {r}");
        assert!(t.starts_with(want), "{url}: {t}");
    }
    // Only the two granted requests arrived.
    let seen = up.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.iter().all(|r| r.line.starts_with("GET /v1/x ")),
        "{seen:?}"
    );
}

#[test]
fn redirects_come_back_unfollowed_and_big_bodies_are_cut() {
    let up = Upstream::start();
    let mut s = Server::start(SUBJECT, &[LOOPBACK]);
    let token = sealed_token_for(SUBJECT, None, &[&format!("http:{}", up.url("/*"))]);
    let r = s.call_ok(
        "http.request",
        json!({"method": "GET", "url": up.url("/redirect")}),
        &token,
    );
    assert_eq!(r["status"], json!(302), "{r}");
    assert_eq!(
        r["headers"]["location"],
        json!("http://example.com/elsewhere")
    );
    assert_eq!(up.seen().len(), 1);
    let r = s.call_ok(
        "http.request",
        json!({"method": "GET", "url": up.url("/big")}),
        &token,
    );
    assert_eq!(r["truncated"], json!(true));
    assert_eq!(r["body"].as_str().map(str::len), Some(1 << 20));
    let r = s.call_ok(
        "http.request",
        json!({"method": "post", "url": up.url("/x"), "body": "hello",
               "headers": {"Content-Type": "text/plain"}}),
        &token,
    );
    assert_eq!(r["status"], json!(200));
    let seen = up.seen();
    let last = seen.last().expect("a request");
    assert!(last.line.starts_with("POST /x "), "{last:?}");
    assert_eq!(last.body, b"hello");
}

#[test]
fn non_public_destinations_are_refused_with_nothing_sent() {
    let up = Upstream::start();
    // No MCPVAULT_HTTP_ALLOW_NETS: loopback is refused, by literal and by name.
    let mut s = Server::start(SUBJECT, &[]);
    let p = up.port;
    let token = sealed_token_for(
        SUBJECT,
        None,
        &[
            &format!("http:http://127.0.0.1:{p}/*"),
            &format!("http:http://localhost:{p}/*"),
            "http:http://169.254.169.254/*",
            "http:http://10.0.0.1/*",
            "http:http://[::1]/*",
            "http:http://[::ffff:127.0.0.1]/*",
        ],
    );
    for url in [
        format!("http://127.0.0.1:{p}/"),
        format!("http://localhost:{p}/"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.0.0.1/".to_string(),
        "http://[::1]/".to_string(),
        "http://[::ffff:127.0.0.1]/".to_string(),
    ] {
        let e = s.call_err(
            "http.request",
            json!({"method": "GET", "url": url}),
            Some(&token),
        );
        assert!(e.starts_with("denied: destination blocked: "), "{url}: {e}");
    }
    assert!(up.seen().is_empty(), "{:?}", up.seen());
}

#[test]
fn bad_arguments_get_clear_errors() {
    let up = Upstream::start();
    let mut s = Server::start(SUBJECT, &[LOOPBACK, ("MCPVAULT_MAX_MESSAGE_BYTES", "4096")]);
    let token = sealed_token_for(SUBJECT, None, &[&format!("http:{}", up.url("/*"))]);
    let url = up.url("/x");
    let big = "k".repeat(1000);
    let h = handle_for(&mut s, &token, &big);
    let placeholder = format!("{{{{{h}}}}}");
    for (args, want) in [
        (
            json!({"method": "TRACE", "url": url}),
            "invalid arguments: invalid `method`: must be one of GET, HEAD, POST, PUT, PATCH, DELETE",
        ),
        (
            json!({"method": "GET", "url": url, "headers": {"X-Key": "{{mcpvault:handle:short}}"}}),
            "invalid arguments: malformed placeholder",
        ),
        (
            json!({"method": "GET", "url": url,
                   "headers": {"X-Key": "{{mcpvault:handle:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA}}"}}),
            "denied: unknown handle",
        ),
        (
            json!({"method": "POST", "url": url, "body": placeholder.repeat(5)}),
            "invalid arguments: invalid `body`: longer than MCPVAULT_MAX_MESSAGE_BYTES",
        ),
        (
            json!({"method": "GET", "url": url, "headers": {"Host": "evil.example"}}),
            "invalid arguments: invalid `headers`: `host` is set by the server",
        ),
        (
            json!({"method": "GET", "url": url, "timeout_ms": 60000}),
            "invalid arguments: invalid `timeout_ms`",
        ),
    ] {
        let e = s.call_err("http.request", args.clone(), Some(&token));
        assert!(e.starts_with(want), "{args}: {e}");
        assert!(!e.contains(&big), "secret in an error");
    }
    assert!(up.seen().is_empty(), "{:?}", up.seen());
}

/// A database password the agent never sees, used where it is needed: the handle from
/// `db.issue_creds` goes into an `http.request` body, the loopback service receives the
/// exact password, and that password logs in to PostgreSQL.
#[test]
fn a_database_password_handle_reaches_a_service_and_logs_in() {
    let up = Upstream::start();
    let mut s = Server::start(SUBJECT, &[LOOPBACK]);
    let token = sealed_token_for(SUBJECT, None, &[&format!("http:{}", up.url("/ok*"))]);
    let c = s.call_ok("db.issue_creds", json!({"role": "readonly"}), &token);
    let user = c["username"].as_str().expect("username").to_string();
    let h = c["password"].as_str().expect("password").to_string();
    assert!(h.starts_with("mcpvault:handle:"), "{c}");
    let r = s.call(
        "http.request",
        json!({
            "method": "POST",
            "url": up.url("/ok"),
            "headers": { "Content-Type": "text/plain" },
            "body": format!("{{{{{h}}}}}"),
        }),
        Some(&token),
    );
    assert_ne!(r["isError"], json!(true), "{r}");
    let seen = up.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let password = String::from_utf8(seen[0].body.clone()).expect("utf-8 password");
    assert!(!password.contains("mcpvault:handle:"), "not substituted");
    assert!(!r.to_string().contains(&password), "{r}");
    assert_eq!(
        crate::devstack::psql_login(&user, &password).as_deref(),
        Ok(user.as_str())
    );
    let lease = c["lease_id"].as_str().expect("lease").to_string();
    s.call_ok("db.revoke", json!({"lease_id": lease}), &token);
}
