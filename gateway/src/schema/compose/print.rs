//! Writing the supergraph SDL in the format Apollo and Hive composition emit.

use std::fmt::Write as _;

use indexmap::IndexMap;

use super::subgraph::Subgraph;

use super::merge::{JoinField, MField, MInputValue, MType};
use super::subgraph::TypeKind;
use super::text::quote;

/// Line width of the prettier-style layout used by Apollo/Hive supergraph outputs.
pub(super) const MAX_WIDTH: usize = 80;
pub(super) const INDENT: &str = "    ";

pub(super) const JOIN_DIRECTIVES: &str = r#"directive @join__enumValue(graph: join__Graph!) repeatable on ENUM_VALUE

directive @join__field(
    graph: join__Graph
    requires: join__FieldSet
    provides: join__FieldSet
    type: String
    external: Boolean
    override: String
    usedOverridden: Boolean
) repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION

directive @join__graph(name: String!, url: String!) on ENUM_VALUE

directive @join__implements(
    graph: join__Graph!
    interface: String!
) repeatable on OBJECT | INTERFACE

directive @join__type(
    graph: join__Graph!
    key: join__FieldSet
    extension: Boolean! = false
    resolvable: Boolean! = true
    isInterfaceObject: Boolean! = false
) repeatable on OBJECT | INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR

directive @join__unionMember(
    graph: join__Graph!
    member: String!
) repeatable on UNION

directive @link(
    url: String
    as: String
    for: link__Purpose
    import: [link__Import]
) repeatable on SCHEMA
"#;

pub(super) const INACCESSIBLE_DIRECTIVE: &str = "directive @inaccessible on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION\n";

pub(super) const TAG_DIRECTIVE: &str = "directive @tag(\n    name: String!\n) repeatable on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION | SCHEMA\n";

pub(super) const AUTHENTICATED_DIRECTIVE: &str =
    "directive @authenticated on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM\n";

pub(super) const REQUIRES_SCOPES_DIRECTIVE: &str = "directive @requiresScopes(scopes: [[requiresScopes__Scope!]!]!) on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM\n";

pub(super) const LINK_PURPOSE: &str = r#"enum link__Purpose {
    """
    `SECURITY` features provide metadata necessary to securely resolve fields.
    """
    SECURITY

    """
    `EXECUTION` features provide metadata necessary for operation execution.
    """
    EXECUTION
}
"#;

pub(super) fn print_supergraph(subgraphs: &[Subgraph], types: &IndexMap<String, MType>) -> String {
    let applied = || {
        types.values().flat_map(|t| {
            std::iter::once(&t.applied)
                .chain(t.fields.values().flat_map(|f| {
                    std::iter::once(&f.applied).chain(f.args.values().map(|a| &a.applied))
                }))
                .chain(t.input_fields.values().map(|f| &f.applied))
                .chain(t.values.values().map(|v| &v.applied))
        })
    };
    let uses_inaccessible = applied().any(|a| a.inaccessible);
    let uses_tag = applied().any(|a| !a.tags.is_empty());
    let uses_authenticated = applied().any(|a| a.authenticated);
    let uses_scopes = applied().any(|a| a.scopes.is_some());

    let mut out = String::new();
    let mut links = vec![
        "@link(url: \"https://specs.apollo.dev/link/v1.0\")".to_owned(),
        "@link(url: \"https://specs.apollo.dev/join/v0.3\", for: EXECUTION)".to_owned(),
    ];
    if uses_tag {
        links.push("@link(url: \"https://specs.apollo.dev/tag/v0.3\")".to_owned());
    }
    if uses_inaccessible {
        links.push(
            "@link(url: \"https://specs.apollo.dev/inaccessible/v0.2\", for: SECURITY)".to_owned(),
        );
    }
    if uses_authenticated {
        links.push(
            "@link(url: \"https://specs.apollo.dev/authenticated/v0.1\", for: SECURITY)".to_owned(),
        );
    }
    if uses_scopes {
        links.push(
            "@link(url: \"https://specs.apollo.dev/requiresScopes/v0.1\", for: SECURITY)"
                .to_owned(),
        );
    }
    push_with_directives(&mut out, "", "schema", &links, " {");
    for (op, name) in [
        ("query", "Query"),
        ("mutation", "Mutation"),
        ("subscription", "Subscription"),
    ] {
        if types.contains_key(name) {
            let _ = writeln!(out, "{INDENT}{op}: {name}");
        }
    }
    out.push_str("}\n\n");

    if uses_inaccessible {
        out.push_str(INACCESSIBLE_DIRECTIVE);
        out.push('\n');
    }
    out.push_str(JOIN_DIRECTIVES);
    if uses_tag {
        out.push('\n');
        out.push_str(TAG_DIRECTIVE);
    }
    if uses_authenticated {
        out.push('\n');
        out.push_str(AUTHENTICATED_DIRECTIVE);
    }
    if uses_scopes {
        out.push('\n');
        out.push_str(REQUIRES_SCOPES_DIRECTIVE);
    }

    let mut graph_enum = String::from("enum join__Graph {\n");
    for subgraph in subgraphs {
        let directive = format!(
            "@join__graph(name: {}, url: {})",
            quote(&subgraph.name),
            quote(&subgraph.url)
        );
        push_with_directives(&mut graph_enum, INDENT, &subgraph.graph, &[directive], "");
    }
    graph_enum.push_str("}\n");

    let mut blocks: Vec<(String, String)> = vec![
        ("join__FieldSet".into(), "scalar join__FieldSet\n".into()),
        ("join__Graph".into(), graph_enum),
        ("link__Import".into(), "scalar link__Import\n".into()),
        ("link__Purpose".into(), LINK_PURPOSE.into()),
    ];
    if uses_scopes {
        blocks.push((
            "requiresScopes__Scope".into(),
            "scalar requiresScopes__Scope\n".into(),
        ));
    }
    for (name, ty) in types {
        blocks.push((name.clone(), print_type(subgraphs, name, ty)));
    }
    blocks.sort_by(|(a, _), (b, _)| {
        a.to_lowercase()
            .cmp(&b.to_lowercase())
            .then_with(|| a.cmp(b))
    });
    for (_, block) in blocks {
        out.push('\n');
        out.push_str(&block);
    }
    out
}

pub(super) fn print_type(subgraphs: &[Subgraph], name: &str, ty: &MType) -> String {
    let graph = |g: usize| subgraphs[g].graph.as_str();
    let mut out = String::new();
    print_description(&mut out, "", ty.description.as_deref());
    let mut directives: Vec<String> = ty
        .join_types
        .iter()
        .map(|join| {
            let mut args = format!("graph: {}", graph(join.graph));
            if let Some(key) = &join.key {
                let _ = write!(args, ", key: {}", quote(key));
            }
            if join.extension {
                args.push_str(", extension: true");
            }
            if !join.resolvable {
                args.push_str(", resolvable: false");
            }
            if join.interface_object {
                args.push_str(", isInterfaceObject: true");
            }
            format!("@join__type({args})")
        })
        .collect();
    for (interface, graphs) in &ty.implements {
        for g in graphs {
            directives.push(format!(
                "@join__implements(graph: {}, interface: {})",
                graph(*g),
                quote(interface)
            ));
        }
    }
    for (member, graphs) in &ty.members {
        for g in graphs {
            directives.push(format!(
                "@join__unionMember(graph: {}, member: {})",
                graph(*g),
                quote(member)
            ));
        }
    }
    directives.extend(ty.applied.render());

    let keyword = match ty.kind {
        TypeKind::Scalar => "scalar",
        TypeKind::Object => "type",
        TypeKind::Interface => "interface",
        TypeKind::Union => "union",
        TypeKind::Enum => "enum",
        TypeKind::InputObject => "input",
    };
    let mut head = format!("{keyword} {name}");
    if !ty.implements.is_empty() {
        let interfaces: Vec<&str> = ty.implements.keys().map(String::as_str).collect();
        let _ = write!(head, " implements {}", interfaces.join(" & "));
    }
    match ty.kind {
        TypeKind::Scalar => push_with_directives(&mut out, "", &head, &directives, ""),
        TypeKind::Union => {
            let members: Vec<&str> = ty.members.keys().map(String::as_str).collect();
            let tail = format!(" = {}", members.join(" | "));
            push_with_directives(&mut out, "", &head, &directives, &tail);
        }
        TypeKind::Object | TypeKind::Interface => {
            push_with_directives(&mut out, "", &head, &directives, " {");
            for (field_name, field) in &ty.fields {
                print_field(&mut out, subgraphs, field_name, field);
            }
            out.push_str("}\n");
        }
        TypeKind::InputObject => {
            push_with_directives(&mut out, "", &head, &directives, " {");
            for (field_name, field) in &ty.input_fields {
                print_description(&mut out, INDENT, field.description.as_deref());
                let mut directives = join_field_directives(subgraphs, field.join_fields.as_deref());
                directives.extend(field.applied.render());
                push_with_directives(
                    &mut out,
                    INDENT,
                    &input_value(field_name, field),
                    &directives,
                    "",
                );
            }
            out.push_str("}\n");
        }
        TypeKind::Enum => {
            push_with_directives(&mut out, "", &head, &directives, " {");
            for (index, (value_name, value)) in ty.values.iter().enumerate() {
                if index > 0 && value.description.is_some() {
                    out.push('\n');
                }
                print_description(&mut out, INDENT, value.description.as_deref());
                let mut directives: Vec<String> = value
                    .graphs
                    .iter()
                    .map(|g| format!("@join__enumValue(graph: {})", graph(*g)))
                    .collect();
                directives.extend(value.applied.render());
                push_with_directives(&mut out, INDENT, value_name, &directives, "");
            }
            out.push_str("}\n");
        }
    }
    out
}

pub(super) fn print_field(out: &mut String, subgraphs: &[Subgraph], name: &str, field: &MField) {
    print_description(out, INDENT, field.description.as_deref());
    let args: Vec<String> = field
        .args
        .iter()
        .map(|(arg_name, arg)| {
            let mut text = input_value(arg_name, arg);
            for directive in arg.applied.render() {
                text.push(' ');
                text.push_str(&directive);
            }
            text
        })
        .collect();
    let inline = if args.is_empty() {
        String::new()
    } else {
        format!("({})", args.join(", "))
    };
    let mut directives = join_field_directives(subgraphs, field.join_fields.as_deref());
    directives.extend(field.applied.render());
    let multiline_args = field.args.values().any(|a| a.description.is_some())
        || INDENT.len() + name.len() + inline.len() + 2 + field.ty.to_string().len() > MAX_WIDTH;
    if !multiline_args {
        let head = format!("{name}{inline}: {}", field.ty);
        push_with_directives(out, INDENT, &head, &directives, "");
        return;
    }
    let _ = writeln!(out, "{INDENT}{name}(");
    let nested = format!("{INDENT}{INDENT}");
    for ((_, arg), text) in field.args.iter().zip(&args) {
        print_description(out, &nested, arg.description.as_deref());
        let _ = writeln!(out, "{nested}{text}");
    }
    let head = format!("): {}", field.ty);
    push_with_directives(out, INDENT, &head, &directives, "");
}

pub(super) fn input_value(name: &str, value: &MInputValue) -> String {
    match &value.default {
        Some(default) => format!("{name}: {} = {}", value.ty, default.serialize().no_indent()),
        None => format!("{name}: {}", value.ty),
    }
}

pub(super) fn join_field_directives(
    subgraphs: &[Subgraph],
    joins: Option<&[JoinField]>,
) -> Vec<String> {
    joins
        .unwrap_or_default()
        .iter()
        .map(|join| {
            let mut args = Vec::new();
            if let Some(g) = join.graph {
                args.push(format!("graph: {}", subgraphs[g].graph));
            }
            if let Some(requires) = &join.requires {
                args.push(format!("requires: {}", quote(requires)));
            }
            if let Some(provides) = &join.provides {
                args.push(format!("provides: {}", quote(provides)));
            }
            if let Some(ty) = &join.ty {
                args.push(format!("type: {}", quote(ty)));
            }
            if join.external {
                args.push("external: true".into());
            }
            if let Some(from) = &join.override_from {
                args.push(format!("override: {}", quote(from)));
            }
            if join.used_overridden {
                args.push("usedOverridden: true".into());
            }
            if args.is_empty() {
                "@join__field".to_owned()
            } else {
                format!("@join__field({})", args.join(", "))
            }
        })
        .collect()
}

/// Prints `head` and its directives on one line when it fits, otherwise one directive per
/// line (prettier's layout, which the reference supergraphs use); `tail` ends the last line.
pub(super) fn push_with_directives(
    out: &mut String,
    indent: &str,
    head: &str,
    directives: &[String],
    tail: &str,
) {
    let flat_len = indent.len()
        + head.len()
        + directives.iter().map(|d| d.len() + 1).sum::<usize>()
        + tail.len();
    if directives.is_empty() || flat_len <= MAX_WIDTH {
        out.push_str(indent);
        out.push_str(head);
        for directive in directives {
            out.push(' ');
            out.push_str(directive);
        }
        out.push_str(tail);
        out.push('\n');
        return;
    }
    let _ = writeln!(out, "{indent}{head}");
    for (index, directive) in directives.iter().enumerate() {
        let end = if index + 1 == directives.len() {
            tail
        } else {
            ""
        };
        let _ = writeln!(out, "{indent}{INDENT}{directive}{end}");
    }
}

/// Prints a description the way graphql-js does: `"""text"""` when short and single-line,
/// otherwise a block string on its own lines.
pub(super) fn print_description(out: &mut String, indent: &str, description: Option<&str>) {
    let Some(description) = description.filter(|d| !d.is_empty()) else {
        return;
    };
    let escaped = description.replace("\"\"\"", "\\\"\"\"");
    let multiline = escaped.contains('\n')
        || escaped.len() > 70
        || escaped.ends_with('"')
        || escaped.ends_with('\\');
    if multiline {
        let _ = writeln!(out, "{indent}\"\"\"");
        for line in escaped.lines() {
            if line.is_empty() {
                out.push('\n');
            } else {
                let _ = writeln!(out, "{indent}{line}");
            }
        }
        let _ = writeln!(out, "{indent}\"\"\"");
    } else {
        let _ = writeln!(out, "{indent}\"\"\"{escaped}\"\"\"");
    }
}
