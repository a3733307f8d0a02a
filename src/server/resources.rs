//! `kv://{SUBJECT}/...` resources and the `kv_read` / `kv_write` prompts.
//!
//! resources/read and prompts/get pass the same gate as tools/call, as the tool
//! they stand for: reading `kv://S/a/b` is `kv.read` on `a/b`, reading a folder
//! `kv://S/a/` is `kv.list` on `a/`, and a prompt is the tool it tells the model
//! to call. Another subject's URI is refused before anything else.

use std::sync::Arc;

use rmcp::model::{
    GetPromptResult, Prompt, PromptArgument, PromptMessage, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ResourceTemplate, Role,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde_json::{json, Map, Value};

use crate::backend::vault::KvRead;
use crate::error::{CallError, Denial};

use super::confirm::Ask;
use super::{ask_of, call_of, Authorized, McpVault, Scope};

const SCHEME: &str = "kv://";
const MAX_DESCRIPTION_LEN: usize = 2000;

/// `version=N` (N >= 1), the only query a `kv://` URI takes.
fn version_query(q: &str) -> Result<u64, CallError> {
    q.strip_prefix("version=")
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|&n| n >= 1)
        .ok_or_else(|| CallError::invalid("the only query is `?version=N` (N >= 1)"))
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

    /// resources/read of `kv://{SUBJECT}/{path}`: `kv.list` for a folder (ending in
    /// '/'), else `kv.read`, through the pipeline like the tools themselves.
    pub(crate) async fn read_kv_resource(
        &self,
        request: &ReadResourceRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri.as_str();
        let subject = self.ctx.pipeline.subject();
        let rest = uri.strip_prefix(SCHEME).ok_or_else(|| {
            ErrorData::invalid_params(
                format!("unsupported URI: expected {SCHEME}{subject}/PATH"),
                None,
            )
        })?;
        let (owner, path) = rest.split_once('/').unwrap_or((rest, ""));
        // `?version=N` reads an older version of a secret; no other query exists.
        let (path, version) = match path.split_once('?') {
            None => (path, Ok(None)),
            Some((p, q)) => (p, version_query(q).map(Some)),
        };
        let folder = path.is_empty() || path.ends_with('/');
        let tool = if folder { "kv.list" } else { "kv.read" };
        let read_version = version.as_ref().ok().copied().flatten();
        let scope = match version {
            _ if owner != subject => Err(CallError::Denied(Denial::OtherSubject)),
            Err(e) => Err(e),
            Ok(Some(_)) if folder => Err(CallError::invalid("a folder has no versions")),
            Ok(_) if folder => Scope::kv_prefix(path),
            Ok(_) => Scope::kv_path(path),
        };
        let version = read_version;
        let read = |auth: Arc<Authorized>| async move {
            let full = self.kv_full_path(&auth, path);
            let mount = &self.cfg().kv_mount;
            let text = if folder {
                let keys = self
                    .vault()
                    .kv_list(mount, &full)
                    .await
                    .map_err(|e| CallError::from(e.at("kv.list")))?;
                json!({ "keys": keys })
            } else {
                match self
                    .vault()
                    .kv_read(mount, &full, version)
                    .await
                    .map_err(|e| CallError::from(e.at("kv.read")))?
                {
                    KvRead::Found(s) => {
                        let data = auth.secret_map(s.data)?;
                        json!({ "data": data, "version": s.version })
                    }
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
        };
        // A confirmation is bound to the URI, the read's only argument.
        let mut args = Map::new();
        args.insert("uri".into(), Value::String(uri.to_string()));
        let ask = ask_of(
            context,
            request.request_state.clone(),
            request.input_responses.clone(),
            &args,
        );
        let ran = self
            .ctx
            .pipeline
            .run(call_of(context, tool, ask), scope, Result::is_ok, read)
            .await;
        match ran {
            Ok(result) => result.map(Into::into),
            Err(CallError::InputRequired(r)) => Ok(ReadResourceResponse::InputRequired(*r)),
            Err(e) => Err(e.into()),
        }
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
    pub(crate) async fn kv_prompt(
        &self,
        name: &str,
        args: Option<&Map<String, Value>>,
        context: &RequestContext<RoleServer>,
    ) -> Result<GetPromptResult, ErrorData> {
        let arg = |n: &str| -> Result<String, CallError> {
            match args.and_then(|a| a.get(n)) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(CallError::invalid(format!("`{n}` must be a string"))),
                None => Err(CallError::invalid(format!(
                    "missing required argument `{n}`"
                ))),
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
        // The prompt is gated as the tool it tells the model to call; its arguments
        // are checked as that tool's would be, and nothing reaches a backend.
        let checked = (|| {
            let path = arg("path")?;
            let scope = Scope::kv_path(&path)?;
            let description = if name == "kv_write" {
                let d = arg("description")?;
                if d.len() > MAX_DESCRIPTION_LEN || d.chars().any(|c| c.is_control() && c != '\n') {
                    return Err(CallError::invalid(format!(
                        "`description` must be at most {MAX_DESCRIPTION_LEN} characters of text"
                    )));
                }
                Some(d)
            } else {
                None
            };
            Ok((scope, path, description))
        })();
        let (scope, path, description) = match checked {
            Ok((s, p, d)) => (Ok(s), p, d),
            Err(e) => (Err(e), String::new(), None),
        };
        self.ctx
            .pipeline
            .run(
                call_of(context, tool, Ask::NoBackend),
                scope,
                |_| true,
                |_| async {},
            )
            .await?;
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
