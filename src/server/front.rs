//! `mcpvault-http`'s front: one process, many agents. Each request's token names its
//! subject; the front checks the token's signature, checks the subject is one this
//! process serves (`MCPVAULT_SUBJECTS`), and hands the request to that subject's own
//! server ([`McpVault`], created on first use): the same pipeline, tools, gate and
//! audit as `mcpvault-stdio`, on one shared Vault login and KMS client. Handles and
//! rate-limit buckets stay per subject and per process.
//!
//! The token of a request: `params._meta` (`dev.mcpvault/token` or `token`), else the
//! `X-MCPVault-Token` header, else `Authorization: Bearer`. A header token is put into
//! `_meta` before the subject's server sees the request, so the pipeline reads one
//! place, as for stdio.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, GetPromptRequestParams,
    GetPromptResponse, IntoContents, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::Value;

use crate::audit::{AuditLog, Event};
use crate::backend::kms::Kms;
use crate::backend::vault::Vault;
use crate::config::Config;
use crate::error::{CallError, Denial};
use crate::token::{Verifier, VerifierConfig};

use super::{token_from_meta, McpVault};

/// Which subjects a process serves: `MCPVAULT_SUBJECTS` (comma list, trailing `*` a
/// prefix); `None`: any subject a validly signed token names.
#[derive(Debug, Clone)]
pub struct Subjects(Option<Vec<String>>);

impl Subjects {
    pub fn parse(list: Option<&str>) -> Subjects {
        Subjects(list.map(|l| {
            l.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        }))
    }

    pub fn admits(&self, subject: &str) -> bool {
        self.0.as_ref().is_none_or(|list| {
            list.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => subject.starts_with(prefix),
                None => p == subject,
            })
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    /// A registered tool name, or `unknown`: never anything the caller typed freely.
    tool: String,
    /// `ok`, `denied`, `invalid` or `error`.
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabel {
    tool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabel {
    /// `vault`, `kms` or `http`: the prefix of the error text, nothing after it.
    backend: String,
}

/// What `/metrics` shows. No label holds a token, a value or a path.
pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    seconds: Family<ToolLabel, Histogram>,
    subjects: Gauge,
    backend_errors: Family<BackendLabel, Counter>,
    tls_failures: Counter,
    /// Set when `/metrics` is rendered; registered only with `MCPVAULT_REVOCATION_KV`.
    revocation_age: Option<Gauge<f64, AtomicU64>>,
}

impl Metrics {
    fn new(shared_revocations: bool) -> Metrics {
        let mut registry = Registry::with_prefix("mcpvault");
        let calls = Family::<CallLabels, Counter>::default();
        let seconds = Family::<ToolLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
        });
        let subjects = Gauge::default();
        registry.register("calls", "Tool calls by tool and outcome", calls.clone());
        registry.register(
            "call_duration_seconds",
            "Tool call latency through the server, by tool",
            seconds.clone(),
        );
        registry.register(
            "subjects",
            "Subjects this process has served",
            subjects.clone(),
        );
        let backend_errors = Family::<BackendLabel, Counter>::default();
        registry.register(
            "backend_errors",
            "Tool calls and resource reads that failed in a backend, by backend",
            backend_errors.clone(),
        );
        let tls_failures = Counter::default();
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed or timed out (mTLS refusals included)",
            tls_failures.clone(),
        );
        let revocation_age = shared_revocations.then(|| {
            let g = Gauge::<f64, AtomicU64>::default();
            registry.register(
                "revocation_list_age_seconds",
                "Seconds since the shared revocation list was last read and usable \
                 (since start if never); over 30 every token call is denied",
                g.clone(),
            );
            g
        });
        Metrics {
            registry,
            calls,
            seconds,
            subjects,
            backend_errors,
            tls_failures,
            revocation_age,
        }
    }

    /// Counts a failure whose text is `<backend>: <op>: ...`.
    fn backend_error(&self, text: &str) {
        for backend in ["vault", "kms", "http"] {
            if text
                .strip_prefix(backend)
                .is_some_and(|rest| rest.starts_with(": "))
            {
                self.backend_errors
                    .get_or_create(&BackendLabel {
                        backend: backend.to_string(),
                    })
                    .inc();
                return;
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

struct Inner {
    subjects: Subjects,
    verifier: Verifier,
    vault: Arc<Vault>,
    kms: Arc<Kms>,
    servers: Mutex<HashMap<String, McpVault>>,
    /// A server for no subject: what every subject's server offers (the tool list
    /// without a token), never called.
    catalog: McpVault,
    /// Refusals made before a subject is known.
    audit: AuditLog,
    metrics: Metrics,
}

#[derive(Clone)]
pub struct Front(Arc<Inner>);

/// The name a server is built with when no subject is known (only the catalog).
const NO_SUBJECT: &str = "mcpvault-http";

/// The configuration for one subject: the environment, with `SUBJECT` set to it.
fn config_for(subject: &str) -> Result<Config, String> {
    Config::from_vars(&|k| match k {
        "SUBJECT" => Some(subject.to_string()),
        _ => crate::config::var(k),
    })
    .map_err(|p| p.join("; "))
}

impl Front {
    /// From the environment. `MCPVAULT_TOKEN` is refused: a default token would give
    /// every caller its rights.
    pub fn from_env() -> Result<Front, Vec<String>> {
        let mut cfg = config_for(NO_SUBJECT).map_err(|e| vec![e])?;
        if cfg.default_token.is_some() {
            return Err(vec![
                "MCPVAULT_TOKEN / MCPVAULT_TOKEN_FILE must not be set for mcpvault-http: \
                 a default token would give every caller its rights"
                    .into(),
            ]);
        }
        let audit = match &cfg.audit_log {
            Some(path) => AuditLog::open_with(path, cfg.audit_sync, None)
                .map_err(|e| vec![format!("MCPVAULT_AUDIT_LOG {}: {e}", path.display())])?,
            None => AuditLog::stderr(),
        };
        let verifier = Verifier::new(cfg.public_keys.clone(), VerifierConfig::default())
            .map_err(|e| vec![e.to_string()])?;
        let vault = Arc::new(Vault::new(std::mem::replace(
            &mut cfg.vault,
            Err(String::new()),
        )));
        let kms = Arc::new(Kms::new(cfg.kms_legacy_endpoint.clone()));
        let shared = cfg.revocation_kv.is_some();
        let catalog =
            McpVault::with_backends(cfg, vault.clone(), kms.clone()).map_err(|e| vec![e])?;
        Ok(Front(Arc::new(Inner {
            subjects: Subjects::parse(crate::config::var("MCPVAULT_SUBJECTS").as_deref()),
            verifier,
            vault,
            kms,
            servers: Mutex::new(HashMap::new()),
            catalog,
            audit,
            metrics: Metrics::new(shared),
        })))
    }

    /// The Prometheus text; the revocation list's age as of now.
    pub fn metrics(&self) -> String {
        if let Some(gauge) = &self.0.metrics.revocation_age {
            let mut servers: Vec<McpVault> = self.lock().values().cloned().collect();
            servers.push(self.0.catalog.clone());
            // Each subject's server reads the list on its own: report the stalest.
            let age = servers
                .iter()
                .filter_map(McpVault::revocation_list_age)
                .max()
                .unwrap_or_default();
            gauge.set(age.as_secs_f64());
        }
        self.0.metrics.render()
    }

    /// One TLS handshake failed or timed out.
    pub fn tls_handshake_failed(&self) {
        self.0.metrics.tls_failures.inc();
    }

    /// `/readyz`: Vault answers and the server is logged in.
    pub async fn ready(&self) -> Result<(), String> {
        self.0.vault.ready().await.map_err(|e| e.to_string())
    }

    /// At exit: every subject's audit chain gets its checkpoint.
    pub fn finish(&self) {
        let servers: Vec<McpVault> = self.lock().values().cloned().collect();
        for s in servers {
            s.finish();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, McpVault>> {
        self.0.servers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The request's token: `_meta` first, then the headers.
    fn token(context: &RequestContext<RoleServer>) -> Result<Option<String>, Denial> {
        if let Some(t) = token_from_meta(&context.meta)? {
            return Ok(Some(t));
        }
        let Some(parts) = context.extensions.get::<http::request::Parts>() else {
            return Ok(None);
        };
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        if let Some(t) = header("x-mcpvault-token") {
            return Ok(Some(t.to_string()));
        }
        Ok(header("authorization")
            .and_then(|a| a.strip_prefix("Bearer ").or(a.strip_prefix("bearer ")))
            .map(|t| t.trim().to_string()))
    }

    /// The subject's server for this request, its token put into `_meta`.
    async fn route(&self, context: &mut RequestContext<RoleServer>) -> Result<McpVault, Denial> {
        let token = Self::token(context)?.ok_or(Denial::NoToken)?;
        let facts = self.0.verifier.facts(&token)?;
        let subject = facts
            .subject
            .ok_or_else(|| Denial::WrongSubject("token names no subject".into()))?;
        if !self.0.subjects.admits(&subject) {
            return Err(Denial::WrongSubject(format!(
                "this server does not serve {subject:?}"
            )));
        }
        context
            .meta
            .insert("token".to_string(), Value::String(token));
        let existing = self.lock().get(&subject).cloned();
        if let Some(s) = existing {
            return Ok(s);
        }
        let cfg = config_for(&subject)
            .map_err(|e| Denial::WrongSubject(format!("cannot serve {subject:?}: {e}")))?;
        let server = McpVault::with_backends(cfg, self.0.vault.clone(), self.0.kms.clone())
            .map_err(|e| Denial::WrongSubject(format!("cannot serve {subject:?}: {e}")))?;
        server.prime().await;
        let mut servers = self.lock();
        let s = servers.entry(subject).or_insert(server).clone();
        self.0.metrics.subjects.set(servers.len() as i64);
        Ok(s)
    }

    fn refused(&self, tool: &str, d: &Denial) {
        let written = self.0.audit.record_as(
            &Event {
                subject: "",
                tool,
                resource: None,
                decision: "deny",
                reason: Some(d.code().to_string()),
                token_id: None,
                phase: None,
                outcome: None,
                backend_ms: None,
                request_id: String::new(),
            },
            false,
        );
        if let Err(e) = written {
            tracing::error!("audit log unavailable, refusal not recorded: {e}");
        }
    }

    fn record(&self, tool: &str, started: Instant, r: &Result<CallToolResponse, ErrorData>) {
        let outcome = match r {
            Err(_) => "invalid",
            Ok(CallToolResponse::Complete(res)) if res.is_error == Some(true) => {
                let text = res
                    .content
                    .first()
                    .and_then(|c| c.as_text())
                    .map(|t| t.text.as_str())
                    .unwrap_or("");
                if text.starts_with("denied: ") {
                    "denied"
                } else if text.starts_with("invalid arguments") {
                    "invalid"
                } else {
                    self.0.metrics.backend_error(text);
                    "error"
                }
            }
            Ok(_) => "ok",
        };
        let tool = if self.0.catalog.has_tool(tool) {
            tool
        } else {
            "unknown"
        };
        let m = &self.0.metrics;
        m.calls
            .get_or_create(&CallLabels {
                tool: tool.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        m.seconds
            .get_or_create(&ToolLabel {
                tool: tool.to_string(),
            })
            .observe(started.elapsed().as_secs_f64());
    }
}

fn denied(d: Denial) -> CallToolResponse {
    CallToolResult::error(CallError::Denied(d).into_contents()).into()
}

impl ServerHandler for Front {
    fn get_info(&self) -> ServerConfig {
        self.0.catalog.get_info()
    }

    /// The tools the request's token grants (all registered ones without a token).
    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        mut context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        match self.route(&mut context).await {
            Ok(server) => {
                let token = Self::token(&context).ok().flatten().unwrap_or_default();
                let mut r = server.list_tools(request, context).await?;
                r.tools.retain(|t| server.token_grants(&token, &t.name));
                Ok(r)
            }
            Err(_) => self.0.catalog.list_tools(request, context).await,
        }
    }

    /// The request's subject's namespace; nothing without a valid token.
    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        mut context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        match self.route(&mut context).await {
            Ok(server) => server.list_resources(request, context).await,
            Err(_) => Ok(ListResourcesResult::with_all_items(Vec::new())),
        }
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        mut context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        match self.route(&mut context).await {
            Ok(server) => server.list_resource_templates(request, context).await,
            Err(_) => Ok(ListResourceTemplatesResult::with_all_items(Vec::new())),
        }
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        mut context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        match self.route(&mut context).await {
            Ok(server) => {
                let r = server.read_resource(request, context).await;
                if let Err(e) = &r {
                    self.0.metrics.backend_error(&e.message);
                }
                r
            }
            Err(d) => {
                self.refused("resources/read", &d);
                Err(ErrorData::invalid_request(format!("denied: {d}"), None))
            }
        }
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.0.catalog.list_prompts(request, context).await
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        mut context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        match self.route(&mut context).await {
            Ok(server) => server.get_prompt(request, context).await,
            Err(d) => {
                self.refused("prompts/get", &d);
                Err(ErrorData::invalid_request(format!("denied: {d}"), None))
            }
        }
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        mut context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let started = Instant::now();
        let tool = request.name.to_string();
        let r = match self.route(&mut context).await {
            Ok(server) => server.call_tool(request, context).await,
            Err(d) => {
                // Unknown tools are JSON-RPC errors whoever asks, as for stdio.
                if !self.0.catalog.has_tool(&tool) {
                    self.0.catalog.call_tool(request, context).await
                } else {
                    tracing::info!(tool = %tool, code = d.code(), "call denied");
                    self.refused(&tool, &d);
                    Ok(denied(d))
                }
            }
        };
        self.record(&tool, started, &r);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::Subjects;

    #[test]
    fn subjects_are_listed_or_prefixed() {
        let any = Subjects::parse(None);
        assert!(any.admits("a") && any.admits("team-x"));
        let some = Subjects::parse(Some("agentA, team-*"));
        assert!(some.admits("agentA") && some.admits("team-x"));
        assert!(!some.admits("agentB") && !some.admits("agentAx") && !some.admits("team"));
    }
}
