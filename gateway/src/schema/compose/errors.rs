//! Composition errors: each located by subgraph and schema coordinate, with a code and
//! a message that says what to change.

use std::fmt::Write as _;

use apollo_compiler::validation::DiagnosticList;

/// All errors found while composing; `Display` prints one error per line.
#[derive(Debug, thiserror::Error)]
#[error("{}", display_lines(.0))]
pub struct CompositionErrors(pub Vec<CompositionError>);

/// One composition error, located by subgraph and schema coordinate where possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{code}: {message}", location_prefix(.subgraph.as_deref(), .coordinate.as_deref()))]
pub struct CompositionError {
    /// The subgraph the problem is in (or the first one involved), if it is local to one.
    pub subgraph: Option<String>,
    /// Schema coordinate such as `Product.price` or `Query.user(id:)`.
    pub coordinate: Option<String>,
    /// Stable machine-readable code, named after Apollo's composition error codes.
    pub code: &'static str,
    /// What is wrong and what to change.
    pub message: String,
}

pub(super) fn display_lines(errors: &[CompositionError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn location_prefix(subgraph: Option<&str>, coordinate: Option<&str>) -> String {
    let mut prefix = String::new();
    if let Some(subgraph) = subgraph {
        let _ = write!(prefix, "[{subgraph}] ");
    }
    if let Some(coordinate) = coordinate {
        let _ = write!(prefix, "{coordinate}: ");
    }
    prefix
}

pub(super) fn error(
    subgraph: Option<&str>,
    coordinate: Option<String>,
    code: &'static str,
    message: String,
) -> CompositionError {
    CompositionError {
        subgraph: subgraph.map(str::to_owned),
        coordinate,
        code,
        message,
    }
}

pub(super) fn diagnostics_text(diagnostics: &DiagnosticList) -> String {
    diagnostics
        .iter()
        .map(|diagnostic| match diagnostic.line_column_range() {
            Some(range) => format!(
                "{} (line {}, column {})",
                diagnostic.error, range.start.line, range.start.column
            ),
            None => diagnostic.error.to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub(super) fn push_invalid_graphql(
    errors: &mut Vec<CompositionError>,
    subgraph: &str,
    list: &DiagnosticList,
) {
    for diagnostic in list.iter() {
        let location = diagnostic
            .line_column_range()
            .map(|range| format!("line {}, column {}: ", range.start.line, range.start.column))
            .unwrap_or_default();
        errors.push(error(
            Some(subgraph),
            None,
            "INVALID_GRAPHQL",
            format!(
                "{location}{} (fix the subgraph SDL so it is a valid GraphQL schema)",
                diagnostic.error
            ),
        ));
    }
}
