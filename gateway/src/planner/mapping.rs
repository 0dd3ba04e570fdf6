//! A BFF's own names and argument rules, mapped back onto the composed graph's before
//! planning. The client's operation is validated against the BFF's schema; mapped, it
//! is the operation the shared graph would have been asked (its field and type names,
//! fixed and default arguments written in), with the client's response keys kept. The
//! projection then needs only the BFF's names for `__typename`.

use std::collections::HashMap;
use std::sync::Arc;

use apollo_compiler::ast::{Argument, Type, Value};
use apollo_compiler::{Name, Node};

use super::computed::{Computed, Derived, Step};
use super::operation::{Field, Fragment, Operation, Selection, SelectionSet};

/// An argument a BFF sets: always (`fixed`, hidden from its clients) or when the client
/// leaves it out (its own default).
#[derive(Debug, Clone)]
struct SetArgument {
    name: Name,
    value: Node<Value>,
    fixed: bool,
}

#[derive(Debug, Default, Clone)]
pub struct ViewMapping {
    /// The BFF's type name → the graph's.
    types_back: HashMap<Name, Name>,
    /// The graph's type name → the BFF's.
    types_out: Arc<HashMap<Name, Name>>,
    /// (the graph's type, the BFF's field name) → the graph's field name.
    fields_back: HashMap<(Name, Name), Name>,
    /// Arguments set per (the graph's type, the graph's field).
    arguments: HashMap<(Name, Name), Vec<SetArgument>>,
    /// Computed and flattened fields per (the graph's type, the field's name before
    /// any rename).
    derived: HashMap<(Name, Name), Arc<Derived>>,
}

impl ViewMapping {
    pub fn is_empty(&self) -> bool {
        self.types_back.is_empty()
            && self.fields_back.is_empty()
            && self.arguments.is_empty()
            && self.derived.is_empty()
    }

    /// `ty.field` is computed from its siblings.
    pub fn compute(&mut self, ty: Name, field: Name, computed: Computed) {
        let derived = Arc::new(Derived::Computed(computed));
        self.derived.insert((ty, field), derived);
    }

    /// `ty.field` is the nested field at the end of `path`.
    pub fn flatten(&mut self, ty: Name, field: Name, path: Vec<Step>) {
        self.derived
            .insert((ty, field), Arc::new(Derived::Flatten(path)));
    }

    /// The arguments set on `ty.field` (the graph's names) where no client can give
    /// any: on a step of a flattened path.
    pub fn arguments_set(&self, ty: &Name, field: &Name) -> Vec<Node<Argument>> {
        let rules = self.arguments.get(&(ty.clone(), field.clone()));
        rules
            .into_iter()
            .flatten()
            .map(|rule| {
                Node::new(Argument {
                    name: rule.name.clone(),
                    value: rule.value.clone(),
                })
            })
            .collect()
    }

    pub fn rename_type(&mut self, graph: Name, bff: Name) {
        self.types_back.insert(bff.clone(), graph.clone());
        Arc::make_mut(&mut self.types_out).insert(graph, bff);
    }

    /// `ty.field` of the graph is `bff_field` in the BFF.
    pub fn rename_field(&mut self, ty: Name, field: Name, bff_field: Name) {
        self.fields_back.insert((ty, bff_field), field);
    }

    /// `ty.field(argument: value)` always (`fixed`) or when the client leaves it out.
    pub fn set_argument(
        &mut self,
        ty: Name,
        field: Name,
        argument: Name,
        value: Value,
        fixed: bool,
    ) {
        self.arguments
            .entry((ty, field))
            .or_default()
            .push(SetArgument {
                name: argument,
                value: Node::new(value),
                fixed,
            });
    }

    /// The graph's name of a type the BFF may have renamed.
    pub fn graph_type<'n>(&'n self, name: &'n Name) -> &'n Name {
        self.types_back.get(name).unwrap_or(name)
    }

    /// The operation in the graph's names, with the BFF's arguments set.
    pub fn apply(&self, mut operation: Operation) -> Operation {
        if self.is_empty() {
            return operation;
        }
        let root = operation.root_type.clone();
        operation.selection = self.set(&root, std::mem::take(&mut operation.selection));
        for variable in &mut operation.variables {
            let ty = self.graph_named(&variable.ty);
            variable.make_mut().ty = Node::new(ty);
        }
        if !self.types_out.is_empty() {
            operation.client_type_names = Some(self.types_out.clone());
        }
        operation
    }

    fn set(&self, parent: &Name, set: SelectionSet) -> SelectionSet {
        SelectionSet(
            set.0
                .into_iter()
                .map(|item| match item {
                    Selection::Field(field) => Selection::Field(self.field(parent, field)),
                    Selection::Fragment(fragment) => {
                        let type_condition =
                            fragment.type_condition.map(|c| self.graph_type(&c).clone());
                        let inner = type_condition.as_ref().unwrap_or(parent);
                        Selection::Fragment(Fragment {
                            selection: self.set(inner, fragment.selection),
                            type_condition,
                            ..fragment
                        })
                    }
                })
                .collect(),
        )
    }

    fn field(&self, parent: &Name, mut field: Field) -> Field {
        if field.name.starts_with("__") {
            return field;
        }
        if let Some(name) = self.fields_back.get(&(parent.clone(), field.name.clone())) {
            field.name = name.clone();
        }
        field.derived = self
            .derived
            .get(&(parent.clone(), field.name.clone()))
            .cloned();
        if let Some(rules) = self.arguments.get(&(parent.clone(), field.name.clone())) {
            for rule in rules {
                let given = field.arguments.iter().any(|a| a.name == rule.name);
                if rule.fixed || !given {
                    field.arguments.retain(|a| a.name != rule.name);
                    field.arguments.push(Node::new(Argument {
                        name: rule.name.clone(),
                        value: rule.value.clone(),
                    }));
                }
            }
        }
        field.ty = self.graph_named(&field.ty);
        let inner = field.ty.inner_named_type().clone();
        field.selection = self.set(&inner, std::mem::take(&mut field.selection));
        field
    }

    /// `ty` with its named type in the graph's name.
    fn graph_named(&self, ty: &Type) -> Type {
        match ty {
            Type::Named(n) => Type::Named(self.graph_type(n).clone()),
            Type::NonNullNamed(n) => Type::NonNullNamed(self.graph_type(n).clone()),
            Type::List(inner) => Type::List(Box::new(self.graph_named(inner))),
            Type::NonNullList(inner) => Type::NonNullList(Box::new(self.graph_named(inner))),
        }
    }
}
