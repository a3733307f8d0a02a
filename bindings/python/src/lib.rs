//! `mcpvault._native`: the Python face of `mcpvault_token` (the token core crate).
//!
//! Only type conversion lives here (dicts and lists in, dicts and strings out, denials
//! raised as `McpVaultError`); every decision is the core's. The public Python API is
//! `python/mcpvault/__init__.py`, which calls these functions.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use mcpvault_token::{AuthorizedFacts, TokenInfo};

#[path = "../../shared/glue.rs"]
mod glue;

use glue::{AttenuateArgs, Failure, MintArgs, RequestSpec};

pyo3::create_exception!(
    mcpvault,
    McpVaultError,
    PyException,
    "A token was denied or an argument was invalid. `reason` is the denial reason \
     (`expired`, `tool not granted: X`, ...); `code` a stable identifier (`expired`, \
     `tool_not_granted`, ..., or `invalid_argument`)."
);

/// Raises `McpVaultError(reason)` with `.reason`, `.code` and `.denied` set.
fn raise(py: Python<'_>, f: Failure) -> PyErr {
    let denied = f.code != glue::INVALID_ARGUMENT;
    let err = McpVaultError::new_err(f.reason.clone());
    let value = err.value(py);
    let set = value
        .setattr("reason", f.reason)
        .and_then(|()| value.setattr("code", f.code))
        .and_then(|()| value.setattr("denied", denied));
    match set {
        Ok(()) => err,
        Err(e) => e,
    }
}

fn invalid(py: Python<'_>, reason: impl Into<String>) -> PyErr {
    raise(py, Failure::invalid(reason))
}

/// Keys of MCPVault's SDK that this core does not implement: accepted only when
/// empty (see `Config::refuse_unsupported`).
const LEGACY_KEYS: &[&str] = &["operations", "resource_limits"];

/// Reads a config dict: only `allowed` keys; a value of `None` counts as absent.
/// Unknown keys are refused: a misspelt restriction (`"subjct"`) must not be
/// silently dropped.
struct Config<'py> {
    py: Python<'py>,
    what: &'static str,
    items: Vec<(String, Bound<'py, PyAny>)>,
}

impl<'py> Config<'py> {
    fn read(
        py: Python<'py>,
        what: &'static str,
        obj: Option<&Bound<'py, PyAny>>,
        allowed: &[&str],
    ) -> PyResult<Self> {
        let mut items = Vec::new();
        if let Some(obj) = obj.filter(|o| !o.is_none()) {
            let dict = obj
                .cast::<PyDict>()
                .map_err(|_| invalid(py, format!("{what} must be a dict")))?;
            for (k, v) in dict.iter() {
                let key: String = k
                    .extract()
                    .map_err(|_| invalid(py, format!("{what} keys must be strings")))?;
                if !allowed.contains(&key.as_str()) && !LEGACY_KEYS.contains(&key.as_str()) {
                    return Err(invalid(
                        py,
                        format!(
                            "unknown {what} key {key:?} (expected one of: {})",
                            allowed.join(", ")
                        ),
                    ));
                }
                if !v.is_none() {
                    items.push((key, v));
                }
            }
        }
        Ok(Config { py, what, items })
    }

    fn get(&self, key: &str) -> Option<&Bound<'py, PyAny>> {
        self.items.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn string(&self, key: &str) -> PyResult<Option<String>> {
        self.get(key)
            .map(|v| {
                v.extract::<String>()
                    .map_err(|_| self.bad(key, "must be a string"))
            })
            .transpose()
    }

    fn uint<T: TryFrom<u64>>(&self, key: &str) -> PyResult<Option<T>> {
        self.get(key)
            .map(|v| {
                if v.is_instance_of::<pyo3::types::PyBool>() {
                    return Err(self.bad(key, "must be a non-negative integer"));
                }
                v.extract::<u64>()
                    .ok()
                    .and_then(|n| T::try_from(n).ok())
                    .ok_or_else(|| self.bad(key, "must be a non-negative integer"))
            })
            .transpose()
    }

    fn number(&self, key: &str) -> PyResult<Option<f64>> {
        self.get(key)
            .map(|v| {
                if v.is_instance_of::<pyo3::types::PyBool>() {
                    return Err(self.bad(key, "must be a number"));
                }
                v.extract::<f64>()
                    .map_err(|_| self.bad(key, "must be a number"))
            })
            .transpose()
    }

    /// A list of strings; a single string is one entry.
    fn strings(&self, key: &str) -> PyResult<Option<Vec<String>>> {
        self.get(key).map(|v| string_list(self, key, v)).transpose()
    }

    /// Resources: a list of `KIND:PATTERN` strings, or a dict `{KIND: PATTERN or
    /// [PATTERN, ...]}`.
    fn resources(&self, key: &str) -> PyResult<Vec<String>> {
        let Some(v) = self.get(key) else {
            return Ok(Vec::new());
        };
        let Ok(dict) = v.cast::<PyDict>() else {
            return string_list(self, key, v);
        };
        let mut out = Vec::new();
        for (kind, patterns) in dict.iter() {
            let kind: String = kind
                .extract()
                .map_err(|_| self.bad(key, "keys must be resource kinds (kv, transit, ...)"))?;
            for p in string_list(self, key, &patterns)? {
                out.push(format!("{kind}:{p}"));
            }
        }
        Ok(out)
    }

    /// Keys MCPVault's SDK knew that this core does not implement: refused unless
    /// empty, so a token is never minted wider than the caller asked.
    fn refuse_unsupported(&self, keys: &[&str]) -> PyResult<()> {
        for key in keys {
            if let Some(v) = self.get(key) {
                if v.is_truthy().unwrap_or(true) {
                    return Err(self.bad(
                        key,
                        "is not supported by mcpvault (use tools and resources to narrow)",
                    ));
                }
            }
        }
        Ok(())
    }

    fn bad(&self, key: &str, msg: &str) -> PyErr {
        invalid(self.py, format!("{} {key:?} {msg}", self.what))
    }
}

fn string_list(cfg: &Config<'_>, key: &str, v: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(vec![s.to_string()]);
    }
    let err = || cfg.bad(key, "must be a list of strings");
    let mut out = Vec::new();
    for item in v.try_iter().map_err(|_| err())? {
        out.push(
            item.and_then(|i| i.extract::<String>())
                .map_err(|_| err())?,
        );
    }
    Ok(out)
}

fn text(py: Python<'_>, v: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    v.extract::<String>()
        .map_err(|_| invalid(py, format!("{what} must be a string")))
}

/// Generates an Ed25519 root key pair: `(private_key_hex, public_key_hex)`.
#[pyfunction]
fn generate_keypair() -> (String, String) {
    glue::generate_keypair()
}

/// Mints a token. `config`: `tools` (list; omitted or None = every tool), `ttl`
/// (seconds, default 3600), `issuer`, `subject`, `max_delegation_depth` (default 3),
/// `resources` (`["kv:app/*"]` or `{"kv": ["app/*"]}`).
#[pyfunction]
#[pyo3(signature = (private_key_hex, config=None))]
fn mint(
    py: Python<'_>,
    private_key_hex: &Bound<'_, PyAny>,
    config: Option<&Bound<'_, PyAny>>,
) -> PyResult<String> {
    let key = text(py, private_key_hex, "private_key_hex")?;
    let c = Config::read(
        py,
        "mint config",
        config,
        &[
            "tools",
            "ttl",
            "issuer",
            "subject",
            "max_delegation_depth",
            "resources",
        ],
    )?;
    c.refuse_unsupported(LEGACY_KEYS)?;
    let args = MintArgs {
        tools: c.strings("tools")?,
        ttl: c.uint("ttl")?,
        issuer: c.string("issuer")?,
        subject: c.string("subject")?,
        max_delegation_depth: c.uint("max_delegation_depth")?,
        resources: c.resources("resources")?,
    };
    py.detach(|| glue::mint(&key, args))
        .map_err(|f| raise(py, f))
}

/// Appends a narrowing block. `public_key_hex` (optional) checks the signature chain
/// first. `config`: `tools`, `ttl`, `resources`, `max_delegation_depth`.
#[pyfunction]
#[pyo3(signature = (token, public_key_hex, config=None))]
fn attenuate(
    py: Python<'_>,
    token: &Bound<'_, PyAny>,
    public_key_hex: Option<&Bound<'_, PyAny>>,
    config: Option<&Bound<'_, PyAny>>,
) -> PyResult<String> {
    let token = text(py, token, "token")?;
    let key = public_key_hex
        .filter(|k| !k.is_none())
        .map(|k| text(py, k, "public_key_hex"))
        .transpose()?;
    let c = Config::read(
        py,
        "attenuate config",
        config,
        &["tools", "ttl", "resources", "max_delegation_depth"],
    )?;
    c.refuse_unsupported(LEGACY_KEYS)?;
    let args = AttenuateArgs {
        tools: c.strings("tools")?,
        ttl: c.uint("ttl")?,
        resources: c.resources("resources")?,
        max_delegation_depth: c.uint("max_delegation_depth")?,
    };
    py.detach(|| glue::attenuate(&token, key.as_deref(), args))
        .map_err(|f| raise(py, f))
}

struct VerifyOptions {
    tool: String,
    resource: Option<String>,
    subject: Option<String>,
    now: Option<f64>,
}

impl VerifyOptions {
    fn spec(&self) -> RequestSpec<'_> {
        RequestSpec {
            tool: &self.tool,
            resource: self.resource.as_deref(),
            subject: self.subject.as_deref(),
            now: self.now,
        }
    }
}

fn verify_options(
    py: Python<'_>,
    options: Option<&Bound<'_, PyAny>>,
    with_revocation: bool,
) -> PyResult<(VerifyOptions, Vec<String>)> {
    let mut keys = vec!["requested_tool", "resource", "subject", "now"];
    if with_revocation {
        keys.push("revocation_list");
    }
    let c = Config::read(py, "verify options", options, &keys)?;
    c.refuse_unsupported(LEGACY_KEYS)?;
    let tool = c
        .string("requested_tool")?
        .ok_or_else(|| invalid(py, "verify options need \"requested_tool\""))?;
    let opts = VerifyOptions {
        tool,
        resource: c.string("resource")?,
        subject: c.string("subject")?,
        now: c.number("now")?,
    };
    let revoked = if with_revocation {
        c.strings("revocation_list")?.unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok((opts, revoked))
}

/// Authorizes one request. `options`: `requested_tool` (required), `resource`
/// (`"kv:app/db"`), `subject` (require this subject), `revocation_list` (hex ids),
/// `now` (unix seconds, for tests). Returns the token's facts; raises
/// `McpVaultError` with the denial reason.
#[pyfunction]
#[pyo3(signature = (token, public_key_hex, options=None))]
fn verify<'py>(
    py: Python<'py>,
    token: &Bound<'py, PyAny>,
    public_key_hex: &Bound<'py, PyAny>,
    options: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let token = text(py, token, "token")?;
    let key = text(py, public_key_hex, "public_key_hex")?;
    let (opts, revoked) = verify_options(py, options, true)?;
    let facts = py
        .detach(|| glue::verify(&token, &key, &revoked, &opts.spec()))
        .map_err(|f| raise(py, f))?;
    facts_dict(py, facts)
}

/// Reads a token without checking its signature (for people, never for decisions).
#[pyfunction]
fn inspect<'py>(py: Python<'py>, token: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let token = text(py, token, "token")?;
    let info = glue::inspect(&token).map_err(|f| raise(py, f))?;
    info_dict(py, info)
}

/// A verifier bound to one public key list and revocation list, resolved once (bad
/// keys fail here, not on the first request). The FastAPI middleware holds one.
#[pyclass(frozen, module = "mcpvault._native")]
struct Guard {
    inner: glue::Guard,
}

#[pymethods]
impl Guard {
    #[new]
    #[pyo3(signature = (public_key_hex, revocation_list=None))]
    fn new(
        py: Python<'_>,
        public_key_hex: &Bound<'_, PyAny>,
        revocation_list: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let key = text(py, public_key_hex, "public_key_hex")?;
        let c = Config {
            py,
            what: "guard",
            items: Vec::new(),
        };
        let ids = match revocation_list.filter(|r| !r.is_none()) {
            Some(r) => string_list(&c, "revocation_list", r)?,
            None => Vec::new(),
        };
        let inner = glue::Guard::new(&key, &ids).map_err(|f| raise(py, f))?;
        Ok(Guard { inner })
    }

    /// Like `verify`, without `revocation_list` (the guard's own applies).
    #[pyo3(signature = (token, options=None))]
    fn verify<'py>(
        &self,
        py: Python<'py>,
        token: &Bound<'py, PyAny>,
        options: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let token = text(py, token, "token")?;
        let (opts, _) = verify_options(py, options, false)?;
        let facts = py
            .detach(|| self.inner.authorize(&token, &opts.spec()))
            .map_err(|f| raise(py, f))?;
        facts_dict(py, facts)
    }
}

fn facts_dict(py: Python<'_>, f: AuthorizedFacts) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("tools", PyList::new(py, f.tools)?)?;
    d.set_item("tool_wildcard", f.tool_wildcard)?;
    d.set_item("issuer", f.issuer)?;
    d.set_item("subject", f.subject)?;
    d.set_item("delegation_depth", f.delegation_depth)?;
    d.set_item("max_delegation_depth", f.max_delegation_depth)?;
    d.set_item("expires_at", f.expires_at)?;
    d.set_item("resources", PyList::new(py, f.resources)?)?;
    d.set_item("revocation_ids", PyList::new(py, f.revocation_ids)?)?;
    Ok(d)
}

fn info_dict(py: Python<'_>, info: TokenInfo) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("block_count", info.block_count)?;
    // MCPVault's SDK gave every block's facts and checks in one list each; keep
    // those keys and add the per-block view.
    let facts: Vec<&String> = info.blocks.iter().flat_map(|b| &b.facts).collect();
    let checks: Vec<&String> = info.blocks.iter().flat_map(|b| &b.checks).collect();
    d.set_item("facts", PyList::new(py, facts)?)?;
    d.set_item("checks", PyList::new(py, checks)?)?;
    let blocks = PyList::empty(py);
    for b in &info.blocks {
        let bd = PyDict::new(py);
        bd.set_item("facts", PyList::new(py, &b.facts)?)?;
        bd.set_item("rules", PyList::new(py, &b.rules)?)?;
        bd.set_item("checks", PyList::new(py, &b.checks)?)?;
        blocks.append(bd)?;
    }
    d.set_item("blocks", blocks)?;
    d.set_item("revocation_ids", PyList::new(py, info.revocation_ids)?)?;
    Ok(d)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("McpVaultError", m.py().get_type::<McpVaultError>())?;
    m.add("INVALID_ARGUMENT", glue::INVALID_ARGUMENT)?;
    m.add_function(wrap_pyfunction!(generate_keypair, m)?)?;
    m.add_function(wrap_pyfunction!(mint, m)?)?;
    m.add_function(wrap_pyfunction!(attenuate, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(inspect, m)?)?;
    m.add_class::<Guard>()?;
    Ok(())
}
