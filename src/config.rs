//! Server configuration from the environment (see the README's table).

use std::path::PathBuf;

use biscuit_auth::PublicKey;
use thiserror::Error;

use crate::token::{parse_public_keys, KeyFile};

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("SUBJECT is required: the agent identity this server serves (e.g. SUBJECT=agentA)")]
    NoSubject,
    #[error(
        "SUBJECT {0:?} is invalid: use 1-128 characters from [A-Za-z0-9._@-], not '.' or '..'"
    )]
    BadSubject(String),
    #[error("MCPVAULT_PUBLIC_KEY or MCPVAULT_PUBLIC_KEY_FILE is required (root public key hex)")]
    NoPublicKey,
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub subject: String,
    pub public_keys: Vec<PublicKey>,
    /// Token used when a call carries no `_meta.token` (hosts that cannot set `_meta`).
    pub default_token: Option<String>,
    pub revocation_file: Option<PathBuf>,
    pub audit_log: Option<PathBuf>,
    pub kv_mount: String,
    pub default_prefix: String,
    pub transit_mount: String,
    pub db_mount: String,
    pub ssh_mount: String,
    pub kms_default_key: Option<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn read_file(var_name: &str, path: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Invalid(format!("{var_name}: cannot read {path}: {e}")))
}

/// A mount or prefix is one or more plain path segments.
fn mount(name: &str, default: &str) -> Result<String, ConfigError> {
    let v = var(name).unwrap_or_else(|| default.to_string());
    let v = v.trim_matches('/').to_string();
    if v.is_empty() || crate::paths::validate_path(&v).is_err() {
        return Err(ConfigError::Invalid(format!(
            "{name} {v:?} is not a valid mount path"
        )));
    }
    Ok(v)
}

pub fn validate_subject(s: &str) -> Result<(), ConfigError> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::BadSubject(s.to_string()))
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let subject = var("SUBJECT").ok_or(ConfigError::NoSubject)?;
        validate_subject(&subject)?;
        let keys_text = match (var("MCPVAULT_PUBLIC_KEY"), var("MCPVAULT_PUBLIC_KEY_FILE")) {
            (Some(k), _) => k,
            (None, Some(path)) => {
                let text = read_file("MCPVAULT_PUBLIC_KEY_FILE", &path)?;
                // Either a key file as `mcpvault keygen` writes it, or bare hex.
                match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(v) => v
                        .get("public_key")
                        .and_then(|k| k.as_str())
                        .map(str::to_string)
                        .ok_or_else(|| {
                            ConfigError::Invalid(format!("{path}: no \"public_key\" field"))
                        })?,
                    Err(_) => text.trim().to_string(),
                }
            }
            (None, None) => return Err(ConfigError::NoPublicKey),
        };
        let public_keys = parse_public_keys(&keys_text)
            .map_err(|e| ConfigError::Invalid(format!("root public key: {e}")))?;
        let default_token = match (var("MCPVAULT_TOKEN"), var("MCPVAULT_TOKEN_FILE")) {
            (Some(t), _) => Some(t),
            (None, Some(path)) => Some(read_file("MCPVAULT_TOKEN_FILE", &path)?.trim().to_string()),
            (None, None) => None,
        };
        Ok(Config {
            subject,
            public_keys,
            default_token,
            revocation_file: var("MCPVAULT_REVOCATION_FILE").map(PathBuf::from),
            audit_log: var("MCPVAULT_AUDIT_LOG").map(PathBuf::from),
            kv_mount: mount("KV_MOUNT", "secret")?,
            default_prefix: mount("DEFAULT_PREFIX", "mcp")?,
            transit_mount: mount("TRANSIT_MOUNT", "transit")?,
            db_mount: mount("DB_MOUNT", "database")?,
            ssh_mount: mount("SSH_MOUNT", "ssh")?,
            kms_default_key: var("AWS_KMS_DEFAULT_KEY_ID"),
        })
    }

    /// `{DEFAULT_PREFIX}/{SUBJECT}`: the root of this subject's KV namespace.
    pub fn kv_namespace(&self) -> String {
        format!("{}/{}", self.default_prefix, self.subject)
    }
}

/// Parses the key list once for reuse (kept here so both binaries share it).
pub fn public_keys_from_keyfile(k: &KeyFile) -> Result<Vec<PublicKey>, ConfigError> {
    parse_public_keys(&k.public_key).map_err(|e| ConfigError::Invalid(e.to_string()))
}
