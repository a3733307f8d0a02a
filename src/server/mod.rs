//! The MCP server: thin glue that authorizes every call at one gate, then hands it
//! to the tool family routers (one file per family).

mod gate;
mod kv;
mod revocation;
pub mod stdio;

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{tool_handler, ErrorData, RoleServer, ServerHandler};

use crate::backend::vault::Vault;
use crate::config::Config;

pub use gate::{lease_role, resource_of, Gate, GateError};

pub(crate) struct Ctx {
    pub cfg: Config,
    pub gate: Gate,
    pub vault: Vault,
}

#[derive(Clone)]
pub struct McpVault {
    ctx: Arc<Ctx>,
    tool_router: ToolRouter<Self>,
}

impl McpVault {
    pub fn new(cfg: Config) -> Result<Self, crate::token::TokenError> {
        let gate = Gate::new(&cfg)?;
        let ctx = Ctx {
            gate,
            vault: Vault::from_env(),
            cfg,
        };
        Ok(McpVault {
            ctx: Arc::new(ctx),
            tool_router: Self::kv_router(),
        })
    }

    pub(crate) fn cfg(&self) -> &Config {
        &self.ctx.cfg
    }

    pub(crate) fn vault(&self) -> &Vault {
        &self.ctx.vault
    }

    /// `{DEFAULT_PREFIX}/{SUBJECT}/{path}`; `path` was validated at the gate.
    pub(crate) fn kv_full_path(&self, path: &str) -> String {
        format!("{}/{}", self.cfg().kv_namespace(), path)
    }

    pub fn tool_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .tool_router
            .list_all()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        v.sort();
        v
    }
}

fn tool_error(text: String) -> CallToolResponse {
    CallToolResult::error(vec![ContentBlock::text(text)]).into()
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for McpVault {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("mcpvault", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Vault/OpenBao secrets and crypto behind capability tokens. Every call needs a \
                 token in params._meta.token (or the server's MCPVAULT_TOKEN).",
            )
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        if !self.tool_router.has_route(&name) {
            return Err(ErrorData::invalid_params(
                format!("unknown tool: {name}"),
                None,
            ));
        }
        let empty = serde_json::Map::new();
        let args = request.arguments.as_ref().unwrap_or(&empty);
        let resource = match resource_of(self.cfg(), &name, args) {
            Ok(r) => r,
            Err(GateError::BadArgs(m)) => return Ok(tool_error(format!("invalid arguments: {m}"))),
            Err(GateError::Denied { reason, .. }) => {
                return Ok(tool_error(format!("denied: {reason}")))
            }
        };
        let token = context.meta.get("token").and_then(|t| t.as_str());
        let decision = self.ctx.gate.authorize(
            token,
            &name,
            resource.as_ref().map(|(k, v)| (*k, v.as_str())),
        );
        if let Err(GateError::Denied { reason, code }) = &decision {
            tracing::info!(tool = %name, decision = "deny", code, "tools/call denied");
            return Ok(tool_error(format!("denied: {reason}")));
        }
        tracing::debug!(tool = %name, "tools/call allowed");
        self.tool_router
            .call(ToolCallContext::new(self, request, context))
            .await
    }
}
