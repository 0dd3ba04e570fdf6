#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value as Json, json};

use crate::sources::mapping::{CallInput, Template};

use super::*;

/// A connector answering from a closure, counting its calls.
struct Fake {
    template: Template,
    calls: Arc<AtomicUsize>,
    answer: Arc<dyn Fn(String) -> Result<Json, FieldError> + Send + Sync>,
}

impl Connector for Fake {
    fn prepare(
        &self,
        input: &CallInput<'_>,
        _headers: &http::HeaderMap,
    ) -> Result<Prepared, FieldError> {
        let key = self
            .template
            .render(input)
            .map_err(FieldError::invalid_request)?
            .unwrap_or_default();
        let calls = self.calls.clone();
        let answer = self.answer.clone();
        let k = key.clone();
        Ok(Prepared {
            key,
            future: Box::pin(async move {
                calls.fetch_add(1, Ordering::SeqCst);
                answer(k)
            }),
        })
    }
}

const SDL: &str = r#"
    type Query { order(id: ID!): Order @fake(call: "order/{$args.id}") }
    type Order { id: ID! total: Int! @map(path: "amount.cents") state: State note: String @map(default: "\"none\"") items: [[Int!]] }
    enum State { OPEN CLOSED }
    type User @key(fields: "id") {
      id: ID!
      orders: [Order] @fake(call: "user/{$this.id}", batch: "users/{$batch.id}")
      name: String @fake(call: "name/{$this.id}")
    }
"#;

fn executor(calls: Arc<AtomicUsize>) -> LocalExecutor {
    let answer: Arc<dyn Fn(String) -> Result<Json, FieldError> + Send + Sync> =
        Arc::new(|key: String| match key.as_str() {
            "order/1" => Ok(
                json!({"id": 1, "amount": {"cents": 250}, "state": "OPEN", "items": [[1, 2], [3]]}),
            ),
            "order/2" => Ok(json!({"id": "2", "amount": {"cents": "x"}, "state": "LOST"})),
            "order/3" => Err(FieldError::new("UPSTREAM_HTTP_500", "boom")),
            k if k.starts_with("users/") => Ok(json!([
                {"userId": "1", "id": "a", "amount": {"cents": 1}},
                {"userId": "1", "id": "b", "amount": {"cents": 2}},
                {"userId": "3", "id": "c", "amount": {"cents": 3}},
            ])),
            k if k.starts_with("name/") => Ok(json!(format!("user {}", &k[5..]))),
            _ => Ok(Json::Null),
        });
    let (schema, errors) = LocalSchema::build("fake", SDL, "fake", |site, d| {
        let template = |arg: &str| {
            crate::sources::mapping::string_arg(d, arg)
                .unwrap()
                .map(|t| Template::parse(&t).unwrap())
        };
        let single = template("call").unwrap();
        let errors = site.check_vars(single.vars(), false);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Binding {
            single: Box::new(Fake {
                template: single,
                calls: calls.clone(),
                answer: answer.clone(),
            }),
            batch: template("batch").map(|t| Batch {
                connector: Box::new(Fake {
                    template: t,
                    calls: calls.clone(),
                    answer: answer.clone(),
                }),
                this_path: vec!["id".into()],
                item_key: vec!["userId".into()],
                item_value: None,
            }),
        }
        .into())
    });
    assert!(errors.is_empty(), "{errors:?}");
    LocalExecutor::new(schema)
}

async fn run(exec: &LocalExecutor, op: &str, variables: Json) -> Json {
    let response = exec
        .fetch(SourceRequest {
            operation: op.into(),
            operation_name: "".into(),
            variables: crate::sources::Variables::from_map(
                &variables.as_object().cloned().unwrap_or_default(),
            ),
            is_mutation: false,
            uploads: None,
            headers: http::HeaderMap::new(),
            client_headers: Default::default(),
            principal: None,
            deadline: None,
        })
        .await
        .unwrap();
    json!({"data": response.data, "errors": response.errors})
}

#[tokio::test]
async fn root_fields_map_paths_enums_defaults_and_nested_lists() {
    let calls = Arc::new(AtomicUsize::new(0));
    let exec = executor(calls.clone());
    let body = run(
        &exec,
        r#"query($id: ID!) { a: order(id: $id) { id cents: total state note items __typename } b: order(id: "1") { id } }"#,
        json!({"id": "1"}),
    )
    .await;
    assert_eq!(
        body["data"],
        json!({"a": {"id": "1", "cents": 250, "state": "OPEN", "note": "none", "items": [[1, 2], [3]], "__typename": "Order"}, "b": {"id": "1"}})
    );
    assert!(body["errors"].is_null(), "{body}");
    // The same call for two aliases is made once.
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn bad_values_and_failed_calls_null_only_their_field() {
    let exec = executor(Arc::new(AtomicUsize::new(0)));
    let body = run(
        &exec,
        r#"{ x: order(id: "2") { id total state } y: order(id: "3") { id } z: order(id: "1") { id } }"#,
        json!({}),
    )
    .await;
    assert_eq!(
        body["data"],
        json!({"x": {"id": "2", "total": null, "state": null}, "y": null, "z": {"id": "1"}})
    );
    let errors = body["errors"].as_array().unwrap();
    let summary: Vec<(Json, Json)> = errors
        .iter()
        .map(|e| (e["path"].clone(), e["extensions"]["code"].clone()))
        .collect();
    assert!(summary.contains(&(json!(["x", "total"]), json!("UPSTREAM_BAD_RESPONSE"))));
    assert!(summary.contains(&(json!(["x", "state"]), json!("UPSTREAM_BAD_RESPONSE"))));
    assert!(summary.contains(&(json!(["y"]), json!("UPSTREAM_HTTP_500"))));
    assert_eq!(errors.len(), 3, "{body}");
}

#[tokio::test]
async fn entities_batch_and_dedupe() {
    let calls = Arc::new(AtomicUsize::new(0));
    let exec = executor(calls.clone());
    let body = run(
        &exec,
        "query($representations: [_Any!]!) { _entities(representations: $representations) { ... on User { id orders { id total } name } } }",
        json!({"representations": [
            {"__typename": "User", "id": "1"},
            {"__typename": "User", "id": "2"},
            {"__typename": "User", "id": "1"},
            {"__typename": "User", "id": "3"},
        ]}),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(
        body["data"]["_entities"],
        json!([
            {"id": "1", "orders": [{"id": "a", "total": 1}, {"id": "b", "total": 2}], "name": "user 1"},
            {"id": "2", "orders": [], "name": "user 2"},
            {"id": "1", "orders": [{"id": "a", "total": 1}, {"id": "b", "total": 2}], "name": "user 1"},
            {"id": "3", "orders": [{"id": "c", "total": 3}], "name": "user 3"},
        ])
    );
    // One batch call for `orders`, three distinct `name` calls.
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[test]
fn mapping_errors_name_the_coordinate() {
    let sdl = r#"type Query { a(id: ID): Int @fake(call: "x/{$args.idd}") b: Int }"#;
    let (_, errors) = LocalSchema::build("s", sdl, "fake", |site, d| {
        let t = Template::parse(
            &crate::sources::mapping::string_arg(d, "call")
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        let errors = site.check_vars(t.vars(), false);
        if errors.is_empty() {
            Ok(Binding {
                single: Box::new(Fake {
                    template: t,
                    calls: Arc::new(AtomicUsize::new(0)),
                    answer: Arc::new(|_| Ok(Json::Null)),
                }),
                batch: None,
            }
            .into())
        } else {
            Err(errors)
        }
    });
    let errors = errors.join("\n");
    assert!(
        errors
            .contains("Query.a @fake: `$args.idd`: Query.a has no argument `idd` (arguments: id)"),
        "{errors}"
    );
    assert!(
        errors.contains("Query.b: a root field of this source needs @fake"),
        "{errors}"
    );
}
