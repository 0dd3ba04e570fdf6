//! Measures of an operation (depth, aliases, root fields, cost with the request's
//! variables), checked against an endpoint's limits (the unified endpoint's or a
//! BFF's) after its variables are coerced and before any fetch.

use apollo_compiler::ast::Value;
use apollo_compiler::response::JsonMap;

use super::config::QueryLimits;
use crate::planner::operation::{Field, Operation, Selection, SelectionSet};
use crate::request::{Prepared, RequestError};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OperationStats {
    pub depth: u32,
    pub aliases: u32,
    pub root_fields: u32,
    /// Cost with the default list size; see [`QueryLimits`] for the model.
    pub cost: u64,
}

/// Arguments read as a list's size (its slicing arguments).
const SIZE_ARGUMENTS: [&str; 4] = ["first", "last", "limit", "size"];

/// The endpoint's introspection switch and limits, for one request: `variables` are
/// its coerced variables (defaults applied), which size lists as literals do.
pub fn enforce(
    limits: &QueryLimits,
    prepared: &Prepared,
    variables: &JsonMap,
) -> Result<(), RequestError> {
    if prepared.introspection && !limits.introspection {
        return Err(RequestError::IntrospectionDisabled);
    }
    let stats = measure(&prepared.operation, limits.default_list_size, variables);
    check(&stats, limits).map_err(|(message, code)| RequestError::LimitExceeded { message, code })
}

pub fn measure(op: &Operation, default_list_size: u64, variables: &JsonMap) -> OperationStats {
    let mut stats = OperationStats {
        root_fields: count_fields(&op.selection),
        ..OperationStats::default()
    };
    let sizes = Sizes {
        default: default_list_size,
        variables,
    };
    stats.cost = walk(&op.selection, 1, &sizes, &mut stats);
    stats
}

/// How big a list field is taken to be.
struct Sizes<'a> {
    default: u64,
    variables: &'a JsonMap,
}

fn count_fields(set: &SelectionSet) -> u32 {
    set.0
        .iter()
        .map(|s| match s {
            Selection::Field(f) if f.name.starts_with("__") => 0,
            Selection::Field(_) => 1,
            Selection::Fragment(f) => count_fields(&f.selection),
        })
        .sum()
}

fn walk(set: &SelectionSet, depth: u32, sizes: &Sizes, stats: &mut OperationStats) -> u64 {
    let mut cost: u64 = 0;
    for item in &set.0 {
        match item {
            Selection::Field(f) => {
                if f.key != f.name {
                    stats.aliases += 1;
                }
                if depth == 1 && matches!(f.name.as_str(), "__schema" | "__type") {
                    continue;
                }
                stats.depth = stats.depth.max(depth);
                let below = walk(&f.selection, depth + 1, sizes, stats);
                let multiplier = if f.ty.is_list() { sizes.of(f) } else { 1 };
                cost = cost.saturating_add(1u64.saturating_add(multiplier.saturating_mul(below)));
            }
            Selection::Fragment(frag) => {
                cost = cost.saturating_add(walk(&frag.selection, depth, sizes, stats));
            }
        }
    }
    cost
}

impl Sizes<'_> {
    /// The first slicing argument given (a literal or a variable with a value), else
    /// the default; negative sizes count as zero.
    fn of(&self, field: &Field) -> u64 {
        field
            .arguments
            .iter()
            .filter(|a| SIZE_ARGUMENTS.contains(&a.name.as_str()))
            .find_map(|a| match &*a.value {
                Value::Int(i) => i.try_to_i32().ok().map(|n| u64::try_from(n).unwrap_or(0)),
                Value::Variable(name) => self
                    .variables
                    .get(name.as_str())
                    .and_then(|v| v.as_i64())
                    .map(|n| u64::try_from(n).unwrap_or(0)),
                _ => None,
            })
            .unwrap_or(self.default)
    }
}

/// The first limit the operation exceeds, as a client-facing message and code.
pub fn check(stats: &OperationStats, limits: &QueryLimits) -> Result<(), (String, &'static str)> {
    if let Some(max) = limits.max_depth
        && stats.depth > max
    {
        return Err((
            format!(
                "the operation is {} levels deep; the limit is {max}",
                stats.depth
            ),
            "MAX_DEPTH_EXCEEDED",
        ));
    }
    if let Some(max) = limits.max_aliases
        && stats.aliases > max
    {
        return Err((
            format!(
                "the operation uses {} aliases; the limit is {max}",
                stats.aliases
            ),
            "MAX_ALIASES_EXCEEDED",
        ));
    }
    if let Some(max) = limits.max_root_fields
        && stats.root_fields > max
    {
        return Err((
            format!(
                "the operation selects {} root fields; the limit is {max}",
                stats.root_fields
            ),
            "MAX_ROOT_FIELDS_EXCEEDED",
        ));
    }
    if let Some(max) = limits.max_cost
        && stats.cost > max
    {
        return Err((
            format!(
                "the operation's estimated cost is {}; the limit is {max}",
                stats.cost
            ),
            "MAX_COST_EXCEEDED",
        ));
    }
    Ok(())
}
