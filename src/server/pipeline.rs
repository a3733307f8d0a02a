//! The one request pipeline. Every tools/call, resources/read and prompts/get, from
//! any transport, is a [`Call`] (subject, token, tool, arguments) and goes through
//! [`Pipeline::run`], which in this order: takes the scope the tool's argument type
//! declared (arguments validated, resource resolved) -> token present -> revocation
//! list readable -> token verified and authorized for the tool on that scope -> rate
//! limit -> the user's confirmation, when the token requires it -> backend -> audit. A call refused at any step never reaches the backend,
//! and every decision is audited here and nowhere else.
//!
//! A transport only builds the `Call` and renders the result; a tool only declares
//! its scope ([`Scoped`]) and talks to its backend with what the pipeline hands it
//! ([`Authorized`]).

use std::future::Future;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::audit::{AuditLog, Event};
use crate::config::Config;
use crate::error::{CallError, Denial};
use crate::paths::{validate_name, validate_path, validate_prefix};
use crate::token::{Request, RequestResource, ResourceKind, Verifier, VerifierConfig};

use super::confirm::{Ask, Confirmed, Confirmer, Question};
use super::handles::{Handles, Source};
use super::ratelimit::RateLimiter;
use super::revocation::RevocationSource;

/// What a call touches, as its tool declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One named resource of a kind.
    One(ResourceKind, String),
    /// The whole kind: the optional argument that names the resource was absent
    /// (`kms.decrypt` without `key_id`). Only tokens that do not restrict the kind
    /// admit it.
    Kind(ResourceKind),
    /// No resource at all (`transit.random`), declared explicitly.
    Nothing,
    /// Several resources, each of which must be granted (`ssh.sign`: the role and
    /// every principal).
    All(Vec<Scope>),
}

impl Scope {
    /// How the audit log and denials name it (`kv:app/db`, `kms:*`).
    pub fn label(&self) -> Option<String> {
        match self {
            Scope::One(k, v) => Some(format!("{k}:{v}")),
            Scope::Kind(k) => Some(format!("{k}:*")),
            Scope::Nothing => None,
            Scope::All(parts) => {
                let labels: Vec<String> = parts.iter().filter_map(Scope::label).collect();
                (!labels.is_empty()).then(|| labels.join(","))
            }
        }
    }

    /// What the verifier is asked, one request per resource (a Datalog check is
    /// satisfied by any one matching fact, so several resources are never put in one
    /// request: each must pass on its own).
    fn requests(&self) -> Vec<Option<RequestResource<'_>>> {
        match self {
            Scope::One(kind, value) => vec![Some(RequestResource { kind: *kind, value })],
            Scope::Kind(kind) => vec![Some(RequestResource::whole_kind(*kind))],
            Scope::Nothing => vec![None],
            Scope::All(parts) => parts.iter().flat_map(Scope::requests).collect(),
        }
    }

    /// A KV path (`kv.list`: a folder prefix), validated before any I/O.
    pub fn kv_path(path: &str) -> Result<Scope, CallError> {
        validate_path(path).map_err(|e| CallError::bad_field("path", e))?;
        Ok(Scope::One(ResourceKind::Kv, path.to_string()))
    }

    pub fn kv_prefix(prefix: &str) -> Result<Scope, CallError> {
        validate_prefix(prefix).map_err(|e| CallError::bad_field("prefix", e))?;
        Ok(Scope::One(ResourceKind::Kv, prefix.to_string()))
    }

    /// A plain name (transit key, database or SSH role) from argument `field`.
    pub fn named(kind: ResourceKind, field: &str, value: &str) -> Result<Scope, CallError> {
        validate_name(value).map_err(|e| CallError::bad_field(field, e))?;
        Ok(Scope::One(kind, value.to_string()))
    }
}

/// Implemented by every tool's argument type: the scope of a call is declared with
/// the type whose fields name it, so a tool cannot be registered without saying what
/// it touches (see [`declared`] and the router test in `server/mod.rs`). It reads only
/// the arguments that name the resource, before the token is looked at; the rest of
/// the arguments are typed and checked by the tool once the call is authorized.
pub trait Scoped {
    fn scope(args: &Args<'_>, cfg: &Config) -> Result<Scope, CallError>;
}

/// The raw arguments of a call, read by name with precise messages.
pub struct Args<'a>(pub &'a Map<String, Value>);

impl<'a> Args<'a> {
    /// An optional string argument (`null` counts as absent).
    pub fn opt_str(&self, name: &str) -> Result<Option<&'a str>, CallError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(CallError::invalid(format!("`{name}` must be a string"))),
        }
    }

    pub fn str(&self, name: &str) -> Result<&'a str, CallError> {
        self.opt_str(name)?
            .ok_or_else(|| CallError::invalid(format!("missing required argument `{name}`")))
    }
}

/// The scope function of one tool, as the registry keeps it.
pub type ScopeFn = fn(&Map<String, Value>, &Config) -> Result<Scope, CallError>;

/// The scope `A` declares for these arguments.
pub fn declared<A: Scoped>(args: &Map<String, Value>, cfg: &Config) -> Result<Scope, CallError> {
    A::scope(&Args(args), cfg)
}

/// serde quotes the offending value (`invalid type: string "hunter2", expected a
/// map`): a secret the agent put in the wrong field would come back in the result.
/// Keep the complaint, drop the value.
pub fn without_values(msg: &str) -> String {
    for marker in ["invalid type: ", "invalid value: "] {
        if let Some(start) = msg.find(marker) {
            let after = start + marker.len();
            // The expectation comes from our own types and ends the message.
            let end = msg
                .rfind(", expected")
                .filter(|&e| e >= after)
                .unwrap_or(msg.len());
            let kind = msg
                .get(after..end)
                .unwrap_or("")
                .split(['"', '`'])
                .next()
                .unwrap_or("")
                .trim_end();
            let head = msg.get(..start).unwrap_or("");
            let tail = msg.get(end..).unwrap_or("");
            return format!("{head}{marker}{kind}{tail}");
        }
    }
    msg.to_string()
}

/// One call, as a transport hands it over.
pub struct Call<'a> {
    pub request_id: String,
    pub tool: &'a str,
    /// The token the request carried (`Err`: it carried two different ones).
    pub token: Result<Option<String>, Denial>,
    /// How the user can be asked, should the token require confirmation.
    pub ask: Ask,
}

/// What the pipeline decided, handed to the tool with the call.
#[derive(Debug, Clone)]
pub struct Authorized {
    /// The call's token and what answers questions about it: may it reveal a value,
    /// may it use a handle. Never printed.
    gate: Gate,
    /// The subject the call serves: its KV namespace.
    pub subject: String,
    pub scope: Scope,
    /// Revocation id of the token's last block (identifies it, reveals nothing).
    pub token_id: Option<String>,
    /// When the token expires (seconds since the epoch), if it does.
    pub expires_at: Option<u64>,
    /// Every block's revocation id, authority first (hex): what binds credentials
    /// issued through the token to it and its ancestors.
    pub chain: Vec<String>,
}

/// Everything needed to ask the verifier more about the call's token after the call
/// was authorized: reveal and handle decisions are token decisions too.
#[derive(Clone)]
struct Gate {
    token: Arc<Zeroizing<String>>,
    tool: String,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        write!(f, "Gate({})", self.tool)
    }
}

/// What the pipeline and every authorized call share.
struct Shared {
    verifier: Verifier,
    subject: String,
    revocation: RevocationSource,
    handles: Handles,
    reveal_never: bool,
}

impl Authorized {
    /// Where a secret value this call returns comes from: the call's main resource
    /// (a whole kind when it names none). `None` for calls that name nothing.
    pub fn source(&self) -> Option<Source> {
        fn of(scope: &Scope) -> Option<Source> {
            match scope {
                Scope::One(kind, value) => Some(Source {
                    kind: *kind,
                    value: value.clone(),
                }),
                Scope::Kind(kind) => Some(Source {
                    kind: *kind,
                    value: RequestResource::ANY.to_string(),
                }),
                Scope::Nothing => None,
                Scope::All(parts) => parts.first().and_then(of),
            }
        }
        of(&self.scope)
    }

    fn request(&self) -> Request<'_> {
        let resource = match &self.scope {
            Scope::One(kind, value) => Some(RequestResource { kind: *kind, value }),
            Scope::Kind(kind) => Some(RequestResource::whole_kind(*kind)),
            Scope::All(parts) => match parts.first() {
                Some(Scope::One(kind, value)) => Some(RequestResource { kind: *kind, value }),
                Some(Scope::Kind(kind)) => Some(RequestResource::whole_kind(*kind)),
                _ => None,
            },
            Scope::Nothing => None,
        };
        Request {
            tool: &self.gate.tool,
            resource,
            subject: Some(&self.gate.shared.subject),
            now: SystemTime::now(),
        }
    }

    /// Whether this call's token may see a value from `kind:value` in clear. Fails
    /// closed (an unreadable revocation list reveals nothing); never with
    /// `MCPVAULT_REVEAL=never`.
    pub fn may_reveal(&self, kind: ResourceKind, value: &str) -> bool {
        let shared = &self.gate.shared;
        if shared.reveal_never {
            return false;
        }
        let Ok(revoked) = shared.revocation.current() else {
            return false;
        };
        shared.verifier.may_reveal(
            &self.gate.token,
            &self.request(),
            &revoked,
            RequestResource { kind, value },
        )
    }

    /// A secret value read from the call's main resource, as the agent may see it:
    /// in clear if the token may reveal it, else a handle.
    pub fn secret(&self, value: String) -> Result<String, CallError> {
        self.protect(value, false)
    }

    /// The same for a base64 field (a decrypted plaintext): a handle used as text
    /// stands for the decoded bytes.
    pub fn secret_b64(&self, value: String) -> Result<String, CallError> {
        self.protect(value, true)
    }

    /// Every value of a secret's data (keys stay visible); non-string values are
    /// kept as their JSON text behind the handle.
    pub fn secret_map(&self, data: Map<String, Value>) -> Result<Map<String, Value>, CallError> {
        let source = self.main_source()?;
        if self.may_reveal(source.kind, &source.value) {
            return Ok(data);
        }
        data.into_iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                let h = self.issue(text, false, source.clone())?;
                Ok((k, Value::String(h)))
            })
            .collect()
    }

    fn main_source(&self) -> Result<Source, CallError> {
        self.source()
            .ok_or_else(|| CallError::invalid("this call names no resource"))
    }

    fn protect(&self, value: String, binary: bool) -> Result<String, CallError> {
        let source = self.main_source()?;
        if self.may_reveal(source.kind, &source.value) {
            return Ok(value);
        }
        self.issue(value, binary, source)
    }

    fn issue(&self, value: String, binary: bool, source: Source) -> Result<String, CallError> {
        self.gate
            .shared
            .handles
            .issue(value, binary, source, &self.chain, self.expires_at)
    }

    /// The text behind a handle this call's token holds, to be used where the agent
    /// does not see it (an `http.request` header). A descendant of the creating token
    /// must still be granted the handle's source resource.
    pub fn use_handle(&self, handle: &str) -> Result<Zeroizing<String>, CallError> {
        self.resolve(handle)?.text()
    }

    /// The bytes behind a handle, for a value the call encrypts under `kind:dest`
    /// (see [`Authorized::use_handle_into`]).
    pub fn use_handle_bytes_into(
        &self,
        handle: &str,
        kind: ResourceKind,
        dest: &str,
    ) -> Result<Zeroizing<Vec<u8>>, CallError> {
        self.resolve_into(handle, kind, dest)?.bytes()
    }

    /// The text behind a handle, for a value the call stores or encrypts into
    /// `kind:dest`: refused if the token could read it back in clear there but may
    /// not reveal it where it came from (no laundering a handle into a revealable
    /// place).
    pub fn use_handle_into(
        &self,
        handle: &str,
        kind: ResourceKind,
        dest: &str,
    ) -> Result<Zeroizing<String>, CallError> {
        self.resolve_into(handle, kind, dest)?.text()
    }

    /// `data` with every whole-value handle replaced by its text, for a write into
    /// `kind:dest` (`kv.write`: copy a secret without seeing it).
    pub fn unseal_map(
        &self,
        data: Map<String, Value>,
        kind: ResourceKind,
        dest: &str,
    ) -> Result<Map<String, Value>, CallError> {
        data.into_iter()
            .map(|(k, v)| match v {
                Value::String(s) if super::handles::is_handle(&s) => {
                    let text = self.use_handle_into(&s, kind, dest)?;
                    Ok((k, Value::String(text.to_string())))
                }
                other => Ok((k, other)),
            })
            .collect()
    }

    fn resolve_into(
        &self,
        handle: &str,
        kind: ResourceKind,
        dest: &str,
    ) -> Result<super::handles::Resolved, CallError> {
        let resolved = self.resolve(handle)?;
        if self.may_reveal(kind, dest)
            && !self.may_reveal(resolved.source.kind, &resolved.source.value)
        {
            return Err(CallError::Denied(Denial::HandleRevealable));
        }
        Ok(resolved)
    }

    fn resolve(&self, handle: &str) -> Result<super::handles::Resolved, CallError> {
        let shared = &self.gate.shared;
        let resolved = shared.handles.resolve(handle, &self.chain)?;
        // The creator read it; a descendant must still be granted where it came from.
        let revoked = shared
            .revocation
            .current()
            .map_err(Denial::RevocationUnavailable)?;
        let req = Request {
            tool: &self.gate.tool,
            resource: Some(RequestResource {
                kind: resolved.source.kind,
                value: &resolved.source.value,
            }),
            subject: Some(&shared.subject),
            now: SystemTime::now(),
        };
        shared
            .verifier
            .authorize(&self.gate.token, &req, &revoked)?;
        Ok(resolved)
    }

    /// The resource's value when the scope names one (the KMS key, after the
    /// server's default was applied).
    pub fn resource(&self) -> Option<&str> {
        match &self.scope {
            Scope::One(_, v) => Some(v),
            // The first part names the call's main resource (the SSH role).
            Scope::All(parts) => match parts.first() {
                Some(Scope::One(_, v)) => Some(v),
                _ => None,
            },
            _ => None,
        }
    }

    /// Seconds until the token expires (0 if it already has), `None` if it never
    /// does: nothing issued through the call may outlive it.
    pub fn remaining_secs(&self) -> Option<u64> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.expires_at.map(|t| t.saturating_sub(now))
    }

    /// The one resource a tool that always names one was authorized for (transit
    /// key, database or SSH role): the tool uses this, not its argument, so what was
    /// authorized is what runs.
    pub fn named(&self) -> Result<&str, CallError> {
        self.resource()
            .ok_or_else(|| CallError::invalid("this call names no resource"))
    }
}

/// The token a call was authorized with, its block ids (authority first; the last
/// names it in the audit log), its expiry and whether the call needs the user's
/// confirmation.
type Granted = (Zeroizing<String>, Vec<String>, Option<u64>, bool);

pub struct Pipeline {
    shared: Arc<Shared>,
    default_token: Option<String>,
    limiter: RateLimiter,
    confirmer: Confirmer,
    audit: Arc<AuditLog>,
    audit_syncs: bool,
}

impl Pipeline {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        let audit = match &cfg.audit_log {
            Some(path) => AuditLog::open_with(path, cfg.audit_sync, cfg.audit_key.clone())
                .map_err(|e| format!("MCPVAULT_AUDIT_LOG {}: {e}", path.display()))?,
            None => AuditLog::stderr(),
        };
        Ok(Pipeline {
            shared: Arc::new(Shared {
                verifier: Verifier::new(cfg.public_keys.clone(), VerifierConfig::default())
                    .map_err(|e| e.to_string())?,
                subject: cfg.subject.clone(),
                revocation: RevocationSource::new(
                    cfg.revocation_file.clone(),
                    cfg.revocation_kv.clone(),
                ),
                handles: Handles::new(cfg.handle_ttl),
                reveal_never: cfg.reveal_never,
            }),
            default_token: cfg.default_token.clone(),
            limiter: RateLimiter::new(cfg.token_rate, cfg.subject_rate),
            confirmer: Confirmer::new(cfg.confirm_timeout)?,
            audit_syncs: audit.syncs(),
            audit: Arc::new(audit),
        })
    }

    /// The current revocation list (for revoking what revoked tokens obtained).
    pub fn revocations(&self) -> Result<Arc<crate::token::RevocationSet>, String> {
        self.shared.revocation.current()
    }

    /// Where the shared revocation list lives (`MCPVAULT_REVOCATION_KV`), if set.
    pub fn shared_revocation_path(&self) -> Option<&str> {
        self.shared.revocation.shared_path()
    }

    /// Hands over one read of the shared revocation list.
    pub fn set_shared_revocations(&self, read: Result<Option<String>, String>) {
        self.shared.revocation.set_shared(read);
    }

    /// Zeroes and drops expired handles and those of tokens in `revoked`.
    pub fn sweep_handles(&self, revoked: Option<&crate::token::RevocationSet>) {
        self.shared.handles.sweep(revoked);
    }

    /// The audit log, for checkpoints on a timer and at exit.
    pub fn audit(&self) -> Arc<AuditLog> {
        self.audit.clone()
    }

    pub fn subject(&self) -> &str {
        &self.shared.subject
    }

    /// Runs one call: `scope` is what the tool declared for these arguments (or why
    /// they are unusable), `backend` the work to do once authorized, `succeeded` how
    /// to read its result for the audit log. `Err` only for calls that never reached
    /// the backend.
    pub async fn run<R, F, Fut>(
        &self,
        call: Call<'_>,
        scope: Result<Scope, CallError>,
        succeeded: fn(&R) -> bool,
        backend: F,
    ) -> Result<R, CallError>
    where
        F: FnOnce(Arc<Authorized>) -> Fut,
        Fut: Future<Output = R>,
    {
        let scope = match scope {
            Ok(s) => s,
            Err(e) => {
                self.refused(&call, None, &e);
                return Err(e);
            }
        };
        let (token, chain, expires_at, confirm) = match self.authorize(&call, &scope) {
            Ok(t) => t,
            Err(d) => {
                let e = CallError::Denied(d);
                self.refused(&call, scope.label(), &e);
                return Err(e);
            }
        };
        if confirm {
            let question = Question {
                tool: call.tool,
                resource: scope.label(),
                token: &token,
            };
            // A stateless question is recorded as `pending` (nothing decided yet);
            // the retry that brings the answer is recorded like any call.
            let refusal = match self.confirmer.confirm(&call.ask, &question).await {
                Confirmed::Yes => None,
                Confirmed::No(d) => Some(CallError::Denied(d)),
                Confirmed::Pending(r) => Some(CallError::InputRequired(r)),
            };
            if let Some(e) = refusal {
                self.refused(&call, scope.label(), &e);
                return Err(e);
            }
        }
        let label = scope.label();
        let token_id = chain.last().cloned();
        let mut entry = Event {
            subject: &self.shared.subject,
            tool: call.tool,
            resource: label,
            decision: "allow",
            reason: None,
            token_id: token_id.clone(),
            phase: Some("intent"),
            outcome: None,
            backend_ms: None,
            request_id: call.request_id,
        };
        // Write-ahead: no backend request before the intent is on disk.
        if let Err(e) = self.write(&entry, true) {
            tracing::error!("audit log unavailable, refusing the call: {e}");
            return Err(CallError::Denied(Denial::AuditUnavailable));
        }
        let auth = Arc::new(Authorized {
            gate: Gate {
                token: Arc::new(token),
                tool: call.tool.to_string(),
                shared: self.shared.clone(),
            },
            subject: self.shared.subject.clone(),
            scope,
            token_id,
            expires_at,
            chain,
        });
        let started = Instant::now();
        let result = backend(auth).await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        entry.phase = Some("outcome");
        entry.outcome = Some(if succeeded(&result) { "ok" } else { "error" });
        entry.backend_ms = Some((ms * 1000.0).round() / 1000.0);
        if let Err(e) = self.write(&entry, false) {
            // The call happened; its intent is on record. Say so loudly.
            tracing::error!("audit log unavailable, outcome not recorded: {e}");
        }
        Ok(result)
    }

    fn refused(&self, call: &Call<'_>, resource: Option<String>, e: &CallError) {
        if let CallError::Denied(d) = e {
            tracing::info!(tool = %call.tool, code = d.code(), "call denied");
        }
        let written = self.write(
            &Event {
                subject: &self.shared.subject,
                tool: call.tool,
                resource,
                decision: e.decision(),
                reason: Some(e.reason()),
                token_id: None,
                phase: None,
                outcome: None,
                backend_ms: None,
                request_id: call.request_id.clone(),
            },
            false,
        );
        if let Err(e) = written {
            tracing::error!("audit log unavailable, refusal not recorded: {e}");
        }
    }

    /// An audit write to a file waits on fsync: tell the runtime, so other calls keep
    /// going. (Not for stderr: `block_in_place` hands the worker to a new thread, too
    /// dear for a write that does not block.)
    fn write(&self, e: &Event<'_>, durable: bool) -> std::io::Result<()> {
        if durable && self.audit_syncs {
            super::may_block(|| self.audit.record_as(e, true))
        } else {
            self.audit.record_as(e, durable)
        }
    }

    /// Whether the default token (`MCPVAULT_TOKEN`) grants `tool` at all, whatever
    /// the resource; `None` without a default token. For `tools/list` only: every call
    /// is still authorized on its own.
    pub fn default_token_grants(&self, tool: &str) -> Option<bool> {
        let token = self.default_token.as_deref()?;
        Some(self.grants(token, tool))
    }

    /// Whether `token` grants `tool` at all, whatever the resource (for `tools/list`
    /// only: every call is still authorized on its own).
    pub fn grants(&self, token: &str, tool: &str) -> bool {
        let Ok(revoked) = self.shared.revocation.current() else {
            return false;
        };
        let req = Request {
            tool,
            resource: None,
            subject: Some(&self.shared.subject),
            now: SystemTime::now(),
        };
        self.shared
            .verifier
            .authorize(token, &req, &revoked)
            .is_ok()
    }

    /// The token checks, cheapest first.
    fn authorize(&self, call: &Call<'_>, scope: &Scope) -> Result<Granted, Denial> {
        let carried = call.token.clone()?;
        let token = carried
            .as_deref()
            .or(self.default_token.as_deref())
            .ok_or(Denial::NoToken)?;
        let revoked = self
            .shared
            .revocation
            .current()
            .map_err(Denial::RevocationUnavailable)?;
        let now = SystemTime::now();
        let mut facts = None;
        for resource in scope.requests() {
            let req = Request {
                tool: call.tool,
                resource,
                subject: Some(&self.shared.subject),
                now,
            };
            facts = Some(self.shared.verifier.authorize(token, &req, &revoked)?);
        }
        let facts = facts.ok_or(Denial::NoToken)?;
        // The bucket belongs to the minted token (its authority block): attenuated
        // copies, which any holder can make offline, share it rather than each
        // bringing a fresh one.
        let root_id = facts
            .revocation_ids
            .first()
            .map(String::as_str)
            .unwrap_or("");
        self.limiter.check(root_id).map_err(Denial::RateLimited)?;
        let confirm = facts.requires_confirmation(call.tool);
        Ok((
            Zeroizing::new(token.to_string()),
            facts.revocation_ids,
            facts.expires_at_unix,
            confirm,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{attenuate, generate_keypair, mint, AttenuateSpec, MintSpec};
    use proptest::prelude::*;

    const REVEALS: [&str; 6] = [
        "kv:a/*",
        "kv:b/*",
        "kv:a/x",
        "kv:*",
        "transit:k1",
        "transit:*",
    ];
    const SOURCES: [&str; 2] = ["a/x", "b/y"];
    const DESTS: [(ResourceKind, &str); 4] = [
        (ResourceKind::Kv, "a/z"),
        (ResourceKind::Kv, "b/z"),
        (ResourceKind::Transit, "k1"),
        (ResourceKind::Transit, "k2"),
    ];

    fn subset() -> impl Strategy<Value = Vec<ResourcePattern>> {
        proptest::sample::subsequence(REVEALS.to_vec(), 0..=3)
            .prop_map(|l| l.iter().map(|p| p.parse().expect("pattern")).collect())
    }

    use crate::token::ResourcePattern;

    /// Runs `f` as the backend of an authorized call of `tool` on `scope`.
    fn run<T>(
        rt: &tokio::runtime::Runtime,
        p: &Pipeline,
        token: &str,
        tool: &str,
        scope: Scope,
        f: impl FnOnce(Arc<Authorized>) -> T,
    ) -> T {
        let call = Call {
            request_id: "1".into(),
            tool,
            token: Ok(Some(token.to_string())),
            ask: Ask::Unsupported,
        };
        rt.block_on(p.run(call, Ok(scope), |_| true, |auth| async move { f(auth) }))
            .unwrap_or_else(|e| panic!("{tool} refused: {e:?}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// No laundering, over grant combinations: a handle goes into a destination
        /// the token could reveal only if the token may reveal its source; and a value
        /// comes back in clear exactly when the grants (mint, narrowed by attenuation)
        /// reveal its source.
        #[test]
        fn handles_never_become_revealable(
            minted in subset(),
            narrowed in proptest::option::of(subset()),
            src in proptest::sample::select(SOURCES.to_vec()),
            (dest_kind, dest) in proptest::sample::select(DESTS.to_vec()),
        ) {
            let key = generate_keypair();
            let dir = tempfile::tempdir().expect("tempdir");
            let audit = dir.path().join("audit.log");
            let vars = std::collections::HashMap::from([
                ("SUBJECT", "agentP".to_string()),
                ("MCPVAULT_PUBLIC_KEY", key.public_key.clone()),
                ("MCPVAULT_AUDIT_LOG", audit.to_string_lossy().to_string()),
            ]);
            let cfg = Config::from_vars(&|k| vars.get(k).cloned()).expect("config");
            let p = Pipeline::new(&cfg).expect("pipeline");
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let mut token = mint(&key, &MintSpec {
                subject: Some("agentP".into()),
                reveal: minted.clone(),
                ..MintSpec::default()
            }).expect("mint");
            if let Some(l) = &narrowed {
                token = attenuate(&token, None, &AttenuateSpec {
                    reveal: Some(l.clone()),
                    ..AttenuateSpec::default()
                }).expect("attenuate");
            }
            let model = |kind: ResourceKind, v: &str| {
                minted.iter().any(|p| p.matches(kind, v))
                    && narrowed.as_ref().is_none_or(|l| l.iter().any(|p| p.matches(kind, v)))
            };
            let read = Scope::One(ResourceKind::Kv, src.to_string());
            let (shown, handle) = run(&rt, &p, &token, "kv.read", read, |auth| {
                let shown = auth.secret("v4lue".into()).expect("secret");
                let handle = auth.issue("v4lue".into(), false, auth.source().expect("source"))
                    .expect("issue");
                (shown, handle)
            });
            prop_assert_eq!(shown == "v4lue", model(ResourceKind::Kv, src));
            let tool = if dest_kind == ResourceKind::Kv { "kv.write" } else { "transit.encrypt" };
            let used = run(&rt, &p, &token, tool, Scope::One(dest_kind, dest.to_string()), |auth| {
                auth.use_handle_into(&handle, dest_kind, dest).map(|v| v.to_string())
            });
            let launders = model(dest_kind, dest) && !model(ResourceKind::Kv, src);
            match used {
                Ok(v) => {
                    prop_assert!(!launders, "{} -> {}:{} was allowed", src, dest_kind, dest);
                    prop_assert_eq!(v, "v4lue");
                }
                Err(e) => {
                    prop_assert!(launders, "{} -> {}:{} refused: {:?}", src, dest_kind, dest, e);
                    prop_assert!(matches!(e, CallError::Denied(Denial::HandleRevealable)));
                }
            }
        }
    }

    #[test]
    fn serde_values_are_dropped() {
        assert_eq!(
            without_values("invalid type: string \"hunter2\", expected a map"),
            "invalid type: string, expected a map"
        );
        assert_eq!(
            without_values("missing field `path`"),
            "missing field `path`"
        );
        // Multi-byte text never panics.
        let m = without_values("invalid value: \"é\u{1F600}\", expected é");
        assert!(!m.contains('\u{1F600}'), "{m}");
    }
}
