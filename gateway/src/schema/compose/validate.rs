//! Checks of federation directives that composition makes: `@requires` and `@provides`
//! field sets against the subgraph that declares them, and that a field resolved by
//! several subgraphs is shareable.

use std::collections::HashMap;

use apollo_compiler::ast::Type;
use apollo_compiler::executable;
use apollo_compiler::schema::ExtendedType;

use super::merge::Merger;
use super::read::{Loader, collect_selected};
use super::subgraph::{SubField, SubType};
use super::text::{quote, quoted_list, subgraph_list};

impl Loader<'_> {
    pub(super) fn check_requires(
        &mut self,
        name: &str,
        renamed: &str,
        coordinate: &str,
        fields: &str,
    ) {
        match self.parse_field_set(name, fields) {
            Ok(set) => {
                let mut selected = Vec::new();
                collect_selected(&set.selection_set, &mut selected);
                for (ty, field) in selected {
                    self.used_fields
                        .insert((self.rename(&ty).to_owned(), field));
                }
                if self.names.fed2 {
                    // Only leaves must be external: a local field on the way to
                    // external ones (`author { name }`) is fine, as in Apollo.
                    let missing: Vec<String> = top_level_leaf_fields(&set.selection_set)
                        .into_iter()
                        .filter(|f| !self.field_is_external(name, f))
                        .collect();
                    if !missing.is_empty() {
                        self.err(
                            coordinate.to_owned(),
                            "REQUIRES_FIELDS_MISSING_EXTERNAL",
                            format!(
                                "@requires(fields: {}) on \"{coordinate}\" uses {} which {} not \
                                 marked @external: declare the required fields on \"{renamed}\" \
                                 with @external in this subgraph",
                                quote(fields),
                                quoted_list(&missing),
                                if missing.len() == 1 { "is" } else { "are" }
                            ),
                        );
                    }
                }
            }
            Err(message) => self.err(
                coordinate.to_owned(),
                "REQUIRES_INVALID_FIELDS",
                format!(
                    "@requires(fields: {}) on \"{coordinate}\" is invalid: {message}. If the \
                     field is defined in another subgraph, add it to \"{renamed}\" in this \
                     subgraph with @external",
                    quote(fields)
                ),
            ),
        }
    }

    pub(super) fn check_provides(&mut self, coordinate: &str, ty: &Type, fields: &str) {
        let target = ty.inner_named_type();
        let composite = matches!(
            self.schema.types.get(target.as_str()),
            Some(ExtendedType::Object(_) | ExtendedType::Interface(_) | ExtendedType::Union(_))
        );
        if !composite {
            self.err(
                coordinate.to_owned(),
                "PROVIDES_ON_NON_OBJECT_FIELD",
                format!(
                    "@provides(fields: {}) on \"{coordinate}\" is invalid: the field returns \
                     \"{target}\", which is not an object, interface or union type. Remove \
                     @provides from this field",
                    quote(fields)
                ),
            );
            return;
        }
        match self.parse_field_set(target, fields) {
            Ok(set) => {
                if self.names.fed2 && self.schema.get_object(target.as_str()).is_some() {
                    // Only leaves must be external: a local field on the way to
                    // external ones (`author { name }`) is fine, as in Apollo.
                    let missing: Vec<String> = top_level_leaf_fields(&set.selection_set)
                        .into_iter()
                        .filter(|f| !self.field_is_external(target, f))
                        .collect();
                    if !missing.is_empty() {
                        self.err(
                            coordinate.to_owned(),
                            "PROVIDES_FIELDS_MISSING_EXTERNAL",
                            format!(
                                "@provides(fields: {}) on \"{coordinate}\" provides {} of \
                                 \"{target}\" which {} not marked @external: mark the provided \
                                 fields @external in this subgraph",
                                quote(fields),
                                quoted_list(&missing),
                                if missing.len() == 1 { "is" } else { "are" }
                            ),
                        );
                    }
                }
            }
            Err(message) => self.err(
                coordinate.to_owned(),
                "PROVIDES_INVALID_FIELDS",
                format!(
                    "@provides(fields: {}) on \"{coordinate}\" is invalid: {message}. Provided \
                     fields must exist on \"{target}\" in this subgraph (with @external)",
                    quote(fields)
                ),
            ),
        }
    }
}

/// The leaf fields (no subselection) a field set selects directly on its parent type.
pub(super) fn top_level_leaf_fields(set: &executable::SelectionSet) -> Vec<String> {
    set.selections
        .iter()
        .filter_map(|selection| match selection {
            executable::Selection::Field(field)
                if !field.name.starts_with("__") && field.selection_set.selections.is_empty() =>
            {
                Some(field.name.to_string())
            }
            _ => None,
        })
        .collect()
}

impl<'a> Merger<'a> {
    pub(super) fn check_sharing(
        &mut self,
        coordinate: &str,
        type_name: &str,
        field_name: &str,
        type_defs: &[(usize, &SubType)],
        defs: &[(usize, &SubField)],
        overridden: &HashMap<usize, bool>,
    ) {
        let resolving: Vec<usize> = defs
            .iter()
            .filter(|(g, f)| !f.external && !overridden.contains_key(g))
            .map(|(g, _)| *g)
            .collect();
        if resolving.len() < 2 {
            return;
        }
        let key = (type_name.to_owned(), field_name.to_owned());
        let non_shareable: Vec<usize> = defs
            .iter()
            .filter(|(g, f)| {
                let subgraph = &self.subgraphs[*g];
                resolving.contains(g)
                    && subgraph.fed2
                    && !f.shareable
                    && !subgraph.key_fields.contains(&key)
                    && !type_defs
                        .iter()
                        .any(|(tg, t)| tg == g && t.interface_object)
            })
            .map(|(g, _)| *g)
            .collect();
        if let Some(&first) = non_shareable.first() {
            let resolved_in: Vec<String> =
                resolving.iter().map(|g| self.name(*g).to_owned()).collect();
            let non_shareable_in: Vec<String> = non_shareable
                .iter()
                .map(|g| self.name(*g).to_owned())
                .collect();
            self.err(
                Some(first),
                coordinate,
                "INVALID_FIELD_SHARING",
                format!(
                    "non-shareable field \"{coordinate}\" is resolved from multiple subgraphs: it \
                     is resolved from subgraphs {} and defined as non-shareable in {}. Mark it \
                     @shareable in every subgraph that resolves it, or resolve it in one subgraph \
                     only (@external, @override)",
                    quoted_list(&resolved_in),
                    subgraph_list(&non_shareable_in),
                ),
            );
        }
    }
}
