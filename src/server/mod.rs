//! The MCP server: the rmcp glue. Every call goes through the one pipeline
//! (`pipeline.rs`); each tool family is one file that declares its tools, their
//! argument types (which declare their scope) and their backend calls.
//!
//! Adding a tool family: a file here with its `#[tool_router]` impl and a `SCOPES`
//! table, its backend calls under `backend/`, and one line in [`McpVault::families`].

pub mod confirm;
mod db;
pub mod front;
pub mod handles;
mod http;
mod kms;
mod kv;
pub mod listen;
pub mod pipeline;
pub mod ratelimit;
mod resources;
pub mod revocation;
mod ssh;
pub mod stdio;
mod transit;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, GetPromptRequestParams,
    GetPromptResponse, Implementation, IntoContents, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{tool_handler, ErrorData, RoleServer, ServerHandler};
use serde_json::{Map, Value};

use crate::backend::kms::Kms;
use crate::backend::vault::Vault;
use crate::config::Config;
use crate::error::{CallError, Denial};

pub use db::lease_role;

/// Runs `f`, which may block (an fsync), telling a multi-thread runtime so that other
/// tasks move to another worker meanwhile. On a current-thread runtime (mcpvault-stdio)
/// or outside one it just runs: `block_in_place` is not available there.
pub(crate) fn may_block<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
pub use pipeline::{declared, Args, Authorized, Call, Pipeline, Scope, ScopeFn, Scoped};

/// The tools of one family and the scope each declares.
pub(crate) type Family = (ToolRouter<McpVault>, &'static [(&'static str, ScopeFn)]);

pub(crate) struct Ctx {
    pub cfg: Config,
    pub pipeline: Pipeline,
    /// Shared by the subjects one `mcpvault-http` process serves (one Vault login).
    pub vault: Arc<Vault>,
    pub kms: Arc<Kms>,
    pub http: crate::backend::http::Http,
    /// The shared revocation list's last usable read, and its text (so an unchanged
    /// list is not parsed again): what `/metrics` reports as the list's age.
    shared_read: std::sync::Mutex<SharedRead>,
}

struct SharedRead {
    since: std::time::Instant,
    ok_at: Option<std::time::Instant>,
    text: Option<String>,
}

impl Ctx {
    /// One read of the shared revocation list (`MCPVAULT_REVOCATION_KV`), if set. A
    /// deleted or destroyed list is an error, not an empty list: deleting it must not
    /// resurrect the tokens it names.
    async fn read_shared_revocations(&self) {
        let Some(path) = self.pipeline.shared_revocation_path() else {
            return;
        };
        use crate::backend::vault::KvRead;
        let read = match self.vault.kv_read(&self.cfg.kv_mount, path, None).await {
            Ok(KvRead::Found(s)) => match s.data.get("ids") {
                None => Ok(Some(String::new())),
                Some(Value::String(ids)) => Ok(Some(ids.clone())),
                Some(_) => Err("field `ids` is not a string".to_string()),
            },
            Ok(KvRead::Missing) => Ok(None),
            Ok(KvRead::Deleted { .. }) | Ok(KvRead::Destroyed { .. }) => {
                Err("its current version is deleted".to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        if let Ok(text) = &read {
            let text = text.as_deref().unwrap_or("");
            let mut sr = self.shared_read.lock().unwrap_or_else(|e| e.into_inner());
            // A list that does not parse is refused by the pipeline: not a good read.
            if sr.text.as_deref() == Some(text) || crate::token::RevocationSet::parse(text).is_ok()
            {
                sr.ok_at = Some(std::time::Instant::now());
                sr.text = Some(text.to_string());
            }
        }
        self.pipeline.set_shared_revocations(read);
    }

    /// Since the shared revocation list was last read and usable (since start when it
    /// never was); `None` when no shared list is configured.
    fn shared_list_age(&self) -> Option<std::time::Duration> {
        self.pipeline.shared_revocation_path()?;
        let sr = self.shared_read.lock().unwrap_or_else(|e| e.into_inner());
        Some(sr.ok_at.unwrap_or(sr.since).elapsed())
    }
}

#[derive(Clone)]
pub struct McpVault {
    ctx: Arc<Ctx>,
    tool_router: ToolRouter<Self>,
}

impl McpVault {
    /// Every tool family: one line each.
    fn families() -> Vec<Family> {
        vec![
            (Self::kv_router(), kv::SCOPES),
            (Self::transit_router(), transit::SCOPES),
            (Self::db_router(), db::SCOPES),
            (Self::ssh_router(), ssh::SCOPES),
            (Self::kms_router(), kms::SCOPES),
            (Self::http_router(), http::SCOPES),
        ]
    }

    /// Revokes, about every second, the child tokens (and so the leases) of revoked
    /// capability tokens: within a few seconds of the revocation list changing. Drops
    /// expired handles and those of revoked tokens on the same tick.
    fn watch_revocations(ctx: std::sync::Weak<Ctx>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            let mut seen_generation = None;
            loop {
                tick.tick().await;
                let Some(ctx) = ctx.upgrade() else { break };
                let kv = &ctx.cfg.kv_mount;
                ctx.read_shared_revocations().await;
                // Handles go with their expiry or their token's revocation.
                let revoked = ctx.pipeline.revocations().ok();
                ctx.pipeline.sweep_handles(revoked.as_deref());
                // Unreadable list: nothing new to revoke (calls are refused meanwhile).
                if let Ok(set) = ctx.pipeline.revocations() {
                    // A list that changed (or the first one seen, after a restart) may
                    // name tokens whose children another replica, or this server
                    // before a restart, recorded: learn them first. An empty list
                    // costs Vault nothing.
                    if !set.is_empty() && seen_generation != Some(set.generation()) {
                        match ctx.vault.load_children(kv).await {
                            Ok(()) => seen_generation = Some(set.generation()),
                            Err(e) => tracing::debug!("child token records not readable: {e}"),
                        }
                    }
                    let n = ctx.vault.revoke_children(kv, |id| set.contains(id)).await;
                    if n > 0 {
                        tracing::info!(n, "revoked the Vault leases of revoked tokens");
                    }
                }
            }
        });
    }

    pub fn new(mut cfg: Config) -> Result<Self, String> {
        let vault = Vault::new(std::mem::replace(&mut cfg.vault, Err(String::new())));
        let kms = Kms::new(cfg.kms_legacy_endpoint.clone());
        Self::with_backends(cfg, Arc::new(vault), Arc::new(kms))
    }

    /// A server for `cfg.subject` on backends it shares with others.
    pub fn with_backends(cfg: Config, vault: Arc<Vault>, kms: Arc<Kms>) -> Result<Self, String> {
        let pipeline = Pipeline::new(&cfg)?;
        if cfg.audit_key.is_some() {
            // Sign the chain head every few seconds while entries keep coming; the
            // binaries also sign at exit (`McpVault::finish`).
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let audit = Arc::downgrade(&pipeline.audit());
                rt.spawn(async move {
                    let mut tick = tokio::time::interval(crate::audit::CHECKPOINT_INTERVAL);
                    loop {
                        tick.tick().await;
                        let Some(audit) = audit.upgrade() else { break };
                        if let Err(e) = crate::server::may_block(|| audit.checkpoint()) {
                            tracing::error!("audit checkpoint failed: {e}");
                        }
                    }
                });
            }
        }
        let http = crate::backend::http::Http::new(&cfg.http_allow_nets);
        let mut tool_router = ToolRouter::new();
        for (router, _) in Self::families() {
            tool_router += router;
        }
        // Tools this process does not register are not listed, and a call to one is
        // an unknown tool (`has_route` is false for a disabled route).
        for tool in tool_router.list_all() {
            if !cfg.registers(&tool.name) {
                tool_router.disable_route(tool.name.to_string());
            }
        }
        let server = McpVault {
            ctx: Arc::new(Ctx {
                cfg,
                pipeline,
                vault,
                kms,
                http,
                shared_read: std::sync::Mutex::new(SharedRead {
                    since: std::time::Instant::now(),
                    ok_at: None,
                    text: None,
                }),
            }),
            tool_router,
        };
        Self::watch_revocations(Arc::downgrade(&server.ctx));
        Ok(server)
    }

    /// Before serving: the first read of the shared revocation list, so the first calls
    /// are not refused for want of it (they are, if Vault cannot be read).
    pub async fn prime(&self) {
        self.ctx.read_shared_revocations().await;
    }

    /// Since the shared revocation list (`MCPVAULT_REVOCATION_KV`) was last read and
    /// usable, if one is configured.
    pub fn revocation_list_age(&self) -> Option<std::time::Duration> {
        self.ctx.shared_list_age()
    }

    /// Whether this process registers `tool`.
    pub fn has_tool(&self, tool: &str) -> bool {
        self.tool_router.has_route(tool)
    }

    /// Whether `token` grants `tool` (for a per-request `tools/list`).
    pub fn token_grants(&self, token: &str, tool: &str) -> bool {
        self.ctx.pipeline.grants(token, tool)
    }

    /// At exit: sign what the audit log holds since its last checkpoint.
    pub fn finish(&self) {
        if let Err(e) = self.ctx.pipeline.audit().checkpoint() {
            tracing::error!("audit checkpoint at exit failed: {e}");
        }
    }

    pub(crate) fn cfg(&self) -> &Config {
        &self.ctx.cfg
    }

    pub(crate) fn vault(&self) -> &Vault {
        &self.ctx.vault
    }

    pub(crate) fn http(&self) -> &crate::backend::http::Http {
        &self.ctx.http
    }

    /// `{DEFAULT_PREFIX}/{subject}/{path}` for the call's subject; `path` was
    /// validated by its scope declaration.
    pub(crate) fn kv_full_path(&self, auth: &Authorized, path: &str) -> String {
        format!("{}/{}", self.cfg().kv_namespace(&auth.subject), path)
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

    /// Routed tools without a scope declaration (must be none: see the test).
    pub fn undeclared_tools(&self) -> Vec<String> {
        self.tool_names()
            .into_iter()
            .filter(|n| !scopes().contains_key(n.as_str()))
            .collect()
    }

    /// Declarations that name no routed tool (a typo would leave the tool denied).
    pub fn stray_declarations(&self) -> Vec<&'static str> {
        let routed = self.tool_names();
        let mut v: Vec<&'static str> = scopes()
            .keys()
            .copied()
            .filter(|n| !routed.iter().any(|r| r == n))
            .collect();
        v.sort();
        v
    }
}

/// Every tool name the server has (before `MCPVAULT_TOOLS` / read-only filtering).
pub fn tool_catalog() -> Vec<String> {
    let mut v: Vec<String> = scopes().keys().map(|k| k.to_string()).collect();
    v.sort();
    v
}

/// Tool name -> the scope its argument type declares, from every family.
fn scopes() -> &'static HashMap<&'static str, ScopeFn> {
    static TABLE: OnceLock<HashMap<&'static str, ScopeFn>> = OnceLock::new();
    TABLE.get_or_init(|| {
        McpVault::families()
            .into_iter()
            .flat_map(|(_, declared)| declared.iter().copied())
            .collect()
    })
}

/// The scope of `tool` called with `args`, as its declaration says. A tool without a
/// declaration is denied: nothing runs unscoped.
pub fn scope_of(tool: &str, args: &Map<String, Value>, cfg: &Config) -> Result<Scope, CallError> {
    match scopes().get(tool) {
        Some(declared) => declared(args, cfg),
        None => Err(CallError::Denied(Denial::UndeclaredScope(tool.to_string()))),
    }
}

/// The token a request carries in `_meta`: `dev.mcpvault/token` (the spec's
/// prefixed form) or `token`; both present and different is refused rather than
/// guessed. The only place that reads it.
pub fn token_from_meta(meta: &Map<String, Value>) -> Result<Option<String>, Denial> {
    let get = |k: &str| meta.get(k).and_then(|t| t.as_str());
    match (get("dev.mcpvault/token"), get("token")) {
        (Some(a), Some(b)) if a.trim() != b.trim() => Err(Denial::ConflictingTokens),
        (Some(t), _) | (None, Some(t)) => Ok(Some(t.to_string())),
        (None, None) => Ok(None),
    }
}

/// How this request can reach the user for a confirmation: the protocol it speaks,
/// the capabilities its client declared, and on a 2026-07-28 retry the echoed state
/// and answers, bound to `args`.
fn ask_of(
    context: &RequestContext<RoleServer>,
    state: Option<String>,
    responses: Option<rmcp::model::InputResponses>,
    args: &Map<String, Value>,
) -> confirm::Ask {
    let stateless = context
        .protocol_version()
        .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
    confirm::Ask::of(
        stateless,
        context.client_capabilities().as_ref(),
        &context.peer,
        state,
        responses,
        args,
    )
}

/// The call a request stands for: its id (for the audit log), tool, token and how
/// to ask the user.
fn call_of<'a>(context: &RequestContext<RoleServer>, tool: &'a str, ask: confirm::Ask) -> Call<'a> {
    let request_id = match serde_json::to_value(&context.id) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(v) => v.to_string(),
        Err(_) => String::new(),
    };
    Call {
        request_id,
        tool,
        token: token_from_meta(&context.meta),
        ask,
    }
}

fn tool_error(e: CallError) -> CallToolResponse {
    CallToolResult::error(e.into_contents()).into()
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

/// rmcp reports arguments that do not fit a tool's types with serde's message, which
/// quotes the offending value: a secret the agent put in the wrong field would come
/// back in the result. Keep the complaint, drop the value, use the one prefix.
fn redact_argument_error(r: CallToolResponse) -> CallToolResponse {
    const PREFIX: &str = "failed to deserialize parameters: ";
    let CallToolResponse::Complete(res) = &r else {
        return r;
    };
    let text = res.content.first().and_then(|c| c.as_text());
    match text.and_then(|t| t.text.strip_prefix(PREFIX)) {
        Some(msg) if res.is_error == Some(true) => {
            tool_error(CallError::invalid(pipeline::without_values(msg)))
        }
        _ => r,
    }
}

fn tool_succeeded(r: &Result<CallToolResponse, ErrorData>) -> bool {
    matches!(r, Ok(CallToolResponse::Complete(r)) if r.is_error != Some(true))
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

    /// The registered tools; with `MCPVAULT_TOKEN` set, only those it grants (a shorter,
    /// truthful list is also fewer tokens in the model's prompt).
    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let pipeline = &self.ctx.pipeline;
        let tools = self
            .tool_router
            .list_all()
            .into_iter()
            .filter(|t| pipeline.default_token_grants(&t.name) != Some(false))
            .collect();
        let cache_hints = context
            .protocol_version()
            .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
        let mut result = ListToolsResult::with_all_items(tools);
        if cache_hints {
            // The list can change with the revocation list: never cache it.
            result.ttl_ms = Some(0);
            result.cache_scope = Some(CacheScope::Public);
        }
        Ok(result)
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
        self.read_kv_resource(&request, &context).await
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
        self.kv_prompt(&request.name, request.arguments.as_ref(), &context)
            .await
            .map(Into::into)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        mut context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        if !self.tool_router.has_route(&name) {
            return Err(ErrorData::invalid_params(
                format!("unknown tool: {}", printable_name(&name)),
                None,
            ));
        }
        let empty = Map::new();
        let args = request.arguments.as_ref().unwrap_or(&empty);
        let scope = scope_of(&name, args, self.cfg());
        let ask = ask_of(
            &context,
            request.request_state.clone(),
            request.input_responses.clone(),
            args,
        );
        let call = call_of(&context, &name, ask);
        let ran = self
            .ctx
            .pipeline
            .run(call, scope, tool_succeeded, |auth| {
                // The tool reads what was decided (subject, scope) from here; a tool
                // run without it fails on the missing extension, never unscoped.
                context.extensions.insert(auth);
                let routed = self
                    .tool_router
                    .call(ToolCallContext::new(self, request, context));
                async move { routed.await.map(redact_argument_error) }
            })
            .await;
        match ran {
            Ok(result) => result,
            Err(CallError::InputRequired(r)) => Ok(CallToolResponse::InputRequired(*r)),
            Err(e) => Ok(tool_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> McpVault {
        let cfg = Config::from_vars(&|k: &str| match k {
            "SUBJECT" => Some("agentA".into()),
            // The fixtures' test root key.
            "MCPVAULT_PUBLIC_KEY" => {
                Some("f3964bc8ade9c657beace606b3fe2625a7baa8d2c41ed4c20d17b3f839dc18a4".into())
            }
            _ => None,
        });
        let cfg = match cfg {
            Ok(c) => c,
            Err(e) => panic!("config: {e:?}"),
        };
        match McpVault::new(cfg) {
            Ok(s) => s,
            Err(e) => panic!("server: {e}"),
        }
    }

    /// Walks the router: every tool declares its scope, every declaration names a
    /// tool. A new tool without a declaration fails here (and is denied at run time).
    #[test]
    fn every_routed_tool_declares_its_scope() {
        let s = server();
        assert!(s.tool_names().len() >= 20, "{:?}", s.tool_names());
        assert_eq!(s.undeclared_tools(), Vec::<String>::new());
        assert_eq!(s.stray_declarations(), Vec::<&str>::new());
    }

    #[test]
    fn meta_token_keys() {
        let mut m = Map::new();
        assert_eq!(token_from_meta(&m), Ok(None));
        m.insert("token".into(), "abc".into());
        assert_eq!(token_from_meta(&m), Ok(Some("abc".into())));
        m.insert("dev.mcpvault/token".into(), "abc".into());
        assert_eq!(token_from_meta(&m), Ok(Some("abc".into())));
        m.insert("dev.mcpvault/token".into(), "xyz".into());
        assert_eq!(token_from_meta(&m), Err(Denial::ConflictingTokens));
    }
}
