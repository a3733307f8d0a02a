//! Server configuration: the one place that reads the environment (see the README's
//! table). Everything is read and checked at start, and every problem is reported at
//! once (`mcpvault-stdio` prints them all and exits 2), so an operator fixes a
//! deployment in one round instead of one variable per restart.
//!
//! One deliberate exception to "fail at start": Vault and KMS settings. A server may
//! serve KMS alone, or Vault alone, so a backend that is not configured (or configured
//! wrongly) fails each of its calls with `vault: <op>: not configured (...)` and the
//! reason, and the other backend keeps working.

use std::path::PathBuf;

use biscuit_auth::PublicKey;

use ed25519_dalek::SigningKey;

use crate::audit::SyncMode;
use crate::backend::vault;
use crate::server::ratelimit::Limit;
use crate::token::{parse_public_keys, parse_tools, KeyFile, ToolGrant};

/// The tools a read-only server registers: they change no state and issue no
/// credential. Annotations are not this list (a decrypt is not "read-only" to every
/// host); `transit.encrypt` is here because it only runs on keys that already exist.
pub const READ_ONLY_TOOLS: &[&str] = &[
    "kv.read",
    "kv.list",
    "kv.metadata",
    "transit.decrypt",
    "transit.verify",
    "transit.random",
    "transit.encrypt",
    "kms.decrypt",
    "kms.verify",
];

/// Default bound on one JSON-RPC message (one line, without its newline), in bytes.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

const DEFAULT_HANDLE_TTL: std::time::Duration = std::time::Duration::from_secs(900);
/// A handle is a short-lived reference, not storage: a day at most.
const MAX_HANDLE_TTL: std::time::Duration = std::time::Duration::from_secs(86_400);
const DEFAULT_CONFIRM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
/// A confirmation question open longer than an hour is not a confirmation anymore.
const MAX_CONFIRM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(Debug)]
pub struct Config {
    pub subject: String,
    pub public_keys: Vec<PublicKey>,
    /// Token used when a call carries none in `_meta` (hosts that cannot set `_meta`).
    pub default_token: Option<String>,
    pub revocation_file: Option<PathBuf>,
    /// `MCPVAULT_REVOCATION_KV`: a KV v2 secret under `KV_MOUNT` (field `ids`) that
    /// every replica reads.
    pub revocation_kv: Option<String>,
    pub audit_log: Option<PathBuf>,
    /// `MCPVAULT_AUDIT_SYNC`: `always` (default) or `batch`.
    pub audit_sync: SyncMode,
    /// `MCPVAULT_AUDIT_KEY`: signs checkpoints of the audit chain.
    pub audit_key: Option<SigningKey>,
    pub kv_mount: String,
    pub default_prefix: String,
    pub transit_mount: String,
    pub db_mount: String,
    pub ssh_mount: String,
    pub kms_default_key: Option<String>,
    /// `AWS_KMS_ENDPOINT`, kept only when the SDK's own endpoint variables are absent
    /// (they win: they are what the SDK documents and reads itself).
    pub kms_legacy_endpoint: Option<String>,
    /// `MCPVAULT_RATE_LIMIT` / `MCPVAULT_SUBJECT_RATE_LIMIT`; `None` = off.
    pub token_rate: Option<Limit>,
    pub subject_rate: Option<Limit>,
    pub max_message_bytes: usize,
    /// `MCPVAULT_VAULT_TOKEN_ROLE`: the Vault token role child tokens are made
    /// through (orphan, not renewable), default `mcpvault-child`.
    pub vault_token_role: String,
    /// `MCPVAULT_TOOLS`: register only these tools (`family.*` for a family).
    pub tools: Option<Vec<ToolGrant>>,
    /// `MCPVAULT_READ_ONLY=1`: register only tools that change no state and issue
    /// no credential ([`READ_ONLY_TOOLS`]).
    pub read_only: bool,
    /// `MCPVAULT_REVEAL=never`: no secret value is ever returned in clear, whatever
    /// the tokens grant (only handles).
    pub reveal_never: bool,
    /// `MCPVAULT_HANDLE_TTL` (seconds, default 900): the longest a handle lives.
    pub handle_ttl: std::time::Duration,
    /// `MCPVAULT_HTTP_ALLOW_NETS` (comma-separated CIDRs): addresses `http.request`
    /// may reach although they are in the blocked (non-public) list.
    pub http_allow_nets: Vec<ipnet::IpNet>,
    /// `MCPVAULT_CONFIRM_TIMEOUT` (seconds, default 120): how long a confirmation
    /// question stays open (an elicitation, or a sealed request state).
    pub confirm_timeout: std::time::Duration,
    /// Vault connection and login; an `Err` is reported by each Vault call.
    pub vault: Result<vault::Settings, String>,
}

/// Trimmed, non-empty value of an environment variable.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The log filter directive (`MCPVAULT_LOG`), read before anything else so that
/// configuration problems can be logged.
pub fn log_filter() -> Option<String> {
    var("MCPVAULT_LOG")
}

pub fn validate_subject(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "SUBJECT {s:?} is invalid: use 1-128 characters from [A-Za-z0-9._@-], not '.' or '..'"
        ))
    }
}

/// Collects problems instead of stopping at the first.
struct Reader<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
}

impl Reader<'_> {
    fn var(&self, name: &str) -> Option<String> {
        (self.get)(name)
    }

    fn check<T>(&mut self, r: Result<T, String>) -> Option<T> {
        r.map_err(|e| self.problems.push(e)).ok()
    }

    fn file(&mut self, var_name: &str, path: &str) -> Option<String> {
        let r = std::fs::read_to_string(path)
            .map_err(|e| format!("{var_name}: cannot read {path}: {e}"));
        self.check(r)
    }

    /// A mount or prefix is one or more plain path segments.
    fn mount(&mut self, name: &str, default: &str) -> String {
        let v = self.var(name).unwrap_or_else(|| default.to_string());
        let v = v.trim_matches('/').to_string();
        if v.is_empty() || crate::paths::validate_path(&v).is_err() {
            self.problems
                .push(format!("{name} {v:?} is not a valid mount path"));
        }
        v
    }

    fn limit(&mut self, name: &str, default: &str) -> Option<Limit> {
        let text = self.var(name).unwrap_or_else(|| default.to_string());
        let r = Limit::parse(&text).map_err(|e| format!("{name}: {e}"));
        self.check(r).flatten()
    }

    fn public_keys(&mut self) -> Vec<PublicKey> {
        let text = match (
            self.var("MCPVAULT_PUBLIC_KEY"),
            self.var("MCPVAULT_PUBLIC_KEY_FILE"),
        ) {
            (Some(k), _) => k,
            (None, Some(path)) => {
                let Some(text) = self.file("MCPVAULT_PUBLIC_KEY_FILE", &path) else {
                    return Vec::new();
                };
                // Either a key file as `mcpvault keygen` writes it, or bare hex.
                match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(v) => match v.get("public_key").and_then(|k| k.as_str()) {
                        Some(k) => k.to_string(),
                        None => {
                            self.problems
                                .push(format!("{path}: no \"public_key\" field"));
                            return Vec::new();
                        }
                    },
                    Err(_) => text.trim().to_string(),
                }
            }
            (None, None) => {
                self.problems.push(
                    "MCPVAULT_PUBLIC_KEY or MCPVAULT_PUBLIC_KEY_FILE is required (root public key hex)"
                        .into(),
                );
                return Vec::new();
            }
        };
        let r = parse_public_keys(&text).map_err(|e| format!("root public key: {e}"));
        self.check(r).unwrap_or_default()
    }
}

impl Config {
    pub fn from_env() -> Result<Self, Vec<String>> {
        Self::from_vars(&var)
    }

    /// From any variable lookup (tests pass a map). `Err` lists every problem.
    pub fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, Vec<String>> {
        let mut r = Reader {
            get,
            problems: Vec::new(),
        };
        let subject = match r.var("SUBJECT") {
            Some(s) => {
                let checked = validate_subject(&s);
                r.check(checked);
                s
            }
            None => {
                r.problems.push(
                    "SUBJECT is required: the agent identity this server serves (e.g. SUBJECT=agentA)"
                        .into(),
                );
                String::new()
            }
        };
        let public_keys = r.public_keys();
        let default_token = match (r.var("MCPVAULT_TOKEN"), r.var("MCPVAULT_TOKEN_FILE")) {
            (Some(t), _) => Some(t),
            (None, Some(path)) => r
                .file("MCPVAULT_TOKEN_FILE", &path)
                .map(|t| t.trim().to_string()),
            (None, None) => None,
        };
        let max_message_bytes = match r.var("MCPVAULT_MAX_MESSAGE_BYTES") {
            None => DEFAULT_MAX_MESSAGE_BYTES,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    r.problems.push(format!(
                        "MCPVAULT_MAX_MESSAGE_BYTES {v:?} is not a positive number of bytes"
                    ));
                    DEFAULT_MAX_MESSAGE_BYTES
                }
            },
        };
        let tools = match r.var("MCPVAULT_TOOLS") {
            None => None,
            Some(list) => {
                let parsed = parse_tools(&list).map_err(|e| format!("MCPVAULT_TOOLS: {e}"));
                r.check(parsed)
            }
        };
        let read_only = match r.var("MCPVAULT_READ_ONLY").as_deref() {
            None | Some("0") | Some("false") => false,
            Some("1") | Some("true") => true,
            Some(other) => {
                r.problems.push(format!(
                    "MCPVAULT_READ_ONLY {other:?} must be 1/true or 0/false"
                ));
                false
            }
        };
        let reveal_never = match r.var("MCPVAULT_REVEAL").as_deref() {
            None | Some("token") => false,
            Some("never") => true,
            Some(other) => {
                r.problems.push(format!(
                    "MCPVAULT_REVEAL {other:?} must be `never` (or `token`, the default: as each token grants)"
                ));
                true
            }
        };
        let handle_ttl = match r.var("MCPVAULT_HANDLE_TTL") {
            None => DEFAULT_HANDLE_TTL,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (1..=MAX_HANDLE_TTL.as_secs()).contains(&n) => {
                    std::time::Duration::from_secs(n)
                }
                _ => {
                    r.problems.push(format!(
                        "MCPVAULT_HANDLE_TTL {v:?} must be 1 to {} seconds",
                        MAX_HANDLE_TTL.as_secs()
                    ));
                    DEFAULT_HANDLE_TTL
                }
            },
        };
        let http_allow_nets = match r.var("MCPVAULT_HTTP_ALLOW_NETS") {
            None => Vec::new(),
            Some(list) => {
                let mut nets = Vec::new();
                for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    match item.parse::<ipnet::IpNet>() {
                        // A net given with host bits set (10.0.0.1/8) is read as the
                        // whole net it names.
                        Ok(n) => nets.push(n.trunc()),
                        Err(_) => r.problems.push(format!(
                            "MCPVAULT_HTTP_ALLOW_NETS: {item:?} is not a CIDR like 10.0.0.0/8 or fd00::/8"
                        )),
                    }
                }
                nets
            }
        };
        let confirm_timeout = match r.var("MCPVAULT_CONFIRM_TIMEOUT") {
            None => DEFAULT_CONFIRM_TIMEOUT,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (1..=MAX_CONFIRM_TIMEOUT.as_secs()).contains(&n) => {
                    std::time::Duration::from_secs(n)
                }
                _ => {
                    r.problems.push(format!(
                        "MCPVAULT_CONFIRM_TIMEOUT {v:?} must be 1 to {} seconds",
                        MAX_CONFIRM_TIMEOUT.as_secs()
                    ));
                    DEFAULT_CONFIRM_TIMEOUT
                }
            },
        };
        let sdk_endpoint_set =
            r.var("AWS_ENDPOINT_URL_KMS").is_some() || r.var("AWS_ENDPOINT_URL").is_some();
        let cfg = Config {
            subject,
            public_keys,
            default_token,
            revocation_file: r.var("MCPVAULT_REVOCATION_FILE").map(PathBuf::from),
            revocation_kv: match r.var("MCPVAULT_REVOCATION_KV") {
                None => None,
                Some(p) => {
                    let checked = crate::paths::validate_path(&p)
                        .map(|()| p.clone())
                        .map_err(|e| format!("MCPVAULT_REVOCATION_KV {p:?}: {e}"));
                    r.check(checked)
                }
            },
            audit_log: r.var("MCPVAULT_AUDIT_LOG").map(PathBuf::from),
            audit_sync: match r.var("MCPVAULT_AUDIT_SYNC") {
                None => SyncMode::Always,
                Some(v) => {
                    let parsed = SyncMode::parse(&v);
                    r.check(parsed).unwrap_or(SyncMode::Always)
                }
            },
            audit_key: match r.var("MCPVAULT_AUDIT_KEY") {
                None => None,
                Some(path) => {
                    let key = crate::audit::signing_key_from_file(std::path::Path::new(&path));
                    r.check(key)
                }
            },
            kv_mount: r.mount("KV_MOUNT", "secret"),
            default_prefix: r.mount("DEFAULT_PREFIX", "mcp"),
            transit_mount: r.mount("TRANSIT_MOUNT", "transit"),
            db_mount: r.mount("DB_MOUNT", "database"),
            ssh_mount: r.mount("SSH_MOUNT", "ssh"),
            kms_default_key: r.var("AWS_KMS_DEFAULT_KEY_ID"),
            kms_legacy_endpoint: r.var("AWS_KMS_ENDPOINT").filter(|_| !sdk_endpoint_set),
            token_rate: r.limit("MCPVAULT_RATE_LIMIT", "1000/5000"),
            subject_rate: r.limit("MCPVAULT_SUBJECT_RATE_LIMIT", "5000/10000"),
            max_message_bytes,
            vault_token_role: r.mount("MCPVAULT_VAULT_TOKEN_ROLE", "mcpvault-child"),
            tools,
            read_only,
            reveal_never,
            handle_ttl,
            http_allow_nets,
            confirm_timeout,
            vault: vault::Settings::from_vars(get),
        };
        // The server keeps its child token records under `{KV_MOUNT}/mcpvault/`:
        // no subject's namespace may contain them.
        if cfg.default_prefix == "mcpvault" || cfg.default_prefix.starts_with("mcpvault/") {
            r.problems.push(format!(
                "DEFAULT_PREFIX {:?} would put subjects' namespaces over the server's own \
                 records in {}/mcpvault/",
                cfg.default_prefix, cfg.kv_mount
            ));
        }
        if r.problems.is_empty() {
            Ok(cfg)
        } else {
            Err(r.problems)
        }
    }

    /// Whether this process registers `tool` (`MCPVAULT_TOOLS`, `MCPVAULT_READ_ONLY`).
    pub fn registers(&self, tool: &str) -> bool {
        let listed = self.tools.as_ref().is_none_or(|grants| {
            grants.iter().any(|g| match g {
                ToolGrant::All => true,
                ToolGrant::Exact(t) => t == tool,
                ToolGrant::Family(prefix) => tool.starts_with(prefix.as_str()),
            })
        });
        listed && (!self.read_only || READ_ONLY_TOOLS.contains(&tool))
    }

    /// `{DEFAULT_PREFIX}/{subject}`: the root of a subject's KV namespace.
    pub fn kv_namespace(&self, subject: &str) -> String {
        format!("{}/{}", self.default_prefix, subject)
    }
}

/// `mcpvault-http`'s TLS, from `MCPVAULT_TLS_CERT` + `MCPVAULT_TLS_KEY` (PEM files, both
/// or neither) and `MCPVAULT_TLS_CLIENT_CA` (PEM; every connection must then present a
/// certificate it signed). `None`: plain HTTP. Every problem is reported at once, each
/// naming its variable and file; nothing from a key file is ever quoted.
pub fn http_tls(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<std::sync::Arc<rustls::ServerConfig>>, Vec<String>> {
    let mut r = Reader {
        get,
        problems: Vec::new(),
    };
    let (cert, key, ca) = (
        r.var("MCPVAULT_TLS_CERT"),
        r.var("MCPVAULT_TLS_KEY"),
        r.var("MCPVAULT_TLS_CLIENT_CA"),
    );
    let (cert, key) = match (cert, key) {
        (Some(c), Some(k)) => (c, k),
        (None, None) => {
            if ca.is_some() {
                r.problems.push(
                    "MCPVAULT_TLS_CLIENT_CA needs MCPVAULT_TLS_CERT and MCPVAULT_TLS_KEY                      (client certificates are checked on a TLS listener)"
                        .into(),
                );
                return Err(r.problems);
            }
            return Ok(None);
        }
        (Some(_), None) => {
            r.problems.push(
                "MCPVAULT_TLS_CERT is set but MCPVAULT_TLS_KEY is not: give both PEM files, or neither for plain HTTP".into(),
            );
            return Err(r.problems);
        }
        (None, Some(_)) => {
            r.problems.push(
                "MCPVAULT_TLS_KEY is set but MCPVAULT_TLS_CERT is not: give both PEM files, or neither for plain HTTP".into(),
            );
            return Err(r.problems);
        }
    };
    let chain = r.pem_certs("MCPVAULT_TLS_CERT", &cert);
    let private = r.pem_key("MCPVAULT_TLS_KEY", &key);
    let roots = ca.as_deref().and_then(|ca| {
        let certs = r.pem_certs("MCPVAULT_TLS_CLIENT_CA", ca)?;
        let mut roots = rustls::RootCertStore::empty();
        for c in certs {
            if let Err(e) = roots.add(c) {
                r.problems.push(format!(
                    "MCPVAULT_TLS_CLIENT_CA {ca}: not a usable CA certificate: {e}"
                ));
                return None;
            }
        }
        Some(roots)
    });
    let (Some(chain), Some(private)) = (chain, private) else {
        return Err(r.problems);
    };
    if ca.is_some() && roots.is_none() {
        return Err(r.problems);
    }
    // Explicit provider: the one already in the build (reqwest, AWS SDK), so the
    // process never depends on which default rustls would pick.
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = match rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b,
        Err(e) => {
            r.problems.push(format!("TLS: {e}"));
            return Err(r.problems);
        }
    };
    let builder = match roots {
        None => builder.with_no_client_auth(),
        Some(roots) => {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                std::sync::Arc::new(roots),
                provider,
            )
            .build();
            match verifier {
                Ok(v) => builder.with_client_cert_verifier(v),
                Err(e) => {
                    r.problems.push(format!(
                        "MCPVAULT_TLS_CLIENT_CA {}: {e}",
                        ca.unwrap_or_default()
                    ));
                    return Err(r.problems);
                }
            }
        }
    };
    match builder.with_single_cert(chain, private) {
        Ok(mut cfg) => {
            // One protocol served: HTTP/1.1 (a client offering only h2 is refused).
            cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(Some(std::sync::Arc::new(cfg)))
        }
        Err(e) => {
            r.problems.push(format!(
                "MCPVAULT_TLS_CERT {cert} / MCPVAULT_TLS_KEY {key}: unusable together: {e}"
            ));
            Err(r.problems)
        }
    }
}

/// What went wrong in a PEM file, without quoting any of it (it may be a key).
fn pem_problem(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { .. } => "a PEM section has no END line",
        Error::IllegalSectionStart { .. } => "a malformed PEM BEGIN line",
        Error::Base64Decode(_) => "bad base64 inside a PEM section",
        Error::NoItemsFound => "nothing of the expected kind in it",
        Error::SectionTooLarge => "a PEM section over 256 MB",
        _ => "not readable as PEM",
    }
}

impl Reader<'_> {
    /// The certificates of a PEM file (at least one).
    fn pem_certs(
        &mut self,
        var_name: &str,
        path: &str,
    ) -> Option<Vec<rustls::pki_types::CertificateDer<'static>>> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;
        let bytes = std::fs::read(path).map_err(|e| format!("{var_name}: cannot read {path}: {e}"));
        let bytes = self.check(bytes)?;
        let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&bytes).collect();
        match certs {
            Ok(c) if !c.is_empty() => Some(c),
            Ok(_) => {
                self.problems
                    .push(format!("{var_name} {path}: no PEM CERTIFICATE in it"));
                None
            }
            Err(e) => {
                self.problems
                    .push(format!("{var_name} {path}: {}", pem_problem(&e)));
                None
            }
        }
    }

    /// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
    fn pem_key(
        &mut self,
        var_name: &str,
        path: &str,
    ) -> Option<rustls::pki_types::PrivateKeyDer<'static>> {
        use rustls::pki_types::pem::{Error, PemObject};
        use rustls::pki_types::PrivateKeyDer;
        let bytes = std::fs::read(path).map_err(|e| format!("{var_name}: cannot read {path}: {e}"));
        let bytes = self.check(bytes)?;
        match PrivateKeyDer::from_pem_slice(&bytes) {
            Ok(k) => Some(k),
            Err(Error::NoItemsFound) => {
                self.problems.push(format!(
                    "{var_name} {path}: no PEM private key in it (PKCS#8, PKCS#1 or SEC1)"
                ));
                None
            }
            Err(e) => {
                self.problems
                    .push(format!("{var_name} {path}: {}", pem_problem(&e)));
                None
            }
        }
    }
}

/// Parses the key list once for reuse (kept here so both binaries share it).
pub fn public_keys_from_keyfile(k: &KeyFile) -> Result<Vec<PublicKey>, String> {
    parse_public_keys(&k.public_key).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, Vec<String>> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(&move |k: &str| m.get(k).cloned())
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let e = from(&[
            ("SUBJECT", "a/b"),
            ("KV_MOUNT", "../x"),
            ("MCPVAULT_RATE_LIMIT", "fast"),
            ("MCPVAULT_MAX_MESSAGE_BYTES", "-1"),
            ("MCPVAULT_REVEAL", "always"),
            ("MCPVAULT_HANDLE_TTL", "0"),
            ("MCPVAULT_CONFIRM_TIMEOUT", "soon"),
        ])
        .unwrap_err();
        let all = e.join("\n");
        for want in [
            "SUBJECT \"a/b\" is invalid",
            "MCPVAULT_PUBLIC_KEY or MCPVAULT_PUBLIC_KEY_FILE is required",
            "KV_MOUNT",
            "MCPVAULT_RATE_LIMIT",
            "MCPVAULT_MAX_MESSAGE_BYTES",
            "MCPVAULT_REVEAL \"always\" must be `never`",
            "MCPVAULT_HANDLE_TTL \"0\" must be 1 to 86400 seconds",
            "MCPVAULT_CONFIRM_TIMEOUT \"soon\" must be 1 to 3600 seconds",
        ] {
            assert!(all.contains(want), "{want} missing from:\n{all}");
        }
        assert_eq!(e.len(), 8, "{all}");
    }

    #[test]
    fn the_servers_own_records_are_outside_every_namespace() {
        let e = from(&[("SUBJECT", "children"), ("DEFAULT_PREFIX", "mcpvault")]).unwrap_err();
        assert!(e.iter().any(|p| p.starts_with("DEFAULT_PREFIX")), "{e:?}");
    }

    fn tls(pairs: &[(&str, &str)]) -> Result<bool, Vec<String>> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        http_tls(&move |k: &str| m.get(k).cloned()).map(|c| c.is_some())
    }

    #[test]
    fn tls_files_come_in_pairs_and_are_named_when_unreadable() {
        assert_eq!(tls(&[]), Ok(false));
        let e = tls(&[("MCPVAULT_TLS_CERT", "c.pem")]).unwrap_err();
        assert!(e[0].contains("MCPVAULT_TLS_KEY is not"), "{e:?}");
        let e = tls(&[("MCPVAULT_TLS_CLIENT_CA", "ca.pem")]).unwrap_err();
        assert!(e[0].starts_with("MCPVAULT_TLS_CLIENT_CA needs"), "{e:?}");
        let e = tls(&[
            ("MCPVAULT_TLS_CERT", "/nonexistent/c.pem"),
            ("MCPVAULT_TLS_KEY", "/nonexistent/k.pem"),
            ("MCPVAULT_TLS_CLIENT_CA", "/nonexistent/ca.pem"),
        ])
        .unwrap_err();
        assert_eq!(e.len(), 3, "{e:?}");
        for (var, file) in [
            ("MCPVAULT_TLS_CERT", "c.pem"),
            ("MCPVAULT_TLS_KEY", "k.pem"),
            ("MCPVAULT_TLS_CLIENT_CA", "ca.pem"),
        ] {
            assert!(
                e.iter()
                    .any(|p| p.starts_with(var) && p.contains(&format!("/nonexistent/{file}"))),
                "{var}: {e:?}"
            );
        }
    }

    #[test]
    fn missing_subject_is_a_problem() {
        let e = from(&[]).unwrap_err();
        assert!(
            e.iter().any(|p| p.starts_with("SUBJECT is required")),
            "{e:?}"
        );
    }
}
