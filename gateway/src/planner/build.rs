//! Building a plan: walk the normalized operation, keep each field in the subgraph
//! already answering when it can, and otherwise jump to another subgraph through an
//! entity key (`_entities`), fetching key and `@requires` fields first.
//!
//! Fetch groups are keyed by (subgraph, response path), so every field needed from one
//! subgraph at one place becomes one fetch. Groups are then layered by dependency depth:
//! a layer is one step of parallel fetches, and entity fetches of one subgraph in one
//! layer share one request.

use apollo_compiler::ast::{OperationType, Type, Value};
use apollo_compiler::{Name, Node};
use rustc_hash::FxHashMap;

use super::PlanError;
use super::operation::{Conditions, Field, Operation, Selection, SelectionSet};
use super::plan::{
    EntityPart, FetchKind, FetchNode, PathElem, PlanNode, QueryPlan, SubSelection, merge_field_sets,
};
use crate::schema::fieldset::{FieldSet, FieldSetItem};
use crate::schema::{GraphId, Supergraph};

/// How deep key/requires resolution may chain jumps before giving up.
const MAX_JUMP_DEPTH: usize = 6;
/// Upper bound on fetch groups in one plan.
const MAX_GROUPS: usize = 2_000;

struct Group {
    graph: GraphId,
    /// Empty for root groups.
    path: Vec<PathElem>,
    entity: bool,
    selection: SubSelection,
    representation: Vec<(Name, FieldSet)>,
    deps: Vec<usize>,
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
}

pub fn build_plan(sg: &Supergraph, op: &Operation) -> Result<QueryPlan, PlanError> {
    let mut b = Builder {
        sg,
        groups: Vec::new(),
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
        let inner = field.ty.inner_named_type();
        let score = |g: GraphId| {
            field
                .selection
                .0
                .iter()
                .filter(|s| match s {
                    Selection::Field(f) => self.sg.resolves(inner, &f.name, g),
                    Selection::Fragment(_) => false,
                })
                .count()
        };
        candidates
            .iter()
            .copied()
            .max_by_key(|&g| (score(g), std::cmp::Reverse(g)))
            .ok_or_else(|| {
                PlanError::Unplannable(format!("{root}.{}: no subgraph resolves it", field.name))
            })
    }

    fn resolvable_here(&self, ctx: &Ctx<'_>, type_name: &str, field: &str) -> bool {
        field == "__typename"
            || self.sg.resolves(type_name, field, ctx.graph)
            || ctx
                .provided
                .is_some_and(|p| p.field(type_name, field).is_some())
    }

    fn plan_set(
        &mut self,
        ctx: &Ctx<'_>,
        set: &SelectionSet,
        out: &mut SubSelection,
        deps: &mut Vec<usize>,
    ) -> Result<(), PlanError> {
        let parent_abstract = self.sg.is_abstract(&ctx.parent);
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
                        if frag.conditions.is_empty() {
                            self.plan_set(ctx, &frag.selection, out, deps)?;
                        } else {
                            let mut sub = SubSelection::default();
                            self.plan_set(ctx, &frag.selection, &mut sub, deps)?;
                            out.fragment(None, &frag.conditions).merge(sub);
                        }
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
                    // resolves it for every implementation it knows; otherwise route
                    // per concrete type.
                    let runtime: Vec<Name> =
                        self.sg.possible_in_graph(&ctx.parent, ctx.graph).to_vec();
                    let local = self.resolvable_here(ctx, &ctx.parent, &field.name)
                        && runtime
                            .iter()
                            .all(|t| self.resolvable_here(ctx, t, &field.name));
                    out.add_typename();
                    if local {
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
        let child_ctx = Ctx {
            graph: ctx.graph,
            parent: child_type.clone(),
            path: child_path(&ctx.path, field),
            group: ctx.group,
            provided,
            jump_depth: ctx.jump_depth,
        };
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
            FieldSetItem::Field { name, children } => {
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
                FieldSetItem::Field { name, children } => {
                    let def = self.sg.schema.type_field(type_name, name).map_err(|_| {
                        PlanError::Unplannable(format!(
                            "{type_name}.{name}: unknown field in a field set"
                        ))
                    })?;
                    let child_type = def.ty.inner_named_type().clone();
                    let name = Name::new(name).map_err(|_| PlanError::Unplannable(name.clone()))?;
                    out.push_field(Field {
                        key: name.clone(),
                        name,
                        arguments: Vec::new(),
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

    /// Fetch `field` of `ctx.parent` from another graph through `_entities`.
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
        let meta = self
            .sg
            .types
            .get(&parent)
            .and_then(|t| t.fields.get(&field.name))
            .ok_or_else(|| PlanError::Unplannable(coordinate()))?;

        // Candidates: (target graph, key) — direct keys first, then keys whose fields
        // need a jump themselves; within each, reuse an existing fetch when possible.
        let mut best: Option<(u8, GraphId, FieldSet)> = None;
        let mut graphs: Vec<GraphId> = meta
            .graphs
            .iter()
            .filter(|(g, f)| f.resolvable && **g != ctx.graph)
            .map(|(&g, _)| g)
            .collect();
        graphs.sort_unstable();
        for g in graphs {
            let Some(in_graph) = self.sg.type_in_graph(&parent, g) else {
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
                if best.as_ref().is_none_or(|(r, _, _)| rank < *r) {
                    best = Some((rank, g, key.fields.clone()));
                }
            }
        }
        let Some((_, target, key)) = best else {
            return Err(PlanError::Unplannable(format!(
                "{}: cannot be reached from subgraph \"{}\" (no subgraph that resolves it has a usable @key for {parent})",
                coordinate(),
                self.sg.graphs[ctx.graph].name
            )));
        };

        // Key and @requires fields come first, into the current fetch (or further jumps).
        let mut needed = key.clone();
        let requires = self
            .sg
            .field_in_graph(&parent, &field.name, target)
            .and_then(|f| f.requires.clone());
        if let Some(r) = &requires {
            merge_field_sets(&mut needed, r);
        }
        let inner_ctx = Ctx {
            jump_depth: ctx.jump_depth + 1,
            ..ctx.clone()
        };
        let mut local_deps = vec![ctx.group];
        out.add_typename();
        let needed_selection = self.synthetic(&parent, &needed)?;
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
        let reps = &mut self.groups[group].representation;
        match reps.iter_mut().find(|(t, _)| *t == parent) {
            Some((_, fs)) => merge_field_sets(fs, &needed),
            None => reps.push((parent.clone(), needed)),
        }

        let target_ctx = Ctx {
            graph: target,
            parent: parent.clone(),
            path: ctx.path.clone(),
            group,
            provided: None,
            jump_depth: 0,
        };
        let mut sub = SubSelection::default();
        self.plan_field(&target_ctx, field, &mut sub, deps)?;
        self.groups[group]
            .selection
            .fragment(Some(&parent), &Conditions::default())
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
        let mut text = format!("{keyword} {operation_name}");
        write_variable_definitions(op, &used, &[], &mut text);
        group.selection.write_compact(&mut text);
        FetchNode {
            graph: group.graph,
            service: self.sg.graphs[group.graph].name.clone(),
            operation_name,
            operation: text,
            variables: used,
            kind: FetchKind::Root {
                selection: group.selection.clone(),
            },
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
                selection: group.selection.clone(),
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
            operation_name,
            operation: text,
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
        Value::Variable(v) => {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        Value::List(items) => items.iter().for_each(|i| value_variables(i, out)),
        Value::Object(fields) => fields.iter().for_each(|(_, v)| value_variables(v, out)),
        _ => {}
    }
}
