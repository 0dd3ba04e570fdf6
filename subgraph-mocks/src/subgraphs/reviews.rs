//! The `reviews` subgraph: owns `Review` (`@key(fields: "id")`) and contributes
//! `User.reviews` and `Product.reviews`. `Review.author` is `@provides(fields: "username")`:
//! it returns the author's (otherwise `@external`) `username` itself, so a gateway need not ask
//! `accounts` for it on that path.
//!
//! Beyond the benchmark's shape, `Subscription.reviewAdded` streams reviews over WebSocket
//! from the event source of the running mocks ([`crate::events`]).

use std::sync::Arc;

use async_graphql::futures_util::{Stream, StreamExt};
use async_graphql::{Context, EmptyMutation, ID, Object, Schema};

use crate::data::{self, data};
use crate::events::ReviewEvents;

/// The `reviews` schema type.
pub type ReviewsSchema = Schema<Query, EmptyMutation, Subscription>;

/// Builds the federation-enabled `reviews` schema.
pub fn schema() -> ReviewsSchema {
    Schema::build(Query, EmptyMutation, Subscription)
        .enable_federation()
        .enable_subscription_in_federation()
        .finish()
}

/// `type Subscription { reviewAdded: Review! }`.
pub struct Subscription;

#[async_graphql::Subscription]
impl Subscription {
    /// Every review the test emits, until it completes the subscriptions.
    async fn review_added(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Review>> + use<>> {
        let events = ctx.data::<Arc<ReviewEvents>>()?;
        // The WebSocket server watches for disconnects itself (`crate::http`).
        Ok(events
            .stream(None)
            .map(|event| event.map(Review).map_err(Into::into)))
    }
}

fn reviews(indices: &'static [usize]) -> Option<Vec<Option<Review>>> {
    let d = data();
    Some(
        indices
            .iter()
            .map(|&i| d.reviews.get(i).map(Review))
            .collect(),
    )
}

/// `type Review @key(fields: "id")`.
pub struct Review(&'static data::Review);

#[Object]
impl Review {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn body(&self) -> Option<&'static str> {
        Some(&self.0.body)
    }

    async fn product(&self) -> Option<Product> {
        data().products.get(self.0.product).map(Product)
    }

    #[graphql(provides = "username")]
    async fn author(&self) -> Option<User> {
        data().users.get(self.0.author).map(User)
    }
}

/// `type User @key(fields: "id")` with `username @external` (provided by `Review.author`).
pub struct User(&'static data::User);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    #[graphql(external)]
    async fn username(&self) -> Option<&'static str> {
        Some(&self.0.username)
    }

    async fn reviews(&self) -> Option<Vec<Option<Review>>> {
        reviews(&self.0.reviews)
    }
}

/// `type Product @key(fields: "upc")`, contributing `reviews`.
pub struct Product(&'static data::Product);

#[Object]
impl Product {
    async fn upc(&self) -> &'static str {
        &self.0.upc
    }

    async fn reviews(&self) -> Option<Vec<Option<Review>>> {
        reviews(&self.0.reviews)
    }
}

/// Root query type (only the federation fields).
pub struct Query;

#[Object]
impl Query {
    #[graphql(entity)]
    async fn find_review_by_id(&self, id: ID) -> Option<Review> {
        data().review(&id).map(Review)
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Option<User> {
        data().user(&id).map(User)
    }

    #[graphql(entity)]
    async fn find_product_by_upc(&self, upc: String) -> Option<Product> {
        data().product(&upc).map(Product)
    }
}
