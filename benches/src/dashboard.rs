//! The `ours-dashboard` and `ours-dashboard-bff` contenders: one user's dashboard from
//! every kind of source of the example graph (`schemas/examples/dashboard.graphql`:
//! the accounts, products and inventory subgraphs, the REST `orders` service, the gRPC
//! `notifications` service), on the unified endpoint and as the mobile BFF's persisted
//! GET endpoint `home` (`bffs/mobile/operations/home.graphql`, the same query).
//!
//! The gateway is configured the way users run it: subgraphs composed from their SDL
//! files and protos (not a precomposed supergraph), the example mobile BFF file as it is.

use std::path::Path;

use anyhow::{Context as _, ensure};
use serde_json::{Value as Json, json};

use crate::child::{Launch, Mocks};

pub const QUERY: &str = include_str!("../../schemas/examples/dashboard.graphql");
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The unified endpoint's request body.
pub fn body() -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec(
        &json!({ "query": QUERY, "variables": { "id": "1" } }),
    )?)
}

/// Our gateway on the example graph's subgraphs (at `mocks`) and the mobile BFF, its
/// config in `dir`; `bff`: the request is the mobile BFF's `GET /bff/mobile/home?id=1`.
pub fn launch(mocks: &Mocks, listen: String, dir: &Path, bff: bool) -> anyhow::Result<Launch> {
    let graphql = |name: &str| {
        format!(
            "  - {{ name: {name}, url: \"http://127.0.0.1:{}/{name}\", \
             schema: {{ file: \"{ROOT}/schemas/subgraphs/{name}.graphql\" }} }}\n",
            mocks.graphql
        )
    };
    let subgraphs: String = ["accounts", "inventory", "products", "reviews"]
        .iter()
        .map(|name| graphql(name))
        .collect();
    let config = dir.join("gateway.yaml");
    std::fs::write(
        &config,
        format!(
            "subgraphs:\n{subgraphs}\
             \x20 - {{ name: orders, kind: rest, url: \"http://127.0.0.1:{rest}\", \
             schema: {{ file: \"{ROOT}/schemas/subgraphs/orders.graphql\" }} }}\n\
             \x20 - {{ name: notifications, kind: grpc, url: \"http://127.0.0.1:{grpc}\", \
             schema: {{ file: \"{ROOT}/schemas/subgraphs/notifications.graphql\" }}, \
             protos: [\"{ROOT}/schemas/protos/notifications.proto\"] }}\n\
             bffs: [\"{ROOT}/bffs/mobile.yaml\"]\n\
             # The mobile BFF verifies bearer tokens when sent (none are): the mocks' issuer.\n\
             auth:\n  allow_anonymous: true\n  \
             jwt: {{ jwks: [{{ url: \"http://127.0.0.1:{}/dev-issuer/jwks.json\" }}] }}\n",
            mocks.graphql,
            rest = mocks.rest,
            grpc = mocks.grpc,
        ),
    )?;
    let path = if bff {
        "/bff/mobile/home?id=1"
    } else {
        "/graphql"
    };
    Ok(Launch {
        get: bff,
        ..Launch::ours(&config, listen, path.into())
    })
}

/// The dashboard answer holds data from every source and no error: the user
/// (accounts), its orders (REST) with their products (products, inventory), and its
/// notifications (gRPC) with their orders (REST again, as entities).
pub fn check(answer: &Json) -> anyhow::Result<()> {
    ensure!(
        answer.get("errors").is_none(),
        "the dashboard query returned errors: {}",
        answer["errors"]
    );
    let user = &answer["data"]["user"];
    ensure!(user["name"].is_string(), "no user in {answer}");
    let orders = user["orders"].as_array().context("no orders")?;
    ensure!(
        orders
            .iter()
            .any(|o| o["items"][0]["product"]["inStock"].is_boolean()),
        "no order item with its product's stock: {answer}"
    );
    let notifications = user["notifications"]
        .as_array()
        .context("no notifications")?;
    ensure!(
        notifications
            .iter()
            .any(|n| n["order"]["status"].is_string()),
        "no notification with its order: {answer}"
    );
    Ok(())
}
