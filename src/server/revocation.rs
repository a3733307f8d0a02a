//! The live revocation list: a file re-read when it changes, without restart, and
//! a list shared through Vault (`MCPVAULT_REVOCATION_KV`) that every replica reads.
//!
//! The file is stat'ed at most once a second on the call path (cheap) and re-read
//! when its mtime or size changes. If it cannot be read or parsed, every token call
//! is denied until it can: failing open would silently resurrect revoked tokens.
//!
//! The Vault list is read by the server's background task every second and handed
//! over with [`RevocationSource::set_shared`]. A failed read keeps the last good list
//! for up to [`SHARED_GRACE`] (Vault restarts and leader elections take seconds),
//! then every token call is denied until a read succeeds; before the first good read
//! there is no list to keep, so calls are denied from the start.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::token::RevocationSet;

const RECHECK: Duration = Duration::from_secs(1);
/// How long the last good shared list is used while Vault cannot be read.
pub const SHARED_GRACE: Duration = Duration::from_secs(30);

pub struct RevocationSource {
    path: Option<PathBuf>,
    state: RwLock<State>,
    /// `MCPVAULT_REVOCATION_KV`'s path, when set.
    shared_path: Option<String>,
    shared: RwLock<Shared>,
}

/// The shared list as last read, and the union with the file's list.
#[derive(Default)]
struct Shared {
    text: Option<String>,
    set: Option<Arc<RevocationSet>>,
    last_ok: Option<Instant>,
    error: Option<String>,
    /// (file set generation, shared set generation) -> their union.
    union: Option<(u64, u64, Arc<RevocationSet>)>,
}

struct State {
    current: Result<Arc<RevocationSet>, String>,
    checked: Option<Instant>,
    stamp: Option<Stamp>,
}

/// What identifies one version of the file. Size and mtime alone miss a same-size
/// rewrite that keeps the old mtime (`cp -p`, `rsync -t`, `touch -r`); the status
/// change time and the inode do not.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    changed: (i64, i64),
    inode: (u64, u64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let (changed, inode) = {
            use std::os::unix::fs::MetadataExt;
            ((meta.ctime(), meta.ctime_nsec()), (meta.dev(), meta.ino()))
        };
        #[cfg(not(unix))]
        let (changed, inode) = ((0, 0), (0, 0));
        Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            changed,
            inode,
        }
    }
}

impl RevocationSource {
    pub fn new(path: Option<PathBuf>, shared_path: Option<String>) -> Self {
        let src = RevocationSource {
            path,
            state: RwLock::new(State {
                current: Ok(Arc::new(RevocationSet::empty())),
                checked: None,
                stamp: None,
            }),
            shared_path,
            shared: RwLock::new(Shared::default()),
        };
        src.refresh(true);
        src
    }

    /// The shared list's KV path, if one is configured.
    pub fn shared_path(&self) -> Option<&str> {
        self.shared_path.as_deref()
    }

    /// Hands over one read of the shared list: its text (`None`: the secret does not
    /// exist yet, an empty list) or why it could not be read.
    pub fn set_shared(&self, read: Result<Option<String>, String>) {
        self.set_shared_at(read, Instant::now());
    }

    fn set_shared_at(&self, read: Result<Option<String>, String>, now: Instant) {
        let Some(path) = &self.shared_path else {
            return;
        };
        let mut sh = self.shared.write().unwrap_or_else(|e| e.into_inner());
        let parsed = read.and_then(|text| {
            let text = text.unwrap_or_default();
            if sh.text.as_deref() == Some(text.as_str()) && sh.set.is_some() {
                return Ok(None);
            }
            RevocationSet::parse(&text)
                .map(|set| Some((text, set)))
                .map_err(|e| format!("invalid: {e}"))
        });
        match parsed {
            Ok(changed) => {
                if let Some((text, set)) = changed {
                    tracing::info!(path, ids = set.len(), "shared revocation list loaded");
                    sh.text = Some(text);
                    sh.set = Some(Arc::new(set));
                }
                sh.last_ok = Some(now);
                sh.error = None;
            }
            Err(e) => {
                if sh.error.as_deref() != Some(e.as_str()) {
                    tracing::error!(path, "shared revocation list unreadable: {e}");
                }
                sh.error = Some(e);
            }
        }
    }

    /// The set to authorize against, or why none is usable (fail closed).
    pub fn current(&self) -> Result<Arc<RevocationSet>, String> {
        self.current_at(Instant::now())
    }

    fn current_at(&self, now: Instant) -> Result<Arc<RevocationSet>, String> {
        let file = self.file_current()?;
        let Some(path) = &self.shared_path else {
            return Ok(file);
        };
        let why = |sh: &Shared| sh.error.clone().unwrap_or_else(|| "not read yet".into());
        {
            let sh = self.shared.read().unwrap_or_else(|e| e.into_inner());
            let shared = match (&sh.set, sh.last_ok) {
                (Some(set), Some(t)) if now.saturating_duration_since(t) <= SHARED_GRACE => set,
                (Some(_), Some(t)) => {
                    return Err(format!(
                        "shared revocation list {path} unreadable for {} s: {}",
                        now.saturating_duration_since(t).as_secs(),
                        why(&sh)
                    ))
                }
                _ => return Err(format!("shared revocation list {path}: {}", why(&sh))),
            };
            if file.is_empty() {
                return Ok(shared.clone());
            }
            if let Some((f, s, u)) = &sh.union {
                if *f == file.generation() && *s == shared.generation() {
                    return Ok(u.clone());
                }
            }
        }
        let mut sh = self.shared.write().unwrap_or_else(|e| e.into_inner());
        let shared = sh
            .set
            .clone()
            .unwrap_or_else(|| Arc::new(RevocationSet::empty()));
        let union = Arc::new(file.union(&shared));
        sh.union = Some((file.generation(), shared.generation(), union.clone()));
        Ok(union)
    }

    fn file_current(&self) -> Result<Arc<RevocationSet>, String> {
        let stale = {
            let s = self.state.read().unwrap_or_else(|e| e.into_inner());
            s.checked.is_none_or(|t| t.elapsed() >= RECHECK)
        };
        if stale {
            self.refresh(false);
        }
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .current
            .clone()
    }

    fn refresh(&self, force: bool) {
        let Some(path) = &self.path else {
            return;
        };
        let mut s = self.state.write().unwrap_or_else(|e| e.into_inner());
        s.checked = Some(Instant::now());
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                let msg = format!("revocation list {} unreadable: {e}", path.display());
                if s.current.as_ref().err() != Some(&msg) {
                    tracing::error!("{msg}; denying all token calls until it is readable");
                }
                s.current = Err(msg);
                s.stamp = None;
                return;
            }
        };
        let stamp = Stamp::of(&meta);
        // Unchanged since a good read: nothing to do. A bad outcome is retried each
        // period (a read error may be transient) but reported only when it changes.
        if !force && s.stamp == Some(stamp) && s.current.is_ok() {
            return;
        }
        s.stamp = Some(stamp);
        let parsed = std::fs::read_to_string(path)
            .map_err(|e| format!("unreadable: {e}"))
            .and_then(|text| RevocationSet::parse(&text).map_err(|e| format!("invalid: {e}")));
        match parsed {
            Ok(set) => {
                tracing::info!(path = %path.display(), ids = set.len(), "revocation list loaded");
                s.current = Ok(Arc::new(set));
            }
            Err(e) => {
                let msg = format!("revocation list {} {e}", path.display());
                if s.current.as_ref().err() != Some(&msg) {
                    tracing::error!("{msg}; denying all token calls until it is fixed");
                }
                s.current = Err(msg);
            }
        }
    }
}

/// Appends `ids` to the shared list at `{mount}/data/{path}` (field `ids`, one hex
/// id a line), with check-and-set on the version read, retrying when another revoker
/// wrote in between: concurrent revokers lose no id. Returns how many ids were new.
pub async fn append_shared(
    vault: &crate::backend::vault::Vault,
    mount: &str,
    path: &str,
    ids: &[String],
) -> Result<usize, String> {
    use crate::backend::vault::KvRead;
    const ATTEMPTS: usize = 20;
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        let (text, version) = match vault.kv_read(mount, path, None).await {
            Ok(KvRead::Found(s)) => {
                let text = match s.data.get("ids") {
                    None => String::new(),
                    Some(serde_json::Value::String(t)) => t.clone(),
                    Some(_) => return Err(format!("{path}: field `ids` is not a string")),
                };
                (text, s.version.unwrap_or(0))
            }
            Ok(KvRead::Missing) => (String::new(), 0),
            // A deleted current version: write over it (cas on its version).
            Ok(KvRead::Deleted { version, .. }) | Ok(KvRead::Destroyed { version }) => {
                (String::new(), version.unwrap_or(0))
            }
            Err(e) => return Err(e.to_string()),
        };
        // Refuse to extend a list the servers would reject (they fail closed on it).
        RevocationSet::parse(&text).map_err(|e| format!("{path}: existing list invalid: {e}"))?;
        let have: std::collections::HashSet<&str> = text.lines().map(str::trim).collect();
        let new: Vec<&String> = ids.iter().filter(|i| !have.contains(i.as_str())).collect();
        if new.is_empty() {
            return Ok(0);
        }
        let mut next = text.clone();
        if !next.is_empty() && !next.ends_with('\n') {
            next.push('\n');
        }
        for id in &new {
            next.push_str(id);
            next.push('\n');
        }
        let mut data = serde_json::Map::new();
        data.insert("ids".into(), serde_json::Value::String(next));
        match vault.kv_write(mount, path, &data, Some(version)).await {
            Ok(_) => return Ok(new.len()),
            // Check-and-set lost to a concurrent revoker: read again.
            Err(e) if e.to_string().contains("check-and-set") => last = e.to_string(),
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!(
        "{path}: still contended after {ATTEMPTS} attempts: {last}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_list_fails_closed_before_its_first_read_and_after_the_grace() {
        let src = RevocationSource::new(None, Some("mcpvault/revoked".into()));
        let t0 = Instant::now();
        let e = src.current_at(t0).expect_err("no list yet");
        assert!(e.contains("not read yet"), "{e}");
        src.set_shared_at(Err("vault: connection refused".into()), t0);
        assert!(src.current_at(t0).is_err());
        src.set_shared_at(Ok(Some("aa\nbb\n".into())), t0);
        let set = src.current_at(t0).expect("list");
        assert!(set.contains(&[0xaa]) && set.contains(&[0xbb]));
        // Unreadable: the last good list holds for the grace period, then no more.
        let later = t0 + SHARED_GRACE;
        src.set_shared_at(Err("vault: HTTP 503".into()), later);
        assert!(src.current_at(later).is_ok());
        let e = src
            .current_at(later + Duration::from_secs(1))
            .expect_err("past the grace");
        assert!(e.contains("unreadable for 31 s: vault: HTTP 503"), "{e}");
        // A bad list is an error too, never an empty list.
        src.set_shared_at(Ok(Some("zz".into())), later);
        assert!(src.current_at(later + Duration::from_secs(40)).is_err());
        // A missing secret is an empty list.
        src.set_shared_at(Ok(None), later + Duration::from_secs(41));
        let set = src
            .current_at(later + Duration::from_secs(41))
            .expect("empty");
        assert!(set.is_empty());
    }

    #[test]
    fn file_and_shared_lists_add_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("revoked.txt");
        std::fs::write(&file, "01\n").expect("write");
        let src = RevocationSource::new(Some(file), Some("p".into()));
        src.set_shared(Ok(Some("02".into())));
        let set = src.current().expect("list");
        assert!(set.contains(&[1]) && set.contains(&[2]) && set.len() == 2);
        // Same inputs, same set (its generation keeps the decision cache warm).
        assert_eq!(src.current().expect("list").generation(), set.generation());
    }
}
