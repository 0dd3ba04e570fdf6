//! What users switch on, for the `ours-policies` and `ours-policies-redis` contenders:
//! our gateway with the whole client-facing stack in front of the benchmark query.
//!
//! - JWT verification: RS256 tokens checked against a JWKS this process serves (the
//!   test fixture key `tests/fixtures/auth/rsa1.key.pem`); anonymous requests refused;
//! - a tiered rate limit by the token's `tier` claim, counted in the gateway or in a
//!   `redis-server` this process starts (`-redis`); high enough never to refuse;
//! - `@authenticated` on `Query.users`, the query's root field, so the authorization
//!   filter walks every request;
//! - a BFF view (`/bff/bench/graphql`, `auth.mode: jwt`, limits, a hidden field).
//!
//! The policy stack around every fetch (circuit breaker, retry budget, timeouts) is on
//! by default, in the bare `ours` runs too.
//!
//! `ours-bff-cache` measures the other end: the benchmark query as a BFF's persisted
//! GET endpoint whose answers its response cache keeps, so every request after the
//! first is a cache hit.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::child::{Launch, Service, available, free_port};

const RSA_KEY: &[u8] = include_bytes!("../../tests/fixtures/auth/rsa1.key.pem");
const KID: &str = "bench";
const BFF: &str = "bench";

/// The JWKS server, the token its key signs, and Redis when a run needs it.
pub struct Stack {
    token: String,
    jwks_url: String,
    redis: Option<(Service, String)>,
    _jwks: tokio::task::JoinHandle<()>,
}

impl Stack {
    /// `redis`: also start a `redis-server` (installed from Debian when missing) on
    /// `cpu`, for the `-redis` runs.
    pub async fn start(dir: &Path, redis: bool, cpu: Option<usize>) -> anyhow::Result<Self> {
        let key = EncodingKey::from_rsa_pem(RSA_KEY).context("the fixture RSA key")?;
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256)?;
        jwk.common.key_id = Some(KID.into());
        let jwks = serde_json::to_value(JwkSet { keys: vec![jwk] })?;
        let router = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let jwks_url = format!("http://{}/jwks.json", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
            + 24 * 3600;
        let header = Header {
            kid: Some(KID.into()),
            ..Header::new(Algorithm::RS256)
        };
        let claims = json!({ "sub": "loadbench", "tier": "bench", "exp": exp });
        let token = jsonwebtoken::encode(&header, &claims, &key)?;
        let redis = if redis {
            Some(start_redis(dir, cpu).await?)
        } else {
            None
        };
        Ok(Stack {
            token,
            jwks_url,
            redis,
            _jwks: server,
        })
    }

    /// Our gateway serving `supergraph` (the benchmark's) with the stack on, at
    /// `listen`; its files go to `dir`.
    pub fn launch(
        &self,
        supergraph: &Path,
        listen: String,
        dir: &Path,
        redis: bool,
    ) -> anyhow::Result<Launch> {
        let sdl = std::fs::read_to_string(supergraph)?;
        let sdl = authenticated(&sdl)?;
        std::fs::write(dir.join("supergraph.graphql"), sdl)?;
        std::fs::write(
            dir.join("bench.yaml"),
            format!(
                "name: {BFF}\nview: {{ hide: [User.birthday] }}\n\
                 auth: {{ mode: jwt, allow_anonymous: false }}\n\
                 limits: {{ max_depth: 20, max_aliases: 20, max_cost: 100000000 }}\n"
            ),
        )?;
        let redis_section = match (&self.redis, redis) {
            (Some((_, url)), true) => format!("redis: {{ url: \"{url}\", timeout: 1s }}\n"),
            (None, true) => anyhow::bail!("the Redis runs need the stack started with Redis"),
            _ => String::new(),
        };
        let config = dir.join("gateway.yaml");
        std::fs::write(
            &config,
            format!(
                "supergraph: supergraph.graphql\nbffs: [bench.yaml]\n\
                 auth:\n  allow_anonymous: false\n  jwt:\n    tier_claim: tier\n    \
                 jwks: [{{ url: \"{}\" }}]\n\
                 rate_limit:\n  enabled: true\n  tiers:\n    \
                 bench: {{ requests: 1000000000, per: 1h }}\n{redis_section}",
                self.jwks_url
            ),
        )?;
        let bearer = ("Authorization".into(), format!("Bearer {}", self.token));
        let mut launch = Launch::ours(&config, listen, format!("/bff/{BFF}/graphql"));
        launch.headers.push(bearer);
        Ok(launch)
    }

    pub fn stop(&mut self) {
        if let Some((redis, _)) = &mut self.redis {
            redis.stop();
        }
    }
}

/// Our gateway serving the benchmark `query` as `GET /bff/cached/bench`, cached whole.
pub fn bff_cache(
    supergraph: &Path,
    query: &str,
    listen: String,
    dir: &Path,
) -> anyhow::Result<Launch> {
    let operations = dir.join("operations");
    std::fs::create_dir_all(&operations)?;
    std::fs::write(operations.join("bench.graphql"), query)?;
    std::fs::write(
        dir.join("cached.yaml"),
        "name: cached\nauth: { mode: any, allow_anonymous: true }\n\
         limits: { max_depth: 20, max_aliases: 20, max_cost: 100000000 }\n\
         persisted: { dir: operations }\ncache: { ttl: { Query.users: 1h, Query.topProducts: 1h } }\n",
    )?;
    let config = dir.join("gateway.yaml");
    std::fs::write(
        &config,
        format!(
            "supergraph: {}
bffs: [cached.yaml]
",
            supergraph.display()
        ),
    )?;
    Ok(Launch {
        get: true,
        ..Launch::ours(&config, listen, "/bff/cached/bench".into())
    })
}

/// The benchmark supergraph with `@authenticated` on `Query.users`.
fn authenticated(sdl: &str) -> anyhow::Result<String> {
    const JOIN: &str = r#"@link(url: "https://specs.apollo.dev/join/v0.3", for: EXECUTION)"#;
    const USERS: &str = "users: [User] @join__field(graph: ACCOUNTS)";
    ensure!(
        sdl.contains(JOIN) && sdl.contains(USERS),
        "the benchmark supergraph no longer has `{JOIN}` and `{USERS}`"
    );
    Ok(format!(
        "directive @authenticated on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM\n{}",
        sdl.replacen(
            JOIN,
            &format!(
                "{JOIN}\n    @link(url: \"https://specs.apollo.dev/authenticated/v0.1\", for: SECURITY)"
            ),
            1
        )
        .replacen(USERS, &format!("{USERS} @authenticated"), 1)
    ))
}

async fn start_redis(dir: &Path, cpu: Option<usize>) -> anyhow::Result<(Service, String)> {
    if !available("redis-server", &["--version"]) {
        eprintln!("loadbench: redis-server is missing; installing Debian's redis-server");
        crate::child::apt_install("redis-server")?;
    }
    let port = free_port()?;
    let args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut redis = Service::spawn(
        "redis-server",
        &PathBuf::from("redis-server"),
        &args,
        &[],
        dir,
        cpu,
        dir.join("redis.log"),
    )?;
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        redis.ensure_running()?;
        ensure!(
            start.elapsed() < Duration::from_secs(10),
            "redis-server did not listen on {port} within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((redis, format!("redis://127.0.0.1:{port}/0")))
}
