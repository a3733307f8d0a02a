//! Handles: secret values the agent uses without seeing them.
//!
//! A result field that holds a secret comes back as `mcpvault:handle:<id>` unless the
//! call's token may reveal it. The value stays here, in this process's memory only,
//! bound to the token that read it: usable by that token and by tokens attenuated from
//! it (their revocation ids start with the creator's), never by a sibling or an
//! unrelated token. It lives until the earlier of the creator's expiry and
//! `MCPVAULT_HANDLE_TTL`, dies when any block of the creator is revoked, and its value
//! is zeroed when it goes. An expired handle leaves a tombstone for one more TTL so
//! its user is told "expired" rather than "unknown".
//!
//! Whether a *descendant* may still use a handle (is it granted the source resource?)
//! and whether a value would become revealable somewhere are token questions: the
//! pipeline's [`Authorized`](super::Authorized) asks them before it hands a value out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::error::{CallError, Denial};
use crate::token::{ResourceKind, RevocationSet};

/// What every handle starts with.
pub const PREFIX: &str = "mcpvault:handle:";
/// 192 random bits (the contract asks for at least 128).
const ID_BYTES: usize = 24;
/// Live handles one process keeps: beyond this a call that would create one fails
/// (memory is bounded whatever agents do).
const MAX_LIVE: usize = 100_000;

/// Where a handle's value was read from: the resource a descendant token must still
/// be granted to use it, and whose reveal decides laundering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub kind: ResourceKind,
    /// The resource's value, or [`RequestResource::ANY`](crate::token::RequestResource::ANY)
    /// for a whole kind.
    pub value: String,
}

struct Entry {
    value: Zeroizing<String>,
    /// The value is base64 of bytes (a decrypted plaintext), not text.
    binary: bool,
    source: Source,
    /// Revocation ids (hex) of the creating token's blocks, authority first.
    lineage: Vec<String>,
    expires_at: u64,
}

enum Slot {
    Live(Entry),
    /// Expired at `.0`; forgotten one TTL later.
    Expired(u64),
}

pub struct Handles {
    ttl: Duration,
    slots: Mutex<HashMap<String, Slot>>,
}

/// A resolved handle: its value (zeroed when dropped) and where it came from.
pub struct Resolved {
    /// As the result field held it (base64 when `binary`).
    pub value: Zeroizing<String>,
    pub binary: bool,
    pub source: Source,
}

impl Resolved {
    /// The value as text: what a header, a body or a KV field receives. A binary
    /// value (a decrypted plaintext) is decoded, and must be UTF-8.
    pub fn text(&self) -> Result<Zeroizing<String>, CallError> {
        if !self.binary {
            return Ok(self.value.clone());
        }
        let bytes = self.bytes()?;
        std::str::from_utf8(&bytes)
            .map(|t| Zeroizing::new(t.to_string()))
            .map_err(|_| CallError::invalid("the handle holds binary data, not text"))
    }

    /// The value as bytes: what an encryption receives as plaintext.
    pub fn bytes(&self) -> Result<Zeroizing<Vec<u8>>, CallError> {
        use base64::engine::general_purpose::STANDARD;
        if self.binary {
            STANDARD
                .decode(self.value.as_bytes())
                .map(Zeroizing::new)
                .map_err(|_| CallError::invalid("the handle's value is not base64"))
        } else {
            Ok(Zeroizing::new(self.value.as_bytes().to_vec()))
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether `text` is shaped like a handle (it may still be unknown).
pub fn is_handle(text: &str) -> bool {
    text.strip_prefix(PREFIX).is_some_and(valid_id)
}

fn valid_id(id: &str) -> bool {
    id.len() == ID_BYTES * 4 / 3
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Handles {
    pub fn new(ttl: Duration) -> Self {
        Handles {
            ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        // A panic elsewhere mid-update leaves a valid map (entries are whole).
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `value` and returns its handle. `token_expiry`: the creator's expiry
    /// (seconds since the epoch), which the handle never outlives.
    pub fn issue(
        &self,
        value: String,
        binary: bool,
        source: Source,
        lineage: &[String],
        token_expiry: Option<u64>,
    ) -> Result<String, CallError> {
        let value = Zeroizing::new(value);
        let mut id = [0u8; ID_BYTES];
        getrandom::getrandom(&mut id)
            .map_err(|e| CallError::invalid(format!("no randomness for a handle: {e}")))?;
        let id = URL_SAFE_NO_PAD.encode(id);
        let now = now_secs();
        let mut expires_at = now.saturating_add(self.ttl.as_secs());
        if let Some(t) = token_expiry {
            expires_at = expires_at.min(t);
        }
        let mut slots = self.lock();
        if slots.len() >= MAX_LIVE {
            sweep_locked(&mut slots, now, self.ttl.as_secs(), None);
            if slots.len() >= MAX_LIVE {
                return Err(CallError::invalid(
                    "too many live handles in this server; retry when some have expired",
                ));
            }
        }
        slots.insert(
            id.clone(),
            Slot::Live(Entry {
                value,
                binary,
                source,
                lineage: lineage.to_vec(),
                expires_at,
            }),
        );
        Ok(format!("{PREFIX}{id}"))
    }

    /// The value behind `text` for a token whose block ids are `lineage`: the creator
    /// or a descendant. Anything else is "unknown handle" (a sibling learns nothing).
    pub fn resolve(&self, text: &str, lineage: &[String]) -> Result<Resolved, Denial> {
        let id = text
            .strip_prefix(PREFIX)
            .filter(|id| valid_id(id))
            .ok_or(Denial::UnknownHandle)?;
        let now = now_secs();
        let mut slots = self.lock();
        let entry = match slots.get(id) {
            None => return Err(Denial::UnknownHandle),
            Some(Slot::Expired(_)) => return Err(Denial::HandleExpired),
            Some(Slot::Live(e)) => e,
        };
        if !lineage.starts_with(&entry.lineage) {
            return Err(Denial::UnknownHandle);
        }
        if now >= entry.expires_at {
            slots.insert(id.to_string(), Slot::Expired(now));
            return Err(Denial::HandleExpired);
        }
        Ok(Resolved {
            value: entry.value.clone(),
            binary: entry.binary,
            source: entry.source.clone(),
        })
    }

    /// Zeroes and drops expired handles and those of revoked tokens; forgets old
    /// tombstones. Called every second or so, and when the store is full.
    pub fn sweep(&self, revoked: Option<&RevocationSet>) {
        sweep_locked(&mut self.lock(), now_secs(), self.ttl.as_secs(), revoked);
    }

    pub fn live(&self) -> usize {
        self.lock()
            .values()
            .filter(|s| matches!(s, Slot::Live(_)))
            .count()
    }
}

fn sweep_locked(
    slots: &mut HashMap<String, Slot>,
    now: u64,
    ttl: u64,
    revoked: Option<&RevocationSet>,
) {
    let is_revoked = |e: &Entry| {
        revoked.is_some_and(|set| {
            e.lineage
                .iter()
                .any(|id| hex::decode(id).is_ok_and(|b| set.contains(&b)))
        })
    };
    slots.retain(|_, slot| match slot {
        Slot::Expired(at) => now < at.saturating_add(ttl),
        Slot::Live(e) => !is_revoked(e),
    });
    for slot in slots.values_mut() {
        if let Slot::Live(e) = slot {
            if now >= e.expires_at {
                // Dropping the entry zeroes its value.
                *slot = Slot::Expired(now);
            }
        }
    }
}

/// `{{mcpvault:handle:<id>}}` placeholders in `text`, in order, as (range, handle).
/// A `{{mcpvault:handle:` that does not close on a well-formed id is an error: a
/// typo must not send the literal text (or half a secret) to a server.
pub fn placeholders(text: &str) -> Result<Vec<(std::ops::Range<usize>, &str)>, CallError> {
    const OPEN: &str = "{{mcpvault:handle:";
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text.get(from..).and_then(|t| t.find(OPEN)) {
        let start = from + at;
        let handle_start = start + 2;
        let rest = text.get(handle_start..).unwrap_or("");
        let end = rest.find("}}").ok_or_else(malformed)?;
        let handle = rest.get(..end).ok_or_else(malformed)?;
        if !is_handle(handle) {
            return Err(malformed());
        }
        let stop = handle_start + end + 2;
        out.push((start..stop, handle));
        from = stop;
    }
    Ok(out)
}

fn malformed() -> CallError {
    CallError::invalid(
        "malformed placeholder: expected {{mcpvault:handle:<id>}} with an id from a result",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> Source {
        Source {
            kind: ResourceKind::Kv,
            value: "app/db".into(),
        }
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn bound_to_the_creator_and_its_descendants() {
        let h = Handles::new(Duration::from_secs(60));
        let handle = h
            .issue("s3cret".into(), false, src(), &ids(&["aa", "bb"]), None)
            .expect("issue");
        assert!(is_handle(&handle), "{handle}");
        let ok = |l: &[&str]| h.resolve(&handle, &ids(l)).map(|r| r.value.to_string());
        assert_eq!(ok(&["aa", "bb"]).as_deref(), Ok("s3cret"));
        assert_eq!(ok(&["aa", "bb", "cc"]).as_deref(), Ok("s3cret"));
        // The parent, a sibling and a stranger learn nothing.
        for other in [&["aa"][..], &["aa", "bc"], &["zz", "bb"], &[]] {
            assert_eq!(ok(other).err(), Some(Denial::UnknownHandle), "{other:?}");
        }
        assert_eq!(
            h.resolve("mcpvault:handle:nope", &ids(&["aa", "bb"])).err(),
            Some(Denial::UnknownHandle)
        );
    }

    #[test]
    fn expiry_and_revocation_end_a_handle() {
        let h = Handles::new(Duration::from_secs(60));
        let lineage = ids(&["aa"]);
        // The creator expired a second ago: so did the handle.
        let past = now_secs() - 1;
        let dead = h
            .issue("v".into(), false, src(), &lineage, Some(past))
            .expect("issue");
        assert_eq!(
            h.resolve(&dead, &lineage).err(),
            Some(Denial::HandleExpired)
        );
        let live = h
            .issue("v".into(), false, src(), &lineage, None)
            .expect("issue");
        h.sweep(Some(&RevocationSet::new([vec![0xaa]])));
        assert_eq!(
            h.resolve(&live, &lineage).err(),
            Some(Denial::UnknownHandle)
        );
        assert_eq!(h.live(), 0);
    }

    #[test]
    fn placeholders_are_found_or_refused() {
        let h = Handles::new(Duration::from_secs(60));
        let a = h.issue("x".into(), false, src(), &[], None).expect("issue");
        let text = format!("Bearer {{{{{a}}}}} and {{{{{a}}}}}");
        let found = placeholders(&text).expect("placeholders");
        assert_eq!(found.len(), 2);
        assert_eq!(&text[found[0].0.clone()], format!("{{{{{a}}}}}"));
        assert!(placeholders("no placeholder {{here}}")
            .expect("none")
            .is_empty());
        for bad in [
            "{{mcpvault:handle:short}}",
            &format!("{{{{{a}"),
            &format!("{{{{{a}x}}}}"),
        ] {
            assert!(placeholders(bad).is_err(), "{bad}");
        }
    }
}
