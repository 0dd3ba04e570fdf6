//! Client authentication and schema authorization over real sockets: JWTs (HS256,
//! RS256, ES256, EdDSA; expiry, audience, issuer, signature, `alg: none`, algorithm
//! confusion), JWKS rotation with rate-limited refetch, API keys, OAuth2 token
//! introspection, and `@authenticated` / `@requiresScopes` giving partial data.

use std::collections::BTreeSet;

use base64::Engine as _;
use e2e_tests::access::{
    SharedJson, TestServer, fixture, fixture_bytes, gateway_with_access, now, sign, signing_key,
};
use e2e_tests::scripted::ScriptedSubgraph;
use e2e_tests::{Reply, client, send};
use gateway::schema::compose::{SubgraphInput, compose};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const ISSUER: &str = "https://issuer.test";

fn supergraph() -> String {
    compose(&[SubgraphInput {
        name: "a".into(),
        url: "http://127.0.0.1:9/a".into(),
        sdl: r#"
        extend schema @link(url: "https://specs.apollo.dev/federation/v2.5",
                            import: ["@key", "@authenticated", "@requiresScopes"])
        type Query {
          hello: String
          viewer: User @authenticated
          vault: String @requiresScopes(scopes: [["read:vault"], ["admin"]])
          team: [User]
        }
        type User {
          id: ID!
          nickname: String
          email: String! @requiresScopes(scopes: [["email"]])
          phone: String @requiresScopes(scopes: [["phone"]])
        }
        "#
        .into(),
    }])
    .expect("composes")
}

/// Answers exactly the fields a query names (so a field the gateway did not ask for
/// can never show up in a response).
async fn upstream() -> ScriptedSubgraph {
    ScriptedSubgraph::start(|req| {
        let query = req["query"].as_str().unwrap_or("");
        let words: BTreeSet<&str> = query
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .filter(|w| !w.is_empty())
            .collect();
        let user = |n: u32| {
            let mut u = serde_json::Map::new();
            for (field, value) in [
                ("id", json!(n.to_string())),
                ("nickname", json!(format!("user{n}"))),
                ("email", json!(format!("user{n}@example.com"))),
                ("phone", json!(format!("555-000{n}"))),
                ("__typename", json!("User")),
            ] {
                if words.contains(field) {
                    u.insert(field.into(), value);
                }
            }
            Value::Object(u)
        };
        let mut data = serde_json::Map::new();
        for (field, value) in [
            ("hello", json!("hi")),
            ("viewer", user(1)),
            ("vault", json!("gold")),
            ("team", json!([user(2), user(3)])),
        ] {
            if words.contains(field) {
                data.insert(field.into(), value);
            }
        }
        (200, json!({ "data": data }).to_string())
    })
    .await
}

async fn ask(url: &str, headers: &[(&str, String)], query: &str) -> Reply {
    let mut request = client()
        .post(url)
        .header("content-type", "application/json")
        .body(json!({ "query": query }).to_string());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    send(request).await
}

fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {token}"))]
}

fn code(reply: &Reply) -> &str {
    reply.body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
}

fn message(reply: &Reply) -> &str {
    reply.body["errors"][0]["message"].as_str().unwrap_or("")
}

fn challenge(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap_or("").to_string())
        .collect()
}

fn claims(extra: Value) -> Value {
    let mut c = json!({
        "sub": "user-1",
        "iss": ISSUER,
        "aud": "gateway",
        "iat": now(),
        "exp": now() + 600,
    });
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

fn static_keys_yaml() -> String {
    format!(
        r#"auth:
  allow_anonymous: false
  jwt:
    issuers: ["{ISSUER}"]
    audiences: [gateway]
    leeway: 5s
    keys:
      - {{ kid: hs, algorithm: HS256, secret: "{SECRET}" }}
      - {{ kid: rs, algorithm: RS256, pem_file: "{}" }}
      - {{ kid: es, algorithm: ES256, pem_file: "{}" }}
      - {{ kid: ed, algorithm: EdDSA, pem_file: "{}" }}
"#,
        fixture("rsa1.pub.pem").display(),
        fixture("ec.pub.pem").display(),
        fixture("ed.pub.pem").display(),
    )
}

#[tokio::test]
async fn every_configured_algorithm_verifies_its_tokens() {
    let a = upstream().await;
    let gw = gateway_with_access(&supergraph(), &[("a", a.url.clone())], &static_keys_yaml()).await;
    for (alg, kid, key) in [
        (Algorithm::HS256, "hs", SECRET),
        (Algorithm::RS256, "rs", "rsa1.key.pem"),
        (Algorithm::ES256, "es", "ec.key.pem"),
        (Algorithm::EdDSA, "ed", "ed.key.pem"),
    ] {
        let token = sign(alg, kid, &signing_key(alg, key), &claims(json!({})));
        let reply = ask(&gw.url(), &bearer(&token), "{ hello viewer { id } }").await;
        assert_eq!(reply.status, 200, "{alg:?}: {reply:?}");
        assert_eq!(
            reply.body,
            json!({"data": {"hello": "hi", "viewer": {"id": "1"}}}),
            "{alg:?}"
        );
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn bad_tokens_get_401_with_the_reason_and_reach_no_upstream() {
    let a = upstream().await;
    let gw = gateway_with_access(&supergraph(), &[("a", a.url.clone())], &static_keys_yaml()).await;
    let rs = signing_key(Algorithm::RS256, "rsa1.key.pem");
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": "rs"})),
        b64(&claims(json!({})))
    );
    // The RS256 public key used as an HS256 secret: must not verify.
    let confused = sign(
        Algorithm::HS256,
        "rs",
        &EncodingKey::from_secret(&fixture_bytes("rsa1.pub.pem")).expect("secret"),
        &claims(json!({})),
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            sign(
                Algorithm::RS256,
                "rs",
                &rs,
                &claims(json!({"exp": now() - 3600})),
            ),
            "the token has expired",
        ),
        (
            "not yet valid",
            sign(
                Algorithm::RS256,
                "rs",
                &rs,
                &claims(json!({"nbf": now() + 3600})),
            ),
            "not valid yet",
        ),
        (
            "wrong audience",
            sign(
                Algorithm::RS256,
                "rs",
                &rs,
                &claims(json!({"aud": "someone-else"})),
            ),
            "audience is not accepted",
        ),
        (
            "wrong issuer",
            sign(
                Algorithm::RS256,
                "rs",
                &rs,
                &claims(json!({"iss": "https://evil.test"})),
            ),
            "issuer is not accepted",
        ),
        (
            "bad signature",
            sign(
                Algorithm::RS256,
                "rs",
                &signing_key(Algorithm::RS256, "rsa2.key.pem"),
                &claims(json!({})),
            ),
            "signature is invalid",
        ),
        ("alg none", alg_none, "alg: none"),
        ("HS/RS confusion", confused, "does not match its key"),
        (
            "unknown kid",
            sign(Algorithm::RS256, "nope", &rs, &claims(json!({}))),
            "no key with id `nope`",
        ),
        (
            "no exp",
            {
                let mut c = claims(json!({}));
                c.as_object_mut().map(|c| c.remove("exp"));
                sign(Algorithm::RS256, "rs", &rs, &c)
            },
            "no `exp` claim",
        ),
        ("garbage", "abc.def.ghi".into(), "not a well-formed JWT"),
    ];
    for (name, token, expected) in &cases {
        let reply = ask(&gw.url(), &bearer(token), "{ hello }").await;
        assert_eq!(reply.status, 401, "{name}: {reply:?}");
        assert_eq!(code(&reply), "UNAUTHENTICATED", "{name}");
        assert!(
            message(&reply).contains(expected),
            "{name}: {}",
            message(&reply)
        );
        assert!(
            challenge(&reply)
                .iter()
                .any(|c| c.starts_with("Bearer realm=\"gateway\", error=\"invalid_token\"")),
            "{name}: {:?}",
            challenge(&reply)
        );
        assert!(reply.body.get("data").is_none(), "{name}");
    }
    // No credentials at all: a bare challenge (RFC 6750 §3.1).
    let reply = ask(&gw.url(), &[], "{ hello }").await;
    assert_eq!(reply.status, 401);
    assert_eq!(code(&reply), "UNAUTHENTICATED");
    assert_eq!(challenge(&reply), ["Bearer realm=\"gateway\""]);
    assert!(a.received().is_empty(), "nothing reached the upstream");

    let metrics = e2e_tests::metrics_text(gw.addr).await;
    assert!(
        metrics.contains(&format!(
            "gateway_auth_failures_total{{reason=\"invalid\"}} {}",
            cases.len()
        )),
        "{metrics}"
    );
    assert!(metrics.contains("gateway_auth_failures_total{reason=\"missing\"} 1"));
    gw.shutdown().await;
}

fn jwk(private_pem: &str, kid: &str) -> Value {
    let key = EncodingKey::from_rsa_pem(&fixture_bytes(private_pem)).expect("rsa");
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).expect("jwk");
    jwk.common.key_id = Some(kid.into());
    serde_json::to_value(JwkSet { keys: vec![jwk] }).expect("json")
}

async fn jwks_server(keys: &SharedJson) -> TestServer {
    let keys = keys.clone();
    TestServer::start("/jwks", move |_, _| (200, keys.get().to_string())).await
}

fn jwks_yaml(url: &str, min_refetch: &str) -> String {
    format!(
        "auth:\n  allow_anonymous: false\n  jwt:\n    jwks: [{{ url: \"{url}\", min_refetch_interval: {min_refetch}, max_age: 1h }}]\n"
    )
}

/// A verified token is remembered, but never past its `exp` (with the leeway): the
/// same token that was admitted is refused once it expires.
#[tokio::test]
async fn a_remembered_token_is_refused_once_it_expires() {
    let a = upstream().await;
    let gw = gateway_with_access(&supergraph(), &[("a", a.url.clone())], &static_keys_yaml()).await;
    let rs = signing_key(Algorithm::RS256, "rsa1.key.pem");
    // Expired 4 s ago, within the 5 s leeway for about one more second.
    let token = sign(
        Algorithm::RS256,
        "rs",
        &rs,
        &claims(json!({"exp": now() - 4})),
    );
    for _ in 0..2 {
        let reply = ask(&gw.url(), &bearer(&token), "{ viewer { id } }").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body, json!({"data": {"viewer": {"id": "1"}}}));
    }
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let reply = ask(&gw.url(), &bearer(&token), "{ viewer { id } }").await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert!(message(&reply).contains("expired"), "{reply:?}");
    gw.shutdown().await;
}

#[tokio::test]
async fn jwks_key_rotation_is_picked_up_by_the_new_kid() {
    let keys = SharedJson::default();
    keys.set(jwk("rsa1.key.pem", "k1"));
    let idp = jwks_server(&keys).await;
    let a = upstream().await;
    let gw = gateway_with_access(
        &supergraph(),
        &[("a", a.url.clone())],
        &jwks_yaml(&idp.url, "0s"),
    )
    .await;
    let k1 = sign(
        Algorithm::RS256,
        "k1",
        &signing_key(Algorithm::RS256, "rsa1.key.pem"),
        &claims(json!({})),
    );
    let k2 = sign(
        Algorithm::RS256,
        "k2",
        &signing_key(Algorithm::RS256, "rsa2.key.pem"),
        &claims(json!({})),
    );
    assert_eq!(ask(&gw.url(), &bearer(&k1), "{ hello }").await.status, 200);
    assert_eq!(ask(&gw.url(), &bearer(&k1), "{ hello }").await.status, 200);
    assert_eq!(idp.hits(), 1, "the key set is cached");

    // The identity provider rotates to k2: its first token triggers one refetch.
    keys.set(jwk("rsa2.key.pem", "k2"));
    assert_eq!(ask(&gw.url(), &bearer(&k2), "{ hello }").await.status, 200);
    assert_eq!(idp.hits(), 2);
    assert_eq!(ask(&gw.url(), &bearer(&k2), "{ hello }").await.status, 200);
    assert_eq!(idp.hits(), 2);

    // k1 is gone from the set now.
    let reply = ask(&gw.url(), &bearer(&k1), "{ hello }").await;
    assert_eq!(reply.status, 401);
    assert!(message(&reply).contains("no key with id `k1`"), "{reply:?}");
    gw.shutdown().await;
}

#[tokio::test]
async fn unknown_kids_never_hammer_the_jwks_endpoint() {
    let keys = SharedJson::default();
    keys.set(jwk("rsa1.key.pem", "k1"));
    let idp = jwks_server(&keys).await;
    let a = upstream().await;
    let gw = gateway_with_access(
        &supergraph(),
        &[("a", a.url.clone())],
        &jwks_yaml(&idp.url, "1h"),
    )
    .await;
    let k1 = sign(
        Algorithm::RS256,
        "k1",
        &signing_key(Algorithm::RS256, "rsa1.key.pem"),
        &claims(json!({})),
    );
    // Concurrent first requests share one fetch.
    let first = futures_join((0..8).map(|_| ask_owned(gw.url(), bearer(&k1))).collect()).await;
    assert!(first.iter().all(|r| r.status == 200), "{first:?}");
    assert_eq!(idp.hits(), 1);
    // Tokens with made-up kids: at most one refetch per interval (here: none).
    let forged = sign(
        Algorithm::RS256,
        "made-up",
        &signing_key(Algorithm::RS256, "rsa2.key.pem"),
        &claims(json!({})),
    );
    let replies = futures_join(
        (0..8)
            .map(|_| ask_owned(gw.url(), bearer(&forged)))
            .collect(),
    )
    .await;
    assert!(replies.iter().all(|r| r.status == 401));
    assert_eq!(idp.hits(), 1, "the refetch is rate-limited");
    gw.shutdown().await;
}

async fn ask_owned(url: String, headers: Vec<(&'static str, String)>) -> Reply {
    ask(&url, &headers, "{ hello }").await
}

async fn futures_join(calls: Vec<impl Future<Output = Reply> + Send + 'static>) -> Vec<Reply> {
    let handles: Vec<_> = calls.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn schema_directives_give_partial_data_with_unauthorized_errors() {
    let a = upstream().await;
    let yaml = format!(
        "auth:\n  jwt:\n    keys: [{{ kid: hs, algorithm: HS256, secret: \"{SECRET}\" }}]\n"
    );
    let gw = gateway_with_access(&supergraph(), &[("a", a.url.clone())], &yaml).await;
    let key = signing_key(Algorithm::HS256, SECRET);
    let token = |scope: &str| {
        sign(
            Algorithm::HS256,
            "hs",
            &key,
            &claims(json!({"scope": scope})),
        )
    };
    let unauthorized = |paths: &[Value]| -> Vec<Value> {
        paths
            .iter()
            .map(|p| json!({"message": "Unauthorized field or type", "path": p, "extensions": {"code": "UNAUTHORIZED"}}))
            .collect()
    };

    // Anonymous: no viewer (authenticated), no vault (scopes); hello still runs.
    let reply = ask(&gw.url(), &[], "{ hello viewer { id } vault }").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        json!({
            "errors": unauthorized(&[json!(["viewer"]), json!(["vault"])]),
            "data": {"hello": "hi", "viewer": null, "vault": null},
        })
    );
    let sent: Vec<String> = a
        .received()
        .iter()
        .map(|r| r["query"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(sent.len(), 1);
    assert!(
        !sent[0].contains("viewer") && !sent[0].contains("vault"),
        "removed before planning: {sent:?}"
    );

    // Nothing left to fetch: no upstream call at all.
    let reply = ask(&gw.url(), &[], "{ viewer { id } }").await;
    assert_eq!(
        reply.body,
        json!({"errors": unauthorized(&[json!(["viewer"])]), "data": {"viewer": null}})
    );
    assert_eq!(a.received().len(), 1);

    // Authenticated without scopes: a nullable field is null in place; a non-null one
    // nulls its parent (non-null propagation), with the error at the field.
    let reply = ask(
        &gw.url(),
        &bearer(&token("")),
        "{ viewer { id phone } team { nickname phone } }",
    )
    .await;
    assert_eq!(
        reply.body,
        json!({
            "errors": unauthorized(&[
                json!(["viewer", "phone"]),
                json!(["team", 0, "phone"]),
                json!(["team", 1, "phone"]),
            ]),
            "data": {
                "viewer": {"id": "1", "phone": null},
                "team": [
                    {"nickname": "user2", "phone": null},
                    {"nickname": "user3", "phone": null},
                ],
            },
        })
    );
    let reply = ask(
        &gw.url(),
        &bearer(&token("phone")),
        "{ viewer { id email } }",
    )
    .await;
    assert_eq!(
        reply.body,
        json!({
            "errors": unauthorized(&[json!(["viewer", "email"])]),
            "data": {"viewer": null},
        })
    );

    // With the scopes (either alternative of `vault`), everything.
    let reply = ask(
        &gw.url(),
        &bearer(&token("admin email phone")),
        "{ vault viewer { email phone } }",
    )
    .await;
    assert_eq!(
        reply.body,
        json!({"data": {"vault": "gold", "viewer": {"email": "user1@example.com", "phone": "555-0001"}}})
    );
    assert!(
        a.received()
            .iter()
            .any(|r| r["query"].as_str().is_some_and(|q| q.contains("email")))
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn opaque_tokens_are_introspected_with_client_credentials() {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("gateway:s3cret")
    );
    let idp = TestServer::start("/introspect", move |headers, body| {
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(basic.as_str()) {
            return (401, json!({"error": "invalid_client"}).to_string());
        }
        let body = String::from_utf8_lossy(body);
        let answer =
            if body.contains("token=good-token") && body.contains("token_type_hint=access_token") {
                json!({"active": true, "sub": "svc-7", "scope": "read:vault", "exp": now() + 3600})
            } else {
                json!({"active": false})
            };
        (200, answer.to_string())
    })
    .await;
    let a = upstream().await;
    let yaml = format!(
        "auth:\n  allow_anonymous: false\n  introspection:\n    url: \"{}\"\n    client_id: gateway\n    client_secret: s3cret\n    cache_ttl: 1h\n",
        idp.url
    );
    let gw = gateway_with_access(&supergraph(), &[("a", a.url.clone())], &yaml).await;
    let reply = ask(&gw.url(), &bearer("good-token"), "{ vault }").await;
    assert_eq!(reply.body, json!({"data": {"vault": "gold"}}), "{reply:?}");
    let reply = ask(&gw.url(), &bearer("good-token"), "{ vault }").await;
    assert_eq!(reply.status, 200);
    assert_eq!(idp.hits(), 1, "the answer is cached");

    let reply = ask(&gw.url(), &bearer("revoked-token"), "{ vault }").await;
    assert_eq!(reply.status, 401);
    assert_eq!(code(&reply), "UNAUTHENTICATED");
    assert!(message(&reply).contains("not active"), "{reply:?}");
    assert_eq!(idp.hits(), 2);
    gw.shutdown().await;

    // Wrong client credentials: the token cannot be checked (503, not 401).
    let yaml = yaml.replace("client_secret: s3cret", "client_secret: wrong");
    let gw = gateway_with_access(&supergraph(), &[("a", a.url.clone())], &yaml).await;
    let reply = ask(&gw.url(), &bearer("good-token"), "{ vault }").await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(code(&reply), "AUTHENTICATION_UNAVAILABLE");
    gw.shutdown().await;
}

#[tokio::test]
async fn api_keys_authenticate_from_their_header() {
    let a = upstream().await;
    let digest = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(b"beta-key-0123456789");
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let yaml = format!(
        r#"auth:
  allow_anonymous: false
  api_keys:
    header: x-api-key
    keys:
      - {{ name: alpha, key: "alpha-key-0123456789", tier: pro }}
      - {{ name: beta, sha256: "{digest}" }}
"#
    );
    let gw = gateway_with_access(&supergraph(), &[("a", a.url.clone())], &yaml).await;
    for key in ["alpha-key-0123456789", "beta-key-0123456789"] {
        let reply = ask(
            &gw.url(),
            &[("x-api-key", key.into())],
            "{ hello viewer { id } }",
        )
        .await;
        assert_eq!(
            reply.body,
            json!({"data": {"hello": "hi", "viewer": {"id": "1"}}}),
            "{key}"
        );
    }
    let reply = ask(
        &gw.url(),
        &[("x-api-key", "alpha-key-012345678X".into())],
        "{ hello }",
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(message(&reply), "the API key is not valid");
    assert_eq!(
        challenge(&reply),
        ["ApiKey realm=\"gateway\", header=\"x-api-key\""]
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn verified_claims_reach_only_the_sources_configured_for_them() {
    let supergraph = compose(&[
        SubgraphInput {
            name: "a".into(),
            url: "http://127.0.0.1:9/a".into(),
            sdl: "type Query { hello: String }".into(),
        },
        SubgraphInput {
            name: "b".into(),
            url: "http://127.0.0.1:9/b".into(),
            sdl: "type Query { other: String }".into(),
        },
    ])
    .expect("composes");
    let a = ScriptedSubgraph::start(|_| (200, r#"{"data":{"hello":"hi"}}"#.into())).await;
    let b = ScriptedSubgraph::start(|_| (200, r#"{"data":{"other":"yo"}}"#.into())).await;
    let yaml = format!(
        r#"auth:
  allow_anonymous: true
  jwt:
    keys:
      - {{ kid: hs, algorithm: HS256, secret: "{SECRET}" }}
upstream:
  sources:
    a:
      auth:
        forward_headers: [x-user-id]
        claims_as_headers: {{ sub: x-user-id, tenant: x-tenant, roles: x-roles }}
"#
    );
    let gw = gateway_with_access(
        &supergraph,
        &[("a", a.url.clone()), ("b", b.url.clone())],
        &yaml,
    )
    .await;
    let token = sign(
        Algorithm::HS256,
        "hs",
        &signing_key(Algorithm::HS256, SECRET),
        &claims(json!({"tenant": "acme", "roles": ["admin", "ops"]})),
    );
    let header = |h: &axum::http::HeaderMap, name: &str| {
        h.get(name).map(|v| v.to_str().unwrap_or("?").to_string())
    };

    // An authenticated client: its verified claims, whatever it sent itself.
    let mut headers = bearer(&token);
    headers.push(("x-user-id", "someone-else".into()));
    let reply = ask(&gw.url(), &headers, "{ hello other }").await;
    assert_eq!(reply.body, json!({"data": {"hello": "hi", "other": "yo"}}));
    let seen = &a.received_headers()[0];
    assert_eq!(header(seen, "x-user-id").as_deref(), Some("user-1"));
    assert_eq!(header(seen, "x-tenant").as_deref(), Some("acme"));
    assert_eq!(header(seen, "x-roles").as_deref(), Some("admin,ops"));
    assert_eq!(seen.get_all("x-user-id").iter().count(), 1);
    assert!(
        seen.get("authorization").is_none(),
        "the token itself stays"
    );
    let other = &b.received_headers()[0];
    for name in ["x-user-id", "x-tenant", "x-roles", "authorization"] {
        assert!(other.get(name).is_none(), "b is not configured for {name}");
    }

    // Anonymous: no claim headers, and a client's own `x-user-id` is not passed on
    // under the claim's name.
    let reply = ask(&gw.url(), &[("x-user-id", "admin".into())], "{ hello }").await;
    assert_eq!(reply.body, json!({"data": {"hello": "hi"}}));
    let seen = &a.received_headers()[1];
    for name in ["x-user-id", "x-tenant", "x-roles"] {
        assert!(seen.get(name).is_none(), "anonymous request sent {name}");
    }
    gw.shutdown().await;
}
