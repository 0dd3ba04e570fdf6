//! The response tree's value: what subgraph answers are parsed into, merged in and
//! projected from. A JSON value shaped for that work rather than for general use:
//!
//! - an object is a vector of (key, value) in arrival order: GraphQL objects have a
//!   handful of fields, and a linear scan over short keys is cheaper than hashing each
//!   lookup (as `serde_json::Map` with `preserve_order` does, with SipHash);
//! - strings up to 22 bytes — nearly every key, most ids and enum values — are stored
//!   inline, without an allocation of their own;
//! - it is written as JSON straight into a byte buffer.
//!
//! Duplicate keys in an upstream object are kept as they came; lookups find the first.

use std::fmt;

use rustc_hash::FxHashMap;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Number, Value as Json};

/// Longest string kept inline.
const INLINE: usize = 22;

/// An immutable string: inline when short, shared when long.
#[derive(Clone)]
pub struct Str(Repr);

/// Each variant carries whether the string is known to need no escaping in JSON text
/// (checked once when an upstream answer is read), so writing it is one copy. The flag
/// never takes part in comparisons.
#[derive(Clone)]
enum Repr {
    /// The length, with [`CLEAN`] set when known clean.
    Inline(u8, [u8; INLINE]),
    /// Shared: an answer handed to several waiting requests is copied once per request,
    /// and long strings (descriptions, bodies) are then not copied again.
    Heap(std::sync::Arc<str>, bool),
}

/// The flag bit of an inline length.
const CLEAN: u8 = 0x80;

impl Str {
    pub fn new(s: &str) -> Self {
        Self::flagged(s, false)
    }

    /// A string from an upstream answer, checked once so that every request writing
    /// it copies it without checking again.
    fn checked(s: &str) -> Self {
        Self::flagged(s, !needs_escape(s.as_bytes()))
    }

    fn flagged(s: &str, clean: bool) -> Self {
        if s.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Str(Repr::Inline(
                s.len() as u8 | if clean { CLEAN } else { 0 },
                bytes,
            ))
        } else {
            Str(Repr::Heap(s.into(), clean))
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline(len, bytes) => &bytes[..usize::from(len & !CLEAN)],
            Repr::Heap(s, _) => s.as_bytes(),
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Built from a `&str` only, so always UTF-8.
            Repr::Inline(len, bytes) => {
                std::str::from_utf8(&bytes[..usize::from(len & !CLEAN)]).unwrap_or_default()
            }
            Repr::Heap(s, _) => s,
        }
    }

    /// Append as a JSON string literal.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let clean = match &self.0 {
            Repr::Inline(len, _) => len & CLEAN != 0,
            Repr::Heap(_, clean) => *clean,
        };
        if clean {
            let bytes = self.as_bytes();
            out.reserve(bytes.len() + 2);
            out.push(b'"');
            out.extend_from_slice(bytes);
            out.push(b'"');
        } else {
            write_json_string(out, self.as_bytes());
        }
    }
}

impl From<String> for Str {
    fn from(s: String) -> Self {
        if s.len() <= INLINE {
            Str::new(&s)
        } else {
            Str(Repr::Heap(s.into(), false))
        }
    }
}

impl From<&str> for Str {
    fn from(s: &str) -> Self {
        Str::new(s)
    }
}

impl PartialEq for Str {
    fn eq(&self, other: &Self) -> bool {
        // Heap strings are always longer than inline ones, and inline bytes past the
        // length are zero: two fixed-size compares, no call to memcmp.
        match (&self.0, &other.0) {
            (Repr::Inline(a_len, a), Repr::Inline(b_len, b)) => {
                (a_len & !CLEAN) == (b_len & !CLEAN) && inline_eq(a, b)
            }
            (Repr::Heap(a, _), Repr::Heap(b, _)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Str {}

/// Inline bytes compared as three machine words (the last overlapping), which the
/// compiler keeps inline; comparing the arrays calls into a slice comparison.
#[inline]
fn inline_eq(a: &[u8; INLINE], b: &[u8; INLINE]) -> bool {
    let word = |x: &[u8; INLINE], at: usize| {
        u64::from_ne_bytes(x[at..at + 8].try_into().unwrap_or_default())
    };
    ((word(a, 0) ^ word(b, 0)) | (word(a, 8) ^ word(b, 8)) | (word(a, 14) ^ word(b, 14))) == 0
}

impl std::hash::Hash for Str {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A JSON value of the response tree.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(Str),
    Array(Vec<Value>),
    Object(Object),
}

/// A JSON object: fields in arrival order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Object(Vec<(Str, Value)>);

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Value::Object(_))
    }

    /// The field `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object().and_then(|o| o.get(key))
    }

    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Number(n.clone()),
            Value::String(s) => Json::String(s.as_str().to_string()),
            Value::Array(items) => Json::Array(items.iter().map(Value::to_json).collect()),
            Value::Object(o) => Json::Object(
                o.iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Append this value as JSON text.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(true) => out.extend_from_slice(b"true"),
            Value::Bool(false) => out.extend_from_slice(b"false"),
            // Writing into a Vec cannot fail.
            Value::Number(n) => {
                let _ = serde_json::to_writer(&mut *out, n);
            }
            Value::String(s) => s.write_json(out),
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_json(out);
                }
                out.push(b']');
            }
            Value::Object(o) => {
                out.push(b'{');
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_json_string(out, k.as_bytes());
                    out.push(b':');
                    v.write_json(out);
                }
                out.push(b'}');
            }
        }
    }
}

/// Whether `s` has a byte JSON text must escape. A branch-free OR over the bytes,
/// which the compiler turns into vector code.
fn needs_escape(s: &[u8]) -> bool {
    s.iter()
        .map(|&b| u8::from(b < 0x20) | u8::from(b == b'"') | u8::from(b == b'\\'))
        .fold(0, |acc, x| acc | x)
        != 0
}

/// Append `s` (UTF-8) as a JSON string literal.
pub fn write_json_string(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push(b'"');
    // Almost every string has nothing to escape: one pass to check, one copy.
    if !needs_escape(s) {
        out.extend_from_slice(s);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ],
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

impl Object {
    pub fn new() -> Self {
        Object(Vec::new())
    }

    pub fn with_capacity(n: usize) -> Self {
        Object(Vec::with_capacity(n))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn position(&self, key: &Str) -> Option<usize> {
        self.0.iter().position(|(k, _)| k == key)
    }

    /// The position of `key`, looking at `hint` first: the fields of an object are
    /// usually read in the order they arrived.
    pub fn find(&self, key: &Str, hint: usize) -> Option<usize> {
        match self.0.get(hint) {
            Some((k, _)) if k == key => Some(hint),
            _ => self.position(key),
        }
    }

    /// The value at a position from [`Object::find`].
    pub fn value_at(&self, index: usize) -> Option<&Value> {
        self.0.get(index).map(|(_, v)| v)
    }

    pub fn value_at_mut(&mut self, index: usize) -> Option<&mut Value> {
        self.0.get_mut(index).map(|(_, v)| v)
    }

    /// The object's `__typename`, which upstream answers usually put first.
    pub fn typename(&self) -> Option<&str> {
        let value = match self.0.first() {
            Some((k, v)) if k.as_bytes() == b"__typename" => v,
            _ => self.get("__typename")?,
        };
        value.as_str()
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(&Str::new(key)).map(|i| &self.0[i].1)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.position(&Str::new(key)).map(|i| &mut self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(&Str::new(key)).is_some()
    }

    /// Set `key`, keeping its place when it is already there.
    pub fn insert(&mut self, key: impl Into<Str>, value: Value) {
        let key = key.into();
        match self.position(&key) {
            Some(i) => self.0[i].1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Take `key` out, keeping the order of the rest.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.position(&Str::new(key)).map(|i| self.0.remove(i).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Str, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &Str> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Value> {
        self.0.iter_mut().map(|(_, v)| v)
    }

    /// Merge every field of `src` with `merge_value` where `self` has it, and append a
    /// copy of it otherwise. `src` is borrowed: an upstream answer is shared by every
    /// request waiting on it, and each copies only what it takes. A large `src` is
    /// matched through an index, so a hostile answer with many keys costs linear, not
    /// quadratic, time.
    pub fn merge_from(
        &mut self,
        src: &Object,
        mut rekey: impl FnMut(&Str) -> Str,
        mut merge_value: impl FnMut(&mut Value, &Value),
        mut on_insert: impl FnMut(&mut Value),
    ) {
        const INDEX_ABOVE: usize = 32;
        let mut index: Option<FxHashMap<Str, usize>> = (src.len() > INDEX_ABOVE).then(|| {
            self.0
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .rev()
                .collect()
        });
        self.0.reserve(src.len());
        for (k, v) in &src.0 {
            let k = rekey(k);
            let found = match &index {
                Some(index) => index.get(&k).copied(),
                None => self.position(&k),
            };
            match found {
                Some(i) => merge_value(&mut self.0[i].1, v),
                None => {
                    let mut v = v.clone();
                    on_insert(&mut v);
                    if let Some(index) = &mut index {
                        index.insert(k.clone(), self.0.len());
                    }
                    self.0.push((k, v));
                }
            }
        }
    }
}

impl IntoIterator for Object {
    type Item = (Str, Value);
    type IntoIter = std::vec::IntoIter<(Str, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl FromIterator<(Str, Value)> for Object {
    fn from_iter<I: IntoIterator<Item = (Str, Value)>>(iter: I) -> Self {
        let mut object = Object::new();
        for (k, v) in iter {
            object.insert(k, v);
        }
        object
    }
}

impl From<Json> for Value {
    fn from(json: Json) -> Self {
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(b),
            Json::Number(n) => Value::Number(n),
            Json::String(s) => Value::String(s.into()),
            Json::Array(items) => Value::Array(items.into_iter().map(Value::from).collect()),
            Json::Object(map) => Value::Object(Object(
                map.into_iter()
                    .map(|(k, v)| (Str::from(k), Value::from(v)))
                    .collect(),
            )),
        }
    }
}

impl Serialize for Str {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Number(n) => n.serialize(serializer),
            Value::String(s) => s.serialize(serializer),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Object(o) => {
                let mut map = serializer.serialize_map(Some(o.len()))?;
                for (k, v) in o.iter() {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'v> Visitor<'v> for StrVisitor {
            type Value = Str;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E>(self, s: &str) -> Result<Str, E> {
                Ok(Str::new(s))
            }
            fn visit_borrowed_str<E>(self, s: &'v str) -> Result<Str, E> {
                Ok(Str::checked(s))
            }
            fn visit_string<E>(self, s: String) -> Result<Str, E> {
                Ok(Str::from(s))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Number::from_f64(n).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(Str::new(s)))
    }

    /// serde_json lends a string straight from the input when it had no escape
    /// sequence: nearly all of them.
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Value, E> {
        Ok(Value::String(Str::checked(s)))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(Str::from(s)))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(0).min(256));
        while let Some(key) = map.next_key::<Str>()? {
            fields.push((key, map.next_value()?));
        }
        Ok(Value::Object(Object(fields)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn round_trips_json_text() -> TestResult {
        let text = r#"{"id":"1","name":"a name longer than twenty-two bytes","n":-3,"f":1.5,"ok":true,"none":null,"list":[1,{"x":"\"q\"\n\u0001é"}]}"#;
        let value: Value = serde_json::from_str(text)?;
        let mut out = Vec::new();
        value.write_json(&mut out);
        assert_eq!(String::from_utf8(out)?, text);
        assert_eq!(serde_json::to_string(&value)?, text);
        let json: Json = serde_json::from_str(text)?;
        assert_eq!(value.to_json(), json);
        assert_eq!(Value::from(json), value);
        Ok(())
    }

    #[test]
    fn objects_keep_order_and_find_the_first_duplicate() -> TestResult {
        let value: Value = serde_json::from_str(r#"{"b":1,"a":2,"b":3}"#)?;
        let object = value.as_object().ok_or("not an object")?;
        let keys: Vec<&str> = object.keys().map(Str::as_str).collect();
        assert_eq!(keys, ["b", "a", "b"]);
        assert_eq!(value.get("b"), Some(&Value::Number(1.into())));
        assert_eq!(object.find(&Str::new("a"), 1), Some(1));
        assert_eq!(object.find(&Str::new("a"), 0), Some(1));
        assert_eq!(object.find(&Str::new("zz"), 7), None);
        Ok(())
    }

    #[test]
    fn the_clean_flag_never_changes_equality_or_output() -> TestResult {
        let long = "a string longer than twenty-two bytes";
        for text in ["id-1", long] {
            assert_eq!(Str::checked(text), Str::new(text));
            assert_eq!(Str::new(text), Str::checked(text));
            let hash = |s: &Str| {
                use std::hash::{BuildHasher, BuildHasherDefault};
                BuildHasherDefault::<rustc_hash::FxHasher>::default().hash_one(s)
            };
            assert_eq!(hash(&Str::checked(text)), hash(&Str::new(text)));
        }
        // Read with and without escape sequences, written back the same way.
        let value: Value = serde_json::from_str(r#"["plain","q\"uote","tab\tx"]"#)?;
        let mut out = Vec::new();
        value.write_json(&mut out);
        assert_eq!(out, br#"["plain","q\"uote","tab\tx"]"#);
        for text in ["q\"uote", "c\u{1}", long] {
            let mut out = Vec::new();
            Str::checked(text).write_json(&mut out);
            assert_eq!(serde_json::from_slice::<String>(&out)?, text);
        }
        Ok(())
    }

    #[test]
    fn merges_large_objects_through_an_index() {
        let big = |offset: usize| -> Object {
            (0..100)
                .map(|i| {
                    (
                        Str::from(format!("k{}", i + offset)),
                        Value::Number(i.into()),
                    )
                })
                .collect()
        };
        let mut dst = big(0);
        dst.merge_from(&big(50), Str::clone, |d, s| *d = s.clone(), |_| {});
        assert_eq!(dst.len(), 150);
        assert_eq!(dst.get("k60"), Some(&Value::Number(10.into())));
        assert_eq!(dst.get("k149"), Some(&Value::Number(99.into())));
    }
}
