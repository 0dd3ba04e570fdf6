//! Apollo Federation v2 composition: subgraph SDLs in, supergraph SDL (join v0.3) out.
//!
//! Each subgraph SDL is parsed and validated with `apollo-compiler` (federation directive
//! definitions are injected when the SDL does not define them), its federation directives
//! are read (`@key`, `@shareable`, `@external`, `@requires`, `@provides`, `@override`,
//! `@inaccessible`, `@tag`, `@interfaceObject`, `@extends`, with Federation 2 `@link` imports,
//! renames and `federation__` prefixes, or Federation 1 conventions), and the types are merged
//! following Apollo's rules: output field types widen, argument and input field types narrow,
//! input objects and input-only enums intersect, other enums and unions take the union, and a
//! field resolved by several subgraphs must be shareable. The result is printed in the format
//! Apollo/Hive composition emits (`@join__type`, `@join__field`, `@join__implements`,
//! `@join__unionMember`, `@join__enumValue`, `@join__graph`) and re-validated before returning.
//!
//! Not (yet) done: the satisfiability check (whether every field is reachable from the
//! roots through keys), `@composeDirective` and custom/executable directive propagation,
//! `@context`/`@fromContext`, progressive override labels, `@policy`/`@cost` propagation
//! (they are accepted and dropped), join v0.4+ features, and
//! hints (non-fatal warnings). `@external` fields that are only used by `@provides` do not
//! need the owning field to be `@shareable` here (Apollo is stricter).

mod errors;
mod federation;
mod merge;
mod print;
mod read;
mod subgraph;
#[cfg(test)]
mod tests;
mod text;
mod validate;
mod values;

use std::collections::HashSet;

use apollo_compiler::Schema;

pub use errors::{CompositionError, CompositionErrors};
use errors::{diagnostics_text, error};
use merge::Merger;
use print::print_supergraph;
use read::load_subgraph;
use subgraph::Subgraph;
pub use subgraph::SubgraphInput;

/// Composes the subgraphs into a Federation 2 supergraph SDL (join v0.3).
///
/// Subgraphs are processed in name order so the output does not depend on input order.
/// Returns every error found rather than stopping at the first one.
pub fn compose(subgraphs: &[SubgraphInput]) -> Result<String, CompositionErrors> {
    let mut errors = Vec::new();
    if subgraphs.is_empty() {
        errors.push(error(
            None,
            None,
            "NO_SUBGRAPHS",
            "no subgraphs to compose: provide at least one subgraph".into(),
        ));
        return Err(CompositionErrors(errors));
    }
    let mut inputs: Vec<&SubgraphInput> = subgraphs.iter().collect();
    inputs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut seen = HashSet::new();
    for input in &inputs {
        if input.name.is_empty() {
            errors.push(error(
                None,
                None,
                "INVALID_SUBGRAPH_NAME",
                "a subgraph has an empty name: give every subgraph a unique, non-empty name".into(),
            ));
        } else if !seen.insert(input.name.as_str()) {
            errors.push(error(
                Some(&input.name),
                None,
                "DUPLICATE_SUBGRAPH_NAME",
                format!(
                    "subgraph name \"{}\" is used more than once: subgraph names must be unique",
                    input.name
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(CompositionErrors(errors));
    }

    let graph_names = graph_enum_values(&inputs);
    let loaded: Vec<Subgraph> = inputs
        .iter()
        .zip(graph_names)
        .filter_map(|(input, graph)| load_subgraph(input, graph, &mut errors))
        .collect();
    if loaded.len() != inputs.len() {
        // Merging partially loaded subgraphs would only produce misleading follow-up errors.
        return Err(CompositionErrors(errors));
    }

    let mut merger = Merger::new(&loaded);
    let types = merger.merge();
    errors.append(&mut merger.errors);
    if !errors.is_empty() {
        return Err(CompositionErrors(errors));
    }

    let sdl = print_supergraph(&loaded, &types);
    if let Err(invalid) = Schema::parse_and_validate(&sdl, "supergraph.graphql") {
        // A guard against merge rules this module does not check yet: never hand out a
        // supergraph that the gateway itself would reject.
        errors.push(error(
            None,
            None,
            "INVALID_SUPERGRAPH",
            format!(
                "the composed supergraph is not a valid schema: {}",
                diagnostics_text(&invalid.errors)
            ),
        ));
        return Err(CompositionErrors(errors));
    }
    Ok(sdl)
}

/// `join__Graph` value names: the subgraph name uppercased, non-alphanumerics replaced by
/// `_`, made unique with a numeric suffix (like Apollo) so `a-b` and `a_b` can coexist.
fn graph_enum_values(inputs: &[&SubgraphInput]) -> Vec<String> {
    let mut used = HashSet::new();
    inputs
        .iter()
        .map(|input| {
            let mut base: String = input
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            if base.starts_with(|c: char| c.is_ascii_digit()) {
                base.insert(0, '_');
            }
            let mut candidate = base.clone();
            let mut suffix = 1;
            while !used.insert(candidate.clone()) {
                candidate = format!("{base}_{suffix}");
                suffix += 1;
            }
            candidate
        })
        .collect()
}
