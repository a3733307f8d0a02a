//! The live revocation list: a file re-read when it changes, without restart.
//!
//! The file is stat'ed at most once a second on the call path (cheap) and re-read
//! when its mtime or size changes. If it cannot be read or parsed, every token call
//! is denied until it can: failing open would silently resurrect revoked tokens.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::token::RevocationSet;

const RECHECK: Duration = Duration::from_secs(1);

pub struct RevocationSource {
    path: Option<PathBuf>,
    state: RwLock<State>,
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
    pub fn new(path: Option<PathBuf>) -> Self {
        let src = RevocationSource {
            path,
            state: RwLock::new(State {
                current: Ok(Arc::new(RevocationSet::empty())),
                checked: None,
                stamp: None,
            }),
        };
        src.refresh(true);
        src
    }

    /// The set to authorize against, or why none is usable (fail closed).
    pub fn current(&self) -> Result<Arc<RevocationSet>, String> {
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
