//! TLS over real sockets, with certificates made in the test (rcgen, ring): HTTPS on
//! the gateway's listener (HTTP/1.1 and HTTP/2), client certificates (mTLS, required
//! and optional), start-up errors for bad PEM files, graceful shutdown over TLS, and
//! HTTPS / mTLS to an upstream (GraphQL, and gRPC with the `notifications` mock) with
//! the source's own CA and client certificate.

use std::path::Path;
use std::time::Duration;

use e2e_tests::certs::{Ca, Leaf, temp_dir, write};
use e2e_tests::scripted::ScriptedSubgraph;
use e2e_tests::{gateway_with_upstream, post_json};
use gateway::config::Config;
use gateway::ingress::tls::{ClientAuth, TlsConfig};
use gateway::server::{self, GatewaySpec, RunningGateway};
use serde_json::{Value, json};

fn supergraph() -> String {
    e2e_tests::single_subgraph_supergraph("http://127.0.0.1:9/a", "type Query { hello: String }")
}

const HELLO: &str = r#"{"data":{"hello":"hi"}}"#;

/// A gateway over TLS for a hello upstream.
async fn tls_gateway(
    upstream: &str,
    tls: TlsConfig,
) -> Result<RunningGateway, server::StartupError> {
    let dir = temp_dir("supergraph");
    let path = write(&dir, "supergraph.graphql", &supergraph());
    let mut spec = GatewaySpec::from_supergraph_file(&path).expect("spec");
    spec.urls = [("a".to_string(), upstream.to_string())].into();
    spec.listen = "127.0.0.1:0".into();
    spec.tls = Some(tls);
    server::start(&spec).await
}

/// Files for the gateway's listener: server certificate of `ca`, and optionally a
/// client CA.
fn listener_files(
    dir: &Path,
    ca: &Ca,
    client_ca: Option<&Ca>,
    client_auth: Option<ClientAuth>,
) -> TlsConfig {
    let server = ca.server();
    TlsConfig {
        cert_file: write(dir, "server.pem", &server.cert),
        key_file: write(dir, "server.key", &server.key),
        client_ca_file: client_ca.map(|c| write(dir, "client-ca.pem", &c.pem())),
        client_auth,
    }
}

/// A client trusting only `ca`, presenting `identity` when given.
fn https_client(ca: &Ca, identity: Option<&Leaf>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("CA"))
        .timeout(Duration::from_secs(10));
    if let Some(leaf) = identity {
        let pem = format!("{}\n{}", leaf.cert, leaf.key);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity"));
    }
    builder.build().expect("client")
}

async fn hello(client: &reqwest::Client, url: &str) -> Result<(reqwest::Version, Value), String> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(json!({"query": "{ hello }"}).to_string())
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let version = response.version();
    let body = response.json().await.map_err(|e| format!("{e:?}"))?;
    Ok((version, body))
}

#[tokio::test]
async fn https_works_with_the_test_ca_and_plain_http_to_the_tls_port_fails() {
    let a = ScriptedSubgraph::start(|_| (200, HELLO.into())).await;
    let ca = Ca::new("Test CA");
    let dir = temp_dir("https");
    // The config file form: paths relative to the config file.
    let server = ca.server();
    write(&dir, "server.pem", &server.cert);
    write(&dir, "server.key", &server.key);
    write(&dir, "supergraph.graphql", &supergraph());
    let config_path = write(
        &dir,
        "gateway.yaml",
        "listen: 127.0.0.1:0\nsupergraph: supergraph.graphql\ntls:\n  cert_file: server.pem\n  key_file: server.key\n",
    );
    let config = Config::load(&config_path).expect("config");
    let mut spec = GatewaySpec::from_config(&config).await.expect("spec");
    spec.urls = [("a".to_string(), a.url.clone())].into();
    let gw = server::start(&spec).await.expect("start");
    assert!(gw.url().starts_with("https://"), "{}", gw.url());

    let (version, body) = hello(&https_client(&ca, None), &gw.url())
        .await
        .expect("HTTPS answers");
    assert_eq!(body, json!({"data": {"hello": "hi"}}));
    assert_eq!(version, reqwest::Version::HTTP_2, "h2 negotiated by ALPN");

    let http1 = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("CA"))
        .http1_only()
        .build()
        .expect("client");
    let (version, _) = hello(&http1, &gw.url()).await.expect("HTTP/1.1 answers");
    assert_eq!(version, reqwest::Version::HTTP_11);

    let plain = format!("http://{}/graphql", gw.addr);
    let refused = hello(&e2e_tests::client(), &plain).await;
    assert!(refused.is_err(), "plain HTTP to the TLS port: {refused:?}");

    let other_ca = Ca::new("Other CA");
    let untrusted = hello(&https_client(&other_ca, None), &gw.url()).await;
    assert!(
        untrusted.is_err(),
        "a certificate the client does not trust"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn required_client_certificates_refuse_missing_and_foreign_ones() {
    let a = ScriptedSubgraph::start(|_| (200, HELLO.into())).await;
    let server_ca = Ca::new("Server CA");
    let client_ca = Ca::new("Client CA");
    let dir = temp_dir("mtls-required");
    let gw = tls_gateway(
        &a.url,
        listener_files(
            &dir,
            &server_ca,
            Some(&client_ca),
            Some(ClientAuth::Required),
        ),
    )
    .await
    .expect("start");

    let none = hello(&https_client(&server_ca, None), &gw.url()).await;
    assert!(none.is_err(), "no client certificate: {none:?}");

    let stranger = Ca::new("Stranger CA").client("mallory");
    let foreign = hello(&https_client(&server_ca, Some(&stranger)), &gw.url()).await;
    assert!(foreign.is_err(), "a certificate of another CA: {foreign:?}");
    // A self-signed certificate with the right name is no better.
    let forged = Ca::new("Client CA");
    let forged = hello(
        &https_client(&server_ca, Some(&forged.client("alice"))),
        &gw.url(),
    )
    .await;
    assert!(forged.is_err(), "same CA name, other key: {forged:?}");

    let good = client_ca.client("alice");
    let (_, body) = hello(&https_client(&server_ca, Some(&good)), &gw.url())
        .await
        .expect("a good certificate is served");
    assert_eq!(body, json!({"data": {"hello": "hi"}}));
    assert_eq!(a.received().len(), 1, "refused clients reach no upstream");
    gw.shutdown().await;
}

#[tokio::test]
async fn optional_client_certificates_serve_clients_without_one() {
    let a = ScriptedSubgraph::start(|_| (200, HELLO.into())).await;
    let server_ca = Ca::new("Server CA");
    let client_ca = Ca::new("Client CA");
    let dir = temp_dir("mtls-optional");
    let gw = tls_gateway(
        &a.url,
        listener_files(
            &dir,
            &server_ca,
            Some(&client_ca),
            Some(ClientAuth::Optional),
        ),
    )
    .await
    .expect("start");
    assert!(
        hello(&https_client(&server_ca, None), &gw.url())
            .await
            .is_ok()
    );
    let good = client_ca.client("alice");
    assert!(
        hello(&https_client(&server_ca, Some(&good)), &gw.url())
            .await
            .is_ok()
    );
    let stranger = Ca::new("Stranger CA").client("mallory");
    let foreign = hello(&https_client(&server_ca, Some(&stranger)), &gw.url()).await;
    assert!(foreign.is_err(), "an invalid certificate is still refused");
    gw.shutdown().await;
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests_over_tls() {
    let a = ScriptedSubgraph::start_with_delay(Duration::from_millis(400), |_| (200, HELLO.into()))
        .await;
    let ca = Ca::new("Test CA");
    let dir = temp_dir("drain");
    let gw = tls_gateway(&a.url, listener_files(&dir, &ca, None, None))
        .await
        .expect("start");
    let client = https_client(&ca, None);
    let url = gw.url();
    let in_flight = tokio::spawn(async move { hello(&client, &url).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let addr = gw.addr;
    tokio::time::timeout(Duration::from_secs(5), gw.shutdown())
        .await
        .expect("shutdown completes");
    let (_, body) = in_flight.await.expect("task").expect("answered");
    assert_eq!(body, json!({"data": {"hello": "hi"}}));
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn bad_pem_files_stop_the_start_with_the_file_named() {
    let ca = Ca::new("Test CA");
    let dir = temp_dir("bad-pem");
    let good = listener_files(&dir, &ca, None, None);
    let garbage = write(&dir, "garbage.pem", "not a certificate\n");
    let other_key = write(&dir, "other.key", &ca.server().key);
    let cases = [
        (
            TlsConfig {
                cert_file: dir.join("missing.pem"),
                ..good.clone()
            },
            "cannot read the TLS certificate",
        ),
        (
            TlsConfig {
                cert_file: garbage.clone(),
                ..good.clone()
            },
            "no certificate",
        ),
        (
            TlsConfig {
                key_file: garbage.clone(),
                ..good.clone()
            },
            "no usable private key",
        ),
        (
            TlsConfig {
                key_file: other_key,
                ..good.clone()
            },
            "does not fit",
        ),
        (
            TlsConfig {
                client_ca_file: Some(garbage.clone()),
                client_auth: Some(ClientAuth::Required),
                ..good.clone()
            },
            "no certificate",
        ),
    ];
    for (tls, expected) in cases {
        let error = match tls_gateway("http://127.0.0.1:9/a", tls.clone()).await {
            Ok(gw) => {
                gw.shutdown().await;
                panic!("started with {tls:?}");
            }
            Err(e) => e.to_string(),
        };
        assert!(error.contains(expected), "{expected:?} in {error}");
        assert!(
            error.contains(&*dir.to_string_lossy()),
            "names the file: {error}"
        );
    }
}

/// An upstream over HTTPS whose server certificate comes from `ca`, requiring client
/// certificates of `client_ca` when given.
async fn tls_upstream(ca: &Ca, client_ca: Option<&Ca>) -> ScriptedSubgraph {
    let server = ca.server();
    let config = gateway::ingress::tls::server_config(
        server.cert.as_bytes(),
        server.key.as_bytes(),
        client_ca.map(|c| c.pem()).as_deref().map(str::as_bytes),
        ClientAuth::Required,
    )
    .expect("upstream TLS config");
    ScriptedSubgraph::start_tls(config, |_| (200, HELLO.into())).await
}

fn code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

async fn ask(gw: &RunningGateway) -> Value {
    post_json(
        &e2e_tests::client(),
        &gw.url(),
        &json!({"query": "{ hello }"}),
    )
    .await
    .body
}

#[tokio::test]
async fn a_tls_upstream_is_reached_with_the_configured_root_ca() {
    let ca = Ca::new("Upstream CA");
    let a = tls_upstream(&ca, None).await;
    assert!(a.url.starts_with("https://"));
    let dir = temp_dir("upstream-ca");
    let ca_file = write(&dir, "ca.pem", &ca.pem());

    // Not trusted by the system roots.
    let gw = gateway_with_upstream(
        &supergraph(),
        &[("a", a.url.clone())],
        "  retry: { enabled: false }",
    )
    .await;
    let body = ask(&gw).await;
    assert_eq!(code(&body), "UPSTREAM_UNAVAILABLE", "{body}");
    gw.shutdown().await;

    let gw = gateway_with_upstream(
        &supergraph(),
        &[("a", a.url.clone())],
        &format!(
            "  sources:\n    a:\n      tls: {{ ca_file: \"{}\" }}",
            ca_file.display()
        ),
    )
    .await;
    assert_eq!(ask(&gw).await, json!({"data": {"hello": "hi"}}));
    gw.shutdown().await;
}

#[tokio::test]
async fn mtls_to_an_upstream_presents_the_configured_client_certificate() {
    let ca = Ca::new("Upstream CA");
    let client_ca = Ca::new("Gateway clients CA");
    let a = tls_upstream(&ca, Some(&client_ca)).await;
    let dir = temp_dir("upstream-mtls");
    let ca_file = write(&dir, "ca.pem", &ca.pem());
    let identity = client_ca.client("gateway");
    let cert_file = write(&dir, "client.pem", &identity.cert);
    let key_file = write(&dir, "client.key", &identity.key);

    // Trusting the upstream is not enough: it wants a client certificate.
    let gw = gateway_with_upstream(
        &supergraph(),
        &[("a", a.url.clone())],
        &format!(
            "  retry: {{ enabled: false }}\n  tls: {{ ca_file: \"{}\" }}",
            ca_file.display()
        ),
    )
    .await;
    let body = ask(&gw).await;
    assert!(code(&body).starts_with("UPSTREAM_"), "{body}");
    assert!(body["data"]["hello"].is_null(), "{body}");
    gw.shutdown().await;

    let gw = gateway_with_upstream(
        &supergraph(),
        &[("a", a.url.clone())],
        &format!(
            "  tls: {{ ca_file: \"{}\", cert_file: \"{}\", key_file: \"{}\" }}",
            ca_file.display(),
            cert_file.display(),
            key_file.display()
        ),
    )
    .await;
    assert_eq!(ask(&gw).await, json!({"data": {"hello": "hi"}}));
    gw.shutdown().await;
}

/// The `notifications` gRPC mock over TLS (HTTP/2 through ALPN), its certificate from
/// `ca`, requiring client certificates of `client_ca` when given. Stops when dropped.
struct TlsGrpcService {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsGrpcService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tls_grpc_service(ca: &Ca, client_ca: Option<&Ca>) -> TlsGrpcService {
    let server = ca.server();
    let config = gateway::ingress::tls::server_config(
        server.cert.as_bytes(),
        server.key.as_bytes(),
        client_ca.map(|c| c.pem()).as_deref().map(str::as_bytes),
        ClientAuth::Required,
    )
    .expect("gRPC service TLS config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind gRPC service");
    let url = format!("https://{}", listener.local_addr().expect("addr"));
    let router = subgraph_mocks::notifications::standalone_router();
    let task = tokio::spawn(gateway::ingress::listen::serve(
        listener,
        Some(tokio_rustls::TlsAcceptor::from(config)),
        router,
        std::future::pending(),
        Default::default(),
    ));
    TlsGrpcService { url, task }
}

const NOTIFICATIONS_SDL: &str = r#"
type Query {
  notificationsOf(userId: ID!, first: Int = 10): [Notification!]
    @grpc(service: "notifications.v1.Notifications", method: "ListNotifications", request: "user_id: $args.userId, limit: $args.first", result: "notifications")
}
type Notification { id: ID! title: String! }
"#;

/// A gateway whose only source is the gRPC `notifications` service at `url`, with
/// `upstream_yaml` (indented by two spaces) under `upstream:`.
async fn grpc_gateway(url: &str, upstream_yaml: &str) -> Result<RunningGateway, String> {
    let dir = temp_dir("grpc");
    let sdl = write(&dir, "notifications.graphql", NOTIFICATIONS_SDL);
    let proto = e2e_tests::workspace_root().join("schemas/protos/notifications.proto");
    let config = write(
        &dir,
        "gateway.yaml",
        &format!(
            "subgraphs:\n  - name: notifications\n    kind: grpc\n    url: {url}\n    schema: {{ file: \"{}\" }}\n    protos: [\"{}\"]\nupstream:\n  retry: {{ enabled: false }}\n{upstream_yaml}\n",
            sdl.display(),
            proto.display()
        ),
    );
    let config = Config::load(&config).map_err(|e| e.to_string())?;
    let mut spec = GatewaySpec::from_config(&config)
        .await
        .map_err(|e| e.to_string())?;
    spec.listen = "127.0.0.1:0".into();
    server::start(&spec).await.map_err(|e| e.to_string())
}

async fn ask_notifications(gw: &RunningGateway) -> Value {
    post_json(
        &e2e_tests::client(),
        &gw.url(),
        &json!({"query": r#"{ notificationsOf(userId: "1", first: 2) { id title } }"#}),
    )
    .await
    .body
}

fn assert_two_notifications(body: &Value) {
    assert!(body.get("errors").is_none(), "{body}");
    let list = body["data"]["notificationsOf"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {body}"));
    assert_eq!(list.len(), 2, "{body}");
    assert!(list.iter().all(|n| n["id"].is_string()), "{body}");
}

#[tokio::test]
async fn a_tls_grpc_source_is_reached_with_the_configured_root_ca() {
    let ca = Ca::new("gRPC CA");
    let service = tls_grpc_service(&ca, None).await;
    let dir = temp_dir("grpc-ca");
    let ca_file = write(&dir, "ca.pem", &ca.pem());

    // `https://` without a `tls:` section: the system roots, which do not know the CA.
    let gw = grpc_gateway(&service.url, "").await.expect("starts");
    let body = ask_notifications(&gw).await;
    assert_eq!(code(&body), "UPSTREAM_GRPC_UNAVAILABLE", "{body}");
    assert!(body["data"]["notificationsOf"].is_null(), "{body}");
    gw.shutdown().await;

    // The source's own CA.
    let gw = grpc_gateway(
        &service.url,
        &format!(
            "  sources:\n    notifications:\n      tls: {{ ca_file: \"{}\" }}",
            ca_file.display()
        ),
    )
    .await
    .expect("starts");
    assert_two_notifications(&ask_notifications(&gw).await);
    gw.shutdown().await;

    // A CA file that is not PEM stops the start, naming the file.
    let bad = write(&dir, "bad.pem", "not a certificate");
    let error = match grpc_gateway(
        &service.url,
        &format!("  tls: {{ ca_file: \"{}\" }}", bad.display()),
    )
    .await
    {
        Ok(gw) => {
            gw.shutdown().await;
            panic!("started with a bad CA file");
        }
        Err(e) => e,
    };
    assert!(error.contains("bad.pem"), "{error}");
}

#[tokio::test]
async fn mtls_to_a_grpc_source_presents_the_configured_client_certificate() {
    let ca = Ca::new("gRPC CA");
    let client_ca = Ca::new("Gateway clients CA");
    let service = tls_grpc_service(&ca, Some(&client_ca)).await;
    let dir = temp_dir("grpc-mtls");
    let ca_file = write(&dir, "ca.pem", &ca.pem());
    let identity = client_ca.client("gateway");
    let cert_file = write(&dir, "client.pem", &identity.cert);
    let key_file = write(&dir, "client.key", &identity.key);
    let foreign = Ca::new("Someone else").client("gateway");
    let foreign_cert = write(&dir, "foreign.pem", &foreign.cert);
    let foreign_key = write(&dir, "foreign.key", &foreign.key);

    // Trusting the service is not enough: it wants a client certificate of its CA.
    let foreign = format!(
        ", cert_file: \"{}\", key_file: \"{}\"",
        foreign_cert.display(),
        foreign_key.display()
    );
    for identity in ["", foreign.as_str()] {
        let gw = grpc_gateway(
            &service.url,
            &format!("  tls: {{ ca_file: \"{}\"{identity} }}", ca_file.display()),
        )
        .await
        .expect("starts");
        let body = ask_notifications(&gw).await;
        assert!(code(&body).starts_with("UPSTREAM_GRPC_"), "{body}");
        assert!(body["data"]["notificationsOf"].is_null(), "{body}");
        gw.shutdown().await;
    }

    let gw = grpc_gateway(
        &service.url,
        &format!(
            "  sources:\n    notifications:\n      tls: {{ ca_file: \"{}\", cert_file: \"{}\", key_file: \"{}\" }}",
            ca_file.display(),
            cert_file.display(),
            key_file.display()
        ),
    )
    .await
    .expect("starts");
    assert_two_notifications(&ask_notifications(&gw).await);
    gw.shutdown().await;
}
