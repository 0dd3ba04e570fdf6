//! The normalized operation: a validated client operation with named fragments inlined,
//! fragments on the parent's own type flattened, and same-key fields merged. Both the
//! planner and the response projection walk this tree, never the raw document.

use apollo_compiler::ast::{Argument, OperationType, Type, VariableDefinition};
use apollo_compiler::executable::{self, ExecutableDocument};
use apollo_compiler::validation::Valid;
use apollo_compiler::{Name, Node, Schema};
use serde_json::Value as Json;
use std::borrow::Cow;

use super::computed::{Computed, Derived, Step};
use super::error::PlanError;

/// Upper bound on normalized selections, so fragment fan-out cannot explode memory.
const MAX_SELECTIONS: usize = 50_000;

#[derive(Debug, Clone)]
pub struct Operation {
    pub kind: OperationType,
    pub name: Option<Name>,
    pub root_type: Name,
    pub variables: Vec<Node<VariableDefinition>>,
    pub selection: SelectionSet,
    /// How many `@defer` fragments the selection keeps (ids `0..defers`).
    pub defers: usize,
    /// The names a BFF gives the graph's types, for `__typename` (`mapping.rs`).
    pub client_type_names: Option<std::sync::Arc<std::collections::HashMap<Name, Name>>>,
}

#[derive(Debug, Clone, Default)]
pub struct SelectionSet(pub Vec<Selection>);

#[derive(Debug, Clone)]
pub enum Selection {
    Field(Field),
    Fragment(Fragment),
}

#[derive(Debug, Clone)]
pub struct Field {
    /// Response key: the alias, or the field name.
    pub key: Name,
    pub name: Name,
    pub arguments: Vec<Node<Argument>>,
    pub conditions: Conditions,
    /// The field's type in the schema.
    pub ty: Type,
    pub selection: SelectionSet,
    /// A BFF's field the graph lacks (`computed.rs`): planned as what it is made of.
    pub derived: Option<std::sync::Arc<Derived>>,
}

impl Field {
    /// The same field with another selection (a part of it planned elsewhere).
    pub fn with_selection(&self, selection: SelectionSet) -> Field {
        Field {
            key: self.key.clone(),
            name: self.name.clone(),
            arguments: self.arguments.clone(),
            conditions: self.conditions.clone(),
            ty: self.ty.clone(),
            selection,
            derived: self.derived.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Fragment {
    pub type_condition: Option<Name>,
    pub conditions: Conditions,
    pub selection: SelectionSet,
    /// `@defer` on the fragment (queries only): its fields may come in a later payload.
    pub defer: Option<Defer>,
}

/// One `@defer` of a query, numbered in document order.
#[derive(Debug, Clone, PartialEq)]
pub struct Defer {
    pub id: usize,
    pub label: Option<String>,
    /// `if: $variable`; `None` when it always defers.
    pub when: Option<Name>,
}

impl Defer {
    /// `@defer` of a fragment; `if: false` is no defer at all.
    fn from_directives(
        directives: &apollo_compiler::ast::DirectiveList,
        id: usize,
    ) -> Option<Self> {
        let d = directives.iter().find(|d| d.name == "defer")?;
        let when = match d.specified_argument_by_name("if").map(|v| &**v) {
            Some(apollo_compiler::ast::Value::Boolean(false)) => return None,
            Some(apollo_compiler::ast::Value::Variable(v)) => Some(v.clone()),
            _ => None,
        };
        let label = match d.specified_argument_by_name("label").map(|v| &**v) {
            Some(apollo_compiler::ast::Value::String(l)) => Some(l.clone()),
            _ => None,
        };
        Some(Defer { id, label, when })
    }

    /// Whether it defers for these (coerced) variable values.
    pub fn active(&self, variables: &serde_json::Map<String, Json>) -> bool {
        self.when.as_ref().is_none_or(|v| {
            variables
                .get(v.as_str())
                .and_then(Json::as_bool)
                .unwrap_or(true)
        })
    }
}

/// `@skip` / `@include` of a selection, evaluated per request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conditions(pub Vec<Condition>);

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// `true` for `@include`, `false` for `@skip`.
    pub include: bool,
    pub value: ConditionValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConditionValue {
    Const(bool),
    Variable(Name),
}

impl Conditions {
    fn from_directives(directives: &apollo_compiler::ast::DirectiveList) -> Self {
        let mut list = Vec::new();
        for d in directives.iter() {
            let include = match d.name.as_str() {
                "include" => true,
                "skip" => false,
                _ => continue,
            };
            let value = match d.specified_argument_by_name("if").map(|v| &**v) {
                Some(apollo_compiler::ast::Value::Boolean(b)) => ConditionValue::Const(*b),
                Some(apollo_compiler::ast::Value::Variable(v)) => {
                    ConditionValue::Variable(v.clone())
                }
                _ => continue,
            };
            // A constant that keeps the selection is no condition at all.
            if value == ConditionValue::Const(include) {
                continue;
            }
            list.push(Condition { include, value });
        }
        Conditions(list)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the selection is kept for these (coerced) variable values.
    pub fn included(&self, variables: &serde_json::Map<String, Json>) -> bool {
        self.0.iter().all(|c| {
            let value = match &c.value {
                ConditionValue::Const(b) => *b,
                ConditionValue::Variable(v) => variables
                    .get(v.as_str())
                    .and_then(Json::as_bool)
                    .unwrap_or(false),
            };
            value == c.include
        })
    }

    /// GraphQL text of the directives, for subgraph queries.
    pub fn write(&self, out: &mut String) {
        for c in &self.0 {
            out.push_str(if c.include {
                "@include(if:"
            } else {
                "@skip(if:"
            });
            match &c.value {
                ConditionValue::Const(b) => out.push_str(if *b { "true" } else { "false" }),
                ConditionValue::Variable(v) => {
                    out.push('$');
                    out.push_str(v);
                }
            }
            out.push(')');
        }
    }

    pub fn variables(&self) -> impl Iterator<Item = &Name> {
        self.0.iter().filter_map(|c| match &c.value {
            ConditionValue::Variable(v) => Some(v),
            ConditionValue::Const(_) => None,
        })
    }
}

impl Operation {
    /// Normalize the named (or only) operation of a validated document.
    pub fn from_document(
        schema: &Valid<Schema>,
        document: &Valid<ExecutableDocument>,
        operation: &executable::Operation,
    ) -> Result<Self, PlanError> {
        let mut budget = Budget {
            selections: MAX_SELECTIONS,
            // Incremental delivery is for queries; elsewhere `@defer` changes nothing.
            defers: (operation.operation_type == OperationType::Query).then_some(0),
        };
        let root_type = operation.object_type().clone();
        let selection = normalize(schema, document, &operation.selection_set, &mut budget)?;
        Ok(Operation {
            kind: operation.operation_type,
            name: operation.name.clone(),
            root_type,
            variables: operation.variables.clone(),
            selection,
            defers: budget.defers.unwrap_or(0),
            client_type_names: None,
        })
    }
}

/// What normalization may still spend, and the next `@defer` id (`None`: defers are
/// ignored).
struct Budget {
    selections: usize,
    defers: Option<usize>,
}

fn normalize(
    schema: &Valid<Schema>,
    document: &ExecutableDocument,
    set: &executable::SelectionSet,
    budget: &mut Budget,
) -> Result<SelectionSet, PlanError> {
    let mut out = SelectionSet::default();
    normalize_into(schema, document, set, &set.ty, &mut out, budget)?;
    Ok(out)
}

fn normalize_into(
    schema: &Valid<Schema>,
    document: &ExecutableDocument,
    set: &executable::SelectionSet,
    parent: &Name,
    out: &mut SelectionSet,
    budget: &mut Budget,
) -> Result<(), PlanError> {
    for selection in &set.selections {
        budget.selections = budget
            .selections
            .checked_sub(1)
            .ok_or(PlanError::TooLarge)?;
        match selection {
            executable::Selection::Field(f) => {
                let conditions = Conditions::from_directives(&f.directives);
                if is_skipped_always(&conditions) {
                    continue;
                }
                let selection = normalize(schema, document, &f.selection_set, budget)?;
                out.push_field(Field {
                    key: f.response_key().clone(),
                    name: f.name.clone(),
                    arguments: f.arguments.clone(),
                    conditions,
                    ty: f.ty().clone(),
                    selection,
                    derived: None,
                });
            }
            executable::Selection::InlineFragment(fragment) => {
                let conditions = Conditions::from_directives(&fragment.directives);
                fragment_into(
                    schema,
                    document,
                    fragment.type_condition.as_ref(),
                    conditions,
                    &fragment.directives,
                    &fragment.selection_set,
                    parent,
                    out,
                    budget,
                )?;
            }
            executable::Selection::FragmentSpread(spread) => {
                let conditions = Conditions::from_directives(&spread.directives);
                let Some(def) = document.fragments.get(&spread.fragment_name) else {
                    // Validation guarantees the fragment exists.
                    continue;
                };
                fragment_into(
                    schema,
                    document,
                    Some(def.type_condition()),
                    conditions,
                    &spread.directives,
                    &def.selection_set,
                    parent,
                    out,
                    budget,
                )?;
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn fragment_into(
    schema: &Valid<Schema>,
    document: &ExecutableDocument,
    type_condition: Option<&Name>,
    conditions: Conditions,
    directives: &apollo_compiler::ast::DirectiveList,
    set: &executable::SelectionSet,
    parent: &Name,
    out: &mut SelectionSet,
    budget: &mut Budget,
) -> Result<(), PlanError> {
    if is_skipped_always(&conditions) {
        return Ok(());
    }
    let defer = match budget.defers.as_mut() {
        Some(next) => Defer::from_directives(directives, *next).inspect(|_| *next += 1),
        None => None,
    };
    // A fragment on the parent's own type (or on an abstract type every object of the
    // parent's object type satisfies) adds nothing but its conditions.
    let redundant = match type_condition {
        None => true,
        Some(t) => {
            t == parent || (schema.get_object(parent).is_some() && schema.is_subtype(t, parent))
        }
    };
    if redundant && conditions.is_empty() && defer.is_none() {
        return normalize_into(schema, document, set, parent, out, budget);
    }
    let selection = normalize(schema, document, set, budget)?;
    out.0.push(Selection::Fragment(Fragment {
        type_condition: if redundant {
            None
        } else {
            type_condition.cloned()
        },
        conditions,
        selection,
        defer,
    }));
    Ok(())
}

fn is_skipped_always(conditions: &Conditions) -> bool {
    conditions
        .0
        .iter()
        .any(|c| c.value == ConditionValue::Const(!c.include))
}

impl SelectionSet {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Add a field, merging it into an earlier field with the same response key and
    /// conditions (validation guarantees same-key fields are mergeable).
    pub fn push_field(&mut self, field: Field) {
        for existing in self.0.iter_mut() {
            if let Selection::Field(f) = existing
                && f.key == field.key
                && f.conditions == field.conditions
            {
                for s in field.selection.0 {
                    match s {
                        Selection::Field(inner) => f.selection.push_field(inner),
                        other => f.selection.0.push(other),
                    }
                }
                return;
            }
        }
        self.0.push(Selection::Field(field));
    }
}

/// The selection the planner plans: each computed field replaced by the siblings it
/// reads, under their own keys, and each flattened field by its path, nested under the
/// client's key (the projection still sees the BFF's fields).
pub fn expand_derived(set: &SelectionSet) -> Cow<'_, SelectionSet> {
    fn has_derived(set: &SelectionSet) -> bool {
        set.0.iter().any(|item| match item {
            Selection::Field(f) => f.derived.is_some() || has_derived(&f.selection),
            Selection::Fragment(f) => has_derived(&f.selection),
        })
    }
    if !has_derived(set) {
        return Cow::Borrowed(set);
    }
    let mut out = SelectionSet::default();
    for item in &set.0 {
        match item {
            Selection::Field(field) => match field.derived.as_deref() {
                Some(Derived::Computed(computed)) => {
                    for (dep, ty) in computed.deps() {
                        let Ok(key) = Name::new(&Computed::dep_key(&field.key, dep)) else {
                            continue;
                        };
                        out.0.push(Selection::Field(Field {
                            key,
                            name: dep.clone(),
                            arguments: Vec::new(),
                            conditions: field.conditions.clone(),
                            ty: ty.clone(),
                            selection: SelectionSet::default(),
                            derived: None,
                        }));
                    }
                }
                Some(Derived::Flatten(steps)) => {
                    out.0.push(Selection::Field(nested(field, steps)));
                }
                None => out.0.push(Selection::Field(
                    field.with_selection(expand_derived(&field.selection).into_owned()),
                )),
            },
            Selection::Fragment(fragment) => out.0.push(Selection::Fragment(Fragment {
                selection: expand_derived(&fragment.selection).into_owned(),
                ..fragment.clone()
            })),
        }
    }
    Cow::Owned(out)
}

/// A flattened field as the graph has it: `authorName: author { name }` for
/// `Review.authorName` over `author.name`, the client's selection under the last step.
fn nested(field: &Field, steps: &[Step]) -> Field {
    let step_field = |step: &Step, selection| Field {
        key: step.name.clone(),
        name: step.name.clone(),
        arguments: step.arguments.clone(),
        conditions: Conditions::default(),
        ty: step.ty.clone(),
        selection,
        derived: None,
    };
    let mut selection = expand_derived(&field.selection).into_owned();
    let Some((first, rest)) = steps.split_first() else {
        return field.with_selection(selection);
    };
    for step in rest.iter().rev() {
        selection = SelectionSet(vec![Selection::Field(step_field(step, selection))]);
    }
    Field {
        key: field.key.clone(),
        conditions: field.conditions.clone(),
        ..step_field(first, selection)
    }
}
