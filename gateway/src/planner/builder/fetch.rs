//! From fetch groups to the plan: layering groups by dependency into steps of
//! parallel fetches, and writing each group's subgraph operation (aliases for fields
//! whose shapes conflict, variable definitions, root and `_entities` fetches).

use super::*;

impl Builder<'_> {
    pub(super) fn find_group(&self, graph: GraphId, path: &[PathElem]) -> Option<usize> {
        self.groups
            .iter()
            .position(|g| g.entity && g.graph == graph && g.path == path)
    }

    /// Whether group `a` (transitively) depends on group `b`, or is `b`.
    pub(super) fn depends_on(&self, a: usize, b: usize) -> bool {
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
    pub(super) fn descendants(&self, root: usize) -> Vec<usize> {
        (0..self.groups.len())
            .filter(|&g| self.depends_on(g, root))
            .collect()
    }

    /// Order groups into steps by dependency depth; in each step, entity fetches of
    /// one graph are merged into one request.
    pub(super) fn layered(
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

    /// A plan with `@defer`: the primary part holds every fetch the primary fields
    /// need, and what they depend on; the rest is layered into deferred steps.
    pub(super) fn deferred_plan(
        &self,
        op: &Operation,
        op_name: &str,
        counter: &mut usize,
    ) -> QueryPlan {
        let n = self.groups.len();
        let mut primary = vec![false; n];
        let mut stack: Vec<usize> = (0..n)
            .filter(|&g| self.groups[g].deferred.is_empty())
            .collect();
        while let Some(g) = stack.pop() {
            if !std::mem::replace(&mut primary[g], true) {
                stack.extend(self.groups[g].deps.iter().copied());
            }
        }
        // Deferred steps: a fetch runs one step after the latest deferred fetch it
        // depends on; fetches that depend on nothing at all run beside the primary part.
        fn level(b: &Builder<'_>, primary: &[bool], g: usize, memo: &mut [Option<usize>]) -> usize {
            if let Some(l) = memo[g] {
                return l;
            }
            let l = b.groups[g]
                .deps
                .iter()
                .filter(|&&d| !primary[d])
                .map(|&d| level(b, primary, d, memo) + 1)
                .max()
                .unwrap_or(0);
            memo[g] = Some(l);
            l
        }
        let mut memo = vec![None; n];
        let deferred: Vec<usize> = (0..n).filter(|&g| !primary[g]).collect();
        let beside: Vec<usize> = deferred
            .iter()
            .copied()
            .filter(|&g| self.groups[g].deps.is_empty())
            .collect();
        let mut steps: Vec<Vec<usize>> = Vec::new();
        let mut ready_after = vec![0; op.defers];
        for &g in &deferred {
            if beside.contains(&g) {
                continue;
            }
            let l = level(self, &primary, g, &mut memo);
            if steps.len() <= l {
                steps.resize(l + 1, Vec::new());
            }
            steps[l].push(g);
            for &id in &self.groups[g].deferred {
                if let Some(r) = ready_after.get_mut(id) {
                    *r = (*r).max(l + 1);
                }
            }
        }
        let members: Vec<usize> = (0..n).filter(|&g| primary[g]).collect();
        let root = self.layered(&members, op, op_name, counter);
        let beside = self.layered(&beside, op, op_name, counter);
        let after = steps
            .iter()
            .map(|members| {
                self.layered(members, op, op_name, counter)
                    .unwrap_or(PlanNode::Sequence(Vec::new()))
            })
            .collect();
        QueryPlan {
            root,
            deferred: Some(DeferredPlan {
                beside,
                after,
                ready_after,
                sites: defer_sites(op),
            }),
        }
    }

    /// Give an alias to fields that share a response key with a field of another type
    /// in the same selection set but have a different shape in this graph (`id: ID!` on
    /// one member of a union, `id: ID` on another): the subgraph would reject the
    /// operation (fields in a set must merge). The executor drops the alias suffix
    /// (`__gwa<n>`) when it merges the answer.
    pub(super) fn alias_conflicts(
        &self,
        graph: GraphId,
        parent: &Name,
        selection: &mut SubSelection,
    ) {
        let mut level = Level::default();
        let mut counter = 0;
        self.alias_level(graph, parent, selection, &mut level, &mut counter);
    }

    pub(super) fn alias_level(
        &self,
        graph: GraphId,
        parent: &Name,
        selection: &mut SubSelection,
        level: &mut Level,
        counter: &mut usize,
    ) {
        use crate::planner::plan::SubItem;
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
    pub(super) fn type_in_graph(&self, parent: &str, field: &str, graph: GraphId) -> Option<Type> {
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
    pub(super) fn shape(&self, ty: &Type) -> String {
        let name = ty.inner_named_type();
        let text = ty.to_string();
        if self.sg.schema.get_scalar(name).is_some() || self.sg.schema.get_enum(name).is_some() {
            text
        } else {
            text.replace(name.as_str(), "{}")
        }
    }

    pub(super) fn operation_name(
        &self,
        graph: GraphId,
        op_name: &str,
        counter: &mut usize,
    ) -> String {
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

    pub(super) fn root_fetch(
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

    pub(super) fn entity_fetch(
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

/// Every deferred fragment of `op`, with the response path it applies at.
fn defer_sites(op: &Operation) -> Vec<DeferSite> {
    fn walk(set: &SelectionSet, parent: &Name, path: &mut Vec<PathElem>, out: &mut Vec<DeferSite>) {
        for item in &set.0 {
            match item {
                Selection::Field(f) => {
                    let depth = path.len();
                    path.push(PathElem::Key(f.key.clone()));
                    let mut ty = &f.ty;
                    while let Type::List(inner) | Type::NonNullList(inner) = ty {
                        path.push(PathElem::List);
                        ty = inner;
                    }
                    walk(&f.selection, f.ty.inner_named_type(), path, out);
                    path.truncate(depth);
                }
                Selection::Fragment(frag) => {
                    if let Some(defer) = &frag.defer {
                        let mut plain = frag.clone();
                        plain.defer = None;
                        out.push(DeferSite {
                            defer: defer.clone(),
                            path: path.clone(),
                            parent_type: parent.clone(),
                            selection: SelectionSet(vec![Selection::Fragment(plain)]),
                        });
                    }
                    walk(
                        &frag.selection,
                        frag.type_condition.as_ref().unwrap_or(parent),
                        path,
                        out,
                    );
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&op.selection, &op.root_type, &mut Vec::new(), &mut out);
    out.sort_by_key(|s| s.defer.id);
    out
}

pub(super) fn write_variable_definitions(
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

pub(super) fn collect_variables(selection: &SubSelection, out: &mut Vec<Name>) {
    use crate::planner::plan::SubItem;
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

pub(super) fn value_variables(value: &Node<Value>, out: &mut Vec<Name>) {
    match &**value {
        Value::Variable(v) if !out.contains(v) => out.push(v.clone()),
        Value::List(items) => items.iter().for_each(|i| value_variables(i, out)),
        Value::Object(fields) => fields.iter().for_each(|(_, v)| value_variables(v, out)),
        _ => {}
    }
}
