//! The REST `partner-pricing` service (axum), a backend of the partner BFF alone: the
//! price a partner pays for each product of the shared [data set](crate::data), under
//! `/partner-pricing`. JSON is camelCase with a nested `net` (`{"amountCents",
//! "currency"}`). Routes:
//!
//! - `GET /partner-pricing/prices/{upc}`: one product's partner price, or 404.
//! - `GET /partner-pricing/prices?upcs=1,2`: `{"results": [prices]}`, each carrying its
//!   `upc` (unknown upcs are left out): one batch call for many products.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::data::{Product, data};
use crate::service_state::{ServicesShared, conn_of, rest_guard};

/// The partner discount in percent: 10, 15 or 20 by upc.
pub fn discount_percent(upc: &str) -> i64 {
    10 + 5 * (upc.parse::<i64>().unwrap_or(0) % 3)
}

/// What a partner pays for `product`, in cents: its price less the discount (prices
/// of the data set are whole units).
pub fn net_cents(product: &Product) -> i64 {
    i64::from(product.price) * (100 - discount_percent(&product.upc))
}

fn price_json(product: &Product) -> Value {
    json!({
        "upc": product.upc,
        "discountPercent": discount_percent(&product.upc),
        "net": {"amountCents": net_cents(product), "currency": "EUR"},
    })
}

pub(crate) fn router(shared: Arc<ServicesShared>) -> Router {
    Router::new()
        .route("/partner-pricing/prices/{upc}", get(one_price))
        .route("/partner-pricing/prices", get(batch_prices))
        .with_state(shared)
}

async fn one_price(
    State(s): State<Arc<ServicesShared>>,
    Path(upc): Path<String>,
    req: Request,
) -> Response {
    let endpoint = "GET /prices/{upc}";
    if let Err(r) = rest_guard(&s.pricing, "partner-pricing", conn_of(&req), endpoint, None).await {
        return r;
    }
    match data().product(&upc) {
        Some(product) => axum::Json(price_json(product)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("no product {upc}")})),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct BatchParams {
    upcs: String,
}

async fn batch_prices(
    State(s): State<Arc<ServicesShared>>,
    Query(params): Query<BatchParams>,
    req: Request,
) -> Response {
    let upcs: Vec<&str> = params.upcs.split(',').filter(|u| !u.is_empty()).collect();
    let endpoint = "GET /prices?upcs";
    let conn = conn_of(&req);
    if let Err(r) = rest_guard(
        &s.pricing,
        "partner-pricing",
        conn,
        endpoint,
        Some(upcs.len()),
    )
    .await
    {
        return r;
    }
    let results: Vec<Value> = upcs
        .iter()
        .filter_map(|upc| data().product(upc))
        .map(price_json)
        .collect();
    axum::Json(json!({ "results": results })).into_response()
}
