//! Logging for both servers: stderr only (stdout is the protocol in stdio), no ANSI,
//! `MCPVAULT_LOG` as the filter, and the targets that would log secrets held down.

use tracing_subscriber::EnvFilter;

/// Log targets held at `warn` whatever MCPVAULT_LOG asks for: at lower levels they
/// log message bodies or HTTP payloads (secrets). rustify logs every failed request
/// with its URL (a KV path) and every normal 404 (an empty KV folder) as an error;
/// our own `vault:` errors already say what failed, without the path.
const NEVER_VERBOSE: &[&str] = &[
    "rmcp=warn",
    "rustify=off",
    "vaultrs=warn",
    "reqwest=warn",
    "hyper=warn",
    "hyper_util=warn",
    "h2=warn",
    "aws_smithy_runtime=warn",
    "aws_smithy_runtime_api=warn",
    "aws_smithy_http=warn",
    "aws_sdk_kms=warn",
    "aws_config=warn",
];

/// Installs the global subscriber (once per process).
pub fn init() {
    let filter = crate::config::log_filter()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let filter = NEVER_VERBOSE
        .iter()
        .filter_map(|d| d.parse().ok())
        .fold(filter, EnvFilter::add_directive);
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(filter)
        .init();
}
