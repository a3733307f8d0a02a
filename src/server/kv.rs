//! `kv.*`: KV v2 under the call subject's namespace `{DEFAULT_PREFIX}/{subject}/{path}`.
//! Each argument type declares its path as the scope (validated there);
//! `kv_full_path` only prepends the namespace.

use std::collections::BTreeMap;
use std::sync::Arc;

use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::schemars::{self, JsonSchema};
use rmcp::{tool, tool_router, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::backend::vault::{KvMeta, KvRead, VaultError};
use crate::config::Config;
use crate::error::{BackendError, CallError, Denial};
use crate::token::ResourceKind;

use super::{declared, Args, Authorized, McpVault, Scope, ScopeFn, Scoped};

pub(crate) const SCOPES: &[(&str, ScopeFn)] = &[
    ("kv.read", declared::<KvReadArgs>),
    ("kv.write", declared::<KvWriteArgs>),
    ("kv.list", declared::<KvListArgs>),
    ("kv.delete", declared::<KvPathArgs>),
    ("kv.undelete", declared::<KvVersionsArgs>),
    ("kv.destroy", declared::<KvVersionsArgs>),
    ("kv.metadata", declared::<KvMetadataArgs>),
    ("kv.generate", declared::<KvGenerateArgs>),
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

impl Scoped for KvMetadataArgs {
    fn scope(a: &Args<'_>, _: &Config) -> Result<Scope, CallError> {
        Scope::kv_path(a.str("path")?)
    }
}

impl Scoped for KvGenerateArgs {
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
    /// Seconds: instead of the data, return a single-use Vault wrapping token for a
    /// consumer outside this conversation (see `wrap_token`). Capped at the token's
    /// remaining lifetime.
    pub wrap_ttl: Option<u64>,
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

/// kv.read's answer: the secret, or with `wrap_ttl` the wrapping token instead.
#[derive(Debug, Serialize, JsonSchema)]
pub struct KvReadOutput {
    #[serde(flatten)]
    pub secret: Option<KvReadResult>,
    #[serde(flatten)]
    pub wrapped: Option<Wrapped>,
}

impl From<KvReadResult> for KvReadOutput {
    fn from(r: KvReadResult) -> Self {
        KvReadOutput {
            secret: Some(r),
            wrapped: None,
        }
    }
}

/// A response Vault wrapped: what a `wrap_ttl` call returns instead of the secret.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Wrapped {
    /// Single-use Vault wrapping token: whoever holds it gets the secret once with
    /// `POST /v1/sys/wrapping/unwrap` (header `X-Vault-Token: <wrap_token>`). A
    /// credential itself: a handle (`mcpvault:handle:<id>`) unless this token may
    /// reveal the secret; pass the handle on as `{{mcpvault:handle:<id>}}` in
    /// http.request.
    pub wrap_token: String,
    /// Seconds the wrapping token lives (after the cap at the capability token's end).
    pub wrap_ttl: u64,
    /// The Vault path whose response is wrapped (a consumer can check it on unwrap).
    pub creation_path: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct KvMetadataArgs {
    /// Path relative to this agent's namespace, e.g. `app/db`.
    pub path: String,
    /// Rotation policy: with it, `rotation_due` says whether the current version is at
    /// least this many days old (0 to 36500; 0: always due).
    pub max_age_days: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct KvVersionInfo {
    /// When the version was written (RFC 3339).
    pub created_time: Option<String>,
    /// When it was (or will be) soft-deleted; absent when it is not.
    pub deletion_time: Option<String>,
    pub destroyed: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct KvMetadataResult {
    pub path: String,
    pub current_version: u64,
    /// When the secret was first written (RFC 3339).
    pub created_time: Option<String>,
    /// When it last changed (RFC 3339).
    pub updated_time: Option<String>,
    /// Age of the current version in seconds.
    pub age_seconds: Option<u64>,
    /// Version number -> its times and state (Vault keeps a bounded history).
    pub versions: BTreeMap<u64, KvVersionInfo>,
    pub custom_metadata: Option<Map<String, Value>>,
    /// With `max_age_days`: whether the current version is that old (rotate it with
    /// kv.generate or kv.write).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_due: Option<bool>,
}

/// The alphabet of a generated value.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Charset {
    /// A-Z, a-z, 0-9.
    #[default]
    Alphanumeric,
    /// 0-9, a-f.
    Hex,
    /// A-Z, a-z, 0-9, '-', '_' (URL-safe base64 alphabet, no padding).
    Base64url,
}

impl Charset {
    fn alphabet(self) -> &'static [u8] {
        match self {
            Charset::Alphanumeric => {
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
            }
            Charset::Hex => b"0123456789abcdef",
            Charset::Base64url => {
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            }
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct KvGenerateArgs {
    /// Path relative to this agent's namespace, e.g. `app/db`. Created if missing.
    pub path: String,
    /// The field to set to a fresh random value, e.g. `password`. Every other field of
    /// the current version is kept.
    pub field: String,
    /// Characters in the new value: 16 to 256, default 32.
    pub length: Option<usize>,
    /// `alphanumeric` (default), `hex` or `base64url`.
    pub charset: Option<Charset>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct KvGenerateResult {
    pub path: String,
    /// The version just written.
    pub version: u64,
    pub field: String,
    /// The new value: a handle (`mcpvault:handle:<id>`) unless this token may reveal
    /// the secret.
    pub value: String,
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
    ) -> Result<Json<KvReadOutput>, CallError> {
        if let Some(ttl) = a.wrap_ttl {
            return self.kv_read_wrapped(&auth, &a, ttl).await.map(Json);
        }
        let Json(read) = self.kv_read_data(auth, a).await?;
        Ok(Json(KvReadOutput::from(read)))
    }

    /// kv.read without wrapping.
    async fn kv_read_data(
        &self,
        auth: Arc<Authorized>,
        a: KvReadArgs,
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

    #[tool(
        name = "kv.metadata",
        description = "Versions and ages of the secret at `path` in this agent's KV namespace, \
                       never its values: current_version, when each version was written, \
                       deleted or destroyed, the current version's age in seconds, custom \
                       metadata. Give `max_age_days` to learn whether rotation is due \
                       (`rotation_due`); rotate with kv.generate.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    pub async fn kv_metadata(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<KvMetadataArgs>,
    ) -> Result<Json<KvMetadataResult>, CallError> {
        const OP: &str = "kv.metadata";
        if a.max_age_days.is_some_and(|d| d > MAX_AGE_DAYS) {
            return Err(CallError::bad_field(
                "max_age_days",
                format!("must be 0 to {MAX_AGE_DAYS}"),
            ));
        }
        let meta = self.kv_meta(&auth, &a.path, OP).await?;
        let now = now_secs();
        let current = meta.versions.get(&meta.current_version.to_string());
        let age_seconds = current
            .and_then(|v| v.created_time.as_deref())
            .and_then(rfc3339_secs)
            .map(|t| now.saturating_sub(t));
        let versions = meta
            .versions
            .iter()
            .filter_map(|(n, v)| {
                Some((
                    n.parse::<u64>().ok()?,
                    KvVersionInfo {
                        created_time: nonempty(v.created_time.clone()),
                        deletion_time: nonempty(v.deletion_time.clone()),
                        destroyed: v.destroyed,
                    },
                ))
            })
            .collect();
        // Unknown age with a policy: due (a secret nobody can date is rotated).
        let rotation_due = a
            .max_age_days
            .map(|d| age_seconds.is_none_or(|age| age >= d * 86_400));
        Ok(Json(KvMetadataResult {
            path: a.path,
            current_version: meta.current_version,
            created_time: nonempty(meta.created_time),
            updated_time: nonempty(meta.updated_time),
            age_seconds,
            versions,
            custom_metadata: meta.custom_metadata,
            rotation_due,
        }))
    }

    #[tool(
        name = "kv.generate",
        description = "Rotate one field of the secret at `path` in this agent's KV namespace \
                       without anyone seeing the new value: sets `field` to fresh random \
                       characters (`length` 16-256, default 32; `charset` alphanumeric, hex or \
                       base64url) and keeps every other field, as a new version. Fails, \
                       writing nothing, if the secret changed meanwhile (check-and-set). \
                       `value` is a handle (`mcpvault:handle:<id>`) unless this token may \
                       reveal the secret: a reference to a value you cannot see, usable as \
                       `{{mcpvault:handle:<id>}}` in http.request headers and body, as a whole \
                       value in kv.write data, and as transit.encrypt / kms.encrypt plaintext.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn kv_generate(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<KvGenerateArgs>,
    ) -> Result<Json<KvGenerateResult>, CallError> {
        const OP: &str = "kv.generate";
        let length = a.length.unwrap_or(DEFAULT_GENERATE_LENGTH);
        if !(MIN_GENERATE_LENGTH..=MAX_GENERATE_LENGTH).contains(&length) {
            return Err(CallError::bad_field(
                "length",
                format!("must be {MIN_GENERATE_LENGTH} to {MAX_GENERATE_LENGTH}"),
            ));
        }
        check_field(&a.field)?;
        let full = self.kv_full_path(&auth, &a.path);
        let mount = &self.cfg().kv_mount;
        let path = &a.path;
        let (mut data, cas) = match self
            .vault()
            .kv_read(mount, &full, None)
            .await
            .map_err(|e| e.at(OP))?
        {
            KvRead::Found(s) => {
                let v = s
                    .version
                    .ok_or_else(|| VaultError::Decode("no version".into()).at(OP))?;
                (s.data, v)
            }
            // A new secret: check-and-set 0 creates it only if nobody else does first.
            KvRead::Missing => (Map::new(), 0),
            // Writing over these would silently drop the other fields.
            KvRead::Deleted { version, .. } => {
                return Err(vault_error(
                    OP,
                    format!(
                        "the latest version of `{path}` is deleted: kv.undelete versions [{}] \
                         first, or kv.write the whole secret",
                        version.map(|n| n.to_string()).unwrap_or_default()
                    ),
                ))
            }
            KvRead::Destroyed { .. } => {
                return Err(vault_error(
                    OP,
                    format!(
                        "the latest version of `{path}` was destroyed, so its other fields are \
                         gone: kv.write the whole secret first"
                    ),
                ))
            }
        };
        let value = random_string(length, a.charset.unwrap_or_default())?;
        data.insert(a.field.clone(), Value::String(value.to_string()));
        // The handle first: if it cannot be made, nothing is written.
        let shown = auth.secret(value.to_string())?;
        let written = self.vault().kv_write(mount, &full, &data, Some(cas)).await;
        // The map holds the new value (and the other fields): zero them.
        for v in data.values_mut() {
            if let Value::String(s) = v {
                zeroize::Zeroize::zeroize(s);
            }
        }
        let version = match written {
            Ok(v) => v.ok_or_else(|| VaultError::Decode("no version".into()).at(OP))?,
            Err(e) if is_cas_mismatch(&e) => {
                return Err(vault_error(
                    OP,
                    format!(
                        "`{path}` changed while generating (version {cas} is no longer the \
                         latest): nothing was written; call kv.generate again"
                    ),
                ))
            }
            Err(e) => return Err(e.at(OP).into()),
        };
        Ok(Json(KvGenerateResult {
            path: a.path,
            version,
            field: a.field,
            value: shown,
        }))
    }
}

/// kv.metadata, kv.generate and response wrapping: helpers kept apart from the tools
/// above.
impl McpVault {
    /// The metadata of `path`, or the "no secret" error.
    async fn kv_meta(
        &self,
        auth: &Authorized,
        path: &str,
        op: &'static str,
    ) -> Result<KvMeta, CallError> {
        let full = self.kv_full_path(auth, path);
        self.vault()
            .kv_metadata(&self.cfg().kv_mount, &full)
            .await
            .map_err(|e| e.at(op))?
            .ok_or_else(|| vault_error(op, format!("no secret at `{path}`")))
    }

    /// kv.read with `wrap_ttl`: checks the version exists and is live (Vault would
    /// wrap a deleted version's 404 as well), then has Vault wrap that version.
    async fn kv_read_wrapped(
        &self,
        auth: &Authorized,
        a: &KvReadArgs,
        asked: u64,
    ) -> Result<KvReadOutput, CallError> {
        const OP: &str = "kv.read";
        // A wrapping token is a credential: the read-only mode issues none.
        if self.cfg().read_only {
            return Err(CallError::bad_field(
                "wrap_ttl",
                "not available when the server is read-only (MCPVAULT_READ_ONLY)",
            ));
        }
        let ttl = wrap_ttl(auth, asked)?;
        let path = &a.path;
        let meta = self.kv_meta(auth, path, OP).await?;
        let version = a.version.unwrap_or(meta.current_version);
        let now = now_secs();
        match meta.versions.get(&version.to_string()) {
            None => {
                return Err(vault_error(
                    OP,
                    format!("no secret at `{path}` version {version}"),
                ))
            }
            Some(v) if v.destroyed => {
                return Err(vault_error(
                    OP,
                    format!("`{path}` version {version} was destroyed and cannot be recovered"),
                ))
            }
            Some(v) => {
                if let Some(t) = nonempty(v.deletion_time.clone()) {
                    // A deletion time in the future (delete_version_after) is not yet
                    // a deletion; one we cannot read counts as done.
                    if rfc3339_secs(&t).is_none_or(|d| d <= now) {
                        return Err(vault_error(
                            OP,
                            format!(
                                "`{path}` version {version} is deleted (since {t}); \
                                 kv.undelete with versions [{version}] restores it"
                            ),
                        ));
                    }
                }
            }
        }
        let full = self.kv_full_path(auth, path);
        let w = self
            .vault()
            .kv_read_wrapped(&self.cfg().kv_mount, &full, Some(version), ttl)
            .await
            .map_err(|e| e.at(OP))?;
        Ok(KvReadOutput {
            secret: None,
            wrapped: Some(Wrapped {
                wrap_ttl: w.ttl,
                creation_path: w.creation_path,
                wrap_token: auth.secret(w.token)?,
            }),
        })
    }
}

/// Longest `max_age_days` (100 years): beyond it the question is a mistake.
const MAX_AGE_DAYS: u64 = 36_500;
const DEFAULT_GENERATE_LENGTH: usize = 32;
const MIN_GENERATE_LENGTH: usize = 16;
const MAX_GENERATE_LENGTH: usize = 256;
/// Longest field name kv.generate accepts.
const MAX_FIELD_LEN: usize = 256;
/// Longest wrap TTL asked for (1 day): a wrapping token is a hand-over, not storage.
pub(crate) const MAX_WRAP_TTL_SECS: u64 = 86_400;

/// The wrap TTL for a call asking `asked` seconds: refused outside 1..=1 day, cut to
/// the capability token's remaining lifetime (the wrapped secret must not outlive
/// the capability in a form someone can claim).
pub(crate) fn wrap_ttl(auth: &Authorized, asked: u64) -> Result<u64, CallError> {
    if !(1..=MAX_WRAP_TTL_SECS).contains(&asked) {
        return Err(CallError::bad_field(
            "wrap_ttl",
            format!("must be 1 to {MAX_WRAP_TTL_SECS} seconds"),
        ));
    }
    match auth.remaining_secs() {
        Some(0) => Err(CallError::Denied(Denial::Expired)),
        Some(rem) => Ok(asked.min(rem)),
        None => Ok(asked),
    }
}

fn check_field(field: &str) -> Result<(), CallError> {
    if field.is_empty() || field.len() > MAX_FIELD_LEN || field.chars().any(char::is_control) {
        return Err(CallError::bad_field(
            "field",
            format!("must be 1 to {MAX_FIELD_LEN} bytes without control characters"),
        ));
    }
    Ok(())
}

/// Vault's answer to a check-and-set write whose version is no longer current.
fn is_cas_mismatch(e: &VaultError) -> bool {
    matches!(e, VaultError::Api { code: 400, errors, .. }
        if errors.iter().any(|m| m.contains("check-and-set")))
}

/// `len` characters of `charset` from the OS CSPRNG. A byte is used only below the
/// largest multiple of the alphabet's size (rejection sampling), so every character
/// is equally likely: `byte % 62` alone would favour the first 8.
fn random_string(len: usize, charset: Charset) -> Result<zeroize::Zeroizing<String>, CallError> {
    let alphabet = charset.alphabet();
    let n = alphabet.len();
    let limit = 256 - 256 % n;
    let mut out = zeroize::Zeroizing::new(String::with_capacity(len));
    let mut buf = zeroize::Zeroizing::new([0u8; 64]);
    while out.len() < len {
        getrandom::getrandom(&mut buf[..]).map_err(|e| {
            CallError::Backend(BackendError::Vault {
                op: "kv.generate",
                reason: format!("no randomness from the OS: {e}"),
            })
        })?;
        for &b in buf.iter().filter(|&&b| usize::from(b) < limit) {
            if out.len() == len {
                break;
            }
            out.push(char::from(alphabet[usize::from(b) % n]));
        }
    }
    Ok(out)
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Seconds since the epoch of an RFC 3339 time as Vault writes them
/// (`2026-11-30T10:44:34.317151357Z`, or with a `+hh:mm` offset); `None` if it is
/// not one.
fn rfc3339_secs(t: &str) -> Option<u64> {
    let b = t.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = t.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // Skip the fraction, then the zone.
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let m = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if sign == b'+' {
                m
            } else {
                -m
            }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + s - offset).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_as_vault_writes_it() {
        assert_eq!(rfc3339_secs("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_secs("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(
            rfc3339_secs("2031-11-21T05:06:44.123456789Z"),
            Some(1_953_004_004)
        );
        assert_eq!(
            rfc3339_secs("2031-11-21T07:06:44+02:00"),
            Some(1_953_004_004)
        );
        assert_eq!(rfc3339_secs(""), None);
        assert_eq!(rfc3339_secs("2031-13-21T05:06:44Z"), None);
        assert_eq!(rfc3339_secs("2031-11-21 05:06:44"), None);
        assert_eq!(rfc3339_secs("2031-11-21T05:06:44Zjunk"), None);
    }

    #[test]
    fn random_strings_have_the_length_and_alphabet() {
        for cs in [Charset::Alphanumeric, Charset::Hex, Charset::Base64url] {
            for len in [16, 32, 256] {
                let s = random_string(len, cs).expect("random");
                assert_eq!(s.len(), len);
                assert!(s.bytes().all(|c| cs.alphabet().contains(&c)), "{cs:?}");
            }
        }
    }

    #[test]
    fn every_character_is_drawn_evenly() {
        // 62 symbols over 620k draws: each ~10k. Modulo bias (byte % 62) would give the
        // first 8 symbols ~12.4k; a fair draw stays within a few hundred of 10k.
        let mut counts = [0u32; 128];
        let mut total = 0u32;
        for _ in 0..2_422 {
            for c in random_string(256, Charset::Alphanumeric)
                .expect("random")
                .bytes()
            {
                counts[usize::from(c)] += 1;
                total += 1;
            }
        }
        let expect = f64::from(total) / 62.0;
        for c in Charset::Alphanumeric.alphabet() {
            let n = f64::from(counts[usize::from(*c)]);
            assert!(
                (n - expect).abs() < expect * 0.08,
                "{} drawn {n} times",
                *c as char
            );
        }
    }
}
