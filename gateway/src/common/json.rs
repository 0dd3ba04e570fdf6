//! Conversions between the JSON value types of the libraries the gateway uses.

use serde_json::Value as Json;

/// apollo-compiler speaks `serde_json_bytes`; the rest of the gateway `serde_json`.
pub fn to_serde_json(value: serde_json_bytes::Value) -> Json {
    use serde_json_bytes::Value as B;
    match value {
        B::Null => Json::Null,
        B::Bool(b) => Json::Bool(b),
        B::Number(n) => Json::Number(n),
        B::String(s) => Json::String(s.as_str().to_string()),
        B::Array(items) => Json::Array(items.into_iter().map(to_serde_json).collect()),
        B::Object(map) => Json::Object(
            map.into_iter()
                .map(|(k, v)| (k.as_str().to_string(), to_serde_json(v)))
                .collect(),
        ),
    }
}
