//! `kv.*`: KV v2 under the subject's namespace `{DEFAULT_PREFIX}/{SUBJECT}/{path}`.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::schemars::{self, JsonSchema};
use rmcp::{tool, tool_router, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::backend::vault::vault_err;

use super::McpVault;

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
    pub data: Map<String, Value>,
    pub version: Option<u64>,
    pub created_time: Option<String>,
    pub custom_metadata: Option<Map<String, Value>>,
}

#[tool_router(router = kv_router, vis = "pub(crate)")]
impl McpVault {
    #[tool(
        name = "kv.read",
        description = "Read a secret (KV v2) from this agent's namespace. Returns its data and version metadata.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    pub async fn kv_read(
        &self,
        Parameters(a): Parameters<KvReadArgs>,
    ) -> Result<Json<KvReadResult>, String> {
        let full = self.kv_full_path(&a.path);
        let client = self.vault().client("kv.read").map_err(|e| e.to_string())?;
        let data: Map<String, Value> = match a.version {
            Some(v) => vaultrs::kv2::read_version(client, &self.cfg().kv_mount, &full, v).await,
            None => vaultrs::kv2::read(client, &self.cfg().kv_mount, &full).await,
        }
        .map_err(|e| vault_err("kv.read", e).to_string())?;
        Ok(Json(KvReadResult {
            path: a.path,
            data,
            version: a.version,
            created_time: None,
            custom_metadata: None,
        }))
    }
}
