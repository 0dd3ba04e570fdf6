//! Building a plan: walk the normalized operation, keep each field in the subgraph
//! already answering when it can, and otherwise jump to another subgraph through an
//! entity key (`_entities`), fetching key and `@requires` fields first.
//!
//! Fetch groups are keyed by (subgraph, response path), so every field needed from one
//! subgraph at one place becomes one fetch. Groups are then layered by dependency depth:
//! a layer is one step of parallel fetches, and entity fetches of one subgraph in one
//! layer share one request.

use apollo_compiler::ast::{OperationType, Type, Value};
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::{Name, Node};
use rustc_hash::FxHashMap;

use super::PlanError;
use super::operation::{Conditions, Field, Operation, Selection, SelectionSet};
use super::plan::{
    EntityPart, FetchKind, FetchNode, PathElem, PlanNode, QueryPlan, SubSelection, merge_field_sets,
};
use crate::schema::fieldset::{FieldSet, FieldSetItem, response_key};
use crate::schema::{GraphId, Supergraph};

/// How deep key/requires resolution may chain jumps before giving up.
const MAX_JUMP_DEPTH: usize = 6;
/// Upper bound on selections visited when scoring one root field's candidate graphs.
const MAX_SCORE_VISITS: usize = 10_000;
/// Upper bound on selections the completability look-ahead visits in one plan.
const MAX_LOOKAHEAD_VISITS: usize = 100_000;
/// Upper bound on fetch groups in one plan.
const MAX_GROUPS: usize = 2_000;

/// The suffix of the aliases [`Builder::alias_conflicts`] gives (`id__gwa1`).
pub const ALIAS_MARK: &str = "__gwa";

/// Response keys seen in one selection set of a subgraph query (fragments flattened).
#[derive(Default)]
struct Level {
    entries: Vec<LevelEntry>,
}

struct LevelEntry {
    key: Name,
    parent: Name,
    shape: String,
    child: Level,
}

struct Group {
    graph: GraphId,
    /// Empty for root groups.
    path: Vec<PathElem>,
    entity: bool,
    selection: SubSelection,
    representation: Vec<(Name, FieldSet)>,
    /// The key part of each representation (an entity with a null key is not sent).
    keys: Vec<(Name, FieldSet)>,
    /// Runtime types whose representations are sent as another type (an interface).
    rewrites: Vec<(Name, Name)>,
    deps: Vec<usize>,
}

/// What to plan in the target graph of an entity jump.
#[derive(Clone, Copy)]
enum Target<'o> {
    Field(&'o Field),
    Set(&'o SelectionSet),
}

#[derive(Clone)]
struct Ctx<'p> {
    graph: GraphId,
    parent: Name,
    path: Vec<PathElem>,
    group: usize,
    provided: Option<&'p FieldSet>,
    jump_depth: usize,
}

struct Builder<'a> {
    sg: &'a Supergraph,
    groups: Vec<Group>,
    /// Selections the completability look-ahead may still visit in this plan; once
    /// spent, fields are planned greedily (still correct where the supergraph allows).
    lookahead: std::cell::Cell<usize>,
}

pub fn build_plan(sg: &Supergraph, op: &Operation) -> Result<QueryPlan, PlanError> {
    let mut b = Builder {
        sg,
        groups: Vec::new(),
        lookahead: std::cell::Cell::new(MAX_LOOKAHEAD_VISITS),
    };
    // Root groups in the order they were created; for mutations each is a serial step.
    let mut roots: Vec<usize> = Vec::new();
    b.plan_root(op, &op.selection, &Conditions::default(), &mut roots)?;

    let op_name = op.name.as_ref().map(|n| n.as_str()).unwrap_or("");
    let mut counter = 0usize;
    let root = if op.kind == OperationType::Mutation {
        let mut steps = Vec::new();
        for &r in &roots {
            let members = b.descendants(r);
            if let Some(node) = b.layered(&members, op, op_name, &mut counter) {
                steps.push(node);
            }
        }
        wrap(steps, PlanNode::Sequence)
    } else {
        let all: Vec<usize> = (0..b.groups.len()).collect();
        b.layered(&all, op, op_name, &mut counter)
    };
    Ok(QueryPlan { root })
}

fn wrap(mut nodes: Vec<PlanNode>, make: fn(Vec<PlanNode>) -> PlanNode) -> Option<PlanNode> {
    match nodes.len() {
        0 => None,
        1 => nodes.pop(),
        _ => Some(make(nodes)),
    }
}

fn list_depth(ty: &Type) -> usize {
    match ty {
        Type::Named(_) | Type::NonNullNamed(_) => 0,
        Type::List(inner) | Type::NonNullList(inner) => 1 + list_depth(inner),
    }
}

fn child_path(path: &[PathElem], field: &Field) -> Vec<PathElem> {
    let mut p = Vec::with_capacity(path.len() + 2);
    p.extend_from_slice(path);
    p.push(PathElem::Key(field.key.clone()));
    for _ in 0..list_depth(&field.ty) {
        p.push(PathElem::List);
    }
    p
}

impl<'a> Builder<'a> {
    fn new_group(
        &mut self,
        graph: GraphId,
        path: Vec<PathElem>,
        entity: bool,
    ) -> Result<usize, PlanError> {
        if self.groups.len() >= MAX_GROUPS {
            return Err(PlanError::TooLarge);
        }
        self.groups.push(Group {
            graph,
            path,
            entity,
            selection: SubSelection::default(),
            representation: Vec::new(),
            keys: Vec::new(),
            rewrites: Vec::new(),
            deps: Vec::new(),
        });
        Ok(self.groups.len() - 1)
    }

    fn plan_root(
        &mut self,
        op: &Operation,
        set: &SelectionSet,
        conditions: &Conditions,
        roots: &mut Vec<usize>,
    ) -> Result<(), PlanError> {
        for item in &set.0 {
            match item {
                Selection::Fragment(frag) => {
                    let mut merged = conditions.clone();
                    merged.0.extend(frag.conditions.0.iter().cloned());
                    self.plan_root(op, &frag.selection, &merged, roots)?;
                }
                Selection::Field(field) => {
                    // Answered by the gateway itself.
                    if matches!(field.name.as_str(), "__typename" | "__schema" | "__type") {
                        continue;
                    }
                    let graph = self.choose_root_graph(&op.root_type, field)?;
                    let group = match op.kind {
                        OperationType::Mutation => match roots.last() {
                            Some(&last) if self.groups[last].graph == graph => last,
                            _ => {
                                let g = self.new_group(graph, Vec::new(), false)?;
                                roots.push(g);
                                g
                            }
                        },
                        _ => match roots.iter().find(|&&r| self.groups[r].graph == graph) {
                            Some(&r) => r,
                            None => {
                                let g = self.new_group(graph, Vec::new(), false)?;
                                roots.push(g);
                                g
                            }
                        },
                    };
                    let ctx = Ctx {
                        graph,
                        parent: op.root_type.clone(),
                        path: Vec::new(),
                        group,
                        provided: None,
                        jump_depth: 0,
                    };
                    let mut out = SubSelection::default();
                    let mut deps = Vec::new();
                    self.plan_field(&ctx, field, &mut out, &mut deps)?;
                    let target = &mut self.groups[group].selection;
                    if conditions.is_empty() {
                        target.merge(out);
                    } else {
                        target.fragment(None, conditions).merge(out);
                    }
                }
            }
        }
        Ok(())
    }

    /// For a root field several subgraphs resolve, prefer the one that also resolves
    /// most of its direct subfields (fewer jumps later).
    fn choose_root_graph(&self, root: &Name, field: &Field) -> Result<GraphId, PlanError> {
        let meta = self
            .sg
            .types
            .get(root)
            .and_then(|t| t.fields.get(&field.name))
            .ok_or_else(|| PlanError::Unplannable(format!("{root}.{}", field.name)))?;
        let mut candidates: Vec<GraphId> = meta
            .graphs
            .iter()
            .filter(|(_, f)| f.resolvable)
            .map(|(&g, _)| g)
            .collect();
        candidates.sort_unstable();
        // Prefer a graph that can complete the selection at all, then the one that
        // returns the most selected fields itself (fewer jumps later).
        let score = |g: GraphId| {
            let ctx = Ctx {
                graph: g,
                parent: root.clone(),
                path: Vec::new(),
                group: 0,
                provided: None,
                jump_depth: 0,
            };
            let child = self.child_ctx(&ctx, field);
            let completable =
                field.selection.is_empty() || self.completable(&child, &field.selection);
            let mut budget = MAX_SCORE_VISITS;
            let local = self.local_fields(&child, &field.selection, &mut budget);
            (completable, local)
        };
        candidates
            .iter()
            .copied()
            .max_by_key(|&g| (score(g), std::cmp::Reverse(g)))
            .ok_or_else(|| {
                PlanError::Unplannable(format!("{root}.{}: no subgraph resolves it", field.name))
            })
    }

    /// How many selected fields (at any depth) the graph of `ctx` returns without an
    /// entity jump; visits at most `budget` selections.
    fn local_fields(&self, ctx: &Ctx<'_>, set: &SelectionSet, budget: &mut usize) -> usize {
        let mut count = 0;
        for item in &set.0 {
            if *budget == 0 {
                break;
            }
            *budget -= 1;
            match item {
                Selection::Fragment(frag) => {
                    let on = frag.type_condition.as_ref().unwrap_or(&ctx.parent);
                    let in_graph = self.sg.type_in_graph(on, ctx.graph).is_some();
                    if in_graph {
                        let sub = Ctx {
                            parent: on.clone(),
                            ..ctx.clone()
                        };
                        count += self.local_fields(&sub, &frag.selection, budget);
                    }
                }
                Selection::Field(f) if f.name == "__typename" => {}
                Selection::Field(f) => {
                    if self.resolvable_here(ctx, &ctx.parent, &f.name) {
                        count += 1;
                        if !f.selection.is_empty() {
                            let child = self.child_ctx(ctx, f);
                            count += self.local_fields(&child, &f.selection, budget);
                        }
                    }
                }
            }
        }
        count
    }

    /// Whether `graph` resolves `type_name.field` itself. Fields an `@interfaceObject`
    /// contributes to the implementations of an interface carry a graph-less
    /// `@join__field`: no graph resolves them on the object type, only on the interface.
    fn resolves(&self, type_name: &str, field: &str, graph: GraphId) -> bool {
        self.sg.resolves(type_name, field, graph) && !self.via_interface_object(type_name, field)
    }

    fn via_interface_object(&self, type_name: &str, field: &str) -> bool {
        let Some(ExtendedType::Object(object)) = self.sg.schema.types.get(type_name) else {
            return false;
        };
        object.fields.get(field).is_some_and(|f| {
            f.directives
                .get_all("join__field")
                .any(|d| d.specified_argument_by_name("graph").is_none())
        })
    }

    /// Whether `graph` knows the interface `type_name` as an `@interfaceObject` (it
    /// answers `__typename` with the interface name).
    fn is_interface_object(&self, type_name: &str, graph: GraphId) -> bool {
        self.sg
            .type_in_graph(type_name, graph)
            .is_some_and(|t| t.is_interface_object)
    }

    /// Whether the graph of `ctx` can return `type_name.field` on this path without an
    /// entity jump: it resolves the field (and can read its `@requires` inputs locally,
    /// which only `@provides` allows), or the field is provided here.
    fn resolvable_here(&self, ctx: &Ctx<'_>, type_name: &str, field: &str) -> bool {
        if field == "__typename" {
            return !self.is_interface_object(type_name, ctx.graph);
        }
        if ctx
            .provided
            .is_some_and(|p| p.field(type_name, field).is_some())
        {
            return true;
        }
        if !self.resolves(type_name, field, ctx.graph) {
            return false;
        }
        match self
            .sg
            .field_in_graph(type_name, field, ctx.graph)
            .and_then(|f| f.requires.as_ref())
        {
            None => true,
            // Bounded, so requires cycles in a broken supergraph cannot recurse forever.
            Some(_) if ctx.jump_depth >= MAX_JUMP_DEPTH => false,
            Some(requires) => {
                let deeper = Ctx {
                    jump_depth: ctx.jump_depth + 1,
                    ..ctx.clone()
                };
                self.providable(&deeper, type_name, requires)
            }
        }
    }

    fn plan_set(
        &mut self,
        ctx: &Ctx<'_>,
        set: &SelectionSet,
        out: &mut SubSelection,
        deps: &mut Vec<usize>,
    ) -> Result<(), PlanError> {
        let parent_abstract = self.sg.is_abstract(&ctx.parent);
        if parent_abstract && self.is_interface_object(&ctx.parent, ctx.graph) {
            return self.plan_interface_object_set(ctx, set, out, deps);
        }
        for item in &set.0 {
            match item {
                Selection::Fragment(frag) => {
                    if !parent_abstract {
                        let applies = frag
                            .type_condition
                            .as_ref()
                            .is_none_or(|c| self.sg.satisfies(&ctx.parent, c));
                        if !applies {
                            continue;
                        }
                        self.plan_inline(ctx, &frag.conditions, &frag.selection, out, deps)?;
                        continue;
                    }
                    out.add_typename();
                    let runtime: Vec<Name> = self
                        .sg
                        .possible_in_graph(&ctx.parent, ctx.graph)
                        .iter()
                        .filter(|t| {
                            frag.type_condition
                                .as_ref()
                                .is_none_or(|c| self.sg.satisfies(t, c))
                        })
                        .cloned()
                        .collect();
                    for t in runtime {
                        let sub_ctx = Ctx {
                            parent: t.clone(),
                            ..ctx.clone()
                        };
                        let mut sub = SubSelection::default();
                        self.plan_set(&sub_ctx, &frag.selection, &mut sub, deps)?;
                        if !sub.is_empty() {
                            out.fragment(Some(&t), &frag.conditions).merge(sub);
                        }
                    }
                }
                Selection::Field(field) => {
                    if field.name == "__typename" {
                        out.add_field(&field.key, &field.name, &[], &field.conditions, None);
                        continue;
                    }
                    if !parent_abstract {
                        self.plan_field(ctx, field, out, deps)?;
                        continue;
                    }
                    // An interface field: keep it on the interface when this graph
                    // resolves it for every implementation it knows, or when another
                    // graph resolves it on the interface itself (an entity interface or
                    // an `@interfaceObject`); otherwise route per concrete type.
                    let runtime: Vec<Name> =
                        self.sg.possible_in_graph(&ctx.parent, ctx.graph).to_vec();
                    let local = self.resolvable_here(ctx, &ctx.parent, &field.name)
                        && runtime
                            .iter()
                            .all(|t| self.resolvable_here(ctx, t, &field.name));
                    out.add_typename();
                    if local || self.has_interface_route(ctx, &ctx.parent, &field.name) {
                        self.plan_field(ctx, field, out, deps)?;
                    } else {
                        for t in runtime {
                            let sub_ctx = Ctx {
                                parent: t.clone(),
                                ..ctx.clone()
                            };
                            let mut sub = SubSelection::default();
                            self.plan_field(&sub_ctx, field, &mut sub, deps)?;
                            out.fragment(Some(&t), &Conditions::default()).merge(sub);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// A fragment that applies to every object here: its selections join the parent's,
    /// wrapped in a condition-only fragment when it has `@skip`/`@include`.
    fn plan_inline(
        &mut self,
        ctx: &Ctx<'_>,
        conditions: &Conditions,
        set: &SelectionSet,
        out: &mut SubSelection,
        deps: &mut Vec<usize>,
    ) -> Result<(), PlanError> {
        if conditions.is_empty() {
            return self.plan_set(ctx, set, out, deps);
        }
        let mut sub = SubSelection::default();
        self.plan_set(ctx, set, &mut sub, deps)?;
        if !sub.is_empty() {
            out.fragment(None, conditions).merge(sub);
        }
        Ok(())
    }

    /// Whether `field` of `type_name` can be fetched from another graph (or, for
    /// `@requires`, the same one) through an entity key of that type.
    fn has_interface_route(&self, ctx: &Ctx<'_>, type_name: &str, field: &str) -> bool {
        let Some(meta) = self
            .sg
            .types
            .get(type_name)
            .and_then(|t| t.fields.get(field))
        else {
            return false;
        };
        meta.graphs.iter().any(|(&g, f)| {
            f.resolvable
                && self.resolves(type_name, field, g)
                && (g != ctx.graph || f.requires.is_some())
                && self
                    .sg
                    .type_in_graph(type_name, g)
                    .is_some_and(|t| t.keys.iter().any(|k| k.resolvable))
        })
    }

    /// A selection on an interface in a graph that knows it as an `@interfaceObject`:
    /// interface fields are planned as usual, but `__typename` and fragments on other
    /// types need the real type, which only a graph with the implementations knows.
    fn plan_interface_object_set(
        &mut self,
        ctx: &Ctx<'_>,
        set: &SelectionSet,
        out: &mut SubSelection,
        deps: &mut Vec<usize>,
    ) -> Result<(), PlanError> {
        let mut remote = SelectionSet::default();
        for item in &set.0 {
            match item {
                Selection::Fragment(frag)
                    if frag
                        .type_condition
                        .as_ref()
                        .is_none_or(|c| *c == ctx.parent) =>
                {
                    self.plan_inline(ctx, &frag.conditions, &frag.selection, out, deps)?;
                }
                Selection::Fragment(_) => remote.0.push(item.clone()),
                Selection::Field(field) if field.name == "__typename" => {
                    remote.push_field(field.clone());
                }
                Selection::Field(field) => self.plan_field(ctx, field, out, deps)?,
            }
        }
        if remote.is_empty() {
            return Ok(());
        }
        let parent = ctx.parent.clone();
        let mut best: Option<((u8, usize), GraphId, FieldSet)> = None;
        let mut graphs: Vec<GraphId> = self
            .sg
            .types
            .get(&parent)
            .map(|t| t.graphs.keys().copied().collect())
            .unwrap_or_default();
        graphs.sort_unstable();
        for g in graphs {
            if g == ctx.graph || self.is_interface_object(&parent, g) {
                continue;
            }
            let known = self.sg.possible_in_graph(&parent, g).len();
            if known == 0 {
                continue;
            }
            let Some(in_graph) = self.sg.type_in_graph(&parent, g) else {
                continue;
            };
            for key in in_graph.keys.iter().filter(|k| k.resolvable) {
                let direct = self.providable(ctx, &parent, &key.fields);
                let rank = (u8::from(!direct), usize::MAX - known);
                if best.as_ref().is_none_or(|(r, _, _)| rank < *r) {
                    best = Some((rank, g, key.fields.clone()));
                }
            }
        }
        let Some((_, target, key)) = best else {
            return Err(PlanError::Unplannable(format!(
                "{parent}: subgraph \"{}\" knows it as an @interfaceObject and no subgraph \
                 with its implementations has a usable @key to find the real type",
                self.sg.graphs[ctx.graph].name
            )));
        };
        self.enter(
            ctx,
            &parent,
            target,
            &key,
            None,
            Target::Set(&remote),
            out,
            deps,
        )
    }

    fn plan_field(
        &mut self,
        ctx: &Ctx<'_>,
        field: &Field,
        out: &mut SubSelection,
        deps: &mut Vec<usize>,
    ) -> Result<(), PlanError> {
        if !self.resolvable_here(ctx, &ctx.parent, &field.name) {
            return self.jump(ctx, field, out, deps);
        }
        // A field this graph resolves (or that is provided here) whose subselection it
        // cannot complete (a value type's field only another graph has, a field outside
        // `@provides`) is better fetched whole from a graph that can.
        if !field.selection.is_empty()
            && !self.completable(&self.child_ctx(ctx, field), &field.selection)
            && self.can_jump(ctx, &ctx.parent, &field.name)
        {
            return self.jump(ctx, field, out, deps);
        }
        self.plan_field_here(ctx, field, out, deps)
    }

    /// The context below `field`, in the same graph.
    fn child_ctx<'c>(&self, ctx: &Ctx<'c>, field: &Field) -> Ctx<'c>
    where
        'a: 'c,
    {
        // What this graph can return below the field without jumping (`@provides`).
        let provided = ctx
            .provided
            .and_then(|p| p.field(&ctx.parent, &field.name))
            .filter(|p| !p.is_empty())
            .or_else(|| {
                self.sg
                    .field_in_graph(&ctx.parent, &field.name, ctx.graph)
                    .and_then(|f| f.provides.as_ref())
            });
        Ctx {
            graph: ctx.graph,
            parent: field.ty.inner_named_type().clone(),
            path: child_path(&ctx.path, field),
            group: ctx.group,
            provided,
            jump_depth: ctx.jump_depth,
        }
    }

    /// Whether every field of `set` can be returned by the graph of `ctx`, directly or
    /// through entity jumps from there.
    fn completable(&self, ctx: &Ctx<'_>, set: &SelectionSet) -> bool {
        let parent_abstract = self.sg.is_abstract(&ctx.parent);
        if parent_abstract && self.is_interface_object(&ctx.parent, ctx.graph) {
            // Interface fields are checked on the interface; the rest goes through a
            // graph with the implementations.
            let left = self.lookahead.get();
            if left < set.0.len() {
                return true;
            }
            self.lookahead.set(left - set.0.len());
            return set.0.iter().all(|item| match item {
                Selection::Field(f) if f.name != "__typename" => self.field_completable(ctx, f),
                _ => true,
            });
        }
        let runtime: &[Name] = if parent_abstract {
            self.sg.possible_in_graph(&ctx.parent, ctx.graph)
        } else {
            std::slice::from_ref(&ctx.parent)
        };
        runtime.iter().all(|t| {
            let object_ctx = Ctx {
                parent: t.clone(),
                ..ctx.clone()
            };
            self.completable_on(&object_ctx, set, parent_abstract)
        })
    }

    fn completable_on(&self, ctx: &Ctx<'_>, set: &SelectionSet, abstract_parent: bool) -> bool {
        let left = self.lookahead.get();
        if left < set.0.len() {
            return true;
        }
        self.lookahead.set(left - set.0.len());
        set.0.iter().all(|item| match item {
            Selection::Fragment(frag) => {
                let applies = frag
                    .type_condition
                    .as_ref()
                    .is_none_or(|c| self.sg.satisfies(&ctx.parent, c));
                !applies || self.completable_on(ctx, &frag.selection, abstract_parent)
            }
            Selection::Field(f) if f.name == "__typename" => true,
            Selection::Field(f) => {
                self.field_completable(ctx, f)
                    || (abstract_parent && self.field_completable_on_interface(ctx, f))
            }
        })
    }

    fn field_completable_on_interface(&self, ctx: &Ctx<'_>, field: &Field) -> bool {
        let Some(object) = self.sg.schema.get_object(&ctx.parent) else {
            return false;
        };
        object.implements_interfaces.iter().any(|i| {
            self.has_interface_route(ctx, i, &field.name)
                && self.sg.schema.type_field(i, &field.name).is_ok()
        })
    }

    fn field_completable(&self, ctx: &Ctx<'_>, field: &Field) -> bool {
        if self.resolvable_here(ctx, &ctx.parent, &field.name)
            && (field.selection.is_empty()
                || self.completable(&self.child_ctx(ctx, field), &field.selection))
        {
            return true;
        }
        self.can_jump(ctx, &ctx.parent, &field.name)
    }

    /// Whether `type_name.field` can be fetched through an entity key from another graph
    /// (or from this one, for `@requires`), possibly through an interface.
    fn can_jump(&self, ctx: &Ctx<'_>, type_name: &str, field: &str) -> bool {
        if self.has_interface_route(ctx, type_name, field) {
            return true;
        }
        let resolved_anywhere =
            (0..self.sg.graphs.len()).any(|g| self.resolves(type_name, field, g));
        !resolved_anywhere
            && self.sg.schema.get_object(type_name).is_some_and(|o| {
                o.implements_interfaces.iter().any(|i| {
                    self.sg.schema.type_field(i, field).is_ok()
                        && self.has_interface_route(ctx, i, field)
                })
            })
    }

    /// Plan `field` in the graph of `ctx`, which resolves it (its `@requires` inputs,
    /// if any, are in the representation).
    fn plan_field_here(
        &mut self,
        ctx: &Ctx<'_>,
        field: &Field,
        out: &mut SubSelection,
        deps: &mut Vec<usize>,
    ) -> Result<(), PlanError> {
        if field.selection.is_empty() {
            out.add_field(
                &field.key,
                &field.name,
                &field.arguments,
                &field.conditions,
                None,
            );
            return Ok(());
        }
        let child_type = field.ty.inner_named_type().clone();
        let child_ctx = self.child_ctx(ctx, field);
        let mut sub = SubSelection::default();
        self.plan_set(&child_ctx, &field.selection, &mut sub, deps)?;
        if self.sg.is_abstract(&child_type) {
            sub.add_typename();
        }
        out.add_field(
            &field.key,
            &field.name,
            &field.arguments,
            &field.conditions,
            Some(sub),
        );
        Ok(())
    }

    /// Whether the graph of `ctx` can return every field of `set` on `type_name`.
    fn providable(&self, ctx: &Ctx<'_>, type_name: &str, set: &FieldSet) -> bool {
        set.0.iter().all(|item| match item {
            FieldSetItem::Field { name, children, .. } => {
                if !self.resolvable_here(ctx, type_name, name) {
                    return false;
                }
                if children.is_empty() {
                    return true;
                }
                let Some(child_type) = self.field_type(type_name, name) else {
                    return false;
                };
                let child_ctx = Ctx {
                    parent: child_type.clone(),
                    provided: ctx.provided.and_then(|p| p.field(type_name, name)),
                    ..ctx.clone()
                };
                self.providable(&child_ctx, &child_type, children)
            }
            FieldSetItem::Fragment {
                type_condition,
                children,
            } => {
                !self.sg.satisfies(type_name, type_condition)
                    || self.providable(ctx, type_condition, children)
            }
        })
    }

    /// Add `__typename` under every field of an abstract type in a representation
    /// field set, so the receiving graph learns the runtime type of nested objects.
    fn with_typenames(&self, type_name: &str, set: FieldSet) -> FieldSet {
        let items = set
            .0
            .into_iter()
            .map(|item| match item {
                FieldSetItem::Field {
                    name,
                    arguments,
                    children,
                } if !children.is_empty() => {
                    let Some(child_type) = self.field_type(type_name, &name) else {
                        return FieldSetItem::Field {
                            name,
                            arguments,
                            children,
                        };
                    };
                    let mut children = self.with_typenames(&child_type, children);
                    let has_typename = children.field_names().any(|n| n == "__typename");
                    if self.sg.is_abstract(&child_type) && !has_typename {
                        children
                            .0
                            .insert(0, FieldSetItem::field("__typename", FieldSet::default()));
                    }
                    FieldSetItem::Field {
                        name,
                        arguments,
                        children,
                    }
                }
                FieldSetItem::Fragment {
                    type_condition,
                    children,
                } => FieldSetItem::Fragment {
                    children: self.with_typenames(&type_condition, children),
                    type_condition,
                },
                other => other,
            })
            .collect();
        FieldSet(items)
    }

    fn field_type(&self, type_name: &str, field: &str) -> Option<Name> {
        let ty = self.sg.schema.types.get(type_name)?;
        let def = match ty {
            apollo_compiler::schema::ExtendedType::Object(o) => o.fields.get(field)?,
            apollo_compiler::schema::ExtendedType::Interface(i) => i.fields.get(field)?,
            _ => return None,
        };
        Some(def.ty.inner_named_type().clone())
    }

    /// Turn a field set into selections, so key and `@requires` fields are planned
    /// exactly like client fields (including further jumps).
    fn synthetic(&self, type_name: &str, set: &FieldSet) -> Result<SelectionSet, PlanError> {
        let mut out = SelectionSet::default();
        for item in &set.0 {
            match item {
                FieldSetItem::Field { name, .. } if name == "__typename" => {
                    let name = Name::new_static_unchecked("__typename");
                    out.push_field(Field {
                        key: name.clone(),
                        name,
                        arguments: Vec::new(),
                        conditions: Conditions::default(),
                        ty: Type::NonNullNamed(Name::new_static_unchecked("String")),
                        selection: SelectionSet::default(),
                    });
                }
                FieldSetItem::Field {
                    name,
                    arguments,
                    children,
                } => {
                    let def = self.sg.schema.type_field(type_name, name).map_err(|_| {
                        PlanError::Unplannable(format!(
                            "{type_name}.{name}: unknown field in a field set"
                        ))
                    })?;
                    let child_type = def.ty.inner_named_type().clone();
                    // A field with arguments is fetched under its own alias, so it
                    // cannot clash with the client selecting it with other arguments.
                    let key = response_key(name, arguments);
                    let key = Name::new(&key).map_err(|_| PlanError::Unplannable(key.clone()))?;
                    let name = Name::new(name).map_err(|_| PlanError::Unplannable(name.clone()))?;
                    out.push_field(Field {
                        key,
                        name,
                        arguments: arguments.clone(),
                        conditions: Conditions::default(),
                        ty: def.ty.clone(),
                        selection: if children.is_empty() {
                            SelectionSet::default()
                        } else {
                            self.synthetic(&child_type, children)?
                        },
                    });
                }
                FieldSetItem::Fragment {
                    type_condition,
                    children,
                } => {
                    let on = Name::new(type_condition)
                        .map_err(|_| PlanError::Unplannable(type_condition.clone()))?;
                    out.0.push(Selection::Fragment(super::operation::Fragment {
                        type_condition: Some(on),
                        conditions: Conditions::default(),
                        selection: self.synthetic(type_condition, children)?,
                    }));
                }
            }
        }
        Ok(out)
    }

    /// Fetch `field` of `ctx.parent` from another graph through `_entities` (or from
    /// the same graph, when the field `@requires` inputs it cannot read itself).
    fn jump(
        &mut self,
        ctx: &Ctx<'_>,
        field: &Field,
        out: &mut SubSelection,
        deps: &mut Vec<usize>,
    ) -> Result<(), PlanError> {
        let parent = ctx.parent.clone();
        let coordinate = || format!("{parent}.{}", field.name);
        if ctx.jump_depth >= MAX_JUMP_DEPTH {
            return Err(PlanError::Unplannable(format!(
                "{}: no route from subgraph \"{}\" within {MAX_JUMP_DEPTH} entity jumps",
                coordinate(),
                self.sg.graphs[ctx.graph].name
            )));
        }
        if !self
            .sg
            .types
            .get(&parent)
            .is_some_and(|t| t.fields.contains_key(&field.name))
        {
            return Err(PlanError::Unplannable(coordinate()));
        }
        // The entity type to ask for: the parent itself, or, for fields only an
        // `@interfaceObject` resolves, one of its interfaces.
        let mut entries = vec![parent.clone()];
        let resolved_anywhere =
            (0..self.sg.graphs.len()).any(|g| self.resolves(&parent, &field.name, g));
        if !resolved_anywhere && let Some(object) = self.sg.schema.get_object(&parent) {
            entries.extend(
                object
                    .implements_interfaces
                    .iter()
                    .filter(|i| self.sg.schema.type_field(i, &field.name).is_ok())
                    .map(|i| i.name.clone()),
            );
        }

        // Candidates: (target graph, entry type, key) — direct keys first, then keys
        // whose fields need a jump themselves; within each, reuse an existing fetch.
        let mut best: Option<(u8, GraphId, Name, FieldSet)> = None;
        for entry in &entries {
            let Some(meta) = self
                .sg
                .types
                .get(entry)
                .and_then(|t| t.fields.get(&field.name))
            else {
                continue;
            };
            let mut graphs: Vec<GraphId> = meta
                .graphs
                .iter()
                .filter(|(g, f)| {
                    f.resolvable
                        && self.resolves(entry, &field.name, **g)
                        && (**g != ctx.graph || f.requires.is_some())
                })
                .map(|(&g, _)| g)
                .collect();
            graphs.sort_unstable();
            for g in graphs {
                let Some(in_graph) = self.sg.type_in_graph(entry, g) else {
                    continue;
                };
                let existing = self.find_group(g, &ctx.path).is_some();
                for key in in_graph.keys.iter().filter(|k| k.resolvable) {
                    let direct = self.providable(ctx, &parent, &key.fields);
                    let rank = match (direct, existing) {
                        (true, true) => 0,
                        (true, false) => 1,
                        (false, true) => 2,
                        (false, false) => 3,
                    };
                    if best.as_ref().is_none_or(|(r, ..)| rank < *r) {
                        best = Some((rank, g, entry.clone(), key.fields.clone()));
                    }
                }
            }
        }
        let Some((_, target, entry, key)) = best else {
            return Err(PlanError::Unplannable(format!(
                "{}: cannot be reached from subgraph \"{}\" (no subgraph that resolves it has a usable @key for {parent})",
                coordinate(),
                self.sg.graphs[ctx.graph].name
            )));
        };
        let requires = self
            .sg
            .field_in_graph(&entry, &field.name, target)
            .and_then(|f| f.requires.clone());
        self.enter(
            ctx,
            &entry,
            target,
            &key,
            requires.as_ref(),
            Target::Field(field),
            out,
            deps,
        )
    }

    /// Add an `_entities` fetch of `entry` objects at the current path to `target`:
    /// the key (and `@requires`) fields are selected in the current fetch first (with
    /// further jumps if needed), then `what` is planned in the target graph.
    #[allow(clippy::too_many_arguments)]
    fn enter(
        &mut self,
        ctx: &Ctx<'_>,
        entry: &Name,
        target: GraphId,
        key: &FieldSet,
        requires: Option<&FieldSet>,
        what: Target<'_>,
        out: &mut SubSelection,
        deps: &mut Vec<usize>,
    ) -> Result<(), PlanError> {
        let mut needed = key.clone();
        if let Some(r) = requires {
            merge_field_sets(&mut needed, r);
        }
        let needed = self.with_typenames(entry, needed);
        let inner_ctx = Ctx {
            jump_depth: ctx.jump_depth + 1,
            ..ctx.clone()
        };
        let mut local_deps = vec![ctx.group];
        // The representation needs the runtime type. At the root of an entity fetch the
        // object already has it; an `@interfaceObject` graph must not overwrite it with
        // the interface name there.
        let at_entity_root = {
            let group = &self.groups[ctx.group];
            group.entity && group.path == ctx.path
        };
        if !(at_entity_root && self.is_interface_object(&ctx.parent, ctx.graph)) {
            out.add_typename();
        }
        let needed_selection = self.synthetic(&ctx.parent, &needed)?;
        self.plan_set(&inner_ctx, &needed_selection, out, &mut local_deps)?;

        let group = match self.find_group(target, &ctx.path) {
            Some(g) if !local_deps.iter().any(|&d| self.depends_on(d, g)) => g,
            _ => self.new_group(target, ctx.path.clone(), true)?,
        };
        for d in local_deps {
            if d != group && !self.groups[group].deps.contains(&d) {
                self.groups[group].deps.push(d);
            }
        }
        let rewrites: Vec<Name> = if self.sg.is_abstract(entry) {
            self.sg
                .possible_types
                .get(entry)
                .cloned()
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let g = &mut self.groups[group];
        match g.representation.iter_mut().find(|(t, _)| t == entry) {
            Some((_, fs)) => merge_field_sets(fs, &needed),
            None => g.representation.push((entry.clone(), needed)),
        }
        match g.keys.iter_mut().find(|(t, _)| t == entry) {
            Some((_, fs)) => merge_field_sets(fs, key),
            None => g.keys.push((entry.clone(), key.clone())),
        }
        for t in rewrites {
            if !g.rewrites.iter().any(|(from, _)| *from == t) {
                g.rewrites.push((t, entry.clone()));
            }
        }

        let target_ctx = Ctx {
            graph: target,
            parent: entry.clone(),
            path: ctx.path.clone(),
            group,
            provided: None,
            jump_depth: 0,
        };
        let mut sub = SubSelection::default();
        match what {
            Target::Field(field) => self.plan_field_here(&target_ctx, field, &mut sub, deps)?,
            Target::Set(set) => self.plan_set(&target_ctx, set, &mut sub, deps)?,
        }
        self.groups[group]
            .selection
            .fragment(Some(entry), &Conditions::default())
            .merge(sub);
        deps.push(group);
        Ok(())
    }

    fn find_group(&self, graph: GraphId, path: &[PathElem]) -> Option<usize> {
        self.groups
            .iter()
            .position(|g| g.entity && g.graph == graph && g.path == path)
    }

    /// Whether group `a` (transitively) depends on group `b`, or is `b`.
    fn depends_on(&self, a: usize, b: usize) -> bool {
        let mut stack = vec![a];
        let mut seen = vec![false; self.groups.len()];
        while let Some(g) = stack.pop() {
            if g == b {
                return true;
            }
            if std::mem::replace(&mut seen[g], true) {
                continue;
            }
            stack.extend(self.groups[g].deps.iter().copied());
        }
        false
    }

    /// `root` and every group that (transitively) depends on it.
    fn descendants(&self, root: usize) -> Vec<usize> {
        (0..self.groups.len())
            .filter(|&g| self.depends_on(g, root))
            .collect()
    }

    /// Order groups into steps by dependency depth; in each step, entity fetches of
    /// one graph are merged into one request.
    fn layered(
        &self,
        members: &[usize],
        op: &Operation,
        op_name: &str,
        counter: &mut usize,
    ) -> Option<PlanNode> {
        let mut level: FxHashMap<usize, usize> = FxHashMap::default();
        fn level_of(b: &Builder<'_>, g: usize, memo: &mut FxHashMap<usize, usize>) -> usize {
            if let Some(&l) = memo.get(&g) {
                return l;
            }
            let l = b.groups[g]
                .deps
                .iter()
                .map(|&d| level_of(b, d, memo) + 1)
                .max()
                .unwrap_or(0);
            memo.insert(g, l);
            l
        }
        let mut max_level = 0;
        for &g in members {
            max_level = max_level.max(level_of(self, g, &mut level));
        }
        let mut steps = Vec::new();
        for l in 0..=max_level {
            let mut fetches = Vec::new();
            let in_level: Vec<usize> = members
                .iter()
                .copied()
                .filter(|g| level.get(g) == Some(&l) && !self.groups[*g].selection.is_empty())
                .collect();
            // Root fetches, one per group.
            for &g in in_level.iter().filter(|&&g| !self.groups[g].entity) {
                fetches.push(PlanNode::Fetch(Box::new(
                    self.root_fetch(g, op, op_name, counter),
                )));
            }
            // Entity fetches, one request per graph.
            let mut graphs: Vec<GraphId> = in_level
                .iter()
                .filter(|&&g| self.groups[g].entity)
                .map(|&g| self.groups[g].graph)
                .collect();
            graphs.sort_unstable();
            graphs.dedup();
            for graph in graphs {
                let parts: Vec<usize> = in_level
                    .iter()
                    .copied()
                    .filter(|&g| self.groups[g].entity && self.groups[g].graph == graph)
                    .collect();
                fetches.push(PlanNode::Fetch(Box::new(
                    self.entity_fetch(graph, &parts, op, op_name, counter),
                )));
            }
            if let Some(node) = wrap(fetches, PlanNode::Parallel) {
                steps.push(node);
            }
        }
        wrap(steps, PlanNode::Sequence)
    }

    /// Give an alias to fields that share a response key with a field of another type
    /// in the same selection set but have a different shape in this graph (`id: ID!` on
    /// one member of a union, `id: ID` on another): the subgraph would reject the
    /// operation (fields in a set must merge). The executor drops the alias suffix
    /// (`__gwa<n>`) when it merges the answer.
    fn alias_conflicts(&self, graph: GraphId, parent: &Name, selection: &mut SubSelection) {
        let mut level = Level::default();
        let mut counter = 0;
        self.alias_level(graph, parent, selection, &mut level, &mut counter);
    }

    fn alias_level(
        &self,
        graph: GraphId,
        parent: &Name,
        selection: &mut SubSelection,
        level: &mut Level,
        counter: &mut usize,
    ) {
        use super::plan::SubItem;
        for item in selection.0.iter_mut() {
            match item {
                SubItem::Field {
                    key,
                    name,
                    selection,
                    ..
                } => {
                    let ty = self.type_in_graph(parent, name, graph);
                    let shape = ty.as_ref().map(|t| self.shape(t)).unwrap_or_default();
                    let existing = level.entries.iter().position(|e| e.key == *key);
                    let index = match existing {
                        Some(i)
                            if level.entries[i].shape != shape
                                && level.entries[i].parent != *parent =>
                        {
                            *counter += 1;
                            let Ok(alias) = Name::new(&format!("{key}{ALIAS_MARK}{counter}"))
                            else {
                                continue;
                            };
                            *key = alias.clone();
                            level.entries.push(LevelEntry {
                                key: alias,
                                parent: parent.clone(),
                                shape,
                                child: Level::default(),
                            });
                            level.entries.len() - 1
                        }
                        Some(i) => i,
                        None => {
                            level.entries.push(LevelEntry {
                                key: key.clone(),
                                parent: parent.clone(),
                                shape,
                                child: Level::default(),
                            });
                            level.entries.len() - 1
                        }
                    };
                    if let (Some(child), Some(ty)) = (selection, ty) {
                        let child_parent = ty.inner_named_type().clone();
                        let mut child_level = std::mem::take(&mut level.entries[index].child);
                        self.alias_level(graph, &child_parent, child, &mut child_level, counter);
                        level.entries[index].child = child_level;
                    }
                }
                SubItem::Fragment {
                    type_condition,
                    selection,
                    ..
                } => {
                    let on = type_condition.clone().unwrap_or_else(|| parent.clone());
                    self.alias_level(graph, &on, selection, level, counter);
                }
            }
        }
    }

    /// The type of `parent.field` in `graph` (`@join__field(type:)` when given).
    fn type_in_graph(&self, parent: &str, field: &str, graph: GraphId) -> Option<Type> {
        if field == "__typename" {
            return Some(Type::NonNullNamed(Name::new_static_unchecked("String")));
        }
        self.sg
            .field_in_graph(parent, field, graph)
            .and_then(|f| f.ty.clone())
            .or_else(|| {
                self.sg
                    .schema
                    .type_field(parent, field)
                    .ok()
                    .map(|d| d.ty.clone())
            })
    }

    /// The response shape of a type: its list/non-null wrappers, and its name when it is
    /// a leaf (composite types are compared through their selections).
    fn shape(&self, ty: &Type) -> String {
        let name = ty.inner_named_type();
        let text = ty.to_string();
        if self.sg.schema.get_scalar(name).is_some() || self.sg.schema.get_enum(name).is_some() {
            text
        } else {
            text.replace(name.as_str(), "{}")
        }
    }

    fn operation_name(&self, graph: GraphId, op_name: &str, counter: &mut usize) -> String {
        let n = *counter;
        *counter += 1;
        let service: String = self.sg.graphs[graph]
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        if op_name.is_empty() {
            format!("{service}__{n}")
        } else {
            format!("{op_name}__{service}__{n}")
        }
    }

    fn root_fetch(
        &self,
        g: usize,
        op: &Operation,
        op_name: &str,
        counter: &mut usize,
    ) -> FetchNode {
        let group = &self.groups[g];
        let operation_name = self.operation_name(group.graph, op_name, counter);
        let mut used = Vec::new();
        collect_variables(&group.selection, &mut used);
        let keyword = match op.kind {
            OperationType::Query => "query",
            OperationType::Mutation => "mutation",
            OperationType::Subscription => "subscription",
        };
        let mut selection = group.selection.clone();
        self.alias_conflicts(group.graph, &op.root_type, &mut selection);
        let mut text = format!("{keyword} {operation_name}");
        write_variable_definitions(op, &used, &[], &mut text);
        selection.write_compact(&mut text);
        FetchNode {
            graph: group.graph,
            service: self.sg.graphs[group.graph].name.clone(),
            operation_name: operation_name.into(),
            aliased: text.contains(ALIAS_MARK),
            operation: text.into(),
            variables: used,
            kind: FetchKind::Root { selection },
        }
    }

    fn entity_fetch(
        &self,
        graph: GraphId,
        parts: &[usize],
        op: &Operation,
        op_name: &str,
        counter: &mut usize,
    ) -> FetchNode {
        let operation_name = self.operation_name(graph, op_name, counter);
        let mut used = Vec::new();
        for &g in parts {
            collect_variables(&self.groups[g].selection, &mut used);
        }
        // Places that need the same fields of the same types share one `_entities`
        // call, so an entity reached from two places is sent (and resolved) once.
        let mut merged: Vec<(Vec<Vec<PathElem>>, &Group)> = Vec::new();
        for &g in parts {
            let group = &self.groups[g];
            match merged.iter_mut().find(|(_, m)| {
                m.selection == group.selection && m.representation == group.representation
            }) {
                Some((paths, _)) => paths.push(group.path.clone()),
                None => merged.push((vec![group.path.clone()], group)),
            }
        }
        let single = merged.len() == 1;
        let entity_parts: Vec<EntityPart> = merged
            .into_iter()
            .enumerate()
            .map(|(i, (paths, group))| EntityPart {
                paths,
                representation: group.representation.clone(),
                keys: group.keys.clone(),
                response_key: if single {
                    "_entities".into()
                } else {
                    format!("_e{i}")
                },
                variable: if single {
                    "representations".into()
                } else {
                    format!("r{i}")
                },
                selection: {
                    let mut selection = group.selection.clone();
                    self.alias_conflicts(
                        graph,
                        &Name::new_static_unchecked("_Entity"),
                        &mut selection,
                    );
                    selection
                },
                typename_rewrites: group.rewrites.clone(),
            })
            .collect();
        let reps: Vec<String> = entity_parts.iter().map(|p| p.variable.clone()).collect();
        let mut text = format!("query {operation_name}");
        write_variable_definitions(op, &used, &reps, &mut text);
        text.push('{');
        for (i, part) in entity_parts.iter().enumerate() {
            if i > 0 {
                text.push(' ');
            }
            if !single {
                text.push_str(&part.response_key);
                text.push(':');
            }
            text.push_str("_entities(representations:$");
            text.push_str(&part.variable);
            text.push(')');
            part.selection.write_compact(&mut text);
        }
        text.push('}');
        FetchNode {
            graph,
            service: self.sg.graphs[graph].name.clone(),
            operation_name: operation_name.into(),
            aliased: text.contains(ALIAS_MARK),
            operation: text.into(),
            variables: used,
            kind: FetchKind::Entities(entity_parts),
        }
    }
}

fn write_variable_definitions(
    op: &Operation,
    used: &[Name],
    representations: &[String],
    out: &mut String,
) {
    if used.is_empty() && representations.is_empty() {
        return;
    }
    out.push('(');
    let mut first = true;
    for r in representations {
        if !first {
            out.push(',');
        }
        first = false;
        out.push('$');
        out.push_str(r);
        out.push_str(":[_Any!]!");
    }
    for def in op.variables.iter().filter(|d| used.contains(&d.name)) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push('$');
        out.push_str(&def.name);
        out.push(':');
        out.push_str(&def.ty.to_string());
        if let Some(default) = &def.default_value {
            out.push('=');
            out.push_str(&default.to_string());
        }
    }
    out.push(')');
}

fn collect_variables(selection: &SubSelection, out: &mut Vec<Name>) {
    use super::plan::SubItem;
    for item in &selection.0 {
        match item {
            SubItem::Field {
                arguments,
                conditions,
                selection,
                ..
            } => {
                for arg in arguments {
                    value_variables(&arg.value, out);
                }
                for v in conditions.variables() {
                    if !out.contains(v) {
                        out.push(v.clone());
                    }
                }
                if let Some(s) = selection {
                    collect_variables(s, out);
                }
            }
            SubItem::Fragment {
                conditions,
                selection,
                ..
            } => {
                for v in conditions.variables() {
                    if !out.contains(v) {
                        out.push(v.clone());
                    }
                }
                collect_variables(selection, out);
            }
        }
    }
}

fn value_variables(value: &Node<Value>, out: &mut Vec<Name>) {
    match &**value {
        Value::Variable(v) if !out.contains(v) => out.push(v.clone()),
        Value::List(items) => items.iter().for_each(|i| value_variables(i, out)),
        Value::Object(fields) => fields.iter().for_each(|(_, v)| value_variables(v, out)),
        _ => {}
    }
}
