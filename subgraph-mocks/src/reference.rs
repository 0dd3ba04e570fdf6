//! The expected gateway answer to the federation benchmark query, computed directly from the
//! shared [data](crate::data) without any GraphQL machinery.
//!
//! [`BENCHMARK_QUERY`] is `gateway/tests/fixtures/benchmark-query.graphql` (the shared benchmark query);
//! [`benchmark_response()`] is the `{"data": ...}` document a correct gateway must return for
//! it when its subgraphs are these mocks (fields in query order). End-to-end tests can compare
//! the gateway's output with it, and it documents the response size (about 96 KB of compact
//! JSON, see [`benchmark_response_size()`]).

use serde_json::{Map, Value, json};

use crate::data::{Data, Product, Review, User, data};

/// The benchmark query (`TestQuery`), identical to the shared benchmark's query file.
pub const BENCHMARK_QUERY: &str =
    include_str!("../../gateway/tests/fixtures/benchmark-query.graphql");

/// The complete expected response (`{"data": {"users": [...], "topProducts": [...]}}`) to
/// [`BENCHMARK_QUERY`], with the default `topProducts(first: 5)`.
pub fn benchmark_response() -> Value {
    let d = data();
    let users: Vec<Value> = d
        .users
        .iter()
        .map(|u| {
            let mut o = user_fields(u);
            let reviews = reviews_of(d, &u.reviews, |r| {
                let mut o = review_fields(r);
                let p = &d.products[r.product];
                let mut po = product_fields(p);
                let previews = reviews_of(d, &p.reviews, |r2| {
                    let mut o = review_fields(r2);
                    o.insert("author".into(), author_with_reviews(d, &d.users[r2.author]));
                    Value::Object(o)
                });
                po.insert("reviews".into(), previews);
                o.insert("product".into(), Value::Object(po));
                Value::Object(o)
            });
            o.insert("reviews".into(), reviews);
            Value::Object(o)
        })
        .collect();
    let top: Vec<Value> = d
        .products
        .iter()
        .take(5)
        .map(|p| {
            let mut o = product_fields(p);
            let reviews = reviews_of(d, &p.reviews, |r| {
                let mut o = review_fields(r);
                o.insert("author".into(), author_with_reviews(d, &d.users[r.author]));
                Value::Object(o)
            });
            o.insert("reviews".into(), reviews);
            Value::Object(o)
        })
        .collect();
    json!({ "data": { "users": users, "topProducts": top } })
}

/// Length in bytes of the compact JSON serialization of [`benchmark_response()`].
pub fn benchmark_response_size() -> usize {
    serde_json::to_vec(&benchmark_response()).map_or(0, |v| v.len())
}

/// `...User reviews { ...Review product { ...Product } }`
fn author_with_reviews(d: &Data, u: &User) -> Value {
    let mut o = user_fields(u);
    let reviews = reviews_of(d, &u.reviews, |r| {
        let mut o = review_fields(r);
        o.insert(
            "product".into(),
            Value::Object(product_fields(&d.products[r.product])),
        );
        Value::Object(o)
    });
    o.insert("reviews".into(), reviews);
    Value::Object(o)
}

fn reviews_of(d: &Data, ids: &[usize], f: impl Fn(&Review) -> Value) -> Value {
    Value::Array(ids.iter().map(|&i| f(&d.reviews[i])).collect())
}

/// `fragment User on User { id username name }`
fn user_fields(u: &User) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("id".into(), json!(u.id));
    o.insert("username".into(), json!(u.username));
    o.insert("name".into(), json!(u.name));
    o
}

/// `fragment Review on Review { id body }`
fn review_fields(r: &Review) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("id".into(), json!(r.id));
    o.insert("body".into(), json!(r.body));
    o
}

/// `fragment Product on Product { inStock name price shippingEstimate upc weight }`
fn product_fields(p: &Product) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("inStock".into(), json!(p.in_stock));
    o.insert("name".into(), json!(p.name));
    o.insert("price".into(), json!(p.price));
    o.insert(
        "shippingEstimate".into(),
        json!(Data::shipping_estimate(p.price, p.weight)),
    );
    o.insert("upc".into(), json!(p.upc));
    o.insert("weight".into(), json!(p.weight));
    o
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn size_is_in_the_benchmark_range() {
        let size = benchmark_response_size();
        println!("benchmark response: {size} bytes");
        assert!((50_000..=150_000).contains(&size), "{size}");
    }

    #[test]
    fn query_matches_the_shared_benchmark_file_when_present() {
        let shared = "/work/shared/bench/federation-query.graphql";
        if let Ok(text) = std::fs::read_to_string(shared) {
            assert_eq!(text.trim(), BENCHMARK_QUERY.trim());
        }
    }
}
