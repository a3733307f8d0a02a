//! `mcpvault-http`: the same tools, gate, pipeline and audit as `mcpvault-stdio`,
//! over MCP streamable HTTP at `/mcp`, for many agents per process (each call's
//! subject is its token's subject). `/healthz`, `/readyz`, `/metrics` beside it.
//!
//! The transport is rmcp's streamable HTTP tower service (sessions for 2025-11-25 and
//! earlier, stateless 2026-07-28); this file only wires it: Host and Origin checks
//! (rmcp's, with Origin validation forced on so that an empty allow-list refuses every
//! request bearing an Origin), a body limit (413), graceful shutdown.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use clap::Parser;
use mcpvault::server::front::Front;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;

#[derive(Parser)]
#[command(
    name = "mcpvault-http",
    version,
    about = "MCP streamable HTTP server for many agents"
)]
struct Args {
    /// Address to listen on (loopback by default)
    #[arg(long, env = "MCPVAULT_LISTEN", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
}

fn list(name: &str) -> Vec<String> {
    mcpvault::config::var(name)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MCPVAULT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        // Below warn these crates log message bodies.
        .add_directive("rmcp=warn".parse().expect("static directive"))
        .add_directive("hyper=warn".parse().expect("static directive"))
        .add_directive("reqwest=warn".parse().expect("static directive"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(filter)
        .init();
    let args = Args::parse();
    let front = match Front::from_env() {
        Ok(f) => f,
        Err(problems) => {
            for p in problems {
                eprintln!("mcpvault-http: {p}");
            }
            return ExitCode::from(2);
        }
    };
    let max_body = mcpvault::config::var("MCPVAULT_MAX_MESSAGE_BYTES")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(mcpvault::config::DEFAULT_MAX_MESSAGE_BYTES);
    let mut hosts = list("MCPVAULT_ALLOWED_HOSTS");
    if hosts.is_empty() {
        hosts = vec![
            "localhost".into(),
            "127.0.0.1".into(),
            "[::1]".into(),
            args.listen.ip().to_string(),
            args.listen.to_string(),
        ];
    }
    let cancel = CancellationToken::new();
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(list("MCPVAULT_ALLOWED_ORIGINS"))
        .enforce_origin_validation()
        .with_cancellation_token(cancel.child_token())
        .with_max_request_body_bytes(max_body);
    let factory = front.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(factory.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let ready = front.clone();
    let metrics = front.clone();
    let app = Router::new()
        .nest_service("/mcp", mcp)
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let f = ready.clone();
                async move {
                    match f.ready().await {
                        Ok(()) => (StatusCode::OK, "{\"ready\":true}\n".to_string()),
                        Err(e) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            serde_json::json!({"ready": false, "reason": format!("vault: {e}")})
                                .to_string(),
                        ),
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let f = metrics.clone();
                async move {
                    ([("content-type", "text/plain; version=0.0.4")], f.metrics()).into_response()
                }
            }),
        )
        .layer(RequestBodyLimitLayer::new(max_body));
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mcpvault-http: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(2);
        }
    };
    let bound = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(address = %bound, "mcpvault-http listening");
    // Scripts read the bound address (with --listen 127.0.0.1:0) from this line.
    eprintln!("mcpvault-http: listening on {bound}");
    let stop = cancel.clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            terminate().await;
            stop.cancel();
        })
        .await;
    front.finish();
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcpvault-http: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM or Ctrl-C: stop accepting, answer what is in flight, then exit.
async fn terminate() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
