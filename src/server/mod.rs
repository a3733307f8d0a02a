//! The MCP server: thin glue that authorizes every call at one gate, then hands it
//! to the tool family routers (one file per family).

mod db;
mod gate;
mod kms;
mod kv;
mod ratelimit;
mod resources;
mod revocation;
mod ssh;
pub mod stdio;
mod transit;

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, Implementation, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{tool_handler, ErrorData, RoleServer, ServerHandler};

use crate::backend::vault::Vault;
use crate::config::Config;

pub use gate::{lease_role, resource_of, Decision, Gate, GateError};

pub(crate) struct Ctx {
    pub cfg: Config,
    pub gate: Gate,
    pub vault: Vault,
    pub kms: crate::backend::kms::Kms,
}

#[derive(Clone)]
pub struct McpVault {
    ctx: Arc<Ctx>,
    tool_router: ToolRouter<Self>,
}

impl McpVault {
    pub fn new(cfg: Config) -> Result<Self, String> {
        let gate = Gate::new(&cfg)?;
        let ctx = Ctx {
            gate,
            vault: Vault::from_env(),
            kms: crate::backend::kms::Kms::from_env(),
            cfg,
        };
        Ok(McpVault {
            ctx: Arc::new(ctx),
            tool_router: Self::kv_router()
                + Self::transit_router()
                + Self::db_router()
                + Self::ssh_router()
                + Self::kms_router(),
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

/// rmcp reports arguments that do not fit a tool's types with serde's message, which
/// quotes the offending value: a secret the agent put in the wrong field would come
/// back in the result. Keep the complaint, drop the value, and use the gate's prefix.
fn redact_argument_error(r: CallToolResponse) -> CallToolResponse {
    const PREFIX: &str = "failed to deserialize parameters: ";
    let CallToolResponse::Complete(res) = &r else {
        return r;
    };
    let text = res.content.first().and_then(|c| c.as_text());
    match text.and_then(|t| t.text.strip_prefix(PREFIX)) {
        Some(msg) if res.is_error == Some(true) => {
            tool_error(format!("invalid arguments: {}", without_values(msg)))
        }
        _ => r,
    }
}

/// A client-supplied name, echoed only when it looks like a tool name (it could be
/// anything, a token pasted into the wrong field included).
fn printable_name(name: &str) -> String {
    let plain = name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '*' | '/'));
    if plain {
        name.to_string()
    } else {
        format!("(a {}-byte name, not shown)", name.len())
    }
}

/// `invalid type: string "VALUE", expected a map` -> `invalid type: string, expected a map`.
fn without_values(msg: &str) -> String {
    for marker in ["invalid type: ", "invalid value: "] {
        if let Some(start) = msg.find(marker) {
            let after = start + marker.len();
            // The expectation comes from our own types and ends the message.
            let end = msg
                .rfind(", expected")
                .filter(|&e| e >= after)
                .unwrap_or(msg.len());
            let kind = msg[after..end]
                .split(['"', '`'])
                .next()
                .unwrap_or("")
                .trim_end();
            return format!("{}{marker}{kind}{}", &msg[..start], &msg[end..]);
        }
    }
    msg.to_string()
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for McpVault {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .build(),
        )
        .with_server_info(Implementation::new("mcpvault", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Vault/OpenBao secrets and crypto behind capability tokens. Every call needs a \
             token in params._meta.token (or the server's MCPVAULT_TOKEN).",
        )
    }

    // Resources and prompts: see resources.rs; reads and prompts/get are gated there.
    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(self.kv_resources()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(
            self.kv_resource_templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let token = context.meta.get("token").and_then(|t| t.as_str());
        self.read_kv_resource(&request.uri, token)
            .await
            .map(Into::into)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(self.kv_prompts()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let token = context.meta.get("token").and_then(|t| t.as_str());
        self.kv_prompt(&request.name, request.arguments.as_ref(), token)
            .map(Into::into)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        if !self.tool_router.has_route(&name) {
            return Err(ErrorData::invalid_params(
                format!("unknown tool: {}", printable_name(&name)),
                None,
            ));
        }
        let gate = &self.ctx.gate;
        let request_id = match serde_json::to_value(&context.id) {
            Ok(serde_json::Value::String(s)) => s,
            Ok(v) => v.to_string(),
            Err(_) => String::new(),
        };
        let empty = serde_json::Map::new();
        let args = request.arguments.as_ref().unwrap_or(&empty);
        let resource = match resource_of(self.cfg(), &name, args) {
            Ok(r) => r,
            Err(GateError::BadArgs(m)) | Err(GateError::Denied { reason: m, .. }) => {
                gate.record(request_id, &name, None, Decision::Invalid(m.clone()));
                return Ok(tool_error(format!("invalid arguments: {m}")));
            }
        };
        let resource_label = resource.as_ref().map(|(k, v)| format!("{k}:{v}"));
        let token = context.meta.get("token").and_then(|t| t.as_str());
        let facts = match gate.authorize(
            token,
            &name,
            resource.as_ref().map(|(k, v)| (*k, v.as_str())),
        ) {
            Ok(f) => f,
            Err(GateError::Denied { reason, code }) => {
                tracing::info!(tool = %name, code, "tools/call denied");
                gate.record(
                    request_id,
                    &name,
                    resource_label,
                    Decision::Deny(reason.clone()),
                );
                return Ok(tool_error(format!("denied: {reason}")));
            }
            Err(GateError::BadArgs(m)) => return Ok(tool_error(format!("invalid arguments: {m}"))),
        };
        let token_id = facts.revocation_ids.last().cloned();
        let started = std::time::Instant::now();
        let result = self
            .tool_router
            .call(ToolCallContext::new(self, request, context))
            .await
            .map(redact_argument_error);
        let ok = matches!(&result, Ok(CallToolResponse::Complete(r)) if r.is_error != Some(true));
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        gate.record(
            request_id,
            &name,
            resource_label,
            Decision::Allow {
                token_id,
                ok,
                ms: (ms * 1000.0).round() / 1000.0,
            },
        );
        result
    }
}
