//! The query plan: plain data, printable, cached. A plan is a sequence of steps; each
//! step is a set of fetches that run in parallel; each fetch is one request to one
//! subgraph, either for root fields or for `_entities` at one or more response paths.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use apollo_compiler::ast::Argument;
use apollo_compiler::{Name, Node};

use super::operation::Conditions;
use crate::schema::GraphId;
use crate::schema::fieldset::{FieldSet, FieldSetItem};

/// One element of a response path: an object key, or "every element of this list".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathElem {
    Key(Name),
    List,
}

pub fn path_to_string(path: &[PathElem]) -> String {
    let mut s = String::new();
    for (i, elem) in path.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        match elem {
            PathElem::Key(k) => s.push_str(k),
            PathElem::List => s.push('@'),
        }
    }
    s
}

#[derive(Debug, Clone)]
pub enum PlanNode {
    Sequence(Vec<PlanNode>),
    Parallel(Vec<PlanNode>),
    Fetch(Box<FetchNode>),
}

#[derive(Debug, Clone)]
pub struct FetchNode {
    pub graph: GraphId,
    pub service: String,
    pub operation_name: Arc<str>,
    /// The subgraph operation, ready to send.
    pub operation: Arc<str>,
    /// The operation uses planner aliases (`id__gwa3`) that the answer's keys must be
    /// mapped back from; known when the text is built, not searched per response.
    pub aliased: bool,
    /// Client variables the subgraph operation uses.
    pub variables: Vec<Name>,
    pub kind: FetchKind,
}

#[derive(Debug, Clone)]
pub enum FetchKind {
    /// Root fields, merged at the response root.
    Root { selection: SubSelection },
    /// `_entities` calls, one per part, all in one request.
    Entities(Vec<EntityPart>),
}

#[derive(Debug, Clone)]
pub struct EntityPart {
    /// Where the entities sit in the response (several places can share one call
    /// when they need the same fields of the same types).
    pub paths: Vec<Vec<PathElem>>,
    /// Per entity type: the fields (key and `@requires`) that make its representation.
    pub representation: Vec<(Name, FieldSet)>,
    /// The response key of this part's `_entities` field.
    pub response_key: String,
    /// The variable holding this part's representations.
    pub variable: String,
    /// `... on Type { ... }` fragments selected on the entities.
    pub selection: SubSelection,
    /// `(runtime type, sent type)`: objects whose `__typename` is the runtime type use
    /// the representation of the sent type and are sent with that `__typename`. Used
    /// when the representation names an interface (an entity interface, or a graph
    /// that knows it as an `@interfaceObject`) and the tree holds the concrete type.
    pub typename_rewrites: Vec<(Name, Name)>,
    /// Per entity type, its key fields: an object whose key is null is not sent.
    pub keys: Vec<(Name, FieldSet)>,
}

impl EntityPart {
    /// Whether `@skip`/`@include` exclude everything this part selects for these
    /// (coerced) variable values: then the part need not be sent at all.
    pub fn is_excluded(&self, variables: &serde_json::Map<String, serde_json::Value>) -> bool {
        self.selection.is_excluded(variables)
    }
}

/// A selection set sent to a subgraph.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubSelection(pub Vec<SubItem>);

#[derive(Debug, Clone, PartialEq)]
pub enum SubItem {
    Field {
        key: Name,
        name: Name,
        arguments: Vec<Node<Argument>>,
        conditions: Conditions,
        selection: Option<SubSelection>,
    },
    Fragment {
        type_condition: Option<Name>,
        conditions: Conditions,
        selection: SubSelection,
    },
}

impl SubSelection {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `@skip`/`@include` exclude every selection (an empty set is not excluded).
    pub fn is_excluded(&self, variables: &serde_json::Map<String, serde_json::Value>) -> bool {
        !self.0.is_empty()
            && self.0.iter().all(|item| match item {
                SubItem::Field { conditions, .. } => !conditions.included(variables),
                SubItem::Fragment {
                    conditions,
                    selection,
                    ..
                } => !conditions.included(variables) || selection.is_excluded(variables),
            })
    }

    /// Add a field, merging with an existing one of the same response key.
    pub fn add_field(
        &mut self,
        key: &Name,
        name: &Name,
        arguments: &[Node<Argument>],
        conditions: &Conditions,
        selection: Option<SubSelection>,
    ) {
        for item in self.0.iter_mut() {
            if let SubItem::Field {
                key: k,
                name: n,
                conditions: c,
                selection: existing,
                ..
            } = item
                && k == key
                && n == name
                && c == conditions
            {
                match (existing, selection) {
                    (Some(existing), Some(new)) => existing.merge(new),
                    (existing @ None, Some(new)) => *existing = Some(new),
                    _ => {}
                }
                return;
            }
        }
        self.0.push(SubItem::Field {
            key: key.clone(),
            name: name.clone(),
            arguments: arguments.to_vec(),
            conditions: conditions.clone(),
            selection,
        });
    }

    pub fn add_typename(&mut self) {
        let typename = Name::new_static_unchecked("__typename");
        let present = self.0.iter().any(|item| {
            matches!(item, SubItem::Field { key, conditions, .. } if *key == typename && conditions.is_empty())
        });
        if !present {
            self.0.insert(
                0,
                SubItem::Field {
                    key: typename.clone(),
                    name: typename,
                    arguments: Vec::new(),
                    conditions: Conditions::default(),
                    selection: None,
                },
            );
        }
    }

    /// The fragment with this condition and directives, created if missing.
    pub fn fragment(
        &mut self,
        type_condition: Option<&Name>,
        conditions: &Conditions,
    ) -> &mut SubSelection {
        let position = self.0.iter().position(|item| {
            matches!(item, SubItem::Fragment { type_condition: t, conditions: c, .. }
                if t.as_ref() == type_condition && c == conditions)
        });
        let index = match position {
            Some(i) => i,
            None => {
                self.0.push(SubItem::Fragment {
                    type_condition: type_condition.cloned(),
                    conditions: conditions.clone(),
                    selection: SubSelection::default(),
                });
                self.0.len() - 1
            }
        };
        match &mut self.0[index] {
            SubItem::Fragment { selection, .. } => selection,
            SubItem::Field { .. } => unreachable!("index points at a fragment"),
        }
    }

    pub fn merge(&mut self, other: SubSelection) {
        for item in other.0 {
            match item {
                SubItem::Field {
                    key,
                    name,
                    arguments,
                    conditions,
                    selection,
                } => self.add_field(&key, &name, &arguments, &conditions, selection),
                SubItem::Fragment {
                    type_condition,
                    conditions,
                    selection,
                } => self
                    .fragment(type_condition.as_ref(), &conditions)
                    .merge(selection),
            }
        }
    }

    /// Compact GraphQL text: `{a b:c(x:1) d{e}}`.
    pub fn write_compact(&self, out: &mut String) {
        out.push('{');
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            match item {
                SubItem::Field {
                    key,
                    name,
                    arguments,
                    conditions,
                    selection,
                } => {
                    if key != name {
                        out.push_str(key);
                        out.push(':');
                    }
                    out.push_str(name);
                    if !arguments.is_empty() {
                        out.push('(');
                        for (j, arg) in arguments.iter().enumerate() {
                            if j > 0 {
                                out.push(',');
                            }
                            let _ = write!(out, "{}:{}", arg.name, arg.value);
                        }
                        out.push(')');
                    }
                    conditions.write(out);
                    if let Some(selection) = selection {
                        selection.write_compact(out);
                    }
                }
                SubItem::Fragment {
                    type_condition,
                    conditions,
                    selection,
                } => {
                    out.push_str("...");
                    if let Some(t) = type_condition {
                        out.push_str(" on ");
                        out.push_str(t);
                    }
                    conditions.write(out);
                    selection.write_compact(out);
                }
            }
        }
        out.push('}');
    }

    fn write_pretty(&self, out: &mut String, indent: usize) {
        let pad = "  ".repeat(indent);
        out.push_str("{\n");
        for item in &self.0 {
            out.push_str(&pad);
            out.push_str("  ");
            match item {
                SubItem::Field {
                    key,
                    name,
                    arguments,
                    conditions,
                    selection,
                } => {
                    let mut head = String::new();
                    if key != name {
                        let _ = write!(head, "{key}: ");
                    }
                    head.push_str(name);
                    if !arguments.is_empty() {
                        let args: Vec<String> = arguments
                            .iter()
                            .map(|a| format!("{}: {}", a.name, a.value))
                            .collect();
                        let _ = write!(head, "({})", args.join(", "));
                    }
                    conditions.write(&mut head);
                    out.push_str(&head);
                    if let Some(selection) = selection {
                        out.push(' ');
                        selection.write_pretty(out, indent + 1);
                    }
                }
                SubItem::Fragment {
                    type_condition,
                    conditions,
                    selection,
                } => {
                    out.push_str("...");
                    if let Some(t) = type_condition {
                        let _ = write!(out, " on {t}");
                    }
                    conditions.write(out);
                    out.push(' ');
                    selection.write_pretty(out, indent + 1);
                }
            }
            out.push('\n');
        }
        out.push_str(&pad);
        out.push('}');
    }
}

/// A plan and the facts the executor needs about it.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    /// Everything, or with `@defer`: the primary part.
    pub root: Option<PlanNode>,
    /// The fetches only deferred fragments need.
    pub deferred: Option<DeferredPlan>,
}

/// Where a deferred fragment applies: the response path of its parent objects (`List`
/// for each list level), and the fragment.
#[derive(Debug, Clone)]
pub struct DeferSite {
    pub defer: super::operation::Defer,
    pub path: Vec<PathElem>,
    /// The named type of the objects at `path`.
    pub parent_type: Name,
    /// The fragment without its `@defer`, to project on each object.
    pub selection: super::operation::SelectionSet,
}

/// The deferred parts of a plan. Fetches that need nothing from the primary part run
/// beside it (`beside`); the others run after it, step by step (`after`), and each
/// fragment is delivered as soon as the steps it needs are done.
#[derive(Debug, Clone)]
pub struct DeferredPlan {
    pub beside: Option<PlanNode>,
    pub after: Vec<PlanNode>,
    /// By defer id: how many of `after` must have run before the fragment is complete
    /// (0: once the primary part and `beside` are).
    pub ready_after: Vec<usize>,
    /// The deferred fragments, by defer id.
    pub sites: Vec<DeferSite>,
}

impl QueryPlan {
    /// Every fetch, in execution order.
    pub fn fetches(&self) -> Vec<&FetchNode> {
        fn walk<'a>(node: &'a PlanNode, out: &mut Vec<&'a FetchNode>) {
            match node {
                PlanNode::Sequence(nodes) | PlanNode::Parallel(nodes) => {
                    nodes.iter().for_each(|n| walk(n, out))
                }
                PlanNode::Fetch(f) => out.push(f),
            }
        }
        let mut out = Vec::new();
        if let Some(root) = &self.root {
            walk(root, &mut out);
        }
        if let Some(deferred) = &self.deferred {
            for node in deferred.beside.iter().chain(&deferred.after) {
                walk(node, &mut out);
            }
        }
        out
    }
}

impl fmt::Display for QueryPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::from("QueryPlan {\n");
        if let Some(root) = &self.root {
            write_node(root, &mut out, 1);
        }
        if let Some(deferred) = &self.deferred {
            if let Some(beside) = &deferred.beside {
                out.push_str("  Deferred(beside the primary part) {\n");
                write_node(beside, &mut out, 2);
                out.push_str("  },\n");
            }
            for (i, step) in deferred.after.iter().enumerate() {
                let _ = writeln!(out, "  Deferred(step {}) {{", i + 1);
                write_node(step, &mut out, 2);
                out.push_str("  },\n");
            }
            for site in &deferred.sites {
                let ready = deferred
                    .ready_after
                    .get(site.defer.id)
                    .copied()
                    .unwrap_or(0);
                let _ = writeln!(
                    out,
                    "  Defer(id: {}, label: {:?}, path: \"{}\", after step: {ready}),",
                    site.defer.id,
                    site.defer.label.as_deref().unwrap_or(""),
                    path_to_string(&site.path),
                );
            }
        }
        out.push_str("}\n");
        f.write_str(&out)
    }
}

fn write_node(node: &PlanNode, out: &mut String, indent: usize) {
    let pad = "  ".repeat(indent);
    match node {
        PlanNode::Sequence(nodes) | PlanNode::Parallel(nodes) => {
            let name = if matches!(node, PlanNode::Sequence(_)) {
                "Sequence"
            } else {
                "Parallel"
            };
            let _ = writeln!(out, "{pad}{name} {{");
            for n in nodes {
                write_node(n, out, indent + 1);
            }
            let _ = writeln!(out, "{pad}}},");
        }
        PlanNode::Fetch(fetch) => match &fetch.kind {
            FetchKind::Root { selection } => {
                let _ = write!(out, "{pad}Fetch(service: \"{}\") ", fetch.service);
                selection.write_pretty(out, indent);
                out.push_str(",\n");
            }
            FetchKind::Entities(parts) => {
                let paths: Vec<String> = parts
                    .iter()
                    .flat_map(|p| p.paths.iter().map(|p| path_to_string(p)))
                    .collect();
                let _ = writeln!(
                    out,
                    "{pad}Flatten(path: \"{}\") Fetch(service: \"{}\") {{",
                    paths.join("\", \""),
                    fetch.service
                );
                for part in parts {
                    let _ = write!(out, "{pad}  ");
                    let reps: Vec<String> = part
                        .representation
                        .iter()
                        .map(|(t, fs)| format!("... on {t} {{ __typename {fs} }}"))
                        .collect();
                    let _ = write!(out, "{{ {} }} ", reps.join(" "));
                    if !part.typename_rewrites.is_empty() {
                        let from: Vec<&str> = part
                            .typename_rewrites
                            .iter()
                            .map(|(f, _)| f.as_str())
                            .collect();
                        let _ = write!(out, "(as interface: {}) ", from.join(", "));
                    }
                    out.push_str("=> ");
                    part.selection.write_pretty(out, indent + 1);
                    out.push('\n');
                }
                let _ = writeln!(out, "{pad}}},");
            }
        },
    }
}

/// Merge field set `b` into `a` (union of fields).
pub fn merge_field_sets(a: &mut FieldSet, b: &FieldSet) {
    for item in &b.0 {
        match item {
            FieldSetItem::Field {
                name,
                arguments,
                children,
            } => {
                let existing = a.0.iter_mut().find_map(|i| match i {
                    FieldSetItem::Field {
                        name: n,
                        arguments: args,
                        children: c,
                    } if n == name && args == arguments => Some(c),
                    _ => None,
                });
                match existing {
                    Some(c) => merge_field_sets(c, children),
                    None => a.0.push(item.clone()),
                }
            }
            FieldSetItem::Fragment {
                type_condition,
                children,
            } => {
                let existing = a.0.iter_mut().find_map(|i| match i {
                    FieldSetItem::Fragment {
                        type_condition: t,
                        children: c,
                    } if t == type_condition => Some(c),
                    _ => None,
                });
                match existing {
                    Some(c) => merge_field_sets(c, children),
                    None => a.0.push(item.clone()),
                }
            }
        }
    }
}
