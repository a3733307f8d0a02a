//! Tamper-evident audit log: JSON lines, each carrying the SHA-256 of the previous
//! line's hash and of its own content, so any edit, insertion, deletion or truncation
//! inside the file breaks the chain (`mcpvault audit verify FILE`).
//!
//! An event never holds a value, a token or a key: only who, what tool, which
//! resource name, the decision and timings.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audited decision.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    pub subject: &'a str,
    pub tool: &'a str,
    pub resource: Option<String>,
    /// `allow`, `deny` or `invalid` (arguments refused before authorization).
    pub decision: &'static str,
    pub reason: Option<String>,
    /// Revocation id of the token's last block: identifies the token, reveals nothing.
    pub token_id: Option<String>,
    /// `ok` or `error` for allowed calls.
    pub outcome: Option<&'static str>,
    pub backend_ms: Option<f64>,
    pub request_id: String,
}

enum Sink {
    Stderr,
    File(File),
}

pub struct AuditLog {
    inner: Mutex<(Sink, String)>,
}

fn hash_line(prev: &str, body: &Map<String, Value>) -> String {
    // serde_json's Map is ordered by key, so the serialization is canonical.
    let text = Value::Object(body.clone()).to_string();
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(text.as_bytes());
    hex::encode(h.finalize())
}

impl AuditLog {
    pub fn stderr() -> Self {
        AuditLog {
            inner: Mutex::new((Sink::Stderr, GENESIS.to_string())),
        }
    }

    /// Opens (or creates, mode 0600) an audit file and continues its chain.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let prev = last_hash(path).unwrap_or_else(|| GENESIS.to_string());
        let mut opts = OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(path)?;
        Ok(AuditLog {
            inner: Mutex::new((Sink::File(file), prev)),
        })
    }

    pub fn record(&self, event: &Event<'_>) {
        let Ok(Value::Object(mut body)) = serde_json::to_value(event) else {
            return;
        };
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        body.insert("ts".into(), Value::from((ts * 1000.0).round() / 1000.0));
        body.insert("type".into(), Value::from("audit"));
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (sink, prev) = &mut *guard;
        body.insert("prev".into(), Value::from(prev.clone()));
        let hash = hash_line(prev, &body);
        body.insert("hash".into(), Value::from(hash.clone()));
        let line = format!("{}\n", Value::Object(body));
        let written = match sink {
            Sink::Stderr => std::io::stderr().lock().write_all(line.as_bytes()),
            Sink::File(f) => f.write_all(line.as_bytes()),
        };
        match written {
            Ok(()) => *prev = hash,
            Err(e) => tracing::error!("audit log write failed: {e}"),
        }
    }
}

/// The `hash` of the last entry of an existing audit file. Reads only the tail (a
/// long-lived log is large), growing the window until it holds a whole last line.
fn last_hash(path: &Path) -> Option<String> {
    let mut f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut window = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(window);
        f.seek(SeekFrom::Start(start)).ok()?;
        let mut buf = Vec::new();
        (&mut f).take(len - start).read_to_end(&mut buf).ok()?;
        // Unless we read from the start, the first line may be cut: skip it.
        let whole = if start == 0 {
            &buf[..]
        } else {
            match buf.iter().position(|&b| b == b'\n') {
                Some(i) => &buf[i + 1..],
                None => &[][..],
            }
        };
        let last = whole
            .split(|&b| b == b'\n')
            .rfind(|l| !l.iter().all(u8::is_ascii_whitespace));
        match last {
            Some(line) => {
                let v: Value = serde_json::from_slice(line).ok()?;
                return v.get("hash").and_then(Value::as_str).map(str::to_string);
            }
            None if start == 0 => return None,
            None => window = window.saturating_mul(4),
        }
    }
}

/// Checks a whole audit file's chain. Returns the number of entries, or the first
/// broken line (1-based) and why. Blank lines are ignored; any other line that is not
/// an audit entry breaks the chain (in a dedicated file it can only be tampering). To
/// check entries that went to stderr, keep only the `"type":"audit"` lines first.
pub fn verify_chain(text: &str) -> Result<usize, (usize, String)> {
    let mut prev = GENESIS.to_string();
    let mut count = 0;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut body = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(m)) if m.get("type").and_then(Value::as_str) == Some("audit") => m,
            _ => return Err((n, "not an audit entry".into())),
        };
        let Some(Value::String(claimed)) = body.remove("hash") else {
            return Err((n, "no hash".into()));
        };
        if body.get("prev").and_then(Value::as_str) != Some(prev.as_str()) {
            return Err((
                n,
                "chain broken: prev does not match the previous entry".into(),
            ));
        }
        if hash_line(&prev, &body) != claimed {
            return Err((n, "entry was modified: hash mismatch".into()));
        }
        prev = claimed;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(tool: &str) -> Event<'_> {
        Event {
            subject: "agentA",
            tool,
            resource: Some("kv:app/x".into()),
            decision: "allow",
            reason: None,
            token_id: Some("ab".into()),
            outcome: Some("ok"),
            backend_ms: Some(1.5),
            request_id: "1".into(),
        }
    }

    #[test]
    fn chain_detects_edits_deletions_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path).unwrap();
        for t in ["kv.read", "kv.write", "kv.list"] {
            log.record(&event(t));
        }
        drop(log);
        // Reopening continues the chain.
        AuditLog::open(&path).unwrap().record(&event("kv.delete"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(verify_chain(&text), Ok(4));

        let lines: Vec<&str> = text.lines().collect();
        let edited = text.replacen("kv.write", "kv.wrote", 1);
        assert_eq!(verify_chain(&edited).unwrap_err().0, 2);
        let deleted = [lines[0], lines[2], lines[3]].join("\n");
        assert_eq!(verify_chain(&deleted).unwrap_err().0, 2);
        let head_cut = lines[1..].join("\n");
        assert_eq!(verify_chain(&head_cut).unwrap_err().0, 1);
        assert!(verify_chain("garbage").is_err());
    }

    #[test]
    fn reopening_a_large_log_continues_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path).unwrap();
        // Well over one 64 KiB read window, with one entry longer than the window.
        for i in 0..400 {
            log.record(&event(if i == 399 { "x" } else { "kv.read" }));
        }
        let mut long = event("kv.write");
        long.reason = Some("r".repeat(200 * 1024));
        log.record(&long);
        drop(log);
        AuditLog::open(&path).unwrap().record(&event("kv.list"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(verify_chain(&text), Ok(402));
        // A blank tail is skipped too.
        std::fs::write(&path, format!("{text}\n\n")).unwrap();
        AuditLog::open(&path).unwrap().record(&event("kv.delete"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(verify_chain(&text), Ok(403));
    }
}
