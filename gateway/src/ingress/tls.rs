//! TLS termination on the gateway's listener (HTTPS, optionally client certificates:
//! mTLS) with rustls and its `ring` provider. PEM files are read and checked at start-up,
//! so a missing or malformed file stops the gateway with a message naming it; the
//! request path only sees the compiled `ServerConfig`.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use serde::Deserialize;
use tokio_rustls::TlsAcceptor;

use crate::common::pem::{certificates, private_key, provider, read};

/// `tls:` of the listener: PEM files, relative to the config file (`docs/auth.md`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CA certificates that client certificates must chain to; enables mTLS.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// `required` (the default with `client_ca_file`): no valid client certificate, no
    /// handshake; `optional`: clients without a certificate are served, invalid ones
    /// are refused.
    #[serde(default)]
    pub client_auth: Option<ClientAuth>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    Optional,
    Required,
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
