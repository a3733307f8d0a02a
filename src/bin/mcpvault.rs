//! `mcpvault`: the token CLI (keygen, mint, attenuate, inspect, verify, revoke).
//!
//! Compatible with the MCPVault CLI: same subcommands, flags, key file and token
//! encoding. Exit status: 0 success / allowed, 1 denied (`denied: <reason>` on stderr),
//! 2 bad usage or unreadable input. Policy lives in `mcpvault::token`; this file only
//! parses arguments, does file I/O and maps errors to exit codes.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Parser;
use mcpvault::cli::{self, one_line, redact, AuditCommand, Cli, Command};
use mcpvault::token::{
    self, Denial, KeyFile, Request, RevocationSet, TokenError, Verifier, VerifierConfig,
    MAX_TOKEN_BYTES,
};

/// Why a command failed: a policy decision (exit 1) or bad usage / input (exit 2).
enum Failure {
    Denied(Denial),
    /// A check that failed (exit 1), other than a token decision.
    Failed(String),
    Usage(String),
}

impl From<TokenError> for Failure {
    fn from(e: TokenError) -> Self {
        Failure::Usage(e.to_string())
    }
}

type Outcome = Result<(), Failure>;

fn usage(msg: impl Into<String>) -> Failure {
    Failure::Usage(msg.into())
}

fn main() -> ExitCode {
    // Never a backtrace or panic text: one line naming the place, exit 2.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("mcpvault: internal error{at}");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // Clap quotes unexpected arguments; a token pasted without --token must
            // not end up in a terminal log.
            eprint!("{}", redact(&e.render().to_string()));
            return ExitCode::from(2);
        }
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli)))
        .unwrap_or_else(|_| Err(usage("aborted")));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Denied(d)) => {
            eprintln!("denied: {}", one_line(&d.to_string()));
            ExitCode::from(1)
        }
        Err(Failure::Failed(m)) => {
            eprintln!("{}", one_line(&m));
            ExitCode::from(1)
        }
        Err(Failure::Usage(m)) => {
            eprintln!("mcpvault: {}", one_line(&m));
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Outcome {
    match cli.command {
        Command::Keygen { output, force } => keygen(output, force),
        Command::Mint {
            key,
            tools,
            ttl,
            issuer,
            subject,
            max_delegation_depth,
            resources,
            reveal,
            confirm,
        } => {
            let key = read_key(&key)?;
            let spec = cli::mint_spec(
                tools.as_deref(),
                ttl,
                issuer,
                subject,
                max_delegation_depth,
                &resources,
                &reveal,
                confirm.as_deref(),
            )?;
            emit(&token::mint(&key, &spec)?)
        }
        Command::Attenuate {
            token,
            pubkey,
            tools,
            ttl,
            resources,
            max_delegation_depth,
            reveal,
            confirm,
        } => {
            let token = read_token(&token)?;
            let roots = pubkey
                .as_deref()
                .map(token::parse_public_keys)
                .transpose()?;
            let spec = cli::attenuate_spec(
                tools.as_deref(),
                ttl,
                &resources,
                max_delegation_depth,
                &reveal,
                confirm.as_deref(),
            )?;
            match token::attenuate(&token, roots.as_deref(), &spec) {
                Ok(t) => emit(&t),
                Err(TokenError::Denied(Denial::BadSignature)) => {
                    Err(Failure::Denied(Denial::BadSignature))
                }
                Err(TokenError::Denied(d)) => Err(unreadable(d)),
                Err(e) => Err(e.into()),
            }
        }
        Command::Inspect { token } => {
            let info = token::inspect(&read_token(&token)?).map_err(unreadable)?;
            emit(&json(&info)?)
        }
        Command::Verify {
            token,
            pubkey,
            tool,
            resource,
            subject,
            revocation_list,
        } => {
            let token = read_token(&token)?;
            let roots = token::parse_public_keys(&pubkey)?;
            let revoked = match revocation_list {
                Some(path) => RevocationSet::parse(&read_text(&path, "revocation list")?)
                    .map_err(|e| usage(format!("revocation list {}: {e}", path.display())))?,
                None => RevocationSet::empty(),
            };
            let resource = resource
                .as_deref()
                .map(cli::request_resource)
                .transpose()
                .map_err(usage)?;
            let mut config = VerifierConfig {
                token_cache: 1,
                decision_cache: 1,
                ..VerifierConfig::default()
            };
            // One decision per process: the static cost bound already holds, so a
            // busy machine should not turn a valid token into "limit exceeded".
            config.limits.max_time = Duration::from_millis(100);
            let verifier = Verifier::new(roots, config)?;
            let req = Request {
                tool: &tool,
                resource,
                subject: subject.as_deref(),
                now: SystemTime::now(),
            };
            let facts = verifier
                .authorize(&token, &req, &revoked)
                .map_err(Failure::Denied)?;
            emit(&json(&facts)?)
        }
        Command::Policy {
            subject,
            token,
            pubkey,
            tools,
            resources,
        } => {
            mcpvault::config::validate_subject(&subject).map_err(usage)?;
            let catalog = mcpvault::server::tool_catalog();
            let (granted, patterns) = match (token, pubkey) {
                (Some(token), Some(pubkey)) => {
                    let token = read_token(&token)?;
                    let verifier = Verifier::new(
                        token::parse_public_keys(&pubkey)?,
                        VerifierConfig::default(),
                    )?;
                    // A tool is granted when the token authorizes it for this
                    // subject now (attenuation blocks included), whatever the resource.
                    let mut granted = Vec::new();
                    let mut facts = None;
                    let mut refusal = None;
                    for tool in &catalog {
                        let req = Request {
                            tool,
                            resource: None,
                            subject: Some(&subject),
                            now: SystemTime::now(),
                        };
                        match verifier.authorize(&token, &req, &RevocationSet::empty()) {
                            Ok(f) => {
                                granted.push(tool.clone());
                                facts = Some(f);
                            }
                            Err(d) => refusal = Some(d),
                        }
                    }
                    let Some(facts) = facts else {
                        return Err(Failure::Denied(refusal.unwrap_or(Denial::NoToken)));
                    };
                    (granted, cli::patterns(&facts.resources)?)
                }
                (Some(_), None) => return Err(usage("--token needs --pubkey")),
                (None, _) => {
                    let grants = tools.as_deref().map(token::parse_tools).transpose()?;
                    (
                        mcpvault::policy::granted_tools(grants.as_deref(), &catalog),
                        cli::patterns(&resources)?,
                    )
                }
            };
            // The same variables, and defaults, as the server's.
            let d = mcpvault::policy::Mounts::default();
            let var = |name: &str, default: &str| {
                mcpvault::config::var(name)
                    .unwrap_or_else(|| default.to_string())
                    .trim_matches('/')
                    .to_string()
            };
            let mounts = mcpvault::policy::Mounts {
                kv: var("KV_MOUNT", &d.kv),
                prefix: var("DEFAULT_PREFIX", &d.prefix),
                transit: var("TRANSIT_MOUNT", &d.transit),
                db: var("DB_MOUNT", &d.db),
                ssh: var("SSH_MOUNT", &d.ssh),
                token_role: var("MCPVAULT_VAULT_TOKEN_ROLE", &d.token_role),
                revocation_kv: mcpvault::config::var("MCPVAULT_REVOCATION_KV"),
            };
            emit(mcpvault::policy::hcl(&subject, &granted, &patterns, &mounts).trim_end())
        }
        Command::Revoke {
            token,
            list,
            vault_kv,
            all,
        } => {
            let info = token::inspect(&read_token(&token)?).map_err(unreadable)?;
            let ids: Vec<String> = if all {
                info.revocation_ids
            } else {
                info.revocation_ids.last().cloned().into_iter().collect()
            };
            match (list, vault_kv) {
                (Some(list), _) => append_ids(&list, &ids)?,
                (None, Some(path)) => append_vault(&path, &ids)?,
                (None, None) => return Err(usage("give --list FILE or --vault-kv PATH")),
            }
            emit(&ids.join("\n"))
        }
        Command::Audit {
            action:
                AuditCommand::Verify {
                    file,
                    pubkey,
                    require_signed,
                },
        } => {
            let key = pubkey
                .as_deref()
                .map(mcpvault::audit::verifying_key)
                .transpose()
                .map_err(usage)?;
            let text = std::fs::read_to_string(&file)
                .map_err(|e| usage(format!("cannot read {}: {e}", file.display())))?;
            let r = mcpvault::audit::verify(&text, key.as_ref()).map_err(|(line, why)| {
                Failure::Failed(format!("audit chain broken at line {line}: {why}"))
            })?;
            if key.is_none() {
                return emit(&format!(
                    "ok: {} entries in {} chain(s), chain intact (signatures not checked: \
                     give --pubkey)",
                    r.entries, r.chains
                ));
            }
            let summary = format!(
                "{} entries in {} chain(s), {} signed checkpoint(s) verified, {} entr{} after \
                 the last checkpoint (unsigned)",
                r.entries,
                r.chains,
                r.checkpoints,
                r.unsigned,
                if r.unsigned == 1 { "y" } else { "ies" }
            );
            if require_signed && r.unsigned > 0 {
                return Err(Failure::Failed(format!("not all signed: {summary}")));
            }
            emit(&format!("ok: {summary}"))
        }
    }
}

/// A token that cannot even be read is bad input (exit 2), not a policy decision,
/// for the commands that only read tokens.
/// `revoke --vault-kv`: the shared list every server reads (`MCPVAULT_REVOCATION_KV`).
fn append_vault(path: &str, ids: &[String]) -> Result<(), Failure> {
    mcpvault::paths::validate_path(path).map_err(|e| usage(format!("--vault-kv {path:?}: {e}")))?;
    let mount = mcpvault::config::var("KV_MOUNT").unwrap_or_else(|| "secret".into());
    let vault = mcpvault::backend::vault::Vault::from_env();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| usage(format!("cannot start a runtime: {e}")))?;
    rt.block_on(mcpvault::server::revocation::append_shared(
        &vault, &mount, path, ids,
    ))
    .map(|_| ())
    .map_err(|e| Failure::Failed(format!("revoke: {e}")))
}

fn unreadable(d: Denial) -> Failure {
    usage(format!("unreadable token: {d}"))
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, Failure> {
    serde_json::to_string_pretty(v).map_err(|e| usage(format!("cannot print JSON: {e}")))
}

/// Prints one result line. A closed stdout (`| head`) is not an error.
fn emit(s: &str) -> Outcome {
    let mut out = io::stdout().lock();
    match writeln!(out, "{s}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(usage(format!("cannot write output: {e}")))
        }
        _ => Ok(()),
    }
}

/// `-` reads the token from stdin (bounded: anything past the size cap is refused
/// later without reading it all).
fn read_token(arg: &str) -> Result<String, Failure> {
    if arg != "-" {
        return Ok(arg.to_string());
    }
    let mut buf = String::new();
    io::stdin()
        .lock()
        .take(MAX_TOKEN_BYTES as u64 + 4096)
        .read_to_string(&mut buf)
        .map_err(|e| usage(format!("cannot read the token from stdin: {e}")))?;
    Ok(buf)
}

fn read_text(path: &Path, what: &str) -> Result<String, Failure> {
    fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read {what} {}: {e}", path.display())))
}

fn read_key(path: &Path) -> Result<KeyFile, Failure> {
    let text = read_text(path, "key file")?;
    warn_if_exposed(path);
    KeyFile::from_json(&text).map_err(|e| usage(format!("{}: {e}", path.display())))
}

#[cfg(unix)]
fn warn_if_exposed(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "mcpvault: warning: key file {} is readable by other users (chmod 600 it)",
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_exposed(_: &Path) {}

fn default_key_path() -> Result<PathBuf, Failure> {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".mcpvault/keys/default.json"))
        .ok_or_else(|| usage("cannot find the home directory: pass --output PATH"))
}

fn keygen(output: Option<PathBuf>, force: bool) -> Outcome {
    let path = match output {
        Some(p) => p,
        None => default_key_path()?,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)
            .map_err(|e| usage(format!("cannot create {}: {e}", dir.display())))?;
    }
    let key = token::generate_keypair();
    let body = key.to_json() + "\n";
    if force {
        // Write a fresh 0600 file beside the target, then rename over it: the old key
        // is replaced atomically and the new one is never readable by others.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let written = write_new_private(&tmp, &body).and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(usage(format!("cannot write {}: {e}", path.display())));
        }
    } else {
        write_new_private(&path, &body).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                usage(format!(
                    "{} exists: refusing to overwrite a key (use --force)",
                    path.display()
                ))
            } else {
                usage(format!("cannot write {}: {e}", path.display()))
            }
        })?;
    }
    eprintln!("mcpvault: private key written to {}", path.display());
    emit(&key.public_key)
}

/// Creates `path` (which must not exist) with mode 0600 from the start, and writes it.
fn write_new_private(path: &Path, body: &str) -> io::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    let res = f.write_all(body.as_bytes()).and_then(|()| f.sync_all());
    if res.is_err() {
        drop(f);
        let _ = fs::remove_file(path);
    }
    res
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Appends ids not already listed, one a line, creating the list.
fn append_ids(list: &Path, ids: &[String]) -> Outcome {
    let err = |e: io::Error| usage(format!("cannot update {}: {e}", list.display()));
    let existing = match fs::read_to_string(list) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(err(e)),
    };
    let listed: std::collections::HashSet<&str> = existing.lines().map(str::trim).collect();
    let mut add = String::new();
    if !existing.is_empty() && !existing.ends_with('\n') {
        add.push('\n');
    }
    for id in ids.iter().filter(|id| !listed.contains(id.as_str())) {
        add.push_str(id);
        add.push('\n');
    }
    if add.trim().is_empty() {
        return Ok(());
    }
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(list)
        .map_err(err)?;
    f.write_all(add.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(err)
}
