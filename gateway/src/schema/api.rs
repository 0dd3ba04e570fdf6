//! The API schema: what clients see, validate against and introspect. It is the
//! supergraph with the federation machinery (`join__*`, `link__*`, `_entities`,
//! `_service`, ...) and every `@inaccessible` element removed.

use apollo_compiler::Schema;
use apollo_compiler::ast::DirectiveList as AstDirectives;
use apollo_compiler::schema::{DirectiveList, ExtendedType};
use apollo_compiler::validation::Valid;

use super::supergraph::{SchemaError, is_federation_type};

/// Directives of the type system that only mean something to the gateway.
fn is_machinery_directive(name: &str) -> bool {
    name == "link"
        || name == "core"
        || name == "inaccessible"
        || name == "tag"
        || name.starts_with("join__")
        || name.starts_with("link__")
        || matches!(
            name,
            "authenticated"
                | "requiresScopes"
                | "policy"
                | "context"
                | "fromContext"
                | "cost"
                | "listSize"
        )
}

fn inaccessible_ast(directives: &AstDirectives) -> bool {
    directives.iter().any(|d| d.name == "inaccessible")
}

fn inaccessible(directives: &DirectiveList) -> bool {
    directives.iter().any(|d| d.name == "inaccessible")
}

fn strip(directives: &mut DirectiveList) {
    directives.0.retain(|d| !is_machinery_directive(&d.name));
}

fn strip_ast(directives: &mut AstDirectives) {
    directives.0.retain(|d| !is_machinery_directive(&d.name));
}

/// Derive the API schema from a validated supergraph schema.
pub fn api_schema(supergraph: &Schema) -> Result<Valid<Schema>, SchemaError> {
    let mut schema = supergraph.clone();
    schema
        .directive_definitions
        .retain(|name, _| !is_machinery_directive(name));
    strip(&mut schema.schema_definition.make_mut().directives);

    let hidden: Vec<_> = schema
        .types
        .iter()
        .filter(|(name, ty)| is_federation_type(name) || inaccessible(ty.directives()))
        .map(|(name, _)| name.clone())
        .collect();
    schema.types.retain(|name, _| !hidden.contains(name));
    let is_hidden = |name: &str| hidden.iter().any(|h| h == name);

    for (_, ty) in schema.types.iter_mut() {
        match ty {
            ExtendedType::Object(o) => {
                let o = o.make_mut();
                strip(&mut o.directives);
                o.implements_interfaces.retain(|i| !is_hidden(i));
                o.fields.retain(|name, f| {
                    !inaccessible_ast(&f.directives)
                        && !is_hidden(f.ty.inner_named_type())
                        && !matches!(name.as_str(), "_entities" | "_service")
                });
                for (_, f) in o.fields.iter_mut() {
                    let f = f.make_mut();
                    strip_ast(&mut f.directives);
                    f.arguments.retain(|a| !inaccessible_ast(&a.directives));
                    for a in f.arguments.iter_mut() {
                        strip_ast(&mut a.make_mut().directives);
                    }
                }
            }
            ExtendedType::Interface(i) => {
                let i = i.make_mut();
                strip(&mut i.directives);
                i.implements_interfaces.retain(|n| !is_hidden(n));
                i.fields.retain(|_, f| {
                    !inaccessible_ast(&f.directives) && !is_hidden(f.ty.inner_named_type())
                });
                for (_, f) in i.fields.iter_mut() {
                    let f = f.make_mut();
                    strip_ast(&mut f.directives);
                    f.arguments.retain(|a| !inaccessible_ast(&a.directives));
                    for a in f.arguments.iter_mut() {
                        strip_ast(&mut a.make_mut().directives);
                    }
                }
            }
            ExtendedType::Union(u) => {
                let u = u.make_mut();
                strip(&mut u.directives);
                u.members.retain(|m| !is_hidden(m));
            }
            ExtendedType::Enum(e) => {
                let e = e.make_mut();
                strip(&mut e.directives);
                e.values.retain(|_, v| !inaccessible_ast(&v.directives));
                for (_, v) in e.values.iter_mut() {
                    strip_ast(&mut v.make_mut().directives);
                }
            }
            ExtendedType::InputObject(io) => {
                let io = io.make_mut();
                strip(&mut io.directives);
                io.fields.retain(|_, f| {
                    !inaccessible_ast(&f.directives) && !is_hidden(f.ty.inner_named_type())
                });
                for (_, f) in io.fields.iter_mut() {
                    strip_ast(&mut f.make_mut().directives);
                }
            }
            ExtendedType::Scalar(s) => strip(&mut s.make_mut().directives),
        }
    }
    // Clients may defer fragments of queries (incremental delivery).
    if !schema.directive_definitions.contains_key("defer")
        && let Ok(defer) = Schema::parse(DEFER, "defer.graphql")
        && let Some(definition) = defer.directive_definitions.get("defer")
    {
        schema
            .directive_definitions
            .insert(definition.name.clone(), definition.clone());
    }
    schema
        .validate()
        .map_err(|e| SchemaError::Invalid(format!("the API schema is invalid: {}", e.errors)))
}

const DEFER: &str =
    "directive @defer(label: String, if: Boolean! = true) on FRAGMENT_SPREAD | INLINE_FRAGMENT";
