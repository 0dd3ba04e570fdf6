//! Building a plan: walk the normalized operation, keep each field in the subgraph
//! already answering when it can, and otherwise jump to another subgraph through an
//! entity key (`_entities`), fetching key and `@requires` fields first.
//!
//! Fetch groups are keyed by (subgraph, response path), so every field needed from one
//! subgraph at one place becomes one fetch. Groups are then layered by dependency depth:
//! a layer is one step of parallel fetches, and entity fetches of one subgraph in one
//! layer share one request.

mod fetch;
mod jump;

use apollo_compiler::ast::{OperationType, Type, Value};
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::{Name, Node};
use rustc_hash::FxHashMap;

use super::error::PlanError;
use super::operation::{Conditions, Field, Operation, Selection, SelectionSet};
use super::plan::{
    DeferSite, DeferredPlan, EntityPart, FetchKind, FetchNode, PathElem, PlanNode, QueryPlan,
    SubSelection, merge_field_sets,
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

/// The suffix of the aliases the builder gives to conflicting fields (`id__gwa1`).
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
    /// The `@defer` ids whose fields this fetch serves; empty when the primary part
    /// needs it (then it runs there, whoever else uses it).
    deferred: Vec<usize>,
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

impl Ctx<'_> {
    /// A context entering `graph` at `path` (a root field or an entity fetch): nothing
    /// provided, no jumps yet.
    fn fresh(graph: GraphId, parent: Name, path: Vec<PathElem>, group: usize) -> Self {
        Ctx {
            graph,
            parent,
            path,
            group,
            provided: None,
            jump_depth: 0,
        }
    }
}

struct Builder<'a> {
    sg: &'a Supergraph,
    groups: Vec<Group>,
    /// Selections the completability look-ahead may still visit in this plan; once
    /// spent, fields are planned greedily (still correct where the supergraph allows).
    lookahead: std::cell::Cell<usize>,
    /// The `@defer` being planned (`None`: the primary part).
    defer: Option<usize>,
}

pub fn build_plan(sg: &Supergraph, op: &Operation) -> Result<QueryPlan, PlanError> {
    let mut b = Builder {
        sg,
        groups: Vec::new(),
        lookahead: std::cell::Cell::new(MAX_LOOKAHEAD_VISITS),
        defer: None,
    };
    // Root groups in the order they were created; for mutations each is a serial step.
    let mut roots: Vec<usize> = Vec::new();
    // Computed fields (a BFF's) are planned as the siblings they read.
    let selection = super::operation::expand_derived(&op.selection);
    b.plan_root(op, &selection, &Conditions::default(), &mut roots)?;

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
    } else if op.defers == 0 {
        let all: Vec<usize> = (0..b.groups.len()).collect();
        b.layered(&all, op, op_name, &mut counter)
    } else {
        return Ok(b.deferred_plan(op, op_name, &mut counter));
    };
    Ok(QueryPlan {
        root,
        deferred: None,
    })
}

/// A selection's items grouped by the first candidate that completes each, in candidate
/// order; an item none completes goes to `fallback`, or without one there is no split.
fn split_selection<C: Copy + PartialEq>(
    set: &SelectionSet,
    candidates: &[C],
    fallback: Option<C>,
    completes: impl Fn(C, &SelectionSet) -> bool,
) -> Option<Vec<(C, SelectionSet)>> {
    let mut parts: Vec<(C, SelectionSet)> = Vec::new();
    for item in &set.0 {
        let single = SelectionSet(vec![item.clone()]);
        let to = candidates
            .iter()
            .copied()
            .find(|&c| completes(c, &single))
            .or(fallback)?;
        match parts.iter_mut().find(|(c, _)| *c == to) {
            Some((_, part)) => part.0.push(item.clone()),
            None => parts.push((to, single)),
        }
    }
    Some(parts)
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
            deferred: self.defer.into_iter().collect(),
        });
        Ok(self.groups.len() - 1)
    }

    /// A fetch is used by what is being planned now: the primary part claims it, a
    /// deferred fragment joins its users.
    fn uses(&mut self, group: usize) {
        let g = &mut self.groups[group];
        match self.defer {
            None => g.deferred.clear(),
            Some(id) if !g.deferred.is_empty() && !g.deferred.contains(&id) => g.deferred.push(id),
            Some(_) => {}
        }
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
                    let outer = self.defer;
                    if let Some(defer) = &frag.defer {
                        self.defer = Some(defer.id);
                    }
                    let planned = self.plan_root(op, &frag.selection, &merged, roots);
                    self.defer = outer;
                    planned?;
                }
                Selection::Field(field) => {
                    // Answered by the gateway itself.
                    if matches!(field.name.as_str(), "__typename" | "__schema" | "__type") {
                        continue;
                    }
                    for (graph, part) in self.root_parts(op, field)? {
                        self.plan_root_field(op, graph, &part, conditions, roots)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Plan one root field in `graph`: in the root fetch of that graph (for a mutation,
    /// only if it is the last one, so mutations keep document order).
    fn plan_root_field(
        &mut self,
        op: &Operation,
        graph: GraphId,
        field: &Field,
        conditions: &Conditions,
        roots: &mut Vec<usize>,
    ) -> Result<(), PlanError> {
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
                Some(&r) => {
                    self.uses(r);
                    r
                }
                None => {
                    let g = self.new_group(graph, Vec::new(), false)?;
                    roots.push(g);
                    g
                }
            },
        };
        let ctx = Ctx::fresh(graph, op.root_type.clone(), Vec::new(), group);
        let mut out = SubSelection::default();
        let mut deps = Vec::new();
        self.plan_field(&ctx, field, &mut out, &mut deps)?;
        let target = &mut self.groups[group].selection;
        if conditions.is_empty() {
            target.merge(out);
        } else {
            target.fragment(None, conditions).merge(out);
        }
        Ok(())
    }

    /// A shared root field whose selection no single subgraph completes (its type's
    /// fields are spread over the subgraphs that share the field, with no key to jump
    /// by): one fetch of the field per subgraph, each with the part of the selection it
    /// completes, merged at the root like any root fetches. Mutations are never split.
    fn root_parts(
        &self,
        op: &Operation,
        field: &Field,
    ) -> Result<Vec<(GraphId, Field)>, PlanError> {
        let best = self.choose_root_graph(&op.root_type, field)?;
        let whole = || Ok(vec![(best, field.clone())]);
        if op.kind != OperationType::Query || field.selection.is_empty() {
            return whole();
        }
        let child = |graph: GraphId| {
            let ctx = Ctx::fresh(graph, op.root_type.clone(), Vec::new(), 0);
            self.child_ctx(&ctx, field)
        };
        if self.completable(&child(best), &field.selection) {
            return whole();
        }
        let mut others: Vec<GraphId> = self
            .sg
            .types
            .get(&op.root_type)
            .and_then(|t| t.fields.get(&field.name))
            .map(|meta| {
                meta.graphs
                    .iter()
                    .filter(|(g, f)| f.resolvable && **g != best)
                    .map(|(&g, _)| g)
                    .collect()
            })
            .unwrap_or_default();
        others.sort_unstable();
        let candidates: Vec<GraphId> = std::iter::once(best).chain(others).collect();
        // What no subgraph completes stays with the best one, whose planning reports it.
        let parts = split_selection(&field.selection, &candidates, Some(best), |g, part| {
            self.completable(&child(g), part)
        });
        match parts {
            Some(parts) if parts.len() > 1 => Ok(parts
                .into_iter()
                .map(|(graph, selection)| (graph, field.with_selection(selection)))
                .collect()),
            _ => whole(),
        }
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
            let ctx = Ctx::fresh(g, root.clone(), Vec::new(), 0);
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
                Selection::Fragment(frag) if frag.defer.is_some() => {
                    let outer = self.defer;
                    self.defer = frag.defer.as_ref().map(|d| d.id);
                    let mut plain = frag.clone();
                    plain.defer = None;
                    let single = SelectionSet(vec![Selection::Fragment(plain)]);
                    let planned = self.plan_set(ctx, &single, out, deps);
                    self.defer = outer;
                    planned?;
                }
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
                    } else if runtime.is_empty() {
                        // No implementation to route through: the field would silently
                        // never be fetched.
                        return Err(PlanError::Unplannable(format!(
                            "cannot plan {}.{}: subgraph \"{}\" has no type implementing {} \
                             and no subgraph resolves the field on the interface with a \
                             usable @key",
                            ctx.parent, field.name, self.sg.graphs[ctx.graph].name, ctx.parent
                        )));
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
        // `@provides`): what it completes stays here, the rest is fetched through the
        // parent entity from a graph that resolves the field too.
        if !field.selection.is_empty() && self.can_jump(ctx, &ctx.parent, &field.name) {
            let child = self.child_ctx(ctx, field);
            if !self.completable(&child, &field.selection) {
                let (here, rest): (Vec<Selection>, Vec<Selection>) =
                    field.selection.0.iter().cloned().partition(|item| {
                        self.completable(&child, &SelectionSet(vec![item.clone()]))
                    });
                if here.is_empty() {
                    return self.jump(ctx, field, out, deps);
                }
                let part = |items| field.with_selection(SelectionSet(items));
                self.plan_field_here(ctx, &part(here), out, deps)?;
                return self.jump(ctx, &part(rest), out, deps);
            }
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
        self.can_jump(ctx, &ctx.parent, &field.name) && self.key_at_hand(ctx, &field.name)
    }

    /// Whether the graph of `ctx` holds the fields of a key through which another graph
    /// resolves `ctx.parent.field` (a value type's field there cannot be entered from
    /// a graph that lacks the key, however many graphs have it). Fields reached only
    /// through an interface are left to `can_jump`.
    fn key_at_hand(&self, ctx: &Ctx<'_>, field: &str) -> bool {
        let parent = &ctx.parent;
        let Some(meta) = self.sg.types.get(parent).and_then(|t| t.fields.get(field)) else {
            return true;
        };
        let mut direct = meta
            .graphs
            .iter()
            .filter(|(g, f)| {
                f.resolvable
                    && self.resolves(parent, field, **g)
                    && (**g != ctx.graph || f.requires.is_some())
            })
            .peekable();
        if direct.peek().is_none() {
            return true;
        }
        direct.any(|(&g, _)| {
            self.sg.type_in_graph(parent, g).is_some_and(|t| {
                t.keys
                    .iter()
                    .any(|k| k.resolvable && self.providable(ctx, parent, &k.fields))
            })
        })
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
}
