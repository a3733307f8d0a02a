//! `db.*`: dynamic database credentials. The resource is the role; for renew and
//! revoke the gate derives it from the lease id (`{DB_MOUNT}/creds/{role}/...`), so
//! a token for one role cannot touch another role's leases, nor any other lease.

use std::sync::Arc;

use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::schemars::{self, JsonSchema};
use rmcp::{tool, tool_router, Json};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::CallError;
use crate::paths::validate_path;
use crate::token::ResourceKind;

use super::kv::{wrap_ttl, Wrapped};
use super::{declared, Args, Authorized, McpVault, Scope, ScopeFn, Scoped};

pub(crate) const SCOPES: &[(&str, ScopeFn)] = &[
    ("db.issue_creds", declared::<IssueArgs>),
    ("db.renew", declared::<RenewArgs>),
    ("db.revoke", declared::<RevokeArgs>),
];

impl Scoped for IssueArgs {
    fn scope(a: &Args<'_>, _: &Config) -> Result<Scope, CallError> {
        Scope::named(ResourceKind::Db, "role", a.str("role")?)
    }
}

impl Scoped for RenewArgs {
    fn scope(a: &Args<'_>, cfg: &Config) -> Result<Scope, CallError> {
        lease_scope(cfg, a.str("lease_id")?)
    }
}

impl Scoped for RevokeArgs {
    fn scope(a: &Args<'_>, cfg: &Config) -> Result<Scope, CallError> {
        lease_scope(cfg, a.str("lease_id")?)
    }
}

/// The role of a database lease id `{DB_MOUNT}/creds/{role}/{id}`. Lease ids of any
/// other shape are refused: `sys/leases` would otherwise renew or revoke anything.
pub fn lease_role<'a>(db_mount: &str, lease: &'a str) -> Result<&'a str, CallError> {
    let bad = |why: String| CallError::bad_field("lease_id", why);
    validate_path(lease).map_err(|e| bad(e.to_string()))?;
    let rest = lease
        .strip_prefix(db_mount)
        .and_then(|r| r.strip_prefix("/creds/"))
        .ok_or_else(|| bad(format!("must start with {db_mount}/creds/")))?;
    match rest.split_once('/') {
        Some((role, id)) if !role.is_empty() && !id.is_empty() => Ok(role),
        _ => Err(bad(format!("must look like {db_mount}/creds/ROLE/ID"))),
    }
}

fn lease_scope(cfg: &Config, lease: &str) -> Result<Scope, CallError> {
    let role = lease_role(&cfg.db_mount, lease)?;
    Ok(Scope::One(ResourceKind::Db, role.to_string()))
}

/// One year: Vault caps increments at the role's max TTL anyway; this only keeps
/// absurd numbers out of the request.
const MAX_INCREMENT_SECS: u64 = 365 * 24 * 3600;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct IssueArgs {
    /// Database role name configured in Vault, e.g. `readonly`.
    pub role: String,
    /// Seconds: instead of the credentials, return a single-use Vault wrapping token
    /// for a consumer outside this conversation (see `wrap_token`). Capped at the
    /// token's remaining lifetime; the credentials' lease still ends with the token.
    pub wrap_ttl: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IssueResult {
    pub username: String,
    pub password: String,
    /// Pass to db.renew to extend, db.revoke to drop the database user.
    pub lease_id: String,
    /// Seconds until the credentials expire (no later than the token).
    pub lease_duration: u64,
    pub renewable: bool,
    /// Present when the lease ends earlier than the role's TTL because the token
    /// that obtained it does (Vault revokes it with the token's child token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capped_to_seconds: Option<u64>,
}

/// db.issue_creds's answer: the credentials, or with `wrap_ttl` the wrapping token
/// instead.
#[derive(Debug, Serialize, JsonSchema)]
pub struct IssueOutput {
    #[serde(flatten)]
    pub creds: Option<IssueResult>,
    #[serde(flatten)]
    pub wrapped: Option<Wrapped>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RenewArgs {
    /// Lease id from db.issue_creds, e.g. `database/creds/readonly/AbC123`.
    pub lease_id: String,
    /// Seconds to extend by (Vault caps it at the role's max TTL).
    pub increment: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RenewResult {
    pub lease_id: String,
    /// Seconds until the credentials expire now.
    pub lease_duration: u64,
    /// Present when the increment was cut so the lease ends with the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capped_to_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RevokeArgs {
    /// Lease id from db.issue_creds.
    pub lease_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RevokeResult {
    pub lease_id: String,
    pub revoked: bool,
}

#[tool_router(router = db_router, vis = "pub(crate)")]
impl McpVault {
    #[tool(
        name = "db.issue_creds",
        description = "Create a fresh, short-lived database user for a Vault database role. \
                       Returns username, password (a handle `mcpvault:handle:<id>` unless your \
                       token may reveal this role's passwords: use it in http.request \
                       placeholders without seeing it) and a lease: renew it with db.renew, and call \
                       db.revoke when done so the user is dropped.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn db_issue_creds(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<IssueArgs>,
    ) -> Result<Json<IssueOutput>, CallError> {
        if let Some(ttl) = a.wrap_ttl {
            return self.db_issue_wrapped(&auth, ttl).await.map(Json);
        }
        let Json(creds) = self.db_issue_plain(auth).await?;
        Ok(Json(IssueOutput {
            creds: Some(creds),
            wrapped: None,
        }))
    }

    /// The Vault child token made for this capability token: leases issued through
    /// it end when the capability does, and die when it is revoked.
    async fn child_for(&self, auth: &Authorized, op: &'static str) -> Result<String, CallError> {
        self.vault()
            .child_token(
                &self.cfg().vault_token_role,
                &self.cfg().kv_mount,
                &auth.chain,
                auth.remaining_secs(),
            )
            .await
            .map_err(|e| e.at(op).into())
    }

    /// db.issue_creds without wrapping. The role comes from `auth` (the authorized
    /// scope), not from the arguments.
    async fn db_issue_plain(&self, auth: Arc<Authorized>) -> Result<Json<IssueResult>, CallError> {
        let child = self.child_for(&auth, "db.issue_creds").await?;
        let c = self
            .vault()
            .db_creds(&self.cfg().db_mount, auth.named()?, Some(&child))
            .await
            .map_err(|e| e.at("db.issue_creds"))?;
        let remaining = auth.remaining_secs();
        let capped_to_seconds = remaining.filter(|&r| c.lease.lease_duration > r);
        Ok(Json(IssueResult {
            username: c.username,
            password: auth.secret(c.password)?,
            lease_id: c.lease.lease_id,
            lease_duration: capped_to_seconds.unwrap_or(c.lease.lease_duration),
            renewable: c.lease.renewable,
            capped_to_seconds,
        }))
    }

    #[tool(
        name = "db.renew",
        description = "Extend the lease of database credentials from db.issue_creds. Returns the \
                       new remaining lease_duration in seconds.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn db_renew(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<RenewArgs>,
    ) -> Result<Json<RenewResult>, CallError> {
        if a.increment
            .is_some_and(|i| i == 0 || i > MAX_INCREMENT_SECS)
        {
            return Err(CallError::invalid(format!(
                "`increment` must be 1 to {MAX_INCREMENT_SECS} seconds"
            )));
        }
        // A renewal through a token never reaches past the token's end; without an
        // increment, an expiring token's renewal runs to its end.
        let (increment, capped_to_seconds) = match (auth.remaining_secs(), a.increment) {
            (None, i) => (i, None),
            (Some(0), _) => return Err(CallError::Denied(crate::error::Denial::Expired)),
            (Some(rem), Some(i)) if i <= rem => (Some(i), None),
            (Some(rem), _) => (Some(rem), Some(rem)),
        };
        let lease = self
            .vault()
            .lease_renew(&a.lease_id, increment)
            .await
            .map_err(|e| e.at("db.renew"))?;
        Ok(Json(RenewResult {
            lease_id: lease.lease_id,
            lease_duration: lease.lease_duration,
            capped_to_seconds,
        }))
    }

    #[tool(
        name = "db.revoke",
        description = "Revoke database credentials from db.issue_creds now: Vault drops the \
                       database user, so the password stops working immediately.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn db_revoke(
        &self,
        Extension(_): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<RevokeArgs>,
    ) -> Result<Json<RevokeResult>, CallError> {
        self.vault()
            .lease_revoke(&a.lease_id)
            .await
            .map_err(|e| e.at("db.revoke"))?;
        Ok(Json(RevokeResult {
            lease_id: a.lease_id,
            revoked: true,
        }))
    }
}

impl McpVault {
    /// db.issue_creds with `wrap_ttl`. The request goes through the capability's child
    /// token as without wrapping: Vault registers the lease against the requesting
    /// token before it wraps the response, so the credentials still end when the
    /// capability token does (or is revoked), whoever unwraps them and whenever. The
    /// wrapping token itself is cut to the capability's remaining lifetime too.
    async fn db_issue_wrapped(
        &self,
        auth: &Authorized,
        asked: u64,
    ) -> Result<IssueOutput, CallError> {
        const OP: &str = "db.issue_creds";
        let ttl = wrap_ttl(auth, asked)?;
        let child = self.child_for(auth, OP).await?;
        let w = self
            .vault()
            .db_creds_wrapped(&self.cfg().db_mount, auth.named()?, &child, ttl)
            .await
            .map_err(|e| e.at(OP))?;
        Ok(IssueOutput {
            creds: None,
            wrapped: Some(Wrapped {
                wrap_ttl: w.ttl,
                creation_path: w.creation_path,
                wrap_token: auth.secret(w.token)?,
            }),
        })
    }
}
