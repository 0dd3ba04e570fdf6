//! Header rules of one source (`upstream.header_rules`): add, remove and rename the
//! headers sent upstream, with constant values or values from the client's request.
//! Applied in order, right after auth propagation, so they can rename or strip what it
//! forwarded and the cache below keys on exactly what the source receives. Rules are
//! compiled once at start-up; config validation reports the ones that cannot compile.

use std::sync::Arc;

use futures::future::BoxFuture;
use http::{HeaderName, HeaderValue};
use serde::Deserialize;

use crate::sources::{EventStream, FetchError, Source, SourceRequest, SourceResponse};

/// One rule, as written: `{ add: {...} }`, `{ remove: name }` or `{ rename: {...} }`
/// (a map with exactly one key: YAML has no plain syntax for enums).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderRule {
    /// Set a header (replacing any value already set), from a constant or from a client
    /// request header (skipped when the client did not send it).
    #[serde(default)]
    pub add: Option<AddHeader>,
    /// Do not send this header upstream.
    #[serde(default)]
    pub remove: Option<String>,
    /// Send the client's (or already forwarded) header `from` as `to`, and not `from`.
    #[serde(default)]
    pub rename: Option<RenameHeader>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddHeader {
    pub name: String,
    /// A constant value ...
    #[serde(default)]
    pub value: Option<String>,
    /// ... or the value of this client request header.
    #[serde(default)]
    pub from_client: Option<String>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameHeader {
    pub from: String,
    pub to: String,
}

/// Headers the HTTP client owns: a rule touching them would break the request.
const RESERVED: [&str; 6] = [
    "host",
    "content-length",
    "content-type",
    "connection",
    "transfer-encoding",
    "te",
];

enum Rule {
    Set(HeaderName, HeaderValue),
    SetFromClient(HeaderName, HeaderName),
    Remove(HeaderName),
    Rename(HeaderName, HeaderName),
}

fn name(raw: &str, at: &str) -> Result<HeaderName, String> {
    let parsed = HeaderName::from_bytes(raw.as_bytes())
        .map_err(|_| format!("{at}: {raw:?} is not a valid header name"))?;
    if RESERVED.contains(&parsed.as_str()) {
        return Err(format!(
            "{at}: `{parsed}` is set by the gateway's HTTP client and cannot be changed by a rule"
        ));
    }
    Ok(parsed)
}

fn compile(rules: &[HeaderRule], prefix: &str) -> Result<Vec<Rule>, String> {
    rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let at = format!("{prefix}: header_rules[{i}]");
            Ok(match (&rule.add, &rule.remove, &rule.rename) {
                (Some(add), None, None) => {
                    let header = name(&add.name, &at)?;
                    match (&add.value, &add.from_client) {
                        (Some(value), None) => Rule::Set(
                            header,
                            HeaderValue::from_str(value).map_err(|_| {
                                format!("{at}: {value:?} is not a valid header value")
                            })?,
                        ),
                        (None, Some(from)) => Rule::SetFromClient(
                            header,
                            HeaderName::from_bytes(from.as_bytes()).map_err(|_| {
                                format!("{at}: {from:?} is not a valid header name")
                            })?,
                        ),
                        _ => {
                            return Err(format!(
                                "{at}: `add` needs exactly one of `value` or `from_client`"
                            ));
                        }
                    }
                }
                (None, Some(header), None) => Rule::Remove(name(header, &at)?),
                (None, None, Some(r)) => Rule::Rename(name(&r.from, &at)?, name(&r.to, &at)?),
                _ => {
                    return Err(format!(
                        "{at}: a rule is exactly one of `add`, `remove` or `rename`"
                    ));
                }
            })
        })
        .collect()
}

/// Config validation: every rule compiles.
pub fn validate(rules: &[HeaderRule], prefix: &str) -> Result<(), String> {
    compile(rules, prefix).map(|_| ())
}

pub struct HeaderRules {
    inner: Arc<dyn Source>,
    rules: Vec<Rule>,
}

impl HeaderRules {
    /// The layer, or `None` when there are no rules. Rules that do not compile were
    /// refused by config validation; any that slips through is dropped with a log line.
    pub fn layer(name: &str, inner: Arc<dyn Source>, rules: &[HeaderRule]) -> Arc<dyn Source> {
        if rules.is_empty() {
            return inner;
        }
        let rules = compile(rules, name).unwrap_or_else(|e| {
            tracing::error!(error = %e, "header rules ignored");
            Vec::new()
        });
        Arc::new(HeaderRules { inner, rules })
    }
}

impl HeaderRules {
    fn apply(&self, request: &mut SourceRequest) {
        let headers = &mut request.headers;
        for rule in &self.rules {
            match rule {
                Rule::Set(name, value) => {
                    headers.insert(name.clone(), value.clone());
                }
                Rule::SetFromClient(name, from) => {
                    if let Some(value) = request.client_headers.get(from) {
                        headers.insert(name.clone(), value.clone());
                    }
                }
                Rule::Remove(name) => {
                    headers.remove(name);
                }
                Rule::Rename(from, to) => {
                    let value = headers
                        .remove(from)
                        .or_else(|| request.client_headers.get(from).cloned());
                    if let Some(value) = value {
                        headers.insert(to.clone(), value);
                    }
                }
            }
        }
    }
}

impl Source for HeaderRules {
    fn fetch(
        &self,
        mut request: SourceRequest,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
        self.apply(&mut request);
        self.inner.fetch(request)
    }

    fn subscribe(
        &self,
        mut request: SourceRequest,
    ) -> BoxFuture<'static, Result<EventStream, FetchError>> {
        self.apply(&mut request);
        self.inner.subscribe(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Vec<HeaderRule> {
        serde_norway::from_str(yaml).expect("rules parse")
    }

    #[test]
    fn parses_each_rule_form_and_reports_bad_ones() {
        let rules = parse(
            "- add: { name: x-gateway, value: \"1\" }\n- add: { name: x-tenant, from_client: x-tenant-id }\n- remove: x-internal-token\n- rename: { from: x-client-id, to: x-caller }\n",
        );
        assert_eq!(rules.len(), 4);
        assert!(validate(&rules, "a").is_ok());
        let bad = [
            ("- remove: \"bad header\"\n", "not a valid header name"),
            (
                "- add: { name: x-a }\n",
                "exactly one of `value` or `from_client`",
            ),
            (
                "- add: { name: x-a, value: \"a\\nb\" }\n",
                "not a valid header value",
            ),
            (
                "- rename: { from: x-a, to: host }\n",
                "cannot be changed by a rule",
            ),
        ];
        for (yaml, expected) in bad {
            let err = validate(&parse(yaml), "a").expect_err(yaml);
            assert!(err.contains(expected), "{yaml}: {err}");
            assert!(err.starts_with("a: header_rules[0]"), "{err}");
        }
        let err = validate(
            &parse("- { remove: x-a, add: { name: x-b, value: b } }\n"),
            "a",
        );
        assert!(err.expect_err("two in one").contains("exactly one of"));
        let err = serde_norway::from_str::<Vec<HeaderRule>>("- replace: x\n").expect_err("unknown");
        assert!(err.to_string().contains("unknown field `replace`"), "{err}");
    }
}
