//! Field sets: the little selection strings of `@key`, `@requires` and `@provides`
//! (`"id"`, `"id sku"`, `"id organization { id }"`, `"... on Book { isbn }"`).
//!
//! They are parsed once when the supergraph is loaded, so planning never re-parses
//! strings. The grammar here is names, braces, inline fragments and field arguments
//! (`price(currency: "USD")`, which `@requires` allows); aliases are not allowed.

use std::fmt;

use apollo_compiler::Node;
use apollo_compiler::ast::Argument;

/// One element of a field set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSetItem {
    Field {
        name: String,
        /// Arguments (`@requires(fields: "price(currency: \"USD\")")`); usually none.
        arguments: Vec<Node<Argument>>,
        children: FieldSet,
    },
    /// `... on Type { ... }`
    Fragment {
        type_condition: String,
        children: FieldSet,
    },
}

impl FieldSetItem {
    /// A plain field without arguments.
    pub fn field(name: impl Into<String>, children: FieldSet) -> Self {
        FieldSetItem::Field {
            name: name.into(),
            arguments: Vec::new(),
            children,
        }
    }
}

/// The response key under which a field-set field is fetched: its name, or for a
/// field with arguments a derived alias, so it cannot clash with the same field
/// selected by the client with other arguments.
pub fn response_key(name: &str, arguments: &[Node<Argument>]) -> String {
    if arguments.is_empty() {
        return name.to_string();
    }
    // FNV-1a over the printed arguments: stable across runs and processes.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for a in arguments {
        for b in format!("{}:{};", a.name, a.value.serialize().no_indent()).bytes() {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{name}__fs{:08x}", hash as u32)
}

/// A parsed field set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet(pub Vec<FieldSetItem>);

#[derive(Debug, thiserror::Error)]
#[error("invalid field set {source_text:?}: {message}")]
pub struct FieldSetError {
    pub source_text: String,
    pub message: String,
}

impl FieldSet {
    pub fn parse(source: &str) -> Result<Self, FieldSetError> {
        let tokens = tokenize(source).map_err(|message| FieldSetError {
            source_text: source.to_string(),
            message,
        })?;
        let mut pos = 0;
        let set = parse_set(&tokens, &mut pos, false).map_err(|message| FieldSetError {
            source_text: source.to_string(),
            message,
        })?;
        if pos != tokens.len() {
            return Err(FieldSetError {
                source_text: source.to_string(),
                message: "unexpected `}`".into(),
            });
        }
        Ok(set)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Field items that apply to an object of `type_name` (direct fields and fragments
    /// whose condition is that type).
    pub fn field(&self, type_name: &str, field: &str) -> Option<&FieldSet> {
        for item in &self.0 {
            match item {
                FieldSetItem::Field { name, children, .. } if name == field => {
                    return Some(children);
                }
                FieldSetItem::Fragment {
                    type_condition,
                    children,
                } if type_condition == type_name => {
                    if let Some(found) = children.field(type_name, field) {
                        return Some(found);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// Top-level field names (ignoring fragments).
    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|item| match item {
            FieldSetItem::Field { name, .. } => Some(name.as_str()),
            FieldSetItem::Fragment { .. } => None,
        })
    }
}

impl fmt::Display for FieldSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match item {
                FieldSetItem::Field {
                    name,
                    arguments,
                    children,
                } => {
                    f.write_str(name)?;
                    if !arguments.is_empty() {
                        let args: Vec<String> = arguments
                            .iter()
                            .map(|a| format!("{}: {}", a.name, a.value.serialize().no_indent()))
                            .collect();
                        write!(f, "({})", args.join(", "))?;
                    }
                    if !children.is_empty() {
                        write!(f, " {{ {children} }}")?;
                    }
                }
                FieldSetItem::Fragment {
                    type_condition,
                    children,
                } => write!(f, "... on {type_condition} {{ {children} }}")?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Name(String),
    /// The text between a field's parentheses.
    Arguments(String),
    Open,
    Close,
    Spread,
}

fn tokenize(source: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = source.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        match c {
            c if c.is_whitespace() || c == ',' => {}
            '{' => tokens.push(Token::Open),
            '(' => {
                // Up to the matching `)`, skipping string literals.
                let mut depth = 1;
                let mut in_string = false;
                let mut escaped = false;
                let mut end = None;
                for (i, n) in chars.by_ref() {
                    if in_string {
                        match n {
                            _ if escaped => escaped = false,
                            '\\' => escaped = true,
                            '"' => in_string = false,
                            _ => {}
                        }
                        continue;
                    }
                    match n {
                        '"' => in_string = true,
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                end = Some(i);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let end = end.ok_or("missing `)`")?;
                tokens.push(Token::Arguments(source[start + 1..end].to_string()));
            }
            '}' => tokens.push(Token::Close),
            '.' => {
                let dots = source.get(start..start + 3);
                if dots != Some("...") {
                    return Err("expected `...`".into());
                }
                chars.next();
                chars.next();
                tokens.push(Token::Spread);
            }
            c if c == '_' || c.is_ascii_alphabetic() => {
                let mut end = start + c.len_utf8();
                while let Some(&(i, n)) = chars.peek() {
                    if n == '_' || n.is_ascii_alphanumeric() {
                        end = i + n.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Name(source[start..end].to_string()));
            }
            other => return Err(format!("unexpected character {other:?}")),
        }
    }
    Ok(tokens)
}

fn parse_set(tokens: &[Token], pos: &mut usize, nested: bool) -> Result<FieldSet, String> {
    let mut items = Vec::new();
    while let Some(token) = tokens.get(*pos) {
        match token {
            Token::Close if nested => {
                *pos += 1;
                return Ok(FieldSet(items));
            }
            Token::Close => return Ok(FieldSet(items)),
            Token::Open => return Err("unexpected `{`".into()),
            Token::Arguments(_) => return Err("unexpected `(`".into()),
            Token::Spread => {
                *pos += 1;
                match (tokens.get(*pos), tokens.get(*pos + 1), tokens.get(*pos + 2)) {
                    (Some(Token::Name(on)), Some(Token::Name(ty)), Some(Token::Open))
                        if on == "on" =>
                    {
                        *pos += 3;
                        let children = parse_set(tokens, pos, true)?;
                        items.push(FieldSetItem::Fragment {
                            type_condition: ty.clone(),
                            children,
                        });
                    }
                    _ => return Err("expected `... on Type {`".into()),
                }
            }
            Token::Name(name) => {
                *pos += 1;
                let arguments = match tokens.get(*pos) {
                    Some(Token::Arguments(text)) => {
                        *pos += 1;
                        parse_arguments(text)?
                    }
                    _ => Vec::new(),
                };
                let children = if tokens.get(*pos) == Some(&Token::Open) {
                    *pos += 1;
                    let children = parse_set(tokens, pos, true)?;
                    if children.is_empty() {
                        return Err(format!("empty selection under `{name}`"));
                    }
                    children
                } else {
                    FieldSet::default()
                };
                items.push(FieldSetItem::Field {
                    name: name.clone(),
                    arguments,
                    children,
                });
            }
        }
    }
    if nested {
        return Err("missing `}`".into());
    }
    if items.is_empty() {
        return Err("empty field set".into());
    }
    Ok(FieldSet(items))
}

/// Parse `currency: "USD", n: 2` as the arguments of a field.
fn parse_arguments(text: &str) -> Result<Vec<Node<Argument>>, String> {
    use apollo_compiler::ast::{Definition, Document, Selection};
    let doc = Document::parse(format!("{{f({text})}}"), "fieldset.graphql")
        .map_err(|_| format!("invalid arguments `({text})`"))?;
    let field = doc.definitions.iter().find_map(|d| match d {
        Definition::OperationDefinition(op) => op.selection_set.first().and_then(|s| match s {
            Selection::Field(f) => Some(f.clone()),
            _ => None,
        }),
        _ => None,
    });
    match field {
        Some(f) if !f.arguments.is_empty() => Ok(f.arguments.clone()),
        _ => Err(format!("invalid arguments `({text})`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for src in [
            "id",
            "id sku",
            "id organization { id }",
            "upc ... on Book { isbn author { id } }",
            "price(currency: \"USD\") weight",
            "category { average(currency: \"U)S\", n: [1, 2]) }",
        ] {
            let set = FieldSet::parse(src).expect("valid");
            assert_eq!(set.to_string(), src);
        }
        assert_eq!(
            FieldSet::parse("a, b").expect("valid").to_string(),
            "a b".to_string()
        );
    }

    #[test]
    fn rejects_garbage() {
        for src in [
            "", "{", "a {", "a { }", "a }", "... Book", "a(x: 1", "a()", "(x: 1)",
        ] {
            assert!(FieldSet::parse(src).is_err(), "{src} should fail");
        }
    }
}
