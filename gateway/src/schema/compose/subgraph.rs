//! The model of one subgraph as read: its types, fields, keys and federation directives,
//! renamed to the supergraph's names.

use std::collections::HashSet;

use apollo_compiler::Node;
use apollo_compiler::ast::{self, Type};
use indexmap::IndexMap;

use super::text::quote;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TypeKind {
    Scalar,
    Object,
    Interface,
    Union,
    Enum,
    InputObject,
}

impl TypeKind {
    pub(super) fn describe(self) -> &'static str {
        match self {
            TypeKind::Scalar => "Scalar Type",
            TypeKind::Object => "Object Type",
            TypeKind::Interface => "Interface Type",
            TypeKind::Union => "Union Type",
            TypeKind::Enum => "Enum Type",
            TypeKind::InputObject => "Input Object Type",
        }
    }
}

/// Directives that survive composition on any element: `@inaccessible`, `@tag`, the
/// authorization directives `@authenticated` / `@requiresScopes`, and the built-in
/// `@deprecated` / `@specifiedBy` (other subgraph directives are dropped).
#[derive(Debug, Clone, Default)]
pub(super) struct Applied {
    pub(super) inaccessible: bool,
    pub(super) tags: Vec<String>,
    pub(super) authenticated: bool,
    /// `@requiresScopes`: alternatives (OR) of scope sets (AND).
    pub(super) scopes: Option<Vec<Vec<String>>>,
    pub(super) kept: Vec<Node<ast::Directive>>,
}

/// Two subgraphs' scope requirements on one element must both hold: every pair of
/// alternatives becomes one alternative needing both sets.
pub(super) fn and_scopes(a: &[Vec<String>], b: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    for x in a {
        for y in b {
            let mut set = x.clone();
            for s in y {
                if !set.contains(s) {
                    set.push(s.clone());
                }
            }
            set.sort();
            if !out.contains(&set) {
                out.push(set);
            }
        }
    }
    out
}

impl Applied {
    pub(super) fn merge(&mut self, other: &Applied) {
        self.inaccessible |= other.inaccessible;
        self.authenticated |= other.authenticated;
        self.scopes = match (self.scopes.take(), &other.scopes) {
            (Some(mine), Some(theirs)) if mine != *theirs => Some(and_scopes(&mine, theirs)),
            (Some(mine), _) => Some(mine),
            (None, theirs) => theirs.clone(),
        };
        for tag in &other.tags {
            if !self.tags.contains(tag) {
                self.tags.push(tag.clone());
            }
        }
        for directive in &other.kept {
            if !self.kept.iter().any(|kept| kept.name == directive.name) {
                self.kept.push(directive.clone());
            }
        }
    }

    pub(super) fn render(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .kept
            .iter()
            .map(|d| d.serialize().no_indent().to_string())
            .collect();
        if self.inaccessible {
            out.push("@inaccessible".into());
        }
        out.extend(
            self.tags
                .iter()
                .map(|tag| format!("@tag(name: {})", quote(tag))),
        );
        if self.authenticated {
            out.push("@authenticated".into());
        }
        if let Some(scopes) = &self.scopes {
            let sets: Vec<String> = scopes
                .iter()
                .map(|set| {
                    let items: Vec<String> = set.iter().map(|s| quote(s)).collect();
                    format!("[{}]", items.join(", "))
                })
                .collect();
            out.push(format!("@requiresScopes(scopes: [{}])", sets.join(", ")));
        }
        out
    }
}

#[derive(Debug, Clone)]
pub(super) struct KeyDef {
    pub(super) fields: String,
    pub(super) resolvable: bool,
}

#[derive(Debug, Clone)]
pub(super) struct SubInputValue {
    pub(super) description: Option<String>,
    pub(super) ty: Type,
    pub(super) default: Option<Node<ast::Value>>,
    pub(super) applied: Applied,
}

impl SubInputValue {
    pub(super) fn is_required(&self) -> bool {
        self.ty.is_non_null() && self.default.is_none()
    }
}

#[derive(Debug, Clone)]
pub(super) struct SubField {
    pub(super) description: Option<String>,
    pub(super) ty: Type,
    pub(super) args: IndexMap<String, SubInputValue>,
    pub(super) external: bool,
    pub(super) shareable: bool,
    pub(super) requires: Option<String>,
    pub(super) provides: Option<String>,
    pub(super) override_from: Option<String>,
    pub(super) applied: Applied,
}

#[derive(Debug, Clone)]
pub(super) struct SubEnumValue {
    pub(super) description: Option<String>,
    pub(super) applied: Applied,
}

#[derive(Debug, Clone)]
pub(super) struct SubType {
    pub(super) kind: TypeKind,
    pub(super) description: Option<String>,
    pub(super) extension: bool,
    pub(super) interface_object: bool,
    pub(super) keys: Vec<KeyDef>,
    pub(super) implements: Vec<String>,
    pub(super) fields: IndexMap<String, SubField>,
    pub(super) input_fields: IndexMap<String, SubInputValue>,
    pub(super) members: Vec<String>,
    pub(super) values: IndexMap<String, SubEnumValue>,
    pub(super) applied: Applied,
}

impl SubType {
    pub(super) fn empty(kind: TypeKind) -> Self {
        SubType {
            kind,
            description: None,
            extension: false,
            interface_object: false,
            keys: Vec::new(),
            implements: Vec::new(),
            fields: IndexMap::new(),
            input_fields: IndexMap::new(),
            members: Vec::new(),
            values: IndexMap::new(),
            applied: Applied::default(),
        }
    }
}

/// A subgraph reduced to what composition needs, with root types renamed to
/// `Query`/`Mutation`/`Subscription` and federation internals removed.
#[derive(Debug)]
pub(super) struct Subgraph {
    pub(super) name: String,
    pub(super) url: String,
    pub(super) graph: String,
    pub(super) fed2: bool,
    pub(super) types: IndexMap<String, SubType>,
    /// `(type, field)` selected by some `@key` (also nested): implicitly shareable.
    pub(super) key_fields: HashSet<(String, String)>,
    /// `(type, field)` used by `@key` or `@requires`: kept as `usedOverridden` when overridden.
    pub(super) used_fields: HashSet<(String, String)>,
}

/// One subgraph to compose.
#[derive(Debug, Clone)]
pub struct SubgraphInput {
    /// Subgraph name, as referenced by `@override(from:)` and printed in `@join__graph`.
    pub name: String,
    /// Routing URL printed in `@join__graph(url:)`.
    pub url: String,
    /// The subgraph schema (Federation 1 or 2 SDL).
    pub sdl: String,
}
