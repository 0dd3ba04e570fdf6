//! TLS, both ways, with rustls and its `ring` provider: termination on the gateway's
//! listener (HTTPS, optionally client certificates: mTLS) and the trust and identity
//! of upstream connections. PEM files are read and checked at start-up, so a missing
//! or malformed file stops the gateway with a message naming it; the request path only
//! sees the compiled `ServerConfig` and `reqwest::Client`.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::Service;

use crate::config::{ClientAuth, TlsConfig};
use crate::policy::config::UpstreamTls;

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The one crypto provider of the process (ring; reqwest uses the same).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
}

/// Every certificate of a PEM text; none at all is an error.
pub fn certificates(pem: &[u8], origin: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{origin}: invalid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "{origin}: no certificate (expected `-----BEGIN CERTIFICATE-----` blocks)"
        ));
    }
    Ok(certs)
}

/// The first private key of a PEM text (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(pem: &[u8], origin: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        format!(
            "{origin}: no usable private key (expected a PKCS#8, PKCS#1 or SEC1 PEM block): {e}"
        )
    })
}

/// The listener's TLS settings from PEM texts: certificate chain, key, and optionally
/// the CA of client certificates and whether one is required.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: Option<&[u8]>,
    client_auth: ClientAuth,
) -> Result<Arc<ServerConfig>, String> {
    server_config_named(
        (cert_pem, "certificate"),
        (key_pem, "key"),
        client_ca_pem.map(|pem| (pem, "client CA")),
        client_auth,
    )
}

type Named<'a> = (&'a [u8], &'a str);

fn server_config_named(
    cert: Named<'_>,
    key: Named<'_>,
    client_ca: Option<Named<'_>>,
    client_auth: ClientAuth,
) -> Result<Arc<ServerConfig>, String> {
    let chain = certificates(cert.0, cert.1)?;
    let private = private_key(key.0, key.1)?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS protocol versions: {e}"))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some((pem, origin)) => {
            let mut roots = RootCertStore::empty();
            for ca in certificates(pem, origin)? {
                roots
                    .add(ca)
                    .map_err(|e| format!("{origin}: not a usable CA certificate: {e}"))?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let verifier = match client_auth {
                ClientAuth::Required => verifier,
                ClientAuth::Optional => verifier.allow_unauthenticated(),
            };
            let verifier = verifier
                .build()
                .map_err(|e| format!("{origin}: cannot verify client certificates: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, private).map_err(|e| {
        format!(
            "{} and {}: the key does not fit the certificate, or is unsupported: {e}",
            cert.1, key.1
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The listener's acceptor from the config's files.
pub fn acceptor(config: &TlsConfig) -> Result<TlsAcceptor, String> {
    let cert = read(&config.cert_file, "TLS certificate")?;
    let key = read(&config.key_file, "TLS key")?;
    let client_ca = config
        .client_ca_file
        .as_deref()
        .map(|path| read(path, "client CA"))
        .transpose()?;
    let cert_name = config.cert_file.display().to_string();
    let key_name = config.key_file.display().to_string();
    let ca_name = config
        .client_ca_file
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let server = server_config_named(
        (&cert, &cert_name),
        (&key, &key_name),
        client_ca.as_deref().map(|pem| (pem, ca_name.as_str())),
        config.client_auth.unwrap_or(ClientAuth::Required),
    )?;
    Ok(TlsAcceptor::from(server))
}

/// Serve `app` over TLS until `shutdown` resolves, then stop accepting and let the
/// connections finish their in-flight requests. Each request carries the peer
/// address as `ConnectInfo<SocketAddr>`, like `axum::serve` with connect info. HTTP/1.1
/// and HTTP/2 (ALPN) are both served.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
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
        let acceptor = acceptor.clone();
        let app = app.clone();
        let builder = builder.clone();
        // Taken before the handshake, so that shutdown waits for this connection too.
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
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
            let service = tower::service_fn(move |mut request: http::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                app.clone().call(request)
            });
            let connection = builder.serve_connection_with_upgrades(
                TokioIo::new(stream),
                TowerToHyperService::new(service),
            );
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A client for a source with its own `tls:` section: its CA instead of the system
/// roots, and its client certificate for mTLS. Built like the shared client otherwise.
pub fn upstream_client(
    tls: &UpstreamTls,
    base: reqwest::ClientBuilder,
) -> Result<reqwest::Client, String> {
    let mut builder = base.use_rustls_tls();
    if let Some(path) = &tls.ca_file {
        let origin = path.display().to_string();
        builder = builder.tls_built_in_root_certs(false);
        for ca in certificates(&read(path, "upstream CA")?, &origin)? {
            let ca = reqwest::Certificate::from_der(&ca)
                .map_err(|e| format!("{origin}: not a usable CA certificate: {e}"))?;
            builder = builder.add_root_certificate(ca);
        }
    }
    if let (Some(cert_path), Some(key_path)) = (&tls.cert_file, &tls.key_file) {
        let mut pem = read(cert_path, "upstream client certificate")?;
        let key = read(key_path, "upstream client key")?;
        // Check both here, for messages that name the file.
        certificates(&pem, &cert_path.display().to_string())?;
        private_key(&key, &key_path.display().to_string())?;
        pem.push(b'\n');
        pem.extend_from_slice(&key);
        let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
            format!(
                "{} and {}: unusable client identity: {e}",
                cert_path.display(),
                key_path.display()
            )
        })?;
        builder = builder.identity(identity);
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the TLS client: {e}"))
}

/// The TLS settings of a gRPC source reached over `https://`: the source's CA instead
/// of the system roots when `tls.ca_file` is set, and its client certificate for mTLS.
/// Same trust rules as [`upstream_client`]; tonic uses the same rustls and ring.
pub fn grpc_client_tls(
    tls: Option<&UpstreamTls>,
) -> Result<tonic::transport::ClientTlsConfig, String> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let mut config = ClientTlsConfig::new();
    let tls = tls.cloned().unwrap_or_default();
    match &tls.ca_file {
        Some(path) => {
            let pem = read(path, "upstream CA")?;
            // Checked here, for a message that names the file.
            certificates(&pem, &path.display().to_string())?;
            config = config.ca_certificate(Certificate::from_pem(pem));
        }
        None => config = config.with_native_roots(),
    }
    if let (Some(cert_path), Some(key_path)) = (&tls.cert_file, &tls.key_file) {
        let cert = read(cert_path, "upstream client certificate")?;
        let key = read(key_path, "upstream client key")?;
        certificates(&cert, &cert_path.display().to_string())?;
        private_key(&key, &key_path.display().to_string())?;
        config = config.identity(Identity::from_pem(cert, key));
    }
    Ok(config)
}
