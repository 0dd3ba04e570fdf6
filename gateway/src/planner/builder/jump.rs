//! Entity jumps: when the current subgraph cannot resolve a field, enter another one
//! through an entity key (`_entities`), fetching the key and `@requires` fields first
//! (a synthetic selection), and decide whether a subgraph can provide a field set.

use super::*;

impl Builder<'_> {
    /// Whether the graph of `ctx` can return every field of `set` on `type_name`.
    pub(super) fn providable(&self, ctx: &Ctx<'_>, type_name: &str, set: &FieldSet) -> bool {
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
    pub(super) fn with_typenames(&self, type_name: &str, set: FieldSet) -> FieldSet {
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

    pub(super) fn field_type(&self, type_name: &str, field: &str) -> Option<Name> {
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
    pub(super) fn synthetic(
        &self,
        type_name: &str,
        set: &FieldSet,
    ) -> Result<SelectionSet, PlanError> {
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
                        derived: None,
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
                        derived: None,
                    });
                }
                FieldSetItem::Fragment {
                    type_condition,
                    children,
                } => {
                    let on = Name::new(type_condition)
                        .map_err(|_| PlanError::Unplannable(type_condition.clone()))?;
                    out.0
                        .push(Selection::Fragment(crate::planner::operation::Fragment {
                            type_condition: Some(on),
                            conditions: Conditions::default(),
                            selection: self.synthetic(type_condition, children)?,
                            defer: None,
                        }));
                }
            }
        }
        Ok(out)
    }

    /// Fetch `field` of `ctx.parent` from another graph through `_entities` (or from
    /// the same graph, when the field `@requires` inputs it cannot read itself).
    pub(super) fn jump(
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
        // Every (rank, graph, entry) considered, for splitting the selection below.
        let mut considered: Vec<(u8, GraphId, Name)> = Vec::new();
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
                // A graph that resolves the field but not what is selected below it
                // would only move the problem (A → B, where B cannot go on, when C can).
                let completes = field.selection.is_empty() || {
                    let there = Ctx::fresh(g, entry.clone(), ctx.path.clone(), ctx.group);
                    self.completable(&self.child_ctx(&there, field), &field.selection)
                };
                for key in in_graph.keys.iter().filter(|k| k.resolvable) {
                    let direct = self.providable(ctx, &parent, &key.fields);
                    let rank = match (direct, existing) {
                        (true, true) => 0,
                        (true, false) => 1,
                        (false, true) => 2,
                        (false, false) => 3,
                    } + if completes { 0 } else { 4 };
                    considered.push((rank, g, entry.clone()));
                    if best.as_ref().is_none_or(|(r, ..)| rank < *r) {
                        best = Some((rank, g, entry.clone(), key.fields.clone()));
                    }
                }
            }
        }
        // No graph completes the whole selection: split it over the graphs that each
        // complete a part (`category { details }` from one, `category { id }` and on to
        // `Category.name` from another), one jump per part.
        if best.as_ref().is_some_and(|(rank, ..)| *rank >= 4) && field.selection.0.len() > 1 {
            considered.sort_by_key(|(rank, ..)| *rank);
            let indices: Vec<usize> = (0..considered.len()).collect();
            let parts = split_selection(&field.selection, &indices, None, |i, part| {
                let (_, g, entry) = &considered[i];
                let there = Ctx::fresh(*g, entry.clone(), ctx.path.clone(), ctx.group);
                self.completable(&self.child_ctx(&there, field), part)
            });
            if let Some(parts) = parts.filter(|p| p.len() > 1) {
                for (_, selection) in parts {
                    self.jump(ctx, &field.with_selection(selection), out, deps)?;
                }
                return Ok(());
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
    pub(super) fn enter(
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

        // Join a fetch to the same graph at this path unless it must wait for what this
        // one provides, or its representation of `entry` already holds one of these fields
        // with other arguments (two `@requires` of `price(unit: "EUR")` and
        // `price(unit: "GBP")`: one representation cannot carry both values of `price`).
        let joinable = (0..self.groups.len()).find(|&g| {
            let group = &self.groups[g];
            group.entity
                && group.graph == target
                && group.path == ctx.path
                && !local_deps.iter().any(|&d| self.depends_on(d, g))
                && group
                    .representation
                    .iter()
                    .filter(|(t, _)| t == entry)
                    .all(|(_, fs)| !arguments_clash(fs, &needed))
        });
        let group = match joinable {
            Some(g) => {
                self.uses(g);
                g
            }
            None => self.new_group(target, ctx.path.clone(), true)?,
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

        let target_ctx = Ctx::fresh(target, entry.clone(), ctx.path.clone(), group);
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
}

/// Whether two field sets select a field of the same name with different arguments (at
/// any depth): merged into one representation, one value would overwrite the other.
fn arguments_clash(a: &FieldSet, b: &FieldSet) -> bool {
    a.0.iter().any(|x| {
        b.0.iter().any(|y| match (x, y) {
            (
                FieldSetItem::Field {
                    name: n1,
                    arguments: a1,
                    children: c1,
                },
                FieldSetItem::Field {
                    name: n2,
                    arguments: a2,
                    children: c2,
                },
            ) => n1 == n2 && (a1 != a2 || arguments_clash(c1, c2)),
            (
                FieldSetItem::Fragment {
                    type_condition: t1,
                    children: c1,
                },
                FieldSetItem::Fragment {
                    type_condition: t2,
                    children: c2,
                },
            ) => t1 == t2 && arguments_clash(c1, c2),
            _ => false,
        })
    })
}
