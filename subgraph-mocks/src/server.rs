//! Running servers: [`MockSubgraphs`] owns the listeners, the accept loops and every connection.
//!
//! Connections are served by hyper (HTTP/1.1 with keep-alive, and HTTP/2 with prior knowledge
//! on the same port) with the axum router of [`crate::http`]. Each connection task can be told
//! to drop its socket immediately (a subgraph marked `down`), and in separate mode each
//! subgraph's accept loop closes its listener while the subgraph is down and binds the same port
//! again when it comes back.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, info, warn};

use crate::conn::{DRAIN_TIMEOUT, serve_connection};
use crate::events::{Command, Controls, wait_for_streams};
use crate::fault::{Fault, Stats};
use crate::gate::Gate;
use crate::http::router;
use crate::state::Shared;
use crate::subgraphs::{self, SUBGRAPHS};

/// Handle to the four running mock subgraphs.
///
/// Two layouts:
/// - [`MockSubgraphs::start`]: one listener serving `/accounts`, `/inventory`, `/products`,
///   `/reviews` and the control routes (what the binary does, matching the supergraph URLs).
/// - [`MockSubgraphs::start_separate`]: one ephemeral listener per subgraph (each serving its own
///   path plus the control routes for all subgraphs), so one subgraph can refuse connections
///   while the others run.
///
/// Control routes on every listener: `GET /control/stats` (JSON object of [`Stats`] by
/// subgraph), `POST /control/reset` (zero the counters, keep faults), `GET /control/faults`,
/// `GET /control/fault/{subgraph}` and `POST /control/fault/{subgraph}` (or `all`) with a JSON
/// [`Fault`] body (fields optional, empty body clears).
///
/// Dropping the handle aborts every server task (connections are closed); prefer
/// [`MockSubgraphs::shutdown`] to let in-flight requests finish. Methods taking a subgraph
/// name panic on a name not in [`SUBGRAPHS`].
pub struct MockSubgraphs {
    shared: Arc<Shared>,
    addrs: [SocketAddr; 4],
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for MockSubgraphs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockSubgraphs")
            .field("separate", &self.shared.separate)
            .field("addrs", &self.addrs)
            .finish_non_exhaustive()
    }
}

impl MockSubgraphs {
    /// Serves all four subgraphs on one listener bound to `addr` (e.g. `"127.0.0.1:0"` for an
    /// ephemeral port, `"0.0.0.0:4200"` like the supergraph) at `/accounts`, `/inventory`,
    /// `/products`, `/reviews`, plus the control routes.
    ///
    /// A `down` subgraph gets each request on its path answered by closing the connection
    /// without a response (the other paths keep working on the same port).
    pub async fn start(addr: &str) -> anyhow::Result<Self> {
        let addr = resolve(addr).await?;
        let listener = bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        let shared = Shared::new(false);
        let (shutdown, _) = watch::channel(false);
        let router = router(shared.clone(), &[0, 1, 2, 3]);
        let task = tokio::spawn(accept_loop(
            shared.clone(),
            None,
            listener,
            router,
            shutdown.subscribe(),
        ));
        info!(addr = %local, "mock subgraphs listening (combined)");
        Ok(Self {
            shared,
            addrs: [local; 4],
            shutdown,
            tasks: vec![task],
        })
    }

    /// Serves each subgraph on its own ephemeral port of `host` (e.g. `"127.0.0.1"`), at its
    /// usual path (`http://127.0.0.1:PORT/products`). Every listener also serves the control
    /// routes for all subgraphs.
    ///
    /// A `down` subgraph's listener is closed (new connections are refused, open ones are
    /// closed) and bound again on the same port when `down` is cleared.
    pub async fn start_separate(host: &str) -> anyhow::Result<Self> {
        let ip = resolve(&format!("{host}:0")).await?;
        let shared = Shared::new(true);
        let (shutdown, _) = watch::channel(false);
        let mut addrs = [ip; 4];
        let mut tasks = Vec::with_capacity(4);
        for (i, addr) in addrs.iter_mut().enumerate() {
            let listener = bind(ip).with_context(|| format!("cannot listen on {ip}"))?;
            *addr = listener.local_addr()?;
            shared.subgraphs[i].listening.send_replace(true);
            let router = router(shared.clone(), &[i]);
            tasks.push(tokio::spawn(accept_loop(
                shared.clone(),
                Some(i),
                listener,
                router,
                shutdown.subscribe(),
            )));
            info!(subgraph = SUBGRAPHS[i], addr = %addr, "mock subgraph listening");
        }
        Ok(Self {
            shared,
            addrs,
            shutdown,
            tasks,
        })
    }

    fn index(subgraph: &str) -> usize {
        subgraphs::index_of(subgraph).unwrap_or_else(|| {
            panic!("unknown subgraph `{subgraph}`, expected one of {SUBGRAPHS:?}")
        })
    }

    /// Whether this was started with [`MockSubgraphs::start_separate`].
    pub fn is_separate(&self) -> bool {
        self.shared.separate
    }

    /// The address the subgraph's listener is bound to.
    pub fn local_addr(&self, subgraph: &str) -> SocketAddr {
        self.addrs[Self::index(subgraph)]
    }

    /// `http://HOST:PORT` of the subgraph's listener (also serves `/control/...`); an
    /// unspecified bind address (`0.0.0.0`, `::`) is replaced by loopback.
    pub fn base_url(&self, subgraph: &str) -> String {
        let addr = self.local_addr(subgraph);
        let ip = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, addr.port()))
    }

    /// The subgraph's GraphQL endpoint, e.g. `http://127.0.0.1:PORT/products`.
    pub fn url(&self, subgraph: &str) -> String {
        format!("{}/{subgraph}", self.base_url(subgraph))
    }

    /// The dev JWT issuer's JWKS ([`crate::issuer`]), served by the `accounts` listener.
    pub fn jwks_url(&self) -> String {
        format!("{}{}", self.base_url("accounts"), crate::issuer::JWKS_PATH)
    }

    /// The dev JWT issuer's token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}{}", self.base_url("accounts"), crate::issuer::TOKEN_PATH)
    }

    /// A snapshot of the subgraph's counters.
    pub fn stats(&self, subgraph: &str) -> Stats {
        self.shared.subgraphs[Self::index(subgraph)]
            .counters
            .snapshot()
    }

    /// Snapshots of all counters, in [`SUBGRAPHS`] order.
    pub fn all_stats(&self) -> Vec<(&'static str, Stats)> {
        self.shared.all_stats()
    }

    /// Zeroes every counter (and restarts the deterministic fault sequences); faults stay.
    pub fn reset_stats(&self) {
        self.shared.reset_stats();
    }

    /// The subgraph's current fault.
    pub fn fault(&self, subgraph: &str) -> Fault {
        self.shared.subgraphs[Self::index(subgraph)].fault.get()
    }

    /// Sets the subgraph's fault (rates clamped to `0..=1`), effective for the next request.
    ///
    /// In separate mode, closing or re-binding the listener for `down` happens asynchronously
    /// within moments; use [`MockSubgraphs::apply_fault`] to wait for it.
    pub fn set_fault(&self, subgraph: &str, fault: Fault) {
        self.shared.set_fault(Self::index(subgraph), fault);
    }

    /// Like [`MockSubgraphs::set_fault`], then waits (at most 5 s) until, in separate mode, the
    /// subgraph's listener is closed (`down`) or bound again (not `down`).
    pub async fn apply_fault(&self, subgraph: &str, fault: Fault) {
        let i = Self::index(subgraph);
        self.shared.set_fault(i, fault);
        self.shared.wait_applied(i).await;
    }

    /// Makes the subgraph's requests wait at `gate` until it opens (`None` removes it); a
    /// request whose wait times out is answered with HTTP 500. See [`Gate`].
    pub fn set_gate(&self, subgraph: &str, gate: Option<Arc<Gate>>) {
        self.shared.subgraphs[Self::index(subgraph)].gate.set(gate);
    }

    /// Clears every fault (see [`MockSubgraphs::apply_fault`]).
    pub async fn clear_faults(&self) {
        for subgraph in SUBGRAPHS {
            self.apply_fault(subgraph, Fault::default()).await;
        }
    }

    /// `reviewAdded` events: send the review with this id to every open stream;
    /// returns how many streams received it. Panics on an unknown id.
    pub fn emit_review(&self, id: &str) -> usize {
        self.shared
            .events
            .apply(Command::Emit(id))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// An event carrying only an error, on every open `reviewAdded` stream.
    pub fn fail_subscriptions(&self, message: &str) -> usize {
        self.shared
            .events
            .apply(Command::Fail(message))
            .unwrap_or(0)
    }

    /// End every open `reviewAdded` stream (the subgraph sends `complete`).
    pub fn complete_subscriptions(&self) -> usize {
        self.shared.events.apply(Command::Complete).unwrap_or(0)
    }

    /// Drop every subscription connection at once, without a close message.
    pub fn disconnect_subscriptions(&self) {
        let _ = self.shared.events.apply(Command::Disconnect);
    }

    /// `reviewAdded` streams open now.
    pub fn subscribers(&self) -> usize {
        *self.shared.events.subscribers.borrow()
    }

    /// Wait (bounded by `timeout`) until exactly `n` `reviewAdded` streams are open.
    pub async fn wait_for_subscribers(&self, n: usize, timeout: Duration) -> bool {
        wait_for_streams(&*self.shared.events, n, timeout).await
    }

    /// Subscription connections (WebSocket upgrades and SSE requests) accepted so far.
    pub fn subscription_connections(&self) -> u64 {
        self.shared
            .events
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The request headers of the last subscription connection (lower-case
    /// names).
    pub fn last_subscription_headers(&self) -> Vec<(String, String)> {
        self.shared
            .events
            .last_headers
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default()
    }

    /// Stops accepting, lets in-flight requests finish (at most 5 s), closes everything.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
        info!("mock subgraphs stopped");
    }
}

impl Drop for MockSubgraphs {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    tokio::net::lookup_host(addr)
        .await
        .with_context(|| format!("cannot resolve `{addr}`"))?
        .next()
        .with_context(|| format!("`{addr}` resolves to no address"))
}

/// Binds with `SO_REUSEADDR` so a port can be bound again right after its listener closed.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Accepts connections until shutdown. With `separate = Some(i)` the loop also follows
/// subgraph `i`'s `down` flag: it drops the listener while down and re-binds the same address
/// when it clears.
async fn accept_loop(
    shared: Arc<Shared>,
    separate: Option<usize>,
    listener: TcpListener,
    router: Router,
    shutdown: watch::Receiver<bool>,
) {
    let addr = listener.local_addr().ok();
    let name = separate.map_or("all", |i| SUBGRAPHS[i]);
    let mut down_rx = separate.map(|i| shared.subgraphs[i].down.subscribe());
    let mut shutdown_rx = shutdown.clone();
    let mut listener = Some(listener);
    let mut conns = JoinSet::new();
    loop {
        let down_changed = async {
            match down_rx.as_mut() {
                // While listening, wake when it becomes down; while closed, when it comes back.
                Some(rx) => {
                    let want = listener.is_some();
                    rx.wait_for(|d| *d == want).await.is_ok()
                }
                None => std::future::pending().await,
            }
        };
        let accept = async {
            match &listener {
                Some(l) => l.accept().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = async { let _ = shutdown_rx.wait_for(|s| *s).await; } => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            ok = down_changed => {
                if !ok {
                    break;
                }
                let Some(i) = separate else { continue };
                let sg = &shared.subgraphs[i];
                if listener.take().is_some() {
                    sg.listening.send_replace(false);
                    info!(subgraph = name, "down: listener closed");
                } else if let Some(addr) = addr {
                    match bind(addr) {
                        Ok(l) => {
                            listener = Some(l);
                            sg.listening.send_replace(true);
                            info!(subgraph = name, %addr, "up again: listening");
                        }
                        Err(e) => {
                            warn!(subgraph = name, %addr, error = %e, "cannot re-bind, retrying");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            }
            accepted = accept => match accepted {
                Ok((stream, peer)) => {
                    debug!(subgraph = name, %peer, "connection accepted");
                    let down = separate.map(|i| shared.subgraphs[i].down.subscribe());
                    conns.spawn(serve_connection(stream, router.clone(), shutdown.clone(), down));
                }
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    warn!(subgraph = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
}
