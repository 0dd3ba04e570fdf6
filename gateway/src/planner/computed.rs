//! Fields a BFF adds to an object type that the graph does not have ([`Derived`]).
//!
//! Computed fields are valued from sibling fields by a template (`"{name} ({upc})"`) or
//! an arithmetic expression (`"price * 119 / 100"`). The planner fetches the siblings
//! under keys of their own (`<key>__gwc_<field>`, never returned;
//! `operation::expand_derived`), the projection evaluates. The language is kept small on
//! purpose: `{field}` in templates; numbers, sibling fields, `+ - * /`, unary minus and
//! parentheses in expressions. A null sibling makes the result null, as does a division
//! by zero; an `Int` result is rounded toward zero.
//!
//! Flattened fields lift a nested field into its parent (`Review.authorName` is
//! `author.name`): the planner fetches the path nested under the client's key, the
//! projection walks down it.

use apollo_compiler::ast::{Argument, Type};
use apollo_compiler::{Name, Node};

/// What separates a computed field's key from a sibling's name in the keys the planner
/// fetches the siblings under.
pub const COMPUTED_MARK: &str = "__gwc_";

/// A field of a BFF's schema that the graph does not have.
#[derive(Debug)]
pub enum Derived {
    Computed(Computed),
    /// The fields walked from the parent, outermost first (two or more).
    Flatten(Vec<Step>),
}

/// One field of a flattened path, in the graph's names, with the arguments the BFF
/// sets on it (its clients cannot pass any).
#[derive(Debug, Clone)]
pub struct Step {
    pub name: Name,
    pub ty: Type,
    pub arguments: Vec<Node<Argument>>,
}

#[derive(Debug)]
pub struct Computed {
    kind: Kind,
    /// The sibling fields read, with their types.
    deps: Vec<(Name, Type)>,
    integer: bool,
}

#[derive(Debug)]
enum Kind {
    Template(Vec<Part>),
    Expression(Expr),
}

#[derive(Debug)]
enum Part {
    Text(String),
    Field(usize),
}

#[derive(Debug)]
enum Expr {
    Number(f64),
    Field(usize),
    Neg(Box<Expr>),
    Binary(Box<Expr>, char, Box<Expr>),
}

/// A sibling's value as the evaluation sees it.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    Null,
    Text(&'a str),
    Number(f64),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Null,
    Text(String),
    Int(i64),
    Float(f64),
}

impl Computed {
    /// A `String` field from a template; `type_of` gives a sibling's type (`None`: the
    /// type has no such field).
    pub fn template(text: &str, type_of: impl Fn(&str) -> Option<Type>) -> Result<Self, String> {
        let mut deps = Vec::new();
        let mut parts = Vec::new();
        let mut chars = text.chars().peekable();
        let mut literal = String::new();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                    let index = dependency(&mut deps, name.trim(), &type_of)?;
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(index));
                }
                '}' => return Err("a `}` without its `{` (write `}}` for the character)".into()),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        if deps.is_empty() {
            return Err("the template reads no field (`{field}`)".into());
        }
        Ok(Computed {
            kind: Kind::Template(parts),
            deps,
            integer: false,
        })
    }

    /// An `Int` (`integer`) or `Float` field from an expression over number fields.
    pub fn expression(
        text: &str,
        integer: bool,
        type_of: impl Fn(&str) -> Option<Type>,
    ) -> Result<Self, String> {
        let mut parser = Parser {
            tokens: tokens(text)?,
            at: 0,
            deps: Vec::new(),
            type_of: &type_of,
        };
        let expr = parser.sum()?;
        if let Some(token) = parser.tokens.get(parser.at) {
            return Err(format!("unexpected `{token}`"));
        }
        for (name, ty) in &parser.deps {
            if !matches!(ty.inner_named_type().as_str(), "Int" | "Float") || ty.is_list() {
                return Err(format!("`{name}` is {ty}, not a number"));
            }
        }
        if parser.deps.is_empty() {
            return Err("the expression reads no field".into());
        }
        Ok(Computed {
            kind: Kind::Expression(expr),
            deps: parser.deps,
            integer,
        })
    }

    /// The siblings to fetch, in the order [`Computed::eval`] takes them.
    pub fn deps(&self) -> &[(Name, Type)] {
        &self.deps
    }

    /// The key a sibling is fetched under for the computed field at `key`.
    pub fn dep_key(key: &Name, dep: &Name) -> String {
        format!("{key}{COMPUTED_MARK}{dep}")
    }

    /// The value, from the siblings' values in [`Computed::deps`] order.
    pub fn eval(&self, inputs: &[Input<'_>]) -> Output {
        match &self.kind {
            Kind::Template(parts) => {
                let mut out = String::new();
                for part in parts {
                    match part {
                        Part::Text(text) => out.push_str(text),
                        Part::Field(i) => match inputs.get(*i).copied().unwrap_or(Input::Null) {
                            Input::Null => return Output::Null,
                            Input::Text(text) => out.push_str(text),
                            Input::Bool(b) => out.push_str(if b { "true" } else { "false" }),
                            Input::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => {
                                out.push_str(&(n as i64).to_string());
                            }
                            Input::Number(n) => out.push_str(&n.to_string()),
                        },
                    }
                }
                Output::Text(out)
            }
            Kind::Expression(expr) => match evaluate(expr, inputs) {
                Some(n) if self.integer => {
                    let n = n.trunc();
                    if n.is_finite() && n.abs() <= f64::from(i32::MAX) {
                        Output::Int(n as i64)
                    } else {
                        Output::Null
                    }
                }
                Some(n) if n.is_finite() => Output::Float(n),
                _ => Output::Null,
            },
        }
    }
}

fn dependency(
    deps: &mut Vec<(Name, Type)>,
    name: &str,
    type_of: &impl Fn(&str) -> Option<Type>,
) -> Result<usize, String> {
    if let Some(i) = deps.iter().position(|(n, _)| n == name) {
        return Ok(i);
    }
    let ty = type_of(name).ok_or_else(|| format!("no sibling field `{name}` of a scalar type"))?;
    let name = Name::new(name).map_err(|_| format!("`{name}` is not a field name"))?;
    deps.push((name, ty));
    Ok(deps.len() - 1)
}

fn evaluate(expr: &Expr, inputs: &[Input<'_>]) -> Option<f64> {
    Some(match expr {
        Expr::Number(n) => *n,
        Expr::Field(i) => match inputs.get(*i)? {
            Input::Number(n) => *n,
            _ => return None,
        },
        Expr::Neg(inner) => -evaluate(inner, inputs)?,
        Expr::Binary(a, op, b) => {
            let (a, b) = (evaluate(a, inputs)?, evaluate(b, inputs)?);
            match op {
                '+' => a + b,
                '-' => a - b,
                '*' => a * b,
                _ if b == 0.0 => return None,
                _ => a / b,
            }
        }
    })
}

fn tokens(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if "+-*/()".contains(c) {
            out.push(c.to_string());
            chars.next();
        } else if c.is_ascii_digit() || c == '.' {
            let mut number = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit() || **d == '.') {
                number.push(d);
                chars.next();
            }
            out.push(number);
        } else if c.is_ascii_alphabetic() || c == '_' {
            let mut name = String::new();
            while let Some(&d) = chars
                .peek()
                .filter(|d| d.is_ascii_alphanumeric() || **d == '_')
            {
                name.push(d);
                chars.next();
            }
            out.push(name);
        } else {
            return Err(format!("unexpected `{c}`"));
        }
    }
    Ok(out)
}

struct Parser<'t, F> {
    tokens: Vec<String>,
    at: usize,
    deps: Vec<(Name, Type)>,
    type_of: &'t F,
}

impl<F: Fn(&str) -> Option<Type>> Parser<'_, F> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn sum(&mut self) -> Result<Expr, String> {
        let mut left = self.product()?;
        while let Some(op @ ("+" | "-")) = self.peek() {
            let op = op.chars().next().unwrap_or('+');
            self.at += 1;
            left = Expr::Binary(Box::new(left), op, Box::new(self.product()?));
        }
        Ok(left)
    }

    fn product(&mut self) -> Result<Expr, String> {
        let mut left = self.factor()?;
        while let Some(op @ ("*" | "/")) = self.peek() {
            let op = op.chars().next().unwrap_or('*');
            self.at += 1;
            left = Expr::Binary(Box::new(left), op, Box::new(self.factor()?));
        }
        Ok(left)
    }

    fn factor(&mut self) -> Result<Expr, String> {
        let token = self
            .peek()
            .ok_or("the expression ends too early")?
            .to_string();
        self.at += 1;
        match token.as_str() {
            "-" => Ok(Expr::Neg(Box::new(self.factor()?))),
            "(" => {
                let inner = self.sum()?;
                if self.peek() != Some(")") {
                    return Err("a `(` without its `)`".into());
                }
                self.at += 1;
                Ok(inner)
            }
            t if t.starts_with(|c: char| c.is_ascii_digit() || c == '.') => t
                .parse::<f64>()
                .map(Expr::Number)
                .map_err(|_| format!("`{t}` is not a number")),
            t if t.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') => {
                dependency(&mut self.deps, t, self.type_of).map(Expr::Field)
            }
            t => Err(format!("unexpected `{t}`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(name: &str) -> Option<Type> {
        let ty = match name {
            "price" | "weight" => "Int",
            "name" | "upc" => "String",
            "rating" => "Float",
            _ => return None,
        };
        Some(Type::Named(Name::new(ty).ok()?))
    }

    #[test]
    fn templates_and_expressions() {
        let label = Computed::template("{name} ({upc}) {{x}}", types).map_err(|e| e.to_string());
        let label = label.unwrap_or_else(|e| panic!("{e}"));
        let out = label.eval(&[Input::Text("Table"), Input::Text("1")]);
        assert_eq!(out, Output::Text("Table (1) {x}".into()));
        assert_eq!(label.eval(&[Input::Null, Input::Text("1")]), Output::Null);

        let tax = Computed::expression("price * 119 / 100 - -1", true, types)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tax.eval(&[Input::Number(899.0)]), Output::Int(1070));
        let ratio = Computed::expression("(price + weight) / weight", false, types)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            ratio.eval(&[Input::Number(3.0), Input::Number(1.0)]),
            Output::Float(4.0)
        );
        assert_eq!(
            ratio.eval(&[Input::Number(3.0), Input::Number(0.0)]),
            Output::Null
        );

        for (text, message) in [
            ("price *", "ends too early"),
            ("(price", "without its `)`"),
            ("price % 2", "unexpected `%`"),
            ("name * 2", "not a number"),
            ("cost + 1", "no sibling field `cost`"),
            ("2 + 2", "reads no field"),
        ] {
            let error = Computed::expression(text, true, types)
                .err()
                .unwrap_or_default();
            assert!(error.contains(message), "{text}: {error}");
        }
        for (text, message) in [
            ("{nope}", "no sibling field"),
            ("a } b {name}", "without its `{`"),
            ("plain", "reads no field"),
        ] {
            let error = Computed::template(text, types).err().unwrap_or_default();
            assert!(error.contains(message), "{text}: {error}");
        }
    }
}
