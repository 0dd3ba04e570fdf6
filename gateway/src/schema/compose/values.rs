//! Merging arguments, input fields and enum values across subgraphs: intersections,
//! the most restrictive type, equal defaults, and enum values by how the enum is used.

use indexmap::{IndexMap, IndexSet};

use super::merge::{
    InputPosition, JoinField, MEnumValue, MInputValue, MType, Merger, merge_input_type, non_empty,
};
use super::subgraph::{Applied, SubEnumValue, SubInputValue, SubType};

impl<'a> Merger<'a> {
    /// Merges arguments or input fields: intersection, most restrictive type, equal defaults.
    pub(super) fn merge_input_values(
        &mut self,
        parent: &str,
        sources: &[(usize, &'a IndexMap<String, SubInputValue>)],
        position: InputPosition,
    ) -> IndexMap<String, MInputValue> {
        let mut names: IndexSet<&str> = IndexSet::new();
        for (_, values) in sources {
            names.extend(values.keys().map(String::as_str));
        }
        let mut merged = IndexMap::new();
        for name in names {
            let coordinate = match position {
                InputPosition::Argument => format!("{parent}({name}:)"),
                InputPosition::InputField => format!("{parent}.{name}"),
            };
            let present: Vec<(usize, &SubInputValue)> = sources
                .iter()
                .filter_map(|(g, values)| values.get(name).map(|v| (*g, v)))
                .collect();
            if present.len() < sources.len() {
                if let Some((required_in, _)) = present.iter().find(|(_, v)| v.is_required()) {
                    let missing = sources
                        .iter()
                        .find(|(g, values)| !values.contains_key(name) && g != required_in)
                        .map(|(g, _)| *g);
                    let (code, what) = match position {
                        InputPosition::Argument => {
                            ("REQUIRED_ARGUMENT_MISSING_IN_SOME_SUBGRAPH", "argument")
                        }
                        InputPosition::InputField => (
                            "REQUIRED_INPUT_FIELD_MISSING_IN_SOME_SUBGRAPH",
                            "input field",
                        ),
                    };
                    let missing_name = missing.map(|g| self.name(g)).unwrap_or_default();
                    self.err(
                        missing,
                        coordinate.clone(),
                        code,
                        format!(
                            "{what} \"{coordinate}\" is required in subgraph \"{}\" but missing in \
                             subgraph \"{missing_name}\": add it to every subgraph or make it \
                             optional",
                            self.name(*required_in)
                        ),
                    );
                }
                // Otherwise silently dropped: only values every subgraph accepts survive.
                continue;
            }
            let (first_graph, first) = present[0];
            let mut ty = first.ty.clone();
            let mut default = first.default.clone();
            let mut default_graph = first_graph;
            let mut ok = true;
            for &(graph, value) in &present[1..] {
                match merge_input_type(&ty, &value.ty) {
                    Some(narrowed) => ty = narrowed,
                    None => {
                        let (code, what) = match position {
                            InputPosition::Argument => ("FIELD_ARGUMENT_TYPE_MISMATCH", "argument"),
                            InputPosition::InputField => ("FIELD_TYPE_MISMATCH", "field"),
                        };
                        self.err(
                            Some(graph),
                            coordinate.clone(),
                            code,
                            format!(
                                "type of {what} \"{coordinate}\" is incompatible across \
                                 subgraphs: it has type \"{}\" in subgraph \"{}\" but type \
                                 \"{}\" in subgraph \"{}\". Use the same type in every subgraph",
                                first.ty,
                                self.name(first_graph),
                                value.ty,
                                self.name(graph)
                            ),
                        );
                        ok = false;
                        break;
                    }
                }
                match (&default, &value.default) {
                    (Some(a), Some(b)) if a != b => {
                        let (code, what) = match position {
                            InputPosition::Argument => {
                                ("FIELD_ARGUMENT_DEFAULT_MISMATCH", "argument")
                            }
                            InputPosition::InputField => {
                                ("INPUT_FIELD_DEFAULT_MISMATCH", "input field")
                            }
                        };
                        self.err(
                            Some(graph),
                            coordinate.clone(),
                            code,
                            format!(
                                "{what} \"{coordinate}\" has incompatible default values across \
                                 subgraphs: it has default value {} in subgraph \"{}\" but \
                                 default value {} in subgraph \"{}\". Use the same default",
                                a.serialize().no_indent(),
                                self.name(default_graph),
                                b.serialize().no_indent(),
                                self.name(graph)
                            ),
                        );
                        ok = false;
                        break;
                    }
                    (None, Some(b)) => {
                        default = Some(b.clone());
                        default_graph = graph;
                    }
                    _ => {}
                }
            }
            if !ok {
                continue;
            }
            let mut applied = Applied::default();
            for (_, value) in &present {
                applied.merge(&value.applied);
            }
            let join_fields = (position == InputPosition::InputField
                && present.iter().any(|(_, v)| v.ty != ty))
            .then(|| {
                present
                    .iter()
                    .map(|(graph, value)| JoinField {
                        graph: Some(*graph),
                        ty: (value.ty != ty).then(|| value.ty.to_string()),
                        ..JoinField::default()
                    })
                    .collect()
            });
            merged.insert(
                name.to_owned(),
                MInputValue {
                    description: present.iter().find_map(|(_, v)| non_empty(&v.description)),
                    ty,
                    default,
                    applied,
                    join_fields,
                },
            );
        }
        merged
    }

    pub(super) fn merge_input_object(
        &mut self,
        name: &str,
        merged: &mut MType,
        defs: &[(usize, &'a SubType)],
    ) {
        let sources: Vec<(usize, &IndexMap<String, SubInputValue>)> =
            defs.iter().map(|(g, d)| (*g, &d.input_fields)).collect();
        merged.input_fields = self.merge_input_values(name, &sources, InputPosition::InputField);
        if merged.input_fields.is_empty() {
            self.err(
                defs.first().map(|(g, _)| *g),
                name,
                "EMPTY_MERGED_INPUT_TYPE",
                format!(
                    "none of the fields of input type \"{name}\" are defined in all the \
                     subgraphs defining it: input types merge by intersection, so define at \
                     least one common field"
                ),
            );
        }
    }

    pub(super) fn merge_enum(
        &mut self,
        name: &str,
        merged: &mut MType,
        defs: &[(usize, &'a SubType)],
    ) {
        let mut all_values: IndexMap<&str, Vec<(usize, &SubEnumValue)>> = IndexMap::new();
        for &(graph, def) in defs {
            for (value, def) in &def.values {
                all_values.entry(value).or_default().push((graph, def));
            }
        }
        // Apollo's rule: output-only enums take the union of values, input-only enums the
        // intersection, and enums used both ways must agree everywhere.
        let used_as_input = self.enum_input_usage.contains_key(name);
        let used_as_output = self.enum_output_usage.contains_key(name);
        for (value, present) in all_values {
            if present.len() < defs.len() && used_as_input {
                let missing = defs
                    .iter()
                    .find(|(g, _)| !present.iter().any(|(pg, _)| pg == g))
                    .map(|(g, _)| *g);
                if used_as_output {
                    let input_at = self.enum_input_usage.get(name).cloned().unwrap_or_default();
                    let output_at = self
                        .enum_output_usage
                        .get(name)
                        .cloned()
                        .unwrap_or_default();
                    let missing_name = missing.map(|g| self.name(g)).unwrap_or_default();
                    self.err(
                        missing,
                        name,
                        "ENUM_VALUE_MISMATCH",
                        format!(
                            "enum type \"{name}\" is used as both input type (for example, as \
                             type of \"{input_at}\") and output type (for example, as type of \
                             \"{output_at}\"), but value \"{value}\" is not defined in all the \
                             subgraphs defining \"{name}\": it is missing in subgraph \
                             \"{missing_name}\". Define the same values everywhere"
                        ),
                    );
                }
                // Input-only enums keep only the values every subgraph accepts.
                continue;
            }
            let mut applied = Applied::default();
            for (_, v) in &present {
                applied.merge(&v.applied);
            }
            merged.values.insert(
                value.to_owned(),
                MEnumValue {
                    description: present.iter().find_map(|(_, v)| non_empty(&v.description)),
                    graphs: present.iter().map(|(g, _)| *g).collect(),
                    applied,
                },
            );
        }
        if merged.values.is_empty() {
            self.err(
                defs.first().map(|(g, _)| *g),
                name,
                "EMPTY_MERGED_ENUM_TYPE",
                format!(
                    "none of the values of enum \"{name}\" (used as an input type) are defined \
                     in all the subgraphs defining it: define at least one common value"
                ),
            );
        }
    }
}
