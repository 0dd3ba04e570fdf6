//! The four federation subgraphs (`accounts`, `inventory`, `products`, `reviews`) as
//! async-graphql schemas, built once per process and shared by every server.
//!
//! Their types, fields and nullability are exactly the subgraph projections of the benchmark
//! supergraph (`/work/shared/bench/federation-supergraph.graphql`); the SDL they serve through
//! `{ _service { sdl } }` is checked in at `schemas/subgraphs/<name>.graphql`.

pub mod accounts;
pub mod inventory;
pub mod products;
pub mod reviews;

use std::sync::LazyLock;

use async_graphql::{BatchRequest, BatchResponse, Request, Response, SDLExportOptions};

/// The subgraph names, in supergraph order; also their URL paths (`/accounts`, ...).
pub const SUBGRAPHS: [&str; 4] = ["accounts", "inventory", "products", "reviews"];

/// One of the four subgraph schemas (cheap to clone: async-graphql schemas are `Arc`s).
#[derive(Clone)]
pub enum AnySchema {
    /// `accounts`
    Accounts(accounts::AccountsSchema),
    /// `inventory`
    Inventory(inventory::InventorySchema),
    /// `products`
    Products(products::ProductsSchema),
    /// `reviews`
    Reviews(reviews::ReviewsSchema),
}

impl AnySchema {
    /// Executes one GraphQL request.
    pub async fn execute(&self, request: Request) -> Response {
        match self {
            Self::Accounts(s) => s.execute(request).await,
            Self::Inventory(s) => s.execute(request).await,
            Self::Products(s) => s.execute(request).await,
            Self::Reviews(s) => s.execute(request).await,
        }
    }

    /// Executes a single or batched GraphQL request.
    pub async fn execute_batch(&self, request: BatchRequest) -> BatchResponse {
        match self {
            Self::Accounts(s) => s.execute_batch(request).await,
            Self::Inventory(s) => s.execute_batch(request).await,
            Self::Products(s) => s.execute_batch(request).await,
            Self::Reviews(s) => s.execute_batch(request).await,
        }
    }

    /// Serve GraphQL over a WebSocket (`graphql-transport-ws` or the legacy protocol)
    /// until the client leaves; `events` feeds `reviewAdded`.
    pub(crate) async fn serve_websocket(
        &'static self,
        socket: axum::extract::ws::WebSocket,
        protocol: async_graphql_axum::GraphQLProtocol,
        events: std::sync::Arc<crate::events::ReviewEvents>,
    ) {
        use async_graphql_axum::GraphQLWebSocket;
        let mut data = async_graphql::Data::default();
        data.insert(events);
        match self {
            Self::Accounts(s) => {
                GraphQLWebSocket::new(socket, s.clone(), protocol)
                    .with_data(data)
                    .serve()
                    .await
            }
            Self::Inventory(s) => {
                GraphQLWebSocket::new(socket, s.clone(), protocol)
                    .with_data(data)
                    .serve()
                    .await
            }
            Self::Products(s) => {
                GraphQLWebSocket::new(socket, s.clone(), protocol)
                    .with_data(data)
                    .serve()
                    .await
            }
            Self::Reviews(s) => {
                GraphQLWebSocket::new(socket, s.clone(), protocol)
                    .with_data(data)
                    .serve()
                    .await
            }
        }
    }

    /// Executes one operation as a stream of responses (one for a query, one per event for
    /// a subscription); `events` feeds `reviewAdded`.
    pub(crate) fn execute_stream(
        &'static self,
        request: Request,
        events: std::sync::Arc<crate::events::ReviewEvents>,
    ) -> async_graphql::futures_util::stream::BoxStream<'static, Response> {
        use async_graphql::futures_util::StreamExt;
        let request = request.data(events);
        match self {
            Self::Accounts(s) => s.execute_stream(request).boxed(),
            Self::Inventory(s) => s.execute_stream(request).boxed(),
            Self::Products(s) => s.execute_stream(request).boxed(),
            Self::Reviews(s) => s.execute_stream(request).boxed(),
        }
    }

    /// The Federation v2 SDL, exactly as answered to `{ _service { sdl } }`.
    pub fn federation_sdl(&self) -> String {
        let options = SDLExportOptions::new().federation().compose_directive();
        match self {
            Self::Accounts(s) => s.sdl_with_options(options),
            Self::Inventory(s) => s.sdl_with_options(options),
            Self::Products(s) => s.sdl_with_options(options),
            Self::Reviews(s) => s.sdl_with_options(options),
        }
    }
}

static SCHEMAS: LazyLock<[AnySchema; 4]> = LazyLock::new(|| {
    [
        AnySchema::Accounts(accounts::schema()),
        AnySchema::Inventory(inventory::schema()),
        AnySchema::Products(products::schema()),
        AnySchema::Reviews(reviews::schema()),
    ]
});

/// All four schemas, in [`SUBGRAPHS`] order.
pub fn schemas() -> &'static [AnySchema; 4] {
    &SCHEMAS
}

/// Index of a subgraph name in [`SUBGRAPHS`].
pub fn index_of(subgraph: &str) -> Option<usize> {
    SUBGRAPHS.iter().position(|&s| s == subgraph)
}

/// The (process-wide, built once) schema of the named subgraph.
pub fn schema(subgraph: &str) -> Option<&'static AnySchema> {
    index_of(subgraph).map(|i| &SCHEMAS[i])
}

/// The Federation v2 SDL the named subgraph serves through `{ _service { sdl } }`.
pub fn sdl(subgraph: &str) -> Option<String> {
    schema(subgraph).map(AnySchema::federation_sdl)
}
