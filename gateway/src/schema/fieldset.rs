//! Field sets: the little selection strings of `@key`, `@requires` and `@provides`
//! (`"id"`, `"id sku"`, `"id organization { id }"`, `"... on Book { isbn }"`).
//!
//! They are parsed once when the supergraph is loaded, so planning never re-parses
//! strings. Arguments and aliases are not allowed in field sets by the federation spec,
//! so the grammar here is names, braces and inline fragments.

use std::fmt;

/// One element of a field set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSetItem {
    Field {
        name: String,
        children: FieldSet,
    },
    /// `... on Type { ... }`
    Fragment {
        type_condition: String,
        children: FieldSet,
    },
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
                FieldSetItem::Field { name, children } if name == field => return Some(children),
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
                FieldSetItem::Field { name, children } => {
                    f.write_str(name)?;
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
        for src in ["", "{", "a {", "a { }", "a }", "... Book", "a(x: 1)"] {
            assert!(FieldSet::parse(src).is_err(), "{src} should fail");
        }
    }
}
