//! The accept loop of the client listener, plain or TLS: one hyper connection per
//! client with the limits of `edge.connections` (a cap on open connections, a deadline
//! for each request's headers, HTTP/2 stream and reset limits, keep-alive pings), so a
//! slow or hostile client holds neither memory nor a connection slot for long.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::Service;

use crate::common::config::duration;

/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a client past the connection cap reads before the connection closes.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
content-length: 37\r\nretry-after: 1\r\nconnection: close\r\n\r\ntoo many connections, try again later";

/// `edge.connections:` in the config file.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionConfig {
    /// Client connections open at once; a client past it gets a `503` (over TLS: the
    /// connection is closed) and nothing else waits. Zero: no cap.
    pub max: usize,
    /// From when a connection is ready for a request (its first, or the next one on a
    /// kept-alive connection) to the end of that request's headers; past it the
    /// connection is closed. It bounds slow-header clients and idle keep-alive
    /// connections alike. Zero: none.
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(with = "duration")]
    pub header_read_timeout: Duration,
    /// Streams one HTTP/2 client may have open at once.
    pub http2_max_concurrent_streams: u32,
    /// Streams an HTTP/2 client may open and reset before the server has taken them
    /// (the "rapid reset" flood); past it the connection is closed.
    pub http2_max_pending_accept_reset_streams: usize,
    /// Streams the server may reset because of the client's protocol errors before it
    /// closes the connection.
    pub http2_max_local_error_reset_streams: usize,
    /// Ping an HTTP/2 client this often; one that does not answer within the same
    /// time is disconnected. Zero: no pings.
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(with = "duration")]
    pub http2_keepalive_interval: Duration,
}

/// `edge.shutdown:` in the config file: how a stopping instance (SIGTERM, SIGINT) leaves
/// its load balancer without dropping requests.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// From readiness turning false (`/health/ready` answers 503) to the listener
    /// closing: time for the load balancer (a Kubernetes endpoint update) to stop
    /// sending new requests. Requests keep being served meanwhile.
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(with = "duration")]
    pub readiness_delay: Duration,
    /// From the listener closing to the exit: requests in flight finish within it
    /// (streams are ended at its start, with a message, so clients reconnect
    /// elsewhere); connections still open after it are dropped.
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(with = "duration")]
    pub grace_period: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            readiness_delay: Duration::from_secs(5),
            grace_period: Duration::from_secs(30),
        }
    }
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            max: 10_000,
            header_read_timeout: Duration::from_secs(10),
            http2_max_concurrent_streams: 200,
            http2_max_pending_accept_reset_streams: 20,
            http2_max_local_error_reset_streams: 100,
            http2_keepalive_interval: Duration::from_secs(30),
        }
    }
}

impl ConnectionConfig {
    fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        let header_read = (!self.header_read_timeout.is_zero()).then_some(self.header_read_timeout);
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read);
        let keepalive =
            (!self.http2_keepalive_interval.is_zero()).then_some(self.http2_keepalive_interval);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.http2_max_concurrent_streams)
            .max_pending_accept_reset_streams(self.http2_max_pending_accept_reset_streams)
            .max_local_error_reset_streams(self.http2_max_local_error_reset_streams)
            .keep_alive_interval(keepalive)
            .keep_alive_timeout(self.http2_keepalive_interval);
        builder
    }
}

/// Serve `app` (over TLS with `tls`) until `shutdown` resolves, then stop accepting and
/// let the connections finish their in-flight requests. Each request carries the peer
/// address as `ConnectInfo<SocketAddr>`, like `axum::serve` with connect info. HTTP/1.1
/// and HTTP/2 (prior knowledge, or ALPN over TLS) are both served.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    shutdown: impl Future<Output = ()>,
    limits: ConnectionConfig,
) {
    let graceful = GracefulShutdown::new();
    let builder = limits.builder();
    let slots = (limits.max > 0).then(|| Arc::new(Semaphore::new(limits.max)));
    let header_read = limits.header_read_timeout;
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match &slots {
            Some(slots) => match slots.clone().try_acquire_owned() {
                Ok(slot) => Some(slot),
                Err(_) => {
                    tracing::debug!(%peer, "connection refused: at the connection cap");
                    if tls.is_none() {
                        tokio::spawn(refuse(tcp));
                    }
                    continue;
                }
            },
            None => None,
        };
        let tls = tls.clone();
        let app = app.clone();
        let builder = builder.clone();
        // Taken before the handshake, so that shutdown waits for this connection too.
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            let _ = tcp.set_nodelay(true);
            let service = tower::service_fn(move |mut request: http::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                app.clone().call(request)
            });
            let service = TowerToHyperService::new(service);
            let served = match tls {
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake refused");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    // ALPN, when the client offered it, decides the protocol, so no
                    // bytes are awaited to guess it.
                    let builder = match stream.get_ref().1.alpn_protocol() {
                        Some(b"h2") => builder.http2_only(),
                        Some(_) => builder.http1_only(),
                        None => builder,
                    };
                    watcher
                        .watch(
                            builder.serve_connection_with_upgrades(TokioIo::new(stream), service),
                        )
                        .await
                }
                None => {
                    // The protocol is guessed from the first bytes: a client that sends
                    // none is dropped like one whose headers are late.
                    if !first_byte_within(&tcp, header_read).await {
                        tracing::debug!(%peer, "no request in time");
                        return;
                    }
                    watcher
                        .watch(builder.serve_connection_with_upgrades(TokioIo::new(tcp), service))
                        .await
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Whether the client sends anything within `wait` (zero: however long it takes).
async fn first_byte_within(tcp: &TcpStream, wait: Duration) -> bool {
    let mut byte = [0u8; 1];
    if wait.is_zero() {
        return tcp.peek(&mut byte).await.is_ok_and(|n| n > 0);
    }
    matches!(
        tokio::time::timeout(wait, tcp.peek(&mut byte)).await,
        Ok(Ok(n)) if n > 0
    )
}

/// Answer `503` to a client past the connection cap; what it sent is read and dropped
/// (for at most a second) so that closing does not reset the connection before the
/// client reads the answer.
async fn refuse(mut io: impl AsyncRead + AsyncWrite + Unpin) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = io.write_all(OVER_CAPACITY).await;
        let _ = io.shutdown().await;
        let mut sink = [0u8; 1024];
        while matches!(io.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}
