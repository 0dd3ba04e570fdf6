//! A fuzzing run under `cargo test`: random operations over the example graph (built
//! from its schema: aliases, arguments, fragments, `@skip`/`@include`/`@defer`, then
//! often mangled byte-wise) go through parse → validate → plan → execute against
//! sources that answer random JSON (wrong shapes, wrong `_entities` counts, garbage,
//! failures). Nothing may panic or hang, and every answer must be one JSON object.
//!
//! CI runs `FUZZ_CASES` (default 300) cases from `FUZZ_SEED` (default fixed); by hand:
//! `FUZZ_CASES=100000 FUZZ_SEED=$RANDOM cargo test -p gateway --lib fuzz -- --nocapture`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use apollo_compiler::Schema;
use apollo_compiler::schema::ExtendedType;
use futures::future::BoxFuture;

use super::Engine;
use crate::request::{Request, RequestContext};
use crate::schema::SchemaSnapshot;
use crate::schema::compose::{SubgraphInput, compose};
use crate::sources::{FetchError, Source, SourceRequest, SourceResponse, Sources};

const SUBGRAPHS: [(&str, &str); 4] = [
    (
        "accounts",
        include_str!("../../../schemas/subgraphs/accounts.graphql"),
    ),
    (
        "products",
        include_str!("../../../schemas/subgraphs/products.graphql"),
    ),
    (
        "reviews",
        include_str!("../../../schemas/subgraphs/reviews.graphql"),
    ),
    (
        "inventory",
        include_str!("../../../schemas/subgraphs/inventory.graphql"),
    ),
];

/// xorshift64: reproducible from the seed, no dependency.
struct Rng(AtomicU64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(AtomicU64::new(seed | 1))
    }

    fn next(&self) -> u64 {
        let mut x = self.0.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.store(x, Ordering::Relaxed);
        x
    }

    fn below(&self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn one_in(&self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T>(&self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

/// A random selection on `ty`, written into `out`.
fn selection(schema: &Schema, ty: &str, depth: usize, rng: &Rng, out: &mut String) {
    let Some(def) = schema.types.get(ty) else {
        out.push_str("__typename");
        return;
    };
    let (fields, spreads): (Vec<_>, Vec<String>) = match def {
        ExtendedType::Object(o) => (o.fields.values().map(|f| &f.node).collect(), Vec::new()),
        ExtendedType::Interface(i) => (
            i.fields.values().map(|f| &f.node).collect(),
            schema
                .implementers_map()
                .get(ty)
                .map(|imp| imp.objects.iter().map(|n| n.to_string()).collect())
                .unwrap_or_default(),
        ),
        ExtendedType::Union(u) => (
            Vec::new(),
            u.members.iter().map(|m| m.name.to_string()).collect(),
        ),
        _ => (Vec::new(), Vec::new()),
    };
    let count = 1 + rng.below(3);
    for _ in 0..count {
        if let (false, Some(target)) = (spreads.is_empty() || rng.one_in(2), rng.pick(&spreads)) {
            let defer = if rng.one_in(3) { " @defer" } else { "" };
            let _ = write!(out, " ... on {target}{defer} {{");
            selection(schema, target, depth + 1, rng, out);
            out.push_str(" }");
            continue;
        }
        let Some(field) = rng.pick(&fields) else {
            out.push_str(" __typename");
            continue;
        };
        out.push(' ');
        // Fields with arguments get an alias of their own, so that two of them never
        // conflict (which validation would refuse before anything interesting).
        if rng.one_in(5) || !field.arguments.is_empty() {
            let _ = write!(out, "a{}: ", rng.below(1_000_000));
        }
        out.push_str(field.name.as_str());
        let mut args = Vec::new();
        for arg in &field.arguments {
            if !arg.is_required() && rng.one_in(2) {
                continue;
            }
            let literal = match arg.ty.inner_named_type().as_str() {
                "Int" => rng
                    .pick(&["-1", "0", "1", "5", "100000", "$n"])
                    .map(|s| s.to_string()),
                "Float" => Some("1.5".into()),
                "String" | "ID" => Some(format!("\"{}\"", rng.below(12))),
                "Boolean" => Some("true".into()),
                other => match schema.types.get(other) {
                    Some(ExtendedType::Enum(e)) => e.values.keys().next().map(|v| v.to_string()),
                    _ => None,
                },
            };
            match literal {
                Some(l) => args.push(format!("{}: {l}", arg.name)),
                None if arg.is_required() => return,
                None => {}
            }
        }
        if !args.is_empty() {
            let _ = write!(out, "({})", args.join(", "));
        }
        match rng.below(8) {
            0 => out.push_str(" @skip(if: $flag)"),
            1 => out.push_str(" @include(if: true)"),
            _ => {}
        }
        let inner = field.ty.inner_named_type();
        let composite = matches!(
            schema.types.get(inner.as_str()),
            Some(ExtendedType::Object(_) | ExtendedType::Interface(_) | ExtendedType::Union(_))
        );
        if composite {
            out.push_str(" {");
            if depth < 6 {
                selection(schema, inner.as_str(), depth + 1, rng, out);
            } else {
                out.push_str(" __typename");
            }
            out.push_str(" }");
        }
    }
}

/// A document over the schema, sometimes mangled.
fn document(schema: &Schema, rng: &Rng) -> String {
    let mut body = String::new();
    selection(schema, "Query", 1, rng, &mut body);
    // Only the variables it uses: an unused one is invalid.
    let mut variables = Vec::new();
    if body.contains("$n") {
        variables.push("$n: Int = 3");
    }
    if body.contains("$flag") {
        variables.push("$flag: Boolean = false");
    }
    let mut out = if variables.is_empty() {
        String::from("query Q {")
    } else {
        format!("query Q({}) {{", variables.join(", "))
    };
    out.push_str(&body);
    out.push_str(" }");
    if rng.one_in(3) {
        let mut bytes = out.into_bytes();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(3) {
                0 if at < bytes.len() => {
                    let end = (at + 1 + rng.below(8)).min(bytes.len());
                    bytes.drain(at..end);
                }
                1 => {
                    let end = (at + rng.below(16)).min(bytes.len());
                    let copy = bytes[at.min(end)..end].to_vec();
                    bytes.splice(at..at, copy);
                }
                _ => {
                    let noise = b"{}()[]:$@!.,\"#\\ \n0aZ_...";
                    bytes.insert(at.min(bytes.len()), noise[rng.below(noise.len())]);
                }
            }
        }
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    out
}

/// A source that answers random JSON built from the names in the operation it got.
struct Chaos {
    rng: Rng,
    types: Vec<String>,
}

impl Chaos {
    fn value(&self, names: &[&str], depth: usize, out: &mut String) {
        match self.rng.below(if depth > 3 { 4 } else { 7 }) {
            0 => out.push_str("null"),
            1 => {
                let _ = write!(out, "{}", self.rng.next() % 7);
            }
            2 => {
                let _ = write!(out, "\"s{}\"", self.rng.below(5));
            }
            3 => out.push_str("true"),
            4 => {
                out.push('[');
                for i in 0..self.rng.below(4) {
                    if i > 0 {
                        out.push(',');
                    }
                    self.value(names, depth + 1, out);
                }
                out.push(']');
            }
            _ => self.object(names, depth + 1, out),
        }
    }

    fn object(&self, names: &[&str], depth: usize, out: &mut String) {
        out.push('{');
        if let (true, Some(ty)) = (self.rng.below(4) > 0, self.rng.pick(&self.types)) {
            let _ = write!(out, "\"__typename\":\"{ty}\",");
        }
        for i in 0..self.rng.below(4) {
            if i > 0 {
                out.push(',');
            }
            let name = self.rng.pick(names).copied().unwrap_or("x");
            let _ = write!(out, "\"{name}\":");
            self.value(names, depth, out);
        }
        if out.ends_with(',') {
            out.pop();
        }
        out.push('}');
    }
}

impl Source for Chaos {
    fn fetch(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
        let names: Vec<&str> = request
            .operation
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .collect();
        let mut body = String::new();
        let outcome = match self.rng.below(10) {
            0 => Err(FetchError::Http(503)),
            1 => Err(FetchError::BadResponse("garbage".into())),
            2 => {
                body.push_str(r#"{"errors":[{"message":"no","path":["_entities",0,"x"]}]}"#);
                SourceResponse::from_json(body.as_bytes()).map_err(FetchError::BadResponse)
            }
            _ => {
                body.push_str(r#"{"data":{"#);
                if request.operation.contains("_entities") {
                    body.push_str(r#""_entities":["#);
                    for i in 0..self.rng.below(5) {
                        if i > 0 {
                            body.push(',');
                        }
                        self.object(&names, 1, &mut body);
                    }
                    body.push(']');
                } else if let Some(name) = self.rng.pick(&names) {
                    let _ = write!(body, "\"{name}\":");
                    self.value(&names, 1, &mut body);
                }
                body.push_str("}}");
                SourceResponse::from_json(body.as_bytes()).map_err(FetchError::BadResponse)
            }
        };
        Box::pin(std::future::ready(outcome))
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test]
async fn random_operations_and_upstream_answers_never_break_the_pipeline() {
    let inputs: Vec<SubgraphInput> = SUBGRAPHS
        .iter()
        .map(|(name, sdl)| SubgraphInput {
            name: name.to_string(),
            url: format!("http://127.0.0.1:9/{name}"),
            sdl: sdl.to_string(),
        })
        .collect();
    let sdl = compose(&inputs).expect("the example graph composes");
    let schema = SchemaSnapshot::from_supergraph_sdl(&sdl).expect("supergraph");
    let seed = env_number("FUZZ_SEED", 0x5eed_1234_abcd);
    let cases = env_number("FUZZ_CASES", 300);
    let types: Vec<String> = schema.api.types.keys().map(|n| n.to_string()).collect();
    let sources = schema
        .supergraph
        .graphs
        .iter()
        .enumerate()
        .map(|(i, _)| {
            Arc::new(Chaos {
                rng: Rng::new(seed.wrapping_add(i as u64 * 7919)),
                types: types.clone(),
            }) as Arc<dyn Source>
        })
        .collect();
    let engine = Engine::new(schema.clone(), Sources(sources));
    let rng = Rng::new(seed);
    let context = RequestContext {
        request_id: http::HeaderValue::from_static("fuzz"),
        expose_plan: false,
        client_headers: Default::default(),
        principal: None,
        deadline: None,
        uploads: None,
    };
    let (mut executed, mut refused) = (0u64, 0u64);
    for case in 0..cases {
        let query = document(&schema.api, &rng);
        let request = Request {
            query: query.clone(),
            ..Request::default()
        };
        match engine.execute(&request, false, &context).await {
            Ok(response) => {
                executed += 1;
                let bytes = response.into_bytes();
                let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&bytes);
                assert!(
                    parsed.as_ref().is_ok_and(serde_json::Value::is_object),
                    "case {case} (seed {seed}): not a JSON object for {query}: {}",
                    String::from_utf8_lossy(&bytes)
                );
            }
            Err(error) => {
                refused += 1;
                if std::env::var_os("FUZZ_SHOW").is_some() {
                    eprintln!("{query}\n  -> {error}");
                }
                assert!(!error.graphql_errors().is_empty(), "case {case}: {query}");
            }
        }
    }
    eprintln!("fuzz: {cases} cases from seed {seed}: {executed} executed, {refused} refused");
}
