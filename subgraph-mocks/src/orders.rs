//! The REST `orders` service (axum): orders of the users of the shared [data set](crate::data),
//! whose items reference its products by upc. JSON is camelCase, with a nested `total`
//! (`{"amountCents", "currency"}`), `trackingCode` present only once an order shipped, and
//! `packages` as a list of lists of upcs. Routes:
//!
//! - `GET /users/{id}/orders?limit=N&status=S`: a user's orders, newest first (a JSON list).
//! - `GET /orders/{id}`: one order, or 404.
//! - `GET /orders?ids=A,B`: `{"results": [orders]}`, one batch call for many orders.
//! - `GET /orders?userIds=1,2&limit=N&status=S`: `{"results": [orders]}`, at most N per user, each
//!   carrying its `userId`: one batch call for the orders of many users.
//! - `GET /users/{id}/order-events`: server-sent events, one `message` event (the
//!   order's JSON) per order of that user emitted on the live source ([`crate::events`]),
//!   an `error` event (`{"message"}`) per failure, `complete` at the end.
//! - `POST /users/{id}/orders` with `{"items": [{"productUpc", "quantity"}]}`: echoes a new
//!   `PENDING` order (nothing is stored), 201.

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use async_graphql::futures_util::{self as futures_util, StreamExt};

use crate::conn::ConnHandle;
use crate::data::data;
use crate::events::LiveEvents;
use crate::service_state::{ServicesShared, conn_of, rest_guard};

/// One order of the data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// `"1001"`, `"1002"`, ...
    pub id: String,
    /// The user's id (`"1"`..`"10"`).
    pub user_id: String,
    /// `PENDING`, `PAID`, `SHIPPED`, `DELIVERED` or `CANCELLED`.
    pub status: &'static str,
    /// RFC 3339.
    pub placed_at: String,
    /// Sum of the items' prices in cents.
    pub total_cents: i64,
    /// `(product upc, quantity)`.
    pub items: Vec<(String, u32)>,
    /// Set once shipped.
    pub tracking_code: Option<String>,
}

const STATUSES: [&str; 5] = ["PENDING", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"];

/// All orders: user `u` has `1 + u % 3` of them, in placement order.
pub fn orders() -> &'static [Order] {
    static ORDERS: LazyLock<Vec<Order>> = LazyLock::new(|| {
        let d = data();
        let mut out = Vec::new();
        let mut next = 1001;
        for (ui, user) in d.users.iter().enumerate() {
            let u = ui + 1;
            for k in 0..(1 + u % 3) {
                let a = (u + k) % d.products.len();
                let b = (u * 3 + k + 1) % d.products.len();
                let items = vec![
                    (d.products[a].upc.clone(), 1 + (k as u32 % 2)),
                    (d.products[b].upc.clone(), 1),
                ];
                let total_cents = items
                    .iter()
                    .filter_map(|(upc, q)| {
                        d.product(upc)
                            .map(|p| i64::from(p.price) * 100 * i64::from(*q))
                    })
                    .sum();
                let status = STATUSES[(u + k) % STATUSES.len()];
                let shipped = matches!(status, "SHIPPED" | "DELIVERED");
                out.push(Order {
                    id: next.to_string(),
                    user_id: user.id.clone(),
                    status,
                    placed_at: format!("2024-{:02}-{:02}T10:{:02}:00Z", 1 + (u % 12), 1 + k * 7, u),
                    total_cents,
                    items,
                    tracking_code: shipped.then(|| format!("TRK-{next}")),
                });
                next += 1;
            }
        }
        out
    });
    &ORDERS
}

/// The orders of one user, newest first.
pub fn orders_of(user_id: &str) -> Vec<&'static Order> {
    orders()
        .iter()
        .rev()
        .filter(|o| o.user_id == user_id)
        .collect()
}

/// The order's JSON, as the service sends it.
pub fn order_json(o: &Order) -> Value {
    let mut v = json!({
        "id": o.id,
        "userId": o.user_id,
        "status": o.status,
        "placedAt": o.placed_at,
        "total": { "amountCents": o.total_cents, "currency": "EUR" },
        "items": o.items.iter().map(|(upc, q)| json!({"productUpc": upc, "quantity": q})).collect::<Vec<_>>(),
        "packages": if o.tracking_code.is_some() {
            json!(o.items.iter().map(|(upc, _)| vec![upc.clone()]).collect::<Vec<_>>())
        } else {
            json!([])
        },
    });
    if let Some(t) = &o.tracking_code {
        v["trackingCode"] = json!(t);
    }
    v
}

/// The source of `GET /users/{id}/order-events`.
pub(crate) type OrderEvents = LiveEvents<&'static Order>;

pub(crate) fn order_events_source() -> OrderEvents {
    LiveEvents::new(|id| orders().iter().find(|o| o.id == id))
}

pub(crate) fn router(shared: Arc<ServicesShared>, events: Arc<OrderEvents>) -> Router {
    Router::new()
        .route("/users/{id}/orders", get(user_orders).post(place_order))
        .route("/orders/{id}", get(one_order))
        .route("/orders", get(batch_orders))
        .with_state(shared.clone())
        .merge(
            Router::new()
                .route("/users/{id}/order-events", get(order_events))
                .with_state((shared, events)),
        )
}

/// Applies the orders service's counters, gate and faults; `Err` is the response to
/// send instead.
async fn guard(
    s: &ServicesShared,
    conn: Option<ConnHandle>,
    endpoint: &str,
    keys: Option<usize>,
) -> Result<(), Response> {
    rest_guard(&s.orders, "orders", conn, endpoint, keys).await
}

#[derive(Deserialize)]
struct ListParams {
    limit: Option<usize>,
    status: Option<String>,
}

async fn user_orders(
    State(s): State<Arc<ServicesShared>>,
    Path(id): Path<String>,
    Query(params): Query<ListParams>,
    req: Request,
) -> Response {
    if let Err(r) = guard(&s, conn_of(&req), "GET /users/{id}/orders", None).await {
        return r;
    }
    let list: Vec<Value> = orders_of(&id)
        .into_iter()
        .filter(|o| params.status.as_deref().is_none_or(|st| st == o.status))
        .take(params.limit.unwrap_or(usize::MAX))
        .map(order_json)
        .collect();
    axum::Json(Value::Array(list)).into_response()
}

async fn order_events(
    State((s, live)): State<(Arc<ServicesShared>, Arc<OrderEvents>)>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let conn = conn_of(&req);
    if let Err(r) = guard(&s, conn.clone(), "GET /users/{id}/order-events", None).await {
        return r;
    }
    live.note_connection(req.headers());
    let events = live
        .stream(conn)
        .filter_map(move |event| {
            std::future::ready(match event {
                Ok(o) if o.user_id == id => Some(format!("data: {}\n\n", order_json(o))),
                Ok(_) => None,
                Err(message) => Some(format!(
                    "event: error\ndata: {}\n\n",
                    json!({ "message": message })
                )),
            })
        })
        .chain(futures_util::stream::once(std::future::ready(
            "event: complete\ndata:\n\n".to_string(),
        )));
    // The head goes out at once: a client knows the stream is open before any event.
    let opened = futures_util::stream::once(std::future::ready(": open\n\n".to_string()));
    let body =
        axum::body::Body::from_stream(opened.chain(events).map(Ok::<_, std::convert::Infallible>));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn one_order(
    State(s): State<Arc<ServicesShared>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    if let Err(r) = guard(&s, conn_of(&req), "GET /orders/{id}", None).await {
        return r;
    }
    match orders().iter().find(|o| o.id == id) {
        Some(o) => axum::Json(order_json(o)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("no order {id}")})),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct BatchParams {
    ids: Option<String>,
    #[serde(rename = "userIds")]
    user_ids: Option<String>,
    limit: Option<usize>,
    status: Option<String>,
}

fn split(list: &str) -> Vec<&str> {
    list.split(',').filter(|s| !s.is_empty()).collect()
}

async fn batch_orders(
    State(s): State<Arc<ServicesShared>>,
    Query(params): Query<BatchParams>,
    req: Request,
) -> Response {
    let results: Vec<Value> = match (&params.ids, &params.user_ids) {
        (Some(ids), None) => {
            let ids = split(ids);
            if let Err(r) = guard(&s, conn_of(&req), "GET /orders?ids", Some(ids.len())).await {
                return r;
            }
            ids.iter()
                .filter_map(|id| orders().iter().find(|o| o.id == *id))
                .map(order_json)
                .collect()
        }
        (None, Some(users)) => {
            let users = split(users);
            if let Err(r) = guard(&s, conn_of(&req), "GET /orders?userIds", Some(users.len())).await
            {
                return r;
            }
            users
                .iter()
                .flat_map(|u| {
                    orders_of(u)
                        .into_iter()
                        .filter(|o| params.status.as_deref().is_none_or(|st| st == o.status))
                        .take(params.limit.unwrap_or(usize::MAX))
                })
                .map(order_json)
                .collect()
        }
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": "pass exactly one of ids or userIds"})),
            )
                .into_response();
        }
    };
    axum::Json(json!({ "results": results })).into_response()
}

#[derive(Deserialize)]
struct NewOrder {
    items: Vec<NewItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewItem {
    product_upc: String,
    quantity: u32,
}

async fn place_order(
    State(s): State<Arc<ServicesShared>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    if let Err(r) = guard(&s, conn_of(&req), "POST /users/{id}/orders", None).await {
        return r;
    }
    let body = match axum::body::to_bytes(req.into_body(), 1 << 20).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let new: NewOrder = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": format!("invalid order: {e}")})),
            )
                .into_response();
        }
    };
    let d = data();
    let order = Order {
        id: "9001".into(),
        user_id: id,
        status: "PENDING",
        placed_at: "2024-12-24T18:00:00Z".into(),
        total_cents: new
            .items
            .iter()
            .filter_map(|i| {
                d.product(&i.product_upc)
                    .map(|p| i64::from(p.price) * 100 * i64::from(i.quantity))
            })
            .sum(),
        items: new
            .items
            .into_iter()
            .map(|i| (i.product_upc, i.quantity))
            .collect(),
        tracking_code: None,
    };
    (StatusCode::CREATED, axum::Json(order_json(&order))).into_response()
}
