//! `db.*`: dynamic database credentials. The resource is the role; for renew and
//! revoke the gate derives it from the lease id (`{DB_MOUNT}/creds/{role}/...`), so
//! a token for one role cannot touch another role's leases, nor any other lease.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::schemars::{self, JsonSchema};
use rmcp::{tool, tool_router, Json};
use serde::{Deserialize, Serialize};

use crate::backend::vault::report;

use super::McpVault;

/// One year: Vault caps increments at the role's max TTL anyway; this only keeps
/// absurd numbers out of the request.
const MAX_INCREMENT_SECS: u64 = 365 * 24 * 3600;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct IssueArgs {
    /// Database role name configured in Vault, e.g. `readonly`.
    pub role: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IssueResult {
    pub username: String,
    pub password: String,
    /// Pass to db.renew to extend, db.revoke to drop the database user.
    pub lease_id: String,
    /// Seconds until the credentials expire.
    pub lease_duration: u64,
    pub renewable: bool,
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
                       Returns username, password and a lease: renew it with db.renew, and call \
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
        Parameters(a): Parameters<IssueArgs>,
    ) -> Result<Json<IssueResult>, String> {
        let c = self
            .vault()
            .db_creds(&self.cfg().db_mount, &a.role)
            .await
            .map_err(|e| report("db.issue_creds", e))?;
        Ok(Json(IssueResult {
            username: c.username,
            password: c.password,
            lease_id: c.lease.lease_id,
            lease_duration: c.lease.lease_duration,
            renewable: c.lease.renewable,
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
        Parameters(a): Parameters<RenewArgs>,
    ) -> Result<Json<RenewResult>, String> {
        if a.increment
            .is_some_and(|i| i == 0 || i > MAX_INCREMENT_SECS)
        {
            return Err(format!(
                "invalid arguments: `increment` must be 1 to {MAX_INCREMENT_SECS} seconds"
            ));
        }
        let lease = self
            .vault()
            .lease_renew(&a.lease_id, a.increment)
            .await
            .map_err(|e| report("db.renew", e))?;
        Ok(Json(RenewResult {
            lease_id: lease.lease_id,
            lease_duration: lease.lease_duration,
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
        Parameters(a): Parameters<RevokeArgs>,
    ) -> Result<Json<RevokeResult>, String> {
        self.vault()
            .lease_revoke(&a.lease_id)
            .await
            .map_err(|e| report("db.revoke", e))?;
        Ok(Json(RevokeResult {
            lease_id: a.lease_id,
            revoked: true,
        }))
    }
}
