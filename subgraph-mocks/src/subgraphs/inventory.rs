//! The `inventory` subgraph: contributes `Product.inStock` and `Product.shippingEstimate`,
//! the latter `@requires(fields: "price weight")` (both `@external`, owned by `products`).
//!
//! It has no root fields of its own: everything is reached through `_entities`. The
//! `price`/`weight` values used by `shippingEstimate` are the ones given in the
//! representation (`null` if either is missing), never looked up locally.

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

use crate::data::{self, Data, data};

/// The `inventory` schema type.
pub type InventorySchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// Builds the federation-enabled `inventory` schema.
pub fn schema() -> InventorySchema {
    Schema::build(Query, EmptyMutation, EmptySubscription)
        .enable_federation()
        .finish()
}

/// `type Product @key(fields: "upc")`, with the external fields given by the gateway.
pub struct Product {
    product: &'static data::Product,
    price: Option<i32>,
    weight: Option<i32>,
}

#[Object]
impl Product {
    async fn upc(&self) -> &'static str {
        &self.product.upc
    }

    #[graphql(external)]
    async fn weight(&self) -> Option<i32> {
        self.weight
    }

    #[graphql(external)]
    async fn price(&self) -> Option<i32> {
        self.price
    }

    async fn in_stock(&self) -> Option<bool> {
        Some(self.product.in_stock)
    }

    // `price > 1000 ? 0 : weight / 2`, from the representation's `price` and `weight`.
    #[graphql(requires = "price weight")]
    async fn shipping_estimate(&self) -> Option<i32> {
        Some(Data::shipping_estimate(self.price?, self.weight?))
    }
}

/// Root query type (only the federation fields).
pub struct Query;

#[Object]
impl Query {
    #[graphql(entity)]
    async fn find_product_by_upc(
        &self,
        #[graphql(key)] upc: String,
        price: Option<i32>,
        weight: Option<i32>,
    ) -> Option<Product> {
        data().product(&upc).map(|product| Product {
            product,
            price,
            weight,
        })
    }
}
