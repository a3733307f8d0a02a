//! The `mcpvault` token CLI's command line: the clap definition and the pure parsers
//! that turn its flags into token specs. No I/O here, so the `cli_args` fuzz target
//! can feed arbitrary argument vectors through exactly what the binary runs
//! (`src/bin/mcpvault.rs` adds the file and terminal I/O and the exit codes).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::token::{
    self, AttenuateSpec, MintSpec, RequestResource, ResourceKind, ResourcePattern, TokenError,
};

#[derive(Parser)]
#[command(
    name = "mcpvault",
    version,
    about = "Biscuit capability tokens for MCP tools (MCPVault-compatible)",
    after_help = "Exit status: 0 success / allowed, 1 denied (`denied: <reason>` on stderr), \
                  2 bad usage or unreadable input.\n\
                  Tokens print as standard base64; standard and URL-safe base64 are accepted. \
                  `--token -` reads the token from stdin."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses an argument vector (the program name first), as the binary does with
    /// the process's own; for callers that do not import clap's `Parser` trait.
    pub fn parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Cli::try_parse_from(args)
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Generate an Ed25519 root keypair; print the public key hex
    Keygen {
        /// Key file to write (mode 0600) [default: ~/.mcpvault/keys/default.json]
        #[arg(long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Replace an existing key file (tokens signed by the old key stop verifying)
        #[arg(long)]
        force: bool,
    },
    /// Mint a token signed by the root private key
    Mint {
        /// Key file written by `keygen`
        #[arg(long, value_name = "PATH")]
        key: PathBuf,
        /// Comma-separated tools to grant; `kv.*` grants a family; omit for all tools
        #[arg(long, value_name = "a,b")]
        tools: Option<String>,
        /// Lifetime in seconds
        #[arg(long, value_name = "SECS", default_value_t = 3600)]
        ttl: u64,
        /// Issuer identity [default: mcpvault]
        #[arg(long, value_name = "S")]
        issuer: Option<String>,
        /// Subject (agent identity); servers deny tokens without one
        #[arg(long, value_name = "S")]
        subject: Option<String>,
        /// How many attenuation blocks may be appended
        #[arg(long, value_name = "N", default_value_t = 3)]
        max_delegation_depth: u32,
        /// Restrict a resource kind (kv, transit, db, ssh, kms, ssh_principal, http); `PATTERN*` is a prefix;
        /// repeatable
        #[arg(long = "resource", value_name = "KIND:PATTERN")]
        resources: Vec<String>,
        /// Let the token see secret values read from these resources in clear
        /// (otherwise they come back as handles); repeatable. None by default
        #[arg(long = "reveal", value_name = "KIND:PATTERN")]
        reveal: Vec<String>,
        /// Comma-separated tools (`kv.*` for a family, `*` for all) whose calls first
        /// ask the user through MCP elicitation and run only on accept
        #[arg(long, value_name = "a,b")]
        confirm: Option<String>,
    },
    /// Append a narrowing block (no private key needed)
    Attenuate {
        /// The token, or `-` for stdin
        #[arg(long, value_name = "T", allow_hyphen_values = true)]
        token: String,
        /// Root public key hex (comma-separated list for rotation); when given, the
        /// signature is checked before anything is appended
        #[arg(long, value_name = "HEX")]
        pubkey: Option<String>,
        /// Admit only these tools (comma-separated; `kv.*` for a family)
        #[arg(long, value_name = "a,b")]
        tools: Option<String>,
        /// Expire at most SECS seconds from now
        #[arg(long, value_name = "SECS")]
        ttl: Option<u64>,
        /// Restrict a resource kind; repeatable
        #[arg(long = "resource", value_name = "KIND:PATTERN")]
        resources: Vec<String>,
        /// How many further attenuation blocks may follow this one
        #[arg(long, value_name = "N")]
        max_delegation_depth: Option<u32>,
        /// Reveal only values from these resources (within what the token already
        /// reveals; it never adds); `--reveal none` drops reveal; repeatable
        #[arg(long = "reveal", value_name = "KIND:PATTERN")]
        reveal: Vec<String>,
        /// Also ask the user before calls of these tools (comma-separated; adds to
        /// what the token already requires, never removes)
        #[arg(long, value_name = "a,b")]
        confirm: Option<String>,
    },
    /// Print a token's blocks as JSON (no signature check: never use it to decide)
    Inspect {
        /// The token, or `-` for stdin
        #[arg(long, value_name = "T", allow_hyphen_values = true)]
        token: String,
    },
    /// Authorize one request and print the token's facts as JSON
    Verify {
        /// The token, or `-` for stdin
        #[arg(long, value_name = "T", allow_hyphen_values = true)]
        token: String,
        /// Root public key hex (comma-separated list for rotation)
        #[arg(long, value_name = "HEX", env = "MCPVAULT_PUBLIC_KEY")]
        pubkey: String,
        /// The tool requested
        #[arg(long, value_name = "NAME")]
        tool: String,
        /// The resource requested
        #[arg(long, value_name = "KIND:VALUE")]
        resource: Option<String>,
        /// Require the token's subject to be S
        #[arg(long, value_name = "S")]
        subject: Option<String>,
        /// Revoked ids, one hex a line
        #[arg(long, value_name = "FILE")]
        revocation_list: Option<PathBuf>,
    },
    /// Append the token's revocation id to a list (no signature check is needed:
    /// listing an id can only deny)
    Revoke {
        /// The token, or `-` for stdin
        #[arg(long, value_name = "T", allow_hyphen_values = true)]
        token: String,
        /// Revocation list to append to (created if missing)
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "vault_kv",
            conflicts_with = "vault_kv"
        )]
        list: Option<PathBuf>,
        /// Append to the shared list in Vault instead: a KV v2 secret under KV_MOUNT
        /// (field `ids`), with check-and-set; VAULT_ADDR and VAULT_TOKEN from the
        /// environment
        #[arg(long, value_name = "PATH")]
        vault_kv: Option<String>,
        /// Revoke every block's id (the whole chain back to the root token) instead of
        /// only the last block's (this token and all derived from it)
        #[arg(long)]
        all: bool,
    },
    /// Print the Vault / OpenBao policy (HCL) that lets a server serve SUBJECT with
    /// exactly a token's grants (mounts from KV_MOUNT, DEFAULT_PREFIX, TRANSIT_MOUNT,
    /// DB_MOUNT, SSH_MOUNT as the server reads them)
    Policy {
        /// The subject the server serves (its KV namespace)
        #[arg(long, value_name = "S")]
        subject: String,
        /// The token whose grants to allow, or `-` for stdin (else --tools/--resource)
        #[arg(long, value_name = "T", allow_hyphen_values = true,
              conflicts_with_all = ["tools", "resources"], requires = "pubkey")]
        token: Option<String>,
        /// Root public key hex (comma-separated list): the token's signature is checked
        #[arg(long, value_name = "HEX")]
        pubkey: Option<String>,
        /// Tools to allow (comma-separated; `kv.*` for a family); omit for all tools
        #[arg(long, value_name = "a,b")]
        tools: Option<String>,
        /// Restrict a resource kind, as for `mint`; repeatable
        #[arg(long = "resource", value_name = "KIND:PATTERN")]
        resources: Vec<String>,
    },
    /// Audit log tools
    Audit {
        #[command(subcommand)]
        action: AuditCommand,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check an audit log's hash chains (MCPVAULT_AUDIT_LOG); exit 1 at the first
    /// edited, inserted or deleted entry
    Verify {
        /// The audit log (JSON lines)
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Check the signed checkpoints with this public key (hex, of the
        /// MCPVAULT_AUDIT_KEY key file); reports entries after the last checkpoint
        #[arg(long, value_name = "HEX")]
        pubkey: Option<String>,
        /// With --pubkey: exit 1 if any entry follows its chain's last checkpoint
        #[arg(long, requires = "pubkey")]
        require_signed: bool,
    },
}

/// Replaces every long base64-looking word (a token, a key) with `<redacted>`.
pub fn redact(text: &str) -> String {
    let secretish = |w: &str| {
        w.len() >= 32
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=-_".contains(&b))
    };
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    for c in text.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_alphanumeric() || "+/=-_".contains(c) {
            word.push(c);
            continue;
        }
        if secretish(&word) {
            out.push_str("<redacted>");
        } else {
            out.push_str(&word);
        }
        word.clear();
        if c != '\0' {
            out.push(c);
        }
    }
    out
}

pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `--tools`, `--ttl`, `--issuer`, `--subject`, `--max-delegation-depth` and
/// `--resource` of `mint`, as a spec.
// One parameter per `mint` flag: the fuzz target calls it with the parsed flags too.
#[allow(clippy::too_many_arguments)]
pub fn mint_spec(
    tools: Option<&str>,
    ttl: u64,
    issuer: Option<String>,
    subject: Option<String>,
    max_delegation_depth: u32,
    resources: &[String],
    reveal: &[String],
    confirm: Option<&str>,
) -> Result<MintSpec, TokenError> {
    Ok(MintSpec {
        tools: tools.map(token::parse_tools).transpose()?,
        ttl: Duration::from_secs(ttl),
        issuer: non_empty(issuer),
        subject: non_empty(subject),
        max_delegation_depth,
        resources: patterns(resources)?,
        reveal: patterns(reveal)?,
        confirm: confirm_list(confirm)?,
    })
}

/// `--tools`, `--ttl`, `--resource` and `--max-delegation-depth` of `attenuate`.
pub fn attenuate_spec(
    tools: Option<&str>,
    ttl: Option<u64>,
    resources: &[String],
    max_delegation_depth: Option<u32>,
    reveal: &[String],
    confirm: Option<&str>,
) -> Result<AttenuateSpec, TokenError> {
    // Absent: reveal as before. `none`: drop it. Otherwise: narrow to the list.
    let reveal = match reveal {
        [] => None,
        [none] if none == "none" => Some(Vec::new()),
        list => Some(patterns(list)?),
    };
    Ok(AttenuateSpec {
        tools: tools.map(token::parse_tools).transpose()?,
        ttl: ttl.map(Duration::from_secs),
        resources: patterns(resources)?,
        max_delegation_depth,
        reveal,
        confirm: confirm_list(confirm)?,
    })
}

/// `--confirm a,kv.*`: tool names as `--tools` takes them (absent: none).
fn confirm_list(list: Option<&str>) -> Result<Vec<token::ToolGrant>, TokenError> {
    list.map(token::parse_tools)
        .transpose()
        .map(Option::unwrap_or_default)
}

pub fn non_empty(s: Option<String>) -> Option<String> {
    // MCPVault's CLI defaults issuer and subject to "": treat that as "not given".
    s.filter(|s| !s.is_empty())
}

/// `--resource KIND:PATTERN` values.
pub fn patterns(list: &[String]) -> Result<Vec<ResourcePattern>, TokenError> {
    list.iter().map(|s| s.parse()).collect()
}

/// `verify --resource KIND:VALUE`: any value (it is what a request names, not a
/// pattern), of a known kind.
pub fn request_resource(s: &str) -> Result<RequestResource<'_>, String> {
    let bad = || format!("invalid resource {s:?}: expected KIND:VALUE");
    let (kind, value) = s.split_once(':').ok_or_else(bad)?;
    let kind: ResourceKind = kind.parse().map_err(|_| bad())?;
    Ok(RequestResource { kind, value })
}
