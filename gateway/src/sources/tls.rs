//! Trust and identity of upstream connections: a source's own CA instead of the system
//! roots, and its client certificate (mTLS), for reqwest (GraphQL, REST) and tonic
//! (gRPC) with the same rustls and ring provider. PEM files are read and checked at
//! start-up; the request path only sees the built clients.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use crate::common::pem::{certificates, private_key, provider, read};

/// `tls:` of an upstream: PEM files, relative to the config file. Sources with a `tls`
/// section get their own connection pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTls {
    /// CA certificates trusted for the source's server certificate, instead of the
    /// system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain presented to the source (mTLS), with `key_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
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

/// A rustls client config with the same trust rules as [`upstream_client`] (the
/// source's CA, else the system roots; its client certificate for mTLS), for
/// connections reqwest does not make: `wss://` subscriptions.
pub fn rustls_client(tls: Option<&UpstreamTls>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let tls = tls.cloned().unwrap_or_default();
    match &tls.ca_file {
        Some(path) => {
            let origin = path.display().to_string();
            for ca in certificates(&read(path, "upstream CA")?, &origin)? {
                roots
                    .add(ca)
                    .map_err(|e| format!("{origin}: not a usable CA certificate: {e}"))?;
            }
        }
        None => {
            // Unreadable system certificates are skipped, as reqwest does.
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_root_certificates(roots);
    let config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert_path), Some(key_path)) => {
            let chain = certificates(
                &read(cert_path, "upstream client certificate")?,
                &cert_path.display().to_string(),
            )?;
            let key = private_key(
                &read(key_path, "upstream client key")?,
                &key_path.display().to_string(),
            )?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                format!(
                    "{} and {}: unusable client identity: {e}",
                    cert_path.display(),
                    key_path.display()
                )
            })?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
