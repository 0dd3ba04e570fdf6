//! The `accounts` subgraph: owns `User` (`@key(fields: "id")`) and the `me`, `user` and
//! `users` root fields.

use async_graphql::{EmptyMutation, EmptySubscription, ID, Object, Schema};

use crate::data::{self, data};

/// The `accounts` schema type.
pub type AccountsSchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// Builds the federation-enabled `accounts` schema.
pub fn schema() -> AccountsSchema {
    Schema::build(Query, EmptyMutation, EmptySubscription)
        .enable_federation()
        .finish()
}

/// `type User @key(fields: "id")`.
pub struct User(&'static data::User);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn name(&self) -> Option<&'static str> {
        Some(&self.0.name)
    }

    async fn username(&self) -> Option<&'static str> {
        Some(&self.0.username)
    }

    async fn birthday(&self) -> Option<i32> {
        Some(self.0.birthday)
    }
}

/// Root query type.
pub struct Query;

#[Object]
impl Query {
    // The "logged-in" user: always user `"1"`.
    async fn me(&self) -> Option<User> {
        data().users.first().map(User)
    }

    async fn user(&self, id: ID) -> Option<User> {
        data().user(&id).map(User)
    }

    async fn users(&self) -> Option<Vec<Option<User>>> {
        Some(data().users.iter().map(|u| Some(User(u))).collect())
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Option<User> {
        data().user(&id).map(User)
    }
}
