//! `mcpvault-http`'s accept loop: plain TCP or TLS (rustls), one hyper HTTP/1.1
//! connection per socket, graceful shutdown. Its own loop rather than `axum::serve`
//! because that sets no timer, so a client that never finishes its headers (or its
//! TLS handshake) would hold a connection forever.
//!
//! A failed or slow handshake (no client certificate under mTLS, a certificate from
//! another CA, a port scanner) ends that connection only: it is logged and counted,
//! and the loop keeps accepting.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Time bounds on what a client controls before a request reaches a handler.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// From accept to a completed TLS handshake.
    pub handshake: Duration,
    /// From the first byte of a request (or the end of the previous one on a
    /// kept-alive connection) to the end of its headers.
    pub header_read: Duration,
    /// After shutdown is asked for: how long connections may take to finish what
    /// they are answering.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake: Duration::from_secs(10),
            header_read: Duration::from_secs(10),
            // Under a 30 s SIGKILL grace (Kubernetes' default), leaving time for the
            // audit checkpoints written at exit.
            drain: Duration::from_secs(20),
        }
    }
}

/// Serves `app` on `listener` (over TLS when `tls` is given) until `shutdown`
/// completes; then stops accepting, asks every connection to finish its current
/// request, and waits up to `limits.drain` for them. `on_handshake_failure` is called
/// once per failed or timed-out TLS handshake.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    limits: Limits,
    on_handshake_failure: Arc<dyn Fn() + Send + Sync>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let stop = CancellationToken::new();
    // Each connection task holds a sender; when all are gone, every connection is.
    let (open_tx, mut open_rx) = tokio::sync::mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Per-connection failures (reset before accept) are routine;
                    // anything else (out of file descriptors) gets a pause so the
                    // loop does not spin.
                    if !is_connection_error(&e) {
                        tracing::error!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let stop = stop.clone();
        let open = open_tx.clone();
        let acceptor = acceptor.clone();
        let failed = on_handshake_failure.clone();
        tokio::spawn(async move {
            let _open = open;
            let Some(acceptor) = acceptor else {
                connection(tcp, app, limits, stop).await;
                return;
            };
            match tokio::time::timeout(limits.handshake, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => connection(tls, app, limits, stop).await,
                Ok(Err(e)) => {
                    failed();
                    tracing::warn!(%peer, "TLS handshake failed: {e}");
                }
                Err(_) => {
                    failed();
                    tracing::warn!(%peer, "TLS handshake not done within {:?}", limits.handshake);
                }
            }
        });
    }
    drop(listener);
    stop.cancel();
    drop(open_tx);
    if tokio::time::timeout(limits.drain, open_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {:?}; exiting", limits.drain);
    }
}

/// One HTTP/1.1 connection, with keep-alive and a header read timeout; on `stop` it
/// finishes the request in flight and closes.
async fn connection<I>(io: I, app: Router, limits: Limits, stop: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(app));
    tokio::pin!(conn);
    let done = tokio::select! {
        r = conn.as_mut() => Some(r),
        () = stop.cancelled() => None,
    };
    let r = match done {
        Some(r) => r,
        None => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = r {
        tracing::debug!("connection ended: {e}");
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}
