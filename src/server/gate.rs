//! The one authorization check point. Every tools/call, resources/read and
//! prompts/get passes here before any backend is touched.

use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::config::Config;
use crate::paths::{validate_name, validate_path, validate_prefix};
use crate::token::{
    AuthorizedFacts, Request, RequestResource, ResourceKind, Verifier, VerifierConfig,
};

use super::ratelimit::RateLimiter;
use super::revocation::RevocationSource;
use crate::audit::{AuditLog, Event};

pub struct Gate {
    verifier: Verifier,
    subject: String,
    default_token: Option<String>,
    revocation: RevocationSource,
    limiter: RateLimiter,
    pub audit: AuditLog,
}

/// What happened to a call, for the audit log.
pub enum Decision {
    /// Arguments refused before authorization.
    Invalid(String),
    Deny(String),
    Allow {
        token_id: Option<String>,
        ok: bool,
        ms: f64,
    },
}

/// Why a call did not pass the gate.
#[derive(Debug)]
pub enum GateError {
    /// Arguments needed for the decision are missing or invalid (a tool error).
    BadArgs(String),
    /// Denied by policy: the text after `denied: `.
    Denied { reason: String, code: &'static str },
}

impl Gate {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        let audit = match &cfg.audit_log {
            Some(path) => AuditLog::open(path)
                .map_err(|e| format!("MCPVAULT_AUDIT_LOG {}: {e}", path.display()))?,
            None => AuditLog::stderr(),
        };
        Ok(Gate {
            verifier: Verifier::new(cfg.public_keys.clone(), VerifierConfig::default())
                .map_err(|e| e.to_string())?,
            subject: cfg.subject.clone(),
            default_token: cfg.default_token.clone(),
            revocation: RevocationSource::new(cfg.revocation_file.clone()),
            limiter: RateLimiter::from_env()?,
            audit,
        })
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Records one decision in the audit log.
    pub fn record(&self, request_id: String, tool: &str, resource: Option<String>, d: Decision) {
        let (decision, reason, token_id, outcome, backend_ms) = match d {
            Decision::Invalid(r) => ("invalid", Some(r), None, None, None),
            Decision::Deny(r) => ("deny", Some(r), None, None, None),
            Decision::Allow { token_id, ok, ms } => (
                "allow",
                None,
                token_id,
                Some(if ok { "ok" } else { "error" }),
                Some(ms),
            ),
        };
        self.audit.record(&Event {
            subject: &self.subject,
            tool,
            resource,
            decision,
            reason,
            token_id,
            outcome,
            backend_ms,
            request_id,
        });
    }

    /// Authorizes `tool` on `resource` with the call's token (else the default one).
    pub fn authorize(
        &self,
        meta_token: Option<&str>,
        tool: &str,
        resource: Option<(ResourceKind, &str)>,
    ) -> Result<AuthorizedFacts, GateError> {
        let token = meta_token
            .or(self.default_token.as_deref())
            .ok_or(GateError::Denied {
                reason: "no token".into(),
                code: "no_token",
            })?;
        let revoked = self.revocation.current().map_err(|e| GateError::Denied {
            reason: format!("revocation list unavailable, failing closed ({e})"),
            code: "revocation_unavailable",
        })?;
        let req = Request {
            tool,
            resource: resource.map(|(kind, value)| RequestResource { kind, value }),
            subject: Some(&self.subject),
            now: SystemTime::now(),
        };
        let facts = self
            .verifier
            .authorize(token, &req, &revoked)
            .map_err(|d| GateError::Denied {
                reason: d.to_string(),
                code: d.code(),
            })?;
        // The bucket belongs to the minted token (its authority block): attenuated
        // copies, which any holder can make offline, share it rather than each
        // bringing a fresh one.
        let root_id = facts
            .revocation_ids
            .first()
            .map(String::as_str)
            .unwrap_or("");
        self.limiter
            .check(root_id)
            .map_err(|reason| GateError::Denied {
                reason,
                code: "rate_limited",
            })?;
        Ok(facts)
    }
}

fn arg_str<'a>(args: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, GateError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(GateError::BadArgs(format!("`{name}` must be a string"))),
    }
}

fn required<'a>(args: &'a Map<String, Value>, name: &str) -> Result<&'a str, GateError> {
    arg_str(args, name)?
        .ok_or_else(|| GateError::BadArgs(format!("missing required argument `{name}`")))
}

fn bad(name: &str, e: impl std::fmt::Display) -> GateError {
    GateError::BadArgs(format!("invalid `{name}`: {e}"))
}

/// The resource a call names, validated before any I/O. The table is the single
/// place that knows which argument of which tool is the resource.
pub fn resource_of(
    cfg: &Config,
    tool: &str,
    args: &Map<String, Value>,
) -> Result<Option<(ResourceKind, String)>, GateError> {
    let (family, _) = tool.split_once('.').unwrap_or((tool, ""));
    let named =
        |kind: ResourceKind, field: &str| -> Result<Option<(ResourceKind, String)>, GateError> {
            let v = required(args, field)?;
            validate_name(v).map_err(|e| bad(field, e))?;
            Ok(Some((kind, v.to_string())))
        };
    match (family, tool) {
        (_, "kv.list") => {
            let p = arg_str(args, "prefix")?.unwrap_or("");
            validate_prefix(p).map_err(|e| bad("prefix", e))?;
            Ok(Some((ResourceKind::Kv, p.to_string())))
        }
        ("kv", _) => {
            let p = required(args, "path")?;
            validate_path(p).map_err(|e| bad("path", e))?;
            Ok(Some((ResourceKind::Kv, p.to_string())))
        }
        (_, "transit.random") => Ok(None),
        ("transit", _) => named(ResourceKind::Transit, "key"),
        (_, "db.renew") | (_, "db.revoke") => {
            let lease = required(args, "lease_id")?;
            Ok(Some((
                ResourceKind::Db,
                lease_role(cfg, lease)?.to_string(),
            )))
        }
        ("db", _) => named(ResourceKind::Db, "role"),
        ("ssh", _) => named(ResourceKind::Ssh, "role"),
        ("kms", _) => {
            let key = match arg_str(args, "key_id")? {
                Some(k) => k.to_string(),
                None => cfg.kms_default_key.clone().ok_or_else(|| {
                    GateError::BadArgs(
                        "`key_id` is required (AWS_KMS_DEFAULT_KEY_ID is not set)".into(),
                    )
                })?,
            };
            if key.is_empty() || key.len() > 2048 || key.chars().any(char::is_control) {
                return Err(bad("key_id", "must be 1-2048 printable characters"));
            }
            Ok(Some((ResourceKind::Kms, key)))
        }
        _ => Ok(None),
    }
}

/// The role of a database lease id `{DB_MOUNT}/creds/{role}/{id}`. Lease ids of any
/// other shape are refused: `sys/leases` would otherwise renew or revoke anything.
pub fn lease_role<'a>(cfg: &Config, lease: &'a str) -> Result<&'a str, GateError> {
    validate_path(lease).map_err(|e| bad("lease_id", e))?;
    let rest = lease
        .strip_prefix(cfg.db_mount.as_str())
        .and_then(|r| r.strip_prefix("/creds/"))
        .ok_or_else(|| {
            bad(
                "lease_id",
                format!("must start with {}/creds/", cfg.db_mount),
            )
        })?;
    match rest.split_once('/') {
        Some((role, id)) if !role.is_empty() && !id.is_empty() => Ok(role),
        _ => Err(bad(
            "lease_id",
            format!("must look like {}/creds/ROLE/ID", cfg.db_mount),
        )),
    }
}
