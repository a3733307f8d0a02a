//! `kv.*`: KV v2 under the call subject's namespace `{DEFAULT_PREFIX}/{subject}/{path}`.
//! Each argument type declares its path as the scope (validated there);
//! `kv_full_path` only prepends the namespace.

use std::sync::Arc;

use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::schemars::{self, JsonSchema};
use rmcp::{tool, tool_router, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::backend::vault::{KvRead, VaultError};
use crate::config::Config;
use crate::error::{BackendError, CallError};
use crate::token::ResourceKind;

use super::{declared, Args, Authorized, McpVault, Scope, ScopeFn, Scoped};

pub(crate) const SCOPES: &[(&str, ScopeFn)] = &[
    ("kv.read", declared::<KvReadArgs>),
    ("kv.write", declared::<KvWriteArgs>),
    ("kv.list", declared::<KvListArgs>),
    ("kv.delete", declared::<KvPathArgs>),
    ("kv.undelete", declared::<KvVersionsArgs>),
    ("kv.destroy", declared::<KvVersionsArgs>),
];

impl Scoped for KvReadArgs {
    fn scope(a: &Args<'_>, _: &Config) -> Result<Scope, CallError> {
        Scope::kv_path(a.str("path")?)
    }
}

impl Scoped for KvWriteArgs {
    fn scope(a: &Args<'_>, _: &Config) -> Result<Scope, CallError> {
        Scope::kv_path(a.str("path")?)
    }
}

impl Scoped for KvListArgs {
    fn scope(a: &Args<'_>, _: &Config) -> Result<Scope, CallError> {
        Scope::kv_prefix(a.opt_str("prefix")?.unwrap_or(""))
    }
}

impl Scoped for KvPathArgs {
    fn scope(a: &Args<'_>, _: &Config) -> Result<Scope, CallError> {
        Scope::kv_path(a.str("path")?)
    }
}

impl Scoped for KvVersionsArgs {
    fn scope(a: &Args<'_>, _: &Config) -> Result<Scope, CallError> {
        Scope::kv_path(a.str("path")?)
    }
}

/// Vault has no hard limit, but a list this long is a mistake, not a request.
const MAX_VERSIONS: usize = 100;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct KvReadArgs {
    /// Path relative to this agent's namespace, e.g. `app/db`. No leading '/', no '..'.
    pub path: String,
    /// A specific version; the latest when omitted.
    pub version: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct KvReadResult {
    pub path: String,
    /// The secret's key/value pairs.
    pub data: Map<String, Value>,
    pub version: u64,
    /// When this version was written (RFC 3339).
    pub created_time: Option<String>,
    pub custom_metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct KvWriteArgs {
    /// Path relative to this agent's namespace, e.g. `app/db`.
    pub path: String,
    /// The whole secret as a JSON object, e.g. {"username": "app", "password": "..."}.
    /// It replaces the previous version's data (nothing is merged).
    pub data: Map<String, Value>,
    /// Check-and-set: write only if the current version is this number (0: only
    /// if the secret does not exist yet).
    pub cas: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct KvWriteResult {
    pub path: String,
    /// The version just written.
    pub version: u64,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct KvListArgs {
    /// Folder to list, relative to this agent's namespace, e.g. `app/`. Omit for the root.
    pub prefix: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct KvListResult {
    pub prefix: String,
    /// Names directly under the prefix; names ending in '/' are folders.
    pub keys: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct KvPathArgs {
    /// Path relative to this agent's namespace, e.g. `app/db`.
    pub path: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct KvDeleteResult {
    pub path: String,
    pub deleted: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct KvVersionsArgs {
    /// Path relative to this agent's namespace, e.g. `app/db`.
    pub path: String,
    /// Version numbers (from kv.read / kv.write), e.g. [3].
    pub versions: Vec<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct KvVersionsResult {
    pub path: String,
    pub versions: Vec<u64>,
}

/// A Vault outcome that is not an HTTP error but fails the call all the same.
fn vault_error(op: &'static str, reason: String) -> CallError {
    CallError::Backend(BackendError::Vault { op, reason })
}

fn check_versions(v: &[u64]) -> Result<(), CallError> {
    if v.is_empty() || v.len() > MAX_VERSIONS || v.contains(&0) {
        return Err(CallError::invalid(format!(
            "`versions` must list 1 to {MAX_VERSIONS} version numbers, each >= 1"
        )));
    }
    Ok(())
}

#[tool_router(router = kv_router, vis = "pub(crate)")]
impl McpVault {
    #[tool(
        name = "kv.read",
        description = "Read a secret from this agent's KV namespace. Returns its key/value data \
                       and version metadata. Give `version` to read an older version. A deleted \
                       version is reported with the kv.undelete call that restores it. Unless \
                       your token may reveal this path, each value comes back as a handle \
                       (`mcpvault:handle:<id>`): a reference to the value that you cannot see but \
                       can use: as `{{mcpvault:handle:<id>}}` in http.request headers or body, \
                       as a whole value in kv.write, or as transit/kms encrypt plaintext.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    pub async fn kv_read(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<KvReadArgs>,
    ) -> Result<Json<KvReadResult>, CallError> {
        const OP: &str = "kv.read";
        let full = self.kv_full_path(&auth, &a.path);
        let read = self
            .vault()
            .kv_read(&self.cfg().kv_mount, &full, a.version)
            .await
            .map_err(|e| e.at(OP))?;
        let path = a.path;
        let v = |v: Option<u64>| v.map(|n| format!(" version {n}")).unwrap_or_default();
        match read {
            KvRead::Found(s) => Ok(Json(KvReadResult {
                version: s
                    .version
                    .ok_or_else(|| VaultError::Decode("no version".into()).at(OP))?,
                path,
                data: auth.secret_map(s.data)?,
                created_time: s.created_time,
                custom_metadata: s.custom_metadata,
            })),
            KvRead::Missing => Err(vault_error(
                OP,
                format!("no secret at `{path}`{}", v(a.version)),
            )),
            KvRead::Deleted {
                version,
                deletion_time,
            } => Err(vault_error(
                OP,
                format!(
                    "`{path}`{} is deleted (since {deletion_time}); kv.undelete with versions \
                     [{}] restores it",
                    v(version),
                    version.map(|n| n.to_string()).unwrap_or_default()
                ),
            )),
            KvRead::Destroyed { version } => Err(vault_error(
                OP,
                format!(
                    "`{path}`{} was destroyed and cannot be recovered",
                    v(version)
                ),
            )),
        }
    }

    #[tool(
        name = "kv.write",
        description = "Write a secret (a JSON object of key/value pairs) at `path` in this agent's \
                       KV namespace, creating a new version. Use `cas` to avoid overwriting a \
                       concurrent change (cas=0: create only). Returns the new version. A value \
                       may be a handle (`mcpvault:handle:<id>`) from another result: its value \
                       is stored without you seeing it.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn kv_write(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<KvWriteArgs>,
    ) -> Result<Json<KvWriteResult>, CallError> {
        const OP: &str = "kv.write";
        let full = self.kv_full_path(&auth, &a.path);
        let data = auth.unseal_map(a.data, ResourceKind::Kv, &a.path)?;
        let version = self
            .vault()
            .kv_write(&self.cfg().kv_mount, &full, &data, a.cas)
            .await
            .map_err(|e| e.at(OP))?
            .ok_or_else(|| VaultError::Decode("no version".into()).at(OP))?;
        Ok(Json(KvWriteResult {
            path: a.path,
            version,
        }))
    }

    #[tool(
        name = "kv.list",
        description = "List the secret names under a folder of this agent's KV namespace (the root \
                       when `prefix` is omitted). Names ending in '/' are folders; pass them as \
                       `prefix` to go deeper. An empty or missing folder gives an empty list.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    pub async fn kv_list(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<KvListArgs>,
    ) -> Result<Json<KvListResult>, CallError> {
        let prefix = a.prefix.unwrap_or_default();
        let full = self.kv_full_path(&auth, &prefix);
        let keys = self
            .vault()
            .kv_list(&self.cfg().kv_mount, &full)
            .await
            .map_err(|e| e.at("kv.list"))?;
        Ok(Json(KvListResult { prefix, keys }))
    }

    #[tool(
        name = "kv.delete",
        description = "Soft-delete the latest version of the secret at `path` in this agent's KV \
                       namespace. Reads then fail until kv.undelete restores that version; \
                       kv.destroy removes versions for good.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn kv_delete(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<KvPathArgs>,
    ) -> Result<Json<KvDeleteResult>, CallError> {
        let full = self.kv_full_path(&auth, &a.path);
        self.vault()
            .kv_delete(&self.cfg().kv_mount, &full)
            .await
            .map_err(|e| e.at("kv.delete"))?;
        Ok(Json(KvDeleteResult {
            path: a.path,
            deleted: true,
        }))
    }

    #[tool(
        name = "kv.undelete",
        description = "Restore soft-deleted versions of the secret at `path` in this agent's KV \
                       namespace (versions as reported by kv.read or kv.write).",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn kv_undelete(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<KvVersionsArgs>,
    ) -> Result<Json<KvVersionsResult>, CallError> {
        check_versions(&a.versions)?;
        let full = self.kv_full_path(&auth, &a.path);
        self.vault()
            .kv_undelete(&self.cfg().kv_mount, &full, &a.versions)
            .await
            .map_err(|e| e.at("kv.undelete"))?;
        Ok(Json(KvVersionsResult {
            path: a.path,
            versions: a.versions,
        }))
    }

    #[tool(
        name = "kv.destroy",
        description = "Permanently destroy versions of the secret at `path` in this agent's KV \
                       namespace. Irreversible: the data of those versions is erased.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn kv_destroy(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<KvVersionsArgs>,
    ) -> Result<Json<KvVersionsResult>, CallError> {
        check_versions(&a.versions)?;
        let full = self.kv_full_path(&auth, &a.path);
        self.vault()
            .kv_destroy(&self.cfg().kv_mount, &full, &a.versions)
            .await
            .map_err(|e| e.at("kv.destroy"))?;
        Ok(Json(KvVersionsResult {
            path: a.path,
            versions: a.versions,
        }))
    }
}
