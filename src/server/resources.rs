//! `kv://{SUBJECT}/...` resources and the `kv_read` / `kv_write` prompts.
//!
//! resources/read and prompts/get pass the same gate as tools/call, as the tool
//! they stand for: reading `kv://S/a/b` is `kv.read` on `a/b`, reading a folder
//! `kv://S/a/` is `kv.list` on `a/`, and a prompt is the tool it tells the model
//! to call. Another subject's URI is refused before anything else.

use rmcp::model::{
    ErrorCode, GetPromptResult, Prompt, PromptArgument, PromptMessage, ReadResourceResult,
    Resource, ResourceContents, ResourceTemplate, Role,
};
use rmcp::ErrorData;
use serde_json::{json, Map, Value};

use crate::backend::vault::{report, KvRead};
use crate::paths::{validate_path, validate_prefix};
use crate::token::ResourceKind;

use super::{Decision, GateError, McpVault};

const SCHEME: &str = "kv://";
const MAX_DESCRIPTION_LEN: usize = 2000;

fn denied(reason: &str) -> ErrorData {
    ErrorData::new(
        ErrorCode::INVALID_REQUEST,
        format!("denied: {reason}"),
        None,
    )
}

fn invalid(msg: String) -> ErrorData {
    ErrorData::invalid_params(format!("invalid arguments: {msg}"), None)
}

impl McpVault {
    pub(crate) fn kv_resources(&self) -> Vec<Resource> {
        let s = &self.cfg().subject;
        vec![
            Resource::new(format!("{SCHEME}{s}/"), format!("{s} secrets"))
                .with_description(format!(
                    "Folder listing of {s}'s KV namespace. Reading a folder URI (ending in '/') \
                 gives {{\"keys\": [...]}}; reading a secret URI gives {{\"data\", \"version\"}}."
                ))
                .with_mime_type("application/json"),
        ]
    }

    pub(crate) fn kv_resource_templates(&self) -> Vec<ResourceTemplate> {
        let s = &self.cfg().subject;
        vec![
            ResourceTemplate::new(format!("{SCHEME}{s}/{{path}}"), format!("{s} secret"))
                .with_description(
                    "A secret (e.g. app/db) or a folder ending in '/' (e.g. app/) in this \
                     agent's KV namespace.",
                )
                .with_mime_type("application/json"),
        ]
    }

    fn authorize(&self, token: Option<&str>, tool: &str, path: &str) -> Result<(), ErrorData> {
        match self
            .ctx
            .gate
            .authorize(token, tool, Some((ResourceKind::Kv, path)))
        {
            Ok(facts) => {
                self.ctx.gate.record(
                    String::new(),
                    tool,
                    Some(format!("kv:{path}")),
                    Decision::Allow {
                        token_id: facts.revocation_ids.last().cloned(),
                        ok: true,
                        ms: 0.0,
                    },
                );
                Ok(())
            }
            Err(GateError::Denied { reason, code }) => {
                tracing::info!(tool, code, "resource/prompt request denied");
                self.ctx.gate.record(
                    String::new(),
                    tool,
                    Some(format!("kv:{path}")),
                    Decision::Deny(reason.clone()),
                );
                Err(denied(&reason))
            }
            Err(GateError::BadArgs(m)) => Err(invalid(m)),
        }
    }

    /// resources/read of `kv://{SUBJECT}/{path}`.
    pub(crate) async fn read_kv_resource(
        &self,
        uri: &str,
        token: Option<&str>,
    ) -> Result<ReadResourceResult, ErrorData> {
        let rest = uri.strip_prefix(SCHEME).ok_or_else(|| {
            ErrorData::invalid_params(
                format!(
                    "unsupported URI: expected {SCHEME}{}/PATH",
                    self.cfg().subject
                ),
                None,
            )
        })?;
        let (subject, path) = rest.split_once('/').unwrap_or((rest, ""));
        if subject != self.cfg().subject {
            const REASON: &str = "resource belongs to another subject";
            tracing::info!("resource of another subject denied");
            self.ctx.gate.record(
                String::new(),
                "kv.read",
                None,
                Decision::Deny(REASON.to_string()),
            );
            return Err(denied(REASON));
        }
        let text = if path.is_empty() || path.ends_with('/') {
            validate_prefix(path).map_err(|e| invalid(format!("path {e}")))?;
            self.authorize(token, "kv.list", path)?;
            let keys = self
                .vault()
                .kv_list(&self.cfg().kv_mount, &self.kv_full_path(path))
                .await
                .map_err(|e| ErrorData::internal_error(report("kv.list", e), None))?;
            json!({ "keys": keys })
        } else {
            validate_path(path).map_err(|e| invalid(format!("path {e}")))?;
            self.authorize(token, "kv.read", path)?;
            let read = self
                .vault()
                .kv_read(&self.cfg().kv_mount, &self.kv_full_path(path), None)
                .await
                .map_err(|e| ErrorData::internal_error(report("kv.read", e), None))?;
            match read {
                KvRead::Found(s) => json!({ "data": s.data, "version": s.version }),
                KvRead::Missing | KvRead::Deleted { .. } | KvRead::Destroyed { .. } => {
                    return Err(ErrorData::resource_not_found(
                        format!("no secret at {uri}"),
                        None,
                    ))
                }
            }
        };
        Ok(ReadResourceResult::new(vec![ResourceContents::text(
            text.to_string(),
            uri,
        )
        .with_mime_type("application/json")]))
    }

    pub(crate) fn kv_prompts(&self) -> Vec<Prompt> {
        let path = PromptArgument::new("path")
            .with_description("Secret path in this agent's namespace, e.g. app/db")
            .with_required(true);
        vec![
            Prompt::new(
                "kv_read",
                Some("Read a secret from this agent's KV namespace with kv.read"),
                Some(vec![path.clone()]),
            ),
            Prompt::new(
                "kv_write",
                Some("Store a secret in this agent's KV namespace with kv.write"),
                Some(vec![
                    path,
                    PromptArgument::new("description")
                        .with_description("What to store, e.g. the staging database login")
                        .with_required(true),
                ]),
            ),
        ]
    }

    /// prompts/get: gated as the tool the prompt tells the model to call.
    pub(crate) fn kv_prompt(
        &self,
        name: &str,
        args: Option<&Map<String, Value>>,
        token: Option<&str>,
    ) -> Result<GetPromptResult, ErrorData> {
        let arg = |n: &str| -> Result<String, ErrorData> {
            match args.and_then(|a| a.get(n)) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(invalid(format!("`{n}` must be a string"))),
                None => Err(invalid(format!("missing required argument `{n}`"))),
            }
        };
        let tool = match name {
            "kv_read" => "kv.read",
            "kv_write" => "kv.write",
            _ => {
                return Err(ErrorData::invalid_params(
                    format!("unknown prompt: {name}"),
                    None,
                ))
            }
        };
        let path = arg("path")?;
        validate_path(&path).map_err(|e| invalid(format!("invalid `path`: {e}")))?;
        let description = if name == "kv_write" {
            let d = arg("description")?;
            if d.len() > MAX_DESCRIPTION_LEN || d.chars().any(|c| c.is_control() && c != '\n') {
                return Err(invalid(format!(
                    "`description` must be at most {MAX_DESCRIPTION_LEN} characters of text"
                )));
            }
            Some(d)
        } else {
            None
        };
        self.authorize(token, tool, &path)?;
        let path_json = Value::String(path.clone());
        let (summary, text) = match description {
            None => (
                format!("Read the secret at {path}"),
                format!(
                    "Read the secret at `{path}` in this agent's KV namespace: call the `kv.read` \
                     tool with {{\"path\": {path_json}}}. Use the values only for the task at \
                     hand and do not repeat them back unless asked."
                ),
            ),
            Some(d) => (
                format!("Store a secret at {path}"),
                format!(
                    "Store a secret at `{path}` in this agent's KV namespace. What to store: {d}\n\
                     Call the `kv.write` tool with {{\"path\": {path_json}, \"data\": {{...}}}}, \
                     where `data` is a JSON object of key/value pairs (for example username and \
                     password). To avoid overwriting a newer version, read it first with \
                     `kv.read` and pass its version as `cas`."
                ),
            ),
        };
        Ok(
            GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
                .with_description(summary),
        )
    }
}
