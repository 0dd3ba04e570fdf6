//! Test kit for client access: gateways configured with `auth:`, `rate_limit:` and
//! `redis:` sections, tokens signed with the fixture keys (`tests/fixtures/auth`, made
//! for these tests only), and small HTTP servers for JWKS and token introspection.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use gateway::config::Config;
use gateway::ingress::auth::AccessConfig;
use gateway::server::{self, GatewaySpec, RunningGateway};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

/// A gateway for `supergraph_sdl` whose config has the given top-level YAML sections
/// (`auth:`, `rate_limit:`, `redis:`, `upstream:`).
pub async fn gateway_with_access(
    supergraph_sdl: &str,
    urls: &[(&str, String)],
    yaml: &str,
) -> RunningGateway {
    let config = Config::parse(&format!("supergraph: unused.graphql\n{yaml}\n"), |_| None)
        .unwrap_or_else(|e| panic!("invalid test config: {e}\n{yaml}"));
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "gateway-access-{}-{}.graphql",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, supergraph_sdl).expect("write supergraph");
    let mut spec = GatewaySpec::from_supergraph_file(&path).expect("supergraph spec");
    let _ = std::fs::remove_file(&path);
    spec.urls = urls
        .iter()
        .map(|(n, u)| (n.to_string(), u.clone()))
        .collect();
    spec.listen = "127.0.0.1:0".into();
    spec.upstream = config.upstream.clone();
    spec.access = AccessConfig {
        auth: config.auth,
        rate_limit: config.rate_limit,
        redis: config.redis,
    };
    server::start(&spec).await.expect("start gateway")
}

/// A file of `tests/fixtures/auth`.
pub fn fixture(name: &str) -> PathBuf {
    crate::workspace_root()
        .join("tests/fixtures/auth")
        .join(name)
}

pub fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// The signing key of a fixture: `hs:<secret>` for HMAC, else a private key PEM file.
pub fn signing_key(alg: Algorithm, key: &str) -> EncodingKey {
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            EncodingKey::from_secret(key.as_bytes()).expect("HMAC key")
        }
        Algorithm::ES256 | Algorithm::ES384 => {
            EncodingKey::from_ec_pem(&fixture_bytes(key)).expect("EC key")
        }
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&fixture_bytes(key)).expect("Ed25519 key"),
        _ => EncodingKey::from_rsa_pem(&fixture_bytes(key)).expect("RSA key"),
    }
}

/// A signed JWT.
pub fn sign(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

/// A tiny HTTP server: one route whose answer is computed by `reply` from the request
/// headers and body; it counts its hits.
pub struct TestServer {
    pub url: String,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

type Reply = dyn Fn(&HeaderMap, &[u8]) -> (u16, String) + Send + Sync;

struct ServerState {
    reply: Box<Reply>,
    hits: Arc<AtomicUsize>,
}

impl TestServer {
    /// `GET path` and `POST path` both answer with `reply`.
    pub async fn start(
        path: &str,
        reply: impl Fn(&HeaderMap, &[u8]) -> (u16, String) + Send + Sync + 'static,
    ) -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(ServerState {
            reply: Box::new(reply),
            hits: hits.clone(),
        });
        let app = Router::new()
            .route(path, get(answer).post(answer))
            .with_state(state);
        let (addr, task) = crate::serve_router(app).await;
        TestServer {
            url: format!("http://{addr}{path}"),
            hits,
            task,
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> (
    axum::http::StatusCode,
    [(&'static str, &'static str); 1],
    String,
) {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let (status, body) = (state.reply)(&headers, &body);
    (
        axum::http::StatusCode::from_u16(status)
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/json")],
        body,
    )
}

/// A JSON document that tests can swap while a server serves it.
#[derive(Clone, Default)]
pub struct SharedJson(pub Arc<Mutex<Value>>);

impl SharedJson {
    pub fn set(&self, value: Value) {
        if let Ok(mut v) = self.0.lock() {
            *v = value;
        }
    }

    pub fn get(&self) -> Value {
        self.0.lock().map(|v| v.clone()).unwrap_or(Value::Null)
    }
}
