//! CORS per endpoint: a BFF's own `cors:` wins over the gateway-wide `edge.cors`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::common::cors::CorsConfig;
use crate::telemetry::REQUEST_ID;

use super::state::AppState;

/// Apply the CORS policy of the endpoint the request is for, if it has one.
pub(super) async fn cors(
    State((state, global)): State<(Arc<AppState>, Arc<CorsConfig>)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let bff_cors = request
        .uri()
        .path()
        .strip_prefix("/bff/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|name| {
            state
                .engine
                .load()
                .bffs
                .get(name)
                .and_then(|b| b.config.cors.clone())
        });
    let config = bff_cors.as_ref().unwrap_or(&global);
    let Some(layer) = cors_layer(config) else {
        return next.run(request).await;
    };
    // The CORS service calls its inner service at most once per request.
    let mut next = Some(next);
    let inner = tower::service_fn(move |req: axum::extract::Request| {
        let next = next.take();
        async move {
            Ok::<_, std::convert::Infallible>(match next {
                Some(next) => next.run(req).await,
                None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            })
        }
    });
    match tower::ServiceExt::oneshot(tower::Layer::layer(&layer, inner), request).await {
        Ok(response) => response.map(axum::body::Body::new),
        Err(never) => match never {},
    }
}

/// The CORS layer, or none when no origin is allowed.
pub(super) fn cors_layer(config: &CorsConfig) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if config.allow_origins.is_empty() {
        return None;
    }
    let origin = if config.allow_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            config
                .allow_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    let headers: Vec<header::HeaderName> = config
        .allow_headers
        .iter()
        .filter_map(|h| header::HeaderName::from_bytes(h.as_bytes()).ok())
        .collect();
    let mut layer = CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([http::Method::GET, http::Method::POST])
        .allow_headers(headers)
        .expose_headers([header::HeaderName::from_static(REQUEST_ID)])
        .allow_credentials(config.allow_credentials);
    if let Some(max_age) = config.max_age {
        layer = layer.max_age(max_age);
    }
    Some(layer)
}
