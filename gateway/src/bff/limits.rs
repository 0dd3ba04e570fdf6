//! Static measures of an operation, computed once when it is prepared (and cached with
//! its plan), checked against a BFF's limits before any fetch.

use apollo_compiler::ast::Value;

use super::config::QueryLimits;
use crate::planner::operation::{Field, Operation, Selection, SelectionSet};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OperationStats {
    pub depth: u32,
    pub aliases: u32,
    pub root_fields: u32,
    /// Cost with the default list size; see [`QueryLimits`] for the model.
    pub cost: u64,
}

/// Arguments read as a list's size.
const SIZE_ARGUMENTS: [&str; 4] = ["first", "last", "limit", "size"];

pub fn measure(op: &Operation, default_list_size: u64) -> OperationStats {
    let mut stats = OperationStats::default();
    stats.root_fields = count_fields(&op.selection);
    stats.cost = walk(&op.selection, 1, default_list_size, &mut stats);
    stats
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

fn walk(set: &SelectionSet, depth: u32, list_size: u64, stats: &mut OperationStats) -> u64 {
    let mut cost: u64 = 0;
    for item in &set.0 {
        match item {
            Selection::Field(f) => {
                if f.key != f.name {
                    stats.aliases += 1;
                }
                stats.depth = stats.depth.max(depth);
                let below = walk(&f.selection, depth + 1, list_size, stats);
                let multiplier = if f.ty.is_list() {
                    size_of(f, list_size)
                } else {
                    1
                };
                cost = cost.saturating_add(1u64.saturating_add(multiplier.saturating_mul(below)));
            }
            Selection::Fragment(frag) => {
                cost = cost.saturating_add(walk(&frag.selection, depth, list_size, stats));
            }
        }
    }
    cost
}

fn size_of(field: &Field, default: u64) -> u64 {
    field
        .arguments
        .iter()
        .filter(|a| SIZE_ARGUMENTS.contains(&a.name.as_str()))
        .find_map(|a| match &*a.value {
            Value::Int(i) => i.try_to_i32().ok().and_then(|n| u64::try_from(n).ok()),
            _ => None,
        })
        .unwrap_or(default)
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
