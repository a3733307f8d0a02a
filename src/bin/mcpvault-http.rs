//! `mcpvault-http`: the same tools, gate, pipeline and audit as `mcpvault-stdio`,
//! over MCP streamable HTTP at `/mcp`, for many agents per process (each call's
//! subject is its token's subject). `/healthz`, `/readyz`, `/metrics` beside it.
//!
//! The transport is rmcp's streamable HTTP tower service (sessions for 2025-11-25 and
//! earlier, stateless 2026-07-28); this file only wires it: Host and Origin checks
//! (rmcp's, with Origin validation forced on so that an empty allow-list refuses every
//! request bearing an Origin), a body limit (413), TLS and mTLS (rustls), time
//! bounds on what clients control, graceful shutdown.
//!
//! Timeouts: the TLS handshake and each request's headers are bounded by the accept
//! loop (`server::listen`); a request body must arrive within [`BODY_TIMEOUT`]; the
//! probes answer within [`PROBE_TIMEOUT`]. `/mcp` responses get no blanket deadline:
//! they may be event streams that legitimately stay open (sessions, a confirmation
//! waiting for the user up to `MCPVAULT_CONFIRM_TIMEOUT`), and a tool call is bounded
//! by its backend's own timeouts (`VAULT_TIMEOUT_SECS`, the KMS client's, the
//! `http.request` timeout), so a hung backend still gets the caller an error.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

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
use tower_http::timeout::{RequestBodyTimeout, TimeoutLayer};

/// How long a request body may take to arrive (a slow client holds a task meanwhile).
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// `/healthz`, `/readyz`, `/metrics` answer within this (`/readyz` then says Vault did
/// not answer in time).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

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
    mcpvault::logging::init();
    let args = Args::parse();
    // Every configuration problem at once, TLS files included, then exit 2.
    let (front, tls) = match (
        Front::from_env(),
        mcpvault::config::http_tls(&mcpvault::config::var),
    ) {
        (Ok(f), Ok(t)) => (f, t),
        (f, t) => {
            let problems = f.err().into_iter().chain(t.err()).flatten();
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
    let probes = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let f = ready.clone();
                async move {
                    // Inside the probe bound, so the answer says why.
                    let why = match tokio::time::timeout(PROBE_TIMEOUT / 2, f.ready()).await {
                        Ok(Ok(())) => return (StatusCode::OK, "{\"ready\":true}\n".to_string()),
                        Ok(Err(e)) => format!("vault: {e}"),
                        Err(_) => format!(
                            "vault: no answer within {} s",
                            (PROBE_TIMEOUT / 2).as_secs_f64()
                        ),
                    };
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        serde_json::json!({"ready": false, "reason": why}).to_string(),
                    )
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
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            PROBE_TIMEOUT,
        ));
    let app = Router::new()
        .nest_service("/mcp", RequestBodyTimeout::new(mcp, BODY_TIMEOUT))
        .merge(probes)
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
    let scheme = match (&tls, mcpvault::config::var("MCPVAULT_TLS_CLIENT_CA")) {
        (None, _) => "http",
        (Some(_), None) => "https",
        (Some(_), Some(_)) => "https, client certificates required",
    };
    tracing::info!(address = %bound, scheme, "mcpvault-http listening");
    // Scripts read the bound address (with --listen 127.0.0.1:0) from this line, to
    // its end: the scheme is in the log line above, not here.
    eprintln!("mcpvault-http: listening on {bound}");
    let stop = cancel.clone();
    let counted = front.clone();
    mcpvault::server::listen::serve(
        listener,
        tls,
        app,
        mcpvault::server::listen::Limits::default(),
        Arc::new(move || counted.tls_handshake_failed()),
        async move {
            terminate().await;
            stop.cancel();
        },
    )
    .await;
    front.finish();
    ExitCode::SUCCESS
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
