//! The small mapping language that REST and gRPC sources share: where a value comes from
//! (`$args.first`, `$this.id`, `$batch.id`), string templates for URLs and headers
//! (`/users/{$args.id}/orders`), object mappings for JSON bodies and request messages
//! (`user_id: $this.id, limit: $args.first`), dotted paths into backend JSON
//! (`total.amountCents`), and the `@map` field directive. Everything is parsed and
//! checked at start-up; at request time only lookups and string building remain.

use apollo_compiler::ast::{DirectiveList, Value as AstValue};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value as Json};

/// The SDL with the mapping directive definitions of a REST or gRPC source added where
/// the SDL does not define them itself, so that composition validates it.
pub fn with_directive_definitions(sdl: &str, definitions: &str) -> String {
    let defined: Vec<String> = apollo_compiler::ast::Document::parse(sdl, "sdl.graphql")
        .map(|doc| {
            doc.definitions
                .iter()
                .filter_map(|d| match d {
                    apollo_compiler::ast::Definition::DirectiveDefinition(d) => {
                        Some(d.name.to_string())
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = sdl.to_string();
    out.push('\n');
    for line in definitions.lines() {
        let name = line
            .strip_prefix("directive @")
            .and_then(|rest| rest.split('(').next())
            .unwrap_or("");
        if !defined.iter().any(|d| d == name) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The values a call can read: the field's arguments, the parent object (the entity
/// representation for entity fields, else the backend object), and for batch calls the
/// collected keys.
#[derive(Debug, Clone, Copy)]
pub struct CallInput<'a> {
    pub args: &'a Map<String, Json>,
    pub this: &'a Json,
    pub batch: Option<&'a Json>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Args,
    This,
    Batch,
}

/// `$args.a.b`, `$this.id`, `$batch.id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarRef {
    pub root: Root,
    pub path: Vec<String>,
}

impl VarRef {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (root, rest) = if let Some(rest) = text.strip_prefix("$args") {
            (Root::Args, rest)
        } else if let Some(rest) = text.strip_prefix("$this") {
            (Root::This, rest)
        } else if let Some(rest) = text.strip_prefix("$batch") {
            (Root::Batch, rest)
        } else {
            return Err(format!(
                "`{text}` is not a variable (use $args.NAME, $this.FIELD or $batch.FIELD)"
            ));
        };
        let rest = rest.strip_prefix('.').ok_or_else(|| {
            format!("`{text}` names no field (write e.g. `$args.id` or `$this.id`)")
        })?;
        Ok(VarRef {
            root,
            path: parse_path(rest)?,
        })
    }

    pub fn resolve<'a>(&self, input: &CallInput<'a>) -> Option<&'a Json> {
        match self.root {
            Root::Args => {
                let (first, rest) = self.path.split_first()?;
                lookup(input.args.get(first)?, rest)
            }
            Root::This => lookup(input.this, &self.path),
            Root::Batch => lookup(input.batch?, &self.path),
        }
        .filter(|v| !v.is_null())
    }
}

impl std::fmt::Display for VarRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let root = match self.root {
            Root::Args => "$args",
            Root::This => "$this",
            Root::Batch => "$batch",
        };
        write!(f, "{root}.{}", self.path.join("."))
    }
}

/// A dotted path such as `total.amountCents`.
pub fn parse_path(text: &str) -> Result<Vec<String>, String> {
    let path: Vec<String> = text.trim().split('.').map(str::to_string).collect();
    if path.iter().any(|s| {
        s.is_empty()
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }) {
        return Err(format!(
            "`{text}` is not a dotted path of names (e.g. `data.items`)"
        ));
    }
    Ok(path)
}

pub fn lookup<'a>(value: &'a Json, path: &[String]) -> Option<&'a Json> {
    path.iter().try_fold(value, |v, key| v.get(key.as_str()))
}

/// Sets `path` in `target` (an object), creating intermediate objects.
pub fn set_path(target: &mut Map<String, Json>, path: &[String], value: Json) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = target;
    for key in parents {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| Json::Object(Map::new()));
        if !entry.is_object() {
            *entry = Json::Object(Map::new());
        }
        let Json::Object(next) = entry else {
            return;
        };
        current = next;
    }
    current.insert(last.clone(), value);
}

/// A value as text for URLs and headers: strings as they are, numbers and booleans
/// printed, lists comma-joined, objects as JSON; `null` has no text.
pub fn text_of(value: &Json) -> Option<String> {
    match value {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        Json::Array(items) => Some(
            items
                .iter()
                .filter_map(text_of)
                .collect::<Vec<_>>()
                .join(","),
        ),
        Json::Object(_) => Some(value.to_string()),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Var(VarRef),
}

/// Text with `{$args.x}` placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find('{') {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let after = &rest[start + 1..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed `{{` in template `{text}`"))?;
            parts.push(Part::Var(
                VarRef::parse(&after[..end]).map_err(|e| format!("in template `{text}`: {e}"))?,
            ));
            rest = &after[end + 1..];
        }
        if rest.contains('}') {
            return Err(format!("unmatched `}}` in template `{text}`"));
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Template { parts })
    }

    pub fn vars(&self) -> impl Iterator<Item = &VarRef> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v),
            Part::Literal(_) => None,
        })
    }

    /// `Ok(None)` when the template is one placeholder whose value is missing or null
    /// (an optional query parameter or header is then left out); a missing value
    /// inside other text is an error.
    pub fn render(&self, input: &CallInput<'_>) -> Result<Option<String>, String> {
        if let [Part::Var(var)] = self.parts.as_slice() {
            return Ok(var.resolve(input).and_then(text_of));
        }
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Var(var) => match var.resolve(input).and_then(text_of) {
                    Some(text) => out.push_str(&text),
                    None => return Err(format!("no value for `{var}`")),
                },
            }
        }
        Ok(Some(out))
    }
}

/// Characters left as they are in a path segment: RFC 3986 unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One path segment, percent-encoded so that no value can add segments or start a
/// query or fragment. (Callers refuse `.` and `..`: URL parsers resolve them, encoded
/// or not.)
pub fn encode_segment(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

/// Where a value of a mapping comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueSource {
    Var(VarRef),
    Literal(Json),
}

impl ValueSource {
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.starts_with('$') {
            return VarRef::parse(text).map(ValueSource::Var);
        }
        serde_json::from_str(text)
            .map(ValueSource::Literal)
            .map_err(|_| {
                format!(
                    "`{text}` is neither a variable ($args.x, $this.x, $batch.x) nor a JSON literal"
                )
            })
    }

    pub fn value(&self, input: &CallInput<'_>) -> Option<Json> {
        match self {
            ValueSource::Var(v) => v.resolve(input).cloned(),
            ValueSource::Literal(j) => Some(j.clone()),
        }
    }
}

/// Builds a JSON value from the inputs: `$args.input` (one value as a whole), or
/// `key: source, nested.key: source` (an object; missing values are left out).
#[derive(Debug, Clone, PartialEq)]
pub enum Mapping {
    Whole(ValueSource),
    Object(Vec<(Vec<String>, ValueSource)>),
}

impl Mapping {
    pub fn parse(text: &str) -> Result<Self, String> {
        let entries = split_top_level(text);
        let is_object = entries.len() > 1
            || entries
                .first()
                .is_some_and(|e| top_level_colon(e).is_some());
        if !is_object {
            return Ok(Mapping::Whole(ValueSource::parse(text)?));
        }
        let mut out = Vec::new();
        for entry in entries {
            let colon = top_level_colon(&entry)
                .ok_or_else(|| format!("`{}` should be `name: value`", entry.trim()))?;
            let target = parse_path(&entry[..colon])?;
            out.push((target, ValueSource::parse(&entry[colon + 1..])?));
        }
        Ok(Mapping::Object(out))
    }

    pub fn sources(&self) -> Vec<&ValueSource> {
        match self {
            Mapping::Whole(s) => vec![s],
            Mapping::Object(entries) => entries.iter().map(|(_, s)| s).collect(),
        }
    }

    pub fn vars(&self) -> impl Iterator<Item = &VarRef> {
        self.sources().into_iter().filter_map(|s| match s {
            ValueSource::Var(v) => Some(v),
            ValueSource::Literal(_) => None,
        })
    }

    /// The built value; `None` when nothing was found.
    pub fn build(&self, input: &CallInput<'_>) -> Option<Json> {
        match self {
            Mapping::Whole(source) => source.value(input),
            Mapping::Object(entries) => {
                let mut out = Map::new();
                for (target, source) in entries {
                    if let Some(value) = source.value(input) {
                        set_path(&mut out, target, value);
                    }
                }
                (!out.is_empty()).then_some(Json::Object(out))
            }
        }
    }
}

/// Splits on commas outside strings, brackets and braces.
fn split_top_level(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut depth = 0i32;
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            current.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() || out.is_empty() {
        out.push(current);
    }
    out
}

/// The first `:` outside strings and brackets (a JSON literal may contain colons).
fn top_level_colon(entry: &str) -> Option<usize> {
    let mut depth = 0i32;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in entry.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            ':' if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

/// `@map(path:, default:, fields:)` on a field: where its value sits in the parent's
/// backend JSON (default: the field's own name), a JSON default for a missing or null
/// value, or an object built from the parent (a reference to another subgraph's entity,
/// e.g. `fields: "upc: $this.productUpc"`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldMap {
    pub path: Option<Vec<String>>,
    pub default: Option<Json>,
    pub fields: Option<Mapping>,
}

impl FieldMap {
    pub fn from_directives(directives: &DirectiveList) -> Result<Option<Self>, String> {
        let Some(directive) = directives.get("map") else {
            return Ok(None);
        };
        let path = string_arg(directive, "path")?
            .map(|p| parse_path(&p))
            .transpose()?;
        let default = string_arg(directive, "default")?
            .map(|d| {
                serde_json::from_str(&d).map_err(|e| {
                    format!("@map(default: {d:?}) is not a JSON literal ({e}); strings need quotes, e.g. \"\\\"N/A\\\"\"")
                })
            })
            .transpose()?;
        let fields = string_arg(directive, "fields")?
            .map(|f| Mapping::parse(&f))
            .transpose()?;
        if let Some(Mapping::Whole(_)) = fields {
            return Err("@map(fields:) must be `key: value, ...`".into());
        }
        if fields.is_some() && path.is_some() {
            return Err("@map takes `path` or `fields`, not both".into());
        }
        Ok(Some(FieldMap {
            path,
            default,
            fields,
        }))
    }

    /// The field's backend value, read from the parent object.
    pub fn extract(&self, name: &str, input: &CallInput<'_>) -> Json {
        let value = match (&self.fields, &self.path) {
            (Some(fields), _) => fields.build(input),
            (None, Some(path)) => lookup(input.this, path).cloned(),
            (None, None) => input.this.get(name).cloned(),
        };
        match value {
            Some(Json::Null) | None => self.default.clone().unwrap_or(Json::Null),
            Some(v) => v,
        }
    }
}

/// A string argument of a directive; an argument of another type is an error.
pub fn string_arg(
    directive: &apollo_compiler::ast::Directive,
    name: &str,
) -> Result<Option<String>, String> {
    match directive.specified_argument_by_name(name).map(|v| &**v) {
        None | Some(AstValue::Null) => Ok(None),
        Some(AstValue::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "@{}({name}:) must be a string, not {other}",
            directive.name
        )),
    }
}

/// A list-of-strings argument (a single string counts as a list of one).
pub fn string_list_arg(
    directive: &apollo_compiler::ast::Directive,
    name: &str,
) -> Result<Vec<String>, String> {
    match directive.specified_argument_by_name(name).map(|v| &**v) {
        None | Some(AstValue::Null) => Ok(Vec::new()),
        Some(AstValue::String(s)) => Ok(vec![s.clone()]),
        Some(AstValue::List(items)) => items
            .iter()
            .map(|item| match &**item {
                AstValue::String(s) => Ok(s.clone()),
                other => Err(format!(
                    "@{}({name}:) must list strings, not {other}",
                    directive.name
                )),
            })
            .collect(),
        Some(other) => Err(format!(
            "@{}({name}:) must be a list of strings, not {other}",
            directive.name
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input<'a>(args: &'a Map<String, Json>, this: &'a Json) -> CallInput<'a> {
        CallInput {
            args,
            this,
            batch: None,
        }
    }

    #[test]
    fn templates_render_and_leave_out_missing_values() {
        let args = json!({"id": "7", "tags": ["a", "b"]});
        let args = args.as_object().unwrap();
        let this = json!({"user": {"id": 42}});
        let i = input(args, &this);
        let t = Template::parse("u-{$args.id}-{$this.user.id}").unwrap();
        assert_eq!(t.render(&i).unwrap().as_deref(), Some("u-7-42"));
        assert_eq!(
            Template::parse("{$args.tags}").unwrap().render(&i).unwrap(),
            Some("a,b".into())
        );
        assert_eq!(
            Template::parse("{$args.missing}")
                .unwrap()
                .render(&i)
                .unwrap(),
            None
        );
        assert!(
            Template::parse("x{$args.missing}")
                .unwrap()
                .render(&i)
                .is_err()
        );
        assert!(Template::parse("{args.id}").is_err());
        assert!(Template::parse("{$args.id").is_err());
    }

    #[test]
    fn segments_cannot_escape() {
        assert_eq!(encode_segment("a/b?c#d"), "a%2Fb%3Fc%23d");
        assert_eq!(encode_segment("%2F"), "%252F");
        assert_eq!(encode_segment("ok-1.2_~"), "ok-1.2_~");
        assert_eq!(encode_segment("@evil.com:80"), "%40evil.com%3A80");
    }

    #[test]
    fn mappings_build_objects() {
        let args = json!({"first": 3, "input": {"a": 1}});
        let args = args.as_object().unwrap();
        let this = json!({"id": "u1"});
        let i = input(args, &this);
        let m = Mapping::parse(
            "user_id: $this.id, page.limit: $args.first, kind: \"a,b: c\", skip: $args.none",
        )
        .unwrap();
        assert_eq!(
            m.build(&i).unwrap(),
            json!({"user_id": "u1", "page": {"limit": 3}, "kind": "a,b: c"})
        );
        assert_eq!(
            Mapping::parse("$args.input").unwrap().build(&i).unwrap(),
            json!({"a": 1})
        );
        assert!(Mapping::parse("user_id $this.id").is_err());
        assert!(Mapping::parse("a: nope").is_err());
    }

    #[test]
    fn field_maps_read_paths_and_defaults() {
        let args = Map::new();
        let this = json!({"total": {"amount": 5}, "productUpc": "3", "n": null});
        let i = input(&args, &this);
        let m = FieldMap {
            path: Some(parse_path("total.amount").unwrap()),
            ..FieldMap::default()
        };
        assert_eq!(m.extract("x", &i), json!(5));
        let m = FieldMap {
            default: Some(json!(0)),
            ..FieldMap::default()
        };
        assert_eq!(m.extract("n", &i), json!(0));
        let m = FieldMap {
            fields: Some(Mapping::parse("upc: $this.productUpc").unwrap()),
            ..FieldMap::default()
        };
        assert_eq!(m.extract("product", &i), json!({"upc": "3"}));
    }
}
