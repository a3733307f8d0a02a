//! `mcpvault-stdio`: the stdio MCP server. stdout carries JSON-RPC only; all logs go
//! to stderr.

use std::process::ExitCode;

use mcpvault::config::Config;
use mcpvault::server::{stdio, McpVault};
use rmcp::ServiceExt;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    // rmcp logs whole messages (arguments holding secrets) at info and below: it is
    // capped at warn whatever MCPVAULT_LOG says, so even `trace` never logs a body.
    mcpvault::logging::init();
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(problems) => {
            // All of them at once: one round of fixes, not one per restart.
            for p in problems {
                eprintln!("mcpvault-stdio: {p}");
            }
            return ExitCode::from(2);
        }
    };
    let max_message = cfg.max_message_bytes;
    let server = match McpVault::new(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mcpvault-stdio: {e}");
            return ExitCode::from(2);
        }
    };
    // The shared revocation list, read once before the first call (bounded: a Vault
    // that does not answer leaves calls refused until it does, not the server stuck).
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), server.prime()).await;
    let closer = server.clone();
    let result = stdio::run(
        stdin(),
        stdio::SyncStdout::new(),
        max_message,
        terminate(),
        move |pipe| async move {
            match server.serve(pipe).await {
                Ok(running) => {
                    if let Err(e) = running.waiting().await {
                        tracing::error!("server stopped: {e}");
                    }
                }
                Err(e) => tracing::error!("initialization failed: {e}"),
            }
        },
    )
    .await;
    closer.finish();
    // Exit rather than return: when stdin is not a pipe, tokio reads it on a blocking
    // thread that cannot be cancelled, so after SIGTERM with stdin still open, dropping
    // the runtime would wait until the host closes stdin. Every reply has been written and flushed.
    std::process::exit(match result {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("stdout closed: {e}");
            1
        }
    })
}

/// stdin as the runtime's own non-blocking pipe when it is a pipe (what MCP hosts
/// give): its readiness comes from epoll on a worker, where `tokio::io::stdin` reads
/// on a blocking-pool thread and wakes a worker for every read, a thread hand-off per
/// message. Anything else (a file, a terminal, a socket) keeps `tokio::io::stdin`.
fn stdin() -> std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = std::io::stdin().as_fd().try_clone_to_owned() {
            // Checks that it is a readable pipe before making it non-blocking.
            if let Ok(pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
                return Box::pin(pipe);
            }
        }
    }
    Box::pin(tokio::io::stdin())
}

/// Resolves on SIGTERM or SIGINT: stop reading, finish in-flight calls, exit 0.
async fn terminate() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
            }
            _ => std::future::pending::<()>().await,
        }
        tracing::info!("signal received: finishing in-flight calls");
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await
}
