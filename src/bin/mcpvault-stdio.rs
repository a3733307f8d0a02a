//! `mcpvault-stdio`: the stdio MCP server. stdout carries JSON-RPC only; all logs go
//! to stderr.

use std::process::ExitCode;

use mcpvault::config::Config;
use mcpvault::server::McpVault;
use rmcp::{transport::stdio, ServiceExt};
use tracing_subscriber::EnvFilter;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            EnvFilter::try_from_env("MCPVAULT_LOG")
                .unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn")),
        )
        .init();
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mcpvault-stdio: {e}");
            return ExitCode::from(2);
        }
    };
    let server = match McpVault::new(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mcpvault-stdio: {e}");
            return ExitCode::from(2);
        }
    };
    let service = match server.serve(stdio()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("initialization failed: {e}");
            return ExitCode::from(1);
        }
    };
    match service.waiting().await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("server stopped: {e}");
            ExitCode::from(1)
        }
    }
}
