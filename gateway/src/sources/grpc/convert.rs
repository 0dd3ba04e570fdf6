//! Protobuf messages to JSON, the way GraphQL fields read them: field names in their
//! JSON form (`createdAt` for `created_at`), 64-bit integers as strings (never lossy),
//! bytes as base64, enums by name, `google.protobuf.*` well-known types in their
//! canonical JSON form (a `Timestamp` is an RFC 3339 string). A field with presence
//! (`optional`, messages, oneof members) that is not set is left out, so it maps to
//! `null` (or to an `@map(default:)`); scalars without presence keep their proto3
//! default value.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use prost_reflect::{DynamicMessage, Kind, MapKey, ReflectMessage, Value};
use serde_json::{Map, Number, Value as Json};

pub fn message_to_json(message: &DynamicMessage) -> Json {
    let descriptor = message.descriptor();
    if descriptor.full_name().starts_with("google.protobuf.") {
        // prost-reflect knows the canonical JSON of the well-known types.
        if let Ok(json) = serde_json::to_value(message) {
            return json;
        }
    }
    let mut out = Map::new();
    for field in descriptor.fields() {
        if field.supports_presence() && !message.has_field(&field) {
            continue;
        }
        let value = message.get_field(&field);
        out.insert(
            field.json_name().to_string(),
            value_to_json(&value, &field.kind()),
        );
    }
    Json::Object(out)
}

fn value_to_json(value: &Value, kind: &Kind) -> Json {
    match value {
        Value::Bool(b) => Json::Bool(*b),
        Value::I32(n) => Json::from(*n),
        Value::U32(n) => Json::from(*n),
        Value::I64(n) => Json::String(n.to_string()),
        Value::U64(n) => Json::String(n.to_string()),
        Value::F32(f) => float(f64::from(*f)),
        Value::F64(f) => float(*f),
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(BASE64.encode(b)),
        Value::EnumNumber(n) => match kind.as_enum().and_then(|e| e.get_value(*n)) {
            Some(v) => Json::String(v.name().to_string()),
            None => Json::from(*n),
        },
        Value::Message(m) => message_to_json(m),
        Value::List(items) => Json::Array(items.iter().map(|v| value_to_json(v, kind)).collect()),
        Value::Map(entries) => {
            let value_kind = kind
                .as_message()
                .map(|m| m.map_entry_value_field().kind())
                .unwrap_or_else(|| kind.clone());
            Json::Object(
                entries
                    .iter()
                    .map(|(k, v)| (map_key(k), value_to_json(v, &value_kind)))
                    .collect(),
            )
        }
    }
}

fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

fn float(f: f64) -> Json {
    match Number::from_f64(f) {
        Some(n) => Json::Number(n),
        None if f.is_nan() => Json::String("NaN".into()),
        None if f > 0.0 => Json::String("Infinity".into()),
        None => Json::String("-Infinity".into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use prost_reflect::DeserializeOptions;
    use serde_json::json;

    fn pool() -> prost_reflect::DescriptorPool {
        let proto = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../schemas/protos/notifications.proto");
        crate::sources::grpc::compile_protos(&[proto]).unwrap()
    }

    #[test]
    fn messages_map_to_lossless_json() {
        let desc = pool()
            .get_message_by_name("notifications.v1.Notification")
            .unwrap();
        let message = DynamicMessage::deserialize_with_options(
            desc,
            json!({
                "id": "n1",
                "channel": "SMS",
                "created_at": "2024-04-25T00:06:40.5Z",
                "sequence": "9007199254740993",
                "sizeBytes": "18446744073709551615",
                "links": [{"label": "a", "targets": ["x", "y"]}],
                "payload": "AQD/",
            }),
            &DeserializeOptions::new(),
        )
        .unwrap();
        let json = message_to_json(&message);
        assert_eq!(json["sequence"], "9007199254740993");
        assert_eq!(json["sizeBytes"], "18446744073709551615");
        assert_eq!(json["channel"], "SMS");
        assert_eq!(json["createdAt"], "2024-04-25T00:06:40.500Z");
        assert_eq!(json["payload"], "AQD/");
        assert_eq!(
            json["links"],
            json!([{"label": "a", "targets": ["x", "y"]}])
        );
        // Scalars without presence keep their default; unset optional fields are missing.
        assert_eq!(json["read"], false);
        assert_eq!(json["title"], "");
        assert!(json.get("actionUrl").is_none());
        assert!(json.get("orderId").is_none());
    }
}
