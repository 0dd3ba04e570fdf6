//! The middleware in front of the GraphQL endpoints: authenticate, rate-limit, hand the
//! principal to the handler, and put rate-limit headers on every response.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::auth::AuthError;
use super::http::{MediaType, RequestInfo, negotiate, simple_error, wants_html};
use super::ratelimit::{Decision, ceil_secs};
use super::state::AppState;
use crate::common::principal::Principal;

/// Middleware on the GraphQL endpoints: authenticate, rate-limit, hand the principal
/// to the handler, and put rate-limit headers on every response.
pub(super) async fn guard(
    State(state): State<Arc<AppState>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let access = state.access.load_full();
    if access.is_noop() {
        return next.run(request).await;
    }
    // The GraphiQL page is static; the queries it sends come back through here.
    let is_graphiql = request.method() == http::Method::GET
        && wants_html(request.headers())
        && !request
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p.starts_with("query=")));
    // A WebSocket authenticates in its `connection_init` message (browsers cannot set
    // headers on the upgrade), and each operation on it is rate-limited there. Only
    // when WebSocket is served: otherwise the request goes on as a plain GET, which
    // must not skip authentication by carrying the header.
    let is_websocket = state.streaming.websocket
        && request.method() == http::Method::GET
        && request
            .headers()
            .get(header::UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if is_graphiql || is_websocket {
        return next.run(request).await;
    }
    let media = negotiate(request.headers()).unwrap_or(MediaType::Json);
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let principal = match access.auth.authenticate(request.headers()).await {
        Ok(p) => p,
        Err(error) => {
            state.metrics.auth_failure(error.reason());
            let (status, code) = match error {
                AuthError::Unavailable(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "AUTHENTICATION_UNAVAILABLE",
                ),
                _ => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            };
            let mut response = simple_error(status, media, &error.to_string(), code);
            if status == StatusCode::UNAUTHORIZED {
                for challenge in access.auth.challenges(&error) {
                    response
                        .headers_mut()
                        .append(header::WWW_AUTHENTICATE, challenge);
                }
                // A failed credential counts against the caller's address, as an
                // anonymous request: guessing keys costs quota, and the answer carries
                // the headers every response does.
                if let Some(limiter) = &access.limiter {
                    let ip = limiter.client_ip(peer, request.headers());
                    if let Ok(decision) = limiter.check(&Principal::anonymous(), ip).await {
                        if !decision.allowed {
                            return rejected(
                                &state,
                                request.uri().path(),
                                too_many(&state, media, &decision),
                            );
                        }
                        rate_limit_headers(response.headers_mut(), &decision);
                    }
                }
            }
            return rejected(&state, request.uri().path(), response);
        }
    };
    let decision = match &access.limiter {
        None => None,
        Some(limiter) => {
            let ip = limiter.client_ip(peer, request.headers());
            match limiter.check(&principal, ip).await {
                Ok(decision) => Some(decision),
                Err(error) => {
                    return rejected(
                        &state,
                        request.uri().path(),
                        simple_error(
                            StatusCode::SERVICE_UNAVAILABLE,
                            media,
                            &error.to_string(),
                            "RATE_LIMIT_UNAVAILABLE",
                        ),
                    );
                }
            }
        }
    };
    if let Some(decision) = decision.as_ref().filter(|d| !d.allowed) {
        return rejected(
            &state,
            request.uri().path(),
            too_many(&state, media, decision),
        );
    }
    request.extensions_mut().insert(Arc::new(principal));
    let mut response = next.run(request).await;
    if let Some(decision) = &decision {
        rate_limit_headers(response.headers_mut(), decision);
    }
    response
}

/// `429` for a refused decision, with its headers and `Retry-After`.
fn too_many(state: &AppState, media: MediaType, decision: &Decision) -> Response {
    state.metrics.rate_limited(&decision.tier);
    let retry = ceil_secs(decision.retry_after).max(1);
    let mut response = simple_error(
        StatusCode::TOO_MANY_REQUESTS,
        media,
        &format!("rate limit exceeded; retry in {retry}s"),
        "RATE_LIMITED",
    );
    rate_limit_headers(response.headers_mut(), decision);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry));
    response
}

/// A request the edge turned away, counted under its client: the BFF its path names
/// when one by that name exists (an unknown name never becomes a metric label), else
/// the unified endpoint.
fn rejected(state: &AppState, path: &str, mut response: Response) -> Response {
    let client = path
        .strip_prefix("/bff/")
        .and_then(|rest| rest.split('/').next())
        .filter(|name| state.engine.load().bffs.contains_key(*name))
        .unwrap_or("unified");
    response.extensions_mut().insert(RequestInfo {
        client: client.to_string(),
        operation: None,
        outcome: "rejected",
        upstream_requests: 0,
    });
    response.into_response()
}

/// `RateLimit-*` (IETF draft) and the older `X-RateLimit-*`; resets in seconds from now.
fn rate_limit_headers(headers: &mut HeaderMap, d: &Decision) {
    let reset = ceil_secs(d.reset);
    for (name, value) in [
        ("ratelimit-limit", d.limit),
        ("ratelimit-remaining", d.remaining),
        ("ratelimit-reset", reset),
        ("x-ratelimit-limit", d.limit),
        ("x-ratelimit-remaining", d.remaining),
        ("x-ratelimit-reset", reset),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
    if let Ok(policy) = HeaderValue::from_str(&format!("{};w={}", d.limit, ceil_secs(d.window))) {
        headers.insert(HeaderName::from_static("ratelimit-policy"), policy);
    }
}
