//! The `products` subgraph: owns `Product` (`@key(fields: "upc")`) with its name, price and
//! weight, and the `topProducts` root field.

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

use crate::data::{self, data};

/// The `products` schema type.
pub type ProductsSchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// Builds the federation-enabled `products` schema.
pub fn schema() -> ProductsSchema {
    Schema::build(Query, EmptyMutation, EmptySubscription)
        .enable_federation()
        .finish()
}

/// `type Product @key(fields: "upc")`.
pub struct Product(&'static data::Product);

#[Object]
impl Product {
    async fn upc(&self) -> &'static str {
        &self.0.upc
    }

    async fn name(&self) -> Option<&'static str> {
        Some(&self.0.name)
    }

    async fn price(&self) -> Option<i32> {
        Some(self.0.price)
    }

    async fn weight(&self) -> Option<i32> {
        Some(self.0.weight)
    }
}

/// Root query type.
pub struct Query;

#[Object]
impl Query {
    // The first `first` products in upc order (negative means none).
    async fn top_products(
        &self,
        #[graphql(default = 5)] first: Option<i32>,
    ) -> Option<Vec<Option<Product>>> {
        let n = usize::try_from(first.unwrap_or(5)).unwrap_or(0);
        Some(
            data()
                .products
                .iter()
                .take(n)
                .map(|p| Some(Product(p)))
                .collect(),
        )
    }

    #[graphql(entity)]
    async fn find_product_by_upc(&self, upc: String) -> Option<Product> {
        data().product(&upc).map(Product)
    }
}
