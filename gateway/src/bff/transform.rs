//! A BFF's transforms: its own names for the shared graph's types and fields, and
//! arguments it sets (fixed, hidden from its clients, or with its own default). They
//! shape the BFF's schema here; `planner::ViewMapping` maps each operation back onto
//! the shared graph before planning, so responses are never rewritten after the fact.

use std::collections::BTreeMap;

use apollo_compiler::ast::{Type, Value};
use apollo_compiler::schema::{ComponentName, ExtendedType, FieldDefinition};
use apollo_compiler::validation::Valid;
use apollo_compiler::{Name, Node, Schema};
use serde::Deserialize;
use serde_json::Value as Json;

use crate::planner::ViewMapping;
use crate::planner::computed::{Computed, Step};

/// `transforms:` in a BFF file. Every coordinate names the shared graph's types and
/// fields (as `view.hide` does); the BFF's clients see the new names.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// `Product: CatalogItem`: object, interface, union, enum or input types.
    #[serde(default)]
    pub rename_types: BTreeMap<String, String>,
    /// `Product.name: title`. On an interface, its implementations' fields follow.
    #[serde(default)]
    pub rename_fields: BTreeMap<String, String>,
    /// `User.orders.status: { fixed: DELIVERED }` or `Query.topProducts.first: { default: 3 }`.
    #[serde(default)]
    pub arguments: BTreeMap<String, ArgumentRule>,
    /// New fields valued from siblings: `Product.label: { type: String, template: "{name}
    /// ({upc})" }`, `Product.priceWithTax: { type: Int, expression: "price * 119 / 100" }`.
    #[serde(default)]
    pub computed: BTreeMap<String, ComputedConfig>,
    /// New fields lifting a nested one into its parent: `Review.authorName: author.name`.
    /// The path may pass through fields the view hides, so a BFF can show
    /// `authorName` alone; each step is a single object but the last, which may be of
    /// any type, and the new field is nullable unless every step is non-null.
    #[serde(default)]
    pub flatten: BTreeMap<String, String>,
}

/// A computed field: a template (`String`) or an arithmetic expression (`Int`, `Float`)
/// over scalar sibling fields (`docs/bff.md` has the language).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComputedConfig {
    /// `String`, `Int` or `Float`.
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub expression: Option<String>,
    /// Shown in introspection.
    #[serde(default)]
    pub description: Option<String>,
}

/// What a BFF does with one argument: exactly one of the two.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArgumentRule {
    /// Always this value; the argument is gone from the BFF's schema.
    #[serde(default)]
    pub fixed: Option<Json>,
    /// This value when the client leaves the argument out (the schema shows it).
    #[serde(default)]
    pub default: Option<Json>,
}

impl TransformConfig {
    pub fn is_empty(&self) -> bool {
        self.rename_types.is_empty()
            && self.rename_fields.is_empty()
            && self.arguments.is_empty()
            && self.computed.is_empty()
            && self.flatten.is_empty()
    }
}

/// The BFF's schema from its view (`shared`: the whole API schema, whose type names a
/// rename may not take), and the mapping back.
pub fn apply(
    view: Valid<Schema>,
    shared: &Schema,
    config: &TransformConfig,
) -> Result<(Valid<Schema>, ViewMapping), String> {
    let mut mapping = ViewMapping::default();
    if config.is_empty() {
        return Ok((view, mapping));
    }
    let mut schema = view.into_inner();
    for (coordinate, rule) in &config.arguments {
        let at = |m: String| format!("transforms.arguments.{coordinate}: {m}");
        let mut parts = coordinate.splitn(3, '.');
        let (Some(ty), Some(field), Some(argument)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(at("must be `Type.field.argument`".into()));
        };
        for owner in owners(&schema, ty, field).map_err(at)? {
            let definition = field_of(&schema, &owner, field).map_err(at)?;
            let Some(index) = definition.arguments.iter().position(|a| a.name == argument) else {
                return Err(at(format!(
                    "`{owner}.{field}` has no argument `{argument}`"
                )));
            };
            let (fixed, json) = match (&rule.fixed, &rule.default) {
                (Some(v), None) => (true, v),
                (None, Some(v)) => (false, v),
                _ => return Err(at("set one of `fixed` and `default`".into())),
            };
            let value = literal(&schema, &definition.arguments[index].ty, json).map_err(at)?;
            let name = definition.arguments[index].name.clone();
            let definition = field_mut(&mut schema, &owner, field).map_err(at)?;
            if fixed {
                definition.arguments.remove(index);
            } else {
                definition.arguments[index].make_mut().default_value =
                    Some(Node::new(value.clone()));
            }
            let field = definition.name.clone();
            mapping.set_argument(owner, field, name, value, fixed);
        }
    }
    for (coordinate, field) in &config.computed {
        let at = |m: String| format!("transforms.computed.{coordinate}: {m}");
        let (ty, name) = new_field(&schema, coordinate).map_err(at)?;
        let Some(ExtendedType::Object(object)) = schema.types.get(&ty) else {
            continue;
        };
        let type_of = |sibling: &str| {
            let definition = object.fields.get(sibling)?;
            let leaf = matches!(
                schema.types.get(definition.ty.inner_named_type()),
                Some(ExtendedType::Scalar(_) | ExtendedType::Enum(_))
            );
            (leaf && !definition.ty.is_list()).then(|| definition.ty.clone())
        };
        let computed = match (field.ty.as_str(), &field.template, &field.expression) {
            ("String", Some(template), None) => Computed::template(template, type_of),
            ("Int" | "Float", None, Some(expression)) => {
                Computed::expression(expression, field.ty == "Int", type_of)
            }
            _ => Err("a `String` has a `template`; an `Int` or `Float` an `expression`".into()),
        }
        .map_err(at)?;
        let definition = FieldDefinition {
            description: field.description.as_deref().map(Node::from),
            name: name.clone(),
            arguments: Vec::new(),
            // One of `String`, `Int`, `Float`: checked above.
            ty: Type::Named(Name::new(&field.ty).map_err(|e| at(e.to_string()))?),
            directives: Default::default(),
        };
        if let Some(fields) = fields_mut(&mut schema, &ty) {
            fields.insert(name.clone(), Node::new(definition).into());
        }
        mapping.compute(ty, name, computed);
    }
    for (coordinate, path) in &config.flatten {
        let at = |m: String| format!("transforms.flatten.{coordinate}: {m}");
        let (ty, name) = new_field(&schema, coordinate).map_err(at)?;
        let (steps, definition) = flattened(shared, &ty, path, &mapping).map_err(at)?;
        let leaf = definition.ty.inner_named_type();
        if !schema.types.contains_key(leaf) {
            return Err(at(format!("its type `{leaf}` is not in this BFF's view")));
        }
        let definition = FieldDefinition {
            name: name.clone(),
            ..definition
        };
        if let Some(fields) = fields_mut(&mut schema, &ty) {
            fields.insert(name.clone(), Node::new(definition).into());
        }
        mapping.flatten(ty, name, steps);
    }
    for (coordinate, new) in &config.rename_fields {
        let at = |m: String| format!("transforms.rename_fields.{coordinate}: {m}");
        let Some((ty, field)) = coordinate.split_once('.') else {
            return Err(at("must be `Type.field`".into()));
        };
        let new = Name::new(new).map_err(|_| at(format!("`{new}` is not a GraphQL name")))?;
        for owner in owners(&schema, ty, field).map_err(at)? {
            let Some(fields) = fields_mut(&mut schema, &owner) else {
                continue;
            };
            if fields.contains_key(&new) {
                return Err(at(format!(
                    "`{owner}` already has a field `{new}` in the shared graph"
                )));
            }
            let old = std::mem::take(fields);
            *fields = old
                .into_iter()
                .map(|(name, mut definition)| {
                    if name == field {
                        definition.make_mut().name = new.clone();
                        (new.clone(), definition)
                    } else {
                        (name, definition)
                    }
                })
                .collect();
            let field = Name::new(field).map_err(|e| at(e.to_string()))?;
            mapping.rename_field(owner, field, new.clone());
        }
    }
    for (old, new) in &config.rename_types {
        let at = |m: String| format!("transforms.rename_types.{old}: {m}");
        if is_root(&schema, old) {
            return Err(at("root operation types keep their names".into()));
        }
        let Some((old, definition)) = schema.types.get_key_value(old.as_str()) else {
            return Err(at("no such type in this BFF's view".into()));
        };
        if definition.is_built_in() || matches!(definition, ExtendedType::Scalar(_)) {
            return Err(at("built-in types and scalars keep their names".into()));
        }
        let old = old.clone();
        let new = Name::new(new).map_err(|_| at(format!("`{new}` is not a GraphQL name")))?;
        if schema.types.contains_key(&new) || shared.types.contains_key(&new) {
            return Err(at(format!("`{new}` is already a type of the shared graph")));
        }
        rename_type(&mut schema, &old, &new);
        mapping.rename_type(old, new);
    }
    let schema = schema.validate().map_err(|e| {
        format!(
            "transforms: the BFF's schema would be invalid: {}",
            e.errors
        )
    })?;
    Ok((schema, mapping))
}

/// The object type and name of a field that `coordinate` adds to the view.
fn new_field(schema: &Schema, coordinate: &str) -> Result<(Name, Name), String> {
    let Some((ty, name)) = coordinate.split_once('.') else {
        return Err("must be `Type.field`".into());
    };
    let Some((ty, ExtendedType::Object(object))) = schema.types.get_key_value(ty) else {
        return Err(format!("no object type `{ty}` in this BFF's view"));
    };
    if is_root(schema, ty) {
        return Err("root types get no new fields".into());
    }
    let name = Name::new(name).map_err(|_| format!("`{name}` is not a GraphQL name"))?;
    if object.fields.contains_key(&name) {
        return Err(format!("`{ty}` already has a field `{name}`"));
    }
    Ok((ty.clone(), name))
}

/// The steps of a flattened `path` from `parent` (in the shared graph, where the view
/// may hide them) and the new field's definition: the last step's, nullable unless
/// every step is non-null.
fn flattened(
    shared: &Schema,
    parent: &Name,
    path: &str,
    mapping: &ViewMapping,
) -> Result<(Vec<Step>, FieldDefinition), String> {
    let names: Vec<&str> = path.split('.').collect();
    if names.len() < 2 {
        return Err(format!(
            "`{path}` is one field: a path has two or more (`author.name`); rename_fields renames"
        ));
    }
    let mut steps = Vec::with_capacity(names.len());
    let mut on = parent.clone();
    let mut nullable = false;
    let mut last = None;
    for (i, name) in names.iter().enumerate() {
        let definition = shared
            .type_field(&on, name)
            .map_err(|_| format!("no field `{on}.{name}` in the shared graph"))?;
        let coordinate = format!("{on}.{name}");
        let ty = &definition.ty;
        let composite = matches!(
            shared.types.get(ty.inner_named_type()),
            Some(ExtendedType::Object(_) | ExtendedType::Interface(_))
        );
        if i + 1 < names.len() && (ty.is_list() || !composite) {
            return Err(format!(
                "`{coordinate}` is {ty}: only the last step may be other than one object"
            ));
        }
        let arguments = mapping.arguments_set(&on, &definition.name);
        if let Some(required) = definition
            .arguments
            .iter()
            .find(|a| a.is_required() && !arguments.iter().any(|set| set.name == a.name))
        {
            return Err(format!(
                "`{coordinate}` needs the argument `{}`: set it under transforms.arguments",
                required.name
            ));
        }
        nullable |= !ty.is_non_null();
        steps.push(Step {
            name: definition.name.clone(),
            ty: ty.clone(),
            arguments,
        });
        on = ty.inner_named_type().clone();
        last = Some(definition);
    }
    let Some(last) = last else {
        return Err(format!("`{path}` names no field"));
    };
    let mut definition = FieldDefinition::clone(last);
    definition.arguments.clear();
    definition.directives = Default::default();
    if nullable {
        definition.ty = definition.ty.nullable();
    }
    Ok((steps, definition))
}

fn is_root(schema: &Schema, ty: &str) -> bool {
    let definition = &schema.schema_definition;
    [
        &definition.query,
        &definition.mutation,
        &definition.subscription,
    ]
    .iter()
    .any(|root| root.as_ref().is_some_and(|root| root.name == ty))
}

/// The types a rule on `ty.field` applies to: the type, and when it is an interface,
/// every type implementing it. A field an object has from an interface is transformed
/// on the interface, or the object would no longer implement it.
fn owners(schema: &Schema, ty: &str, field: &str) -> Result<Vec<Name>, String> {
    let (name, definition) = schema
        .types
        .get_key_value(ty)
        .ok_or_else(|| format!("no type `{ty}` in this BFF's view"))?;
    let (fields, interfaces) = match definition {
        ExtendedType::Object(o) => (&o.fields, &o.implements_interfaces),
        ExtendedType::Interface(i) => (&i.fields, &i.implements_interfaces),
        _ => return Err(format!("`{ty}` is not an object or interface type")),
    };
    if !fields.contains_key(field) {
        return Err(format!("no field `{ty}.{field}` in this BFF's view"));
    }
    if let Some(interface) = interfaces
        .iter()
        .find(|i| field_of(schema, i, field).is_ok())
    {
        return Err(format!(
            "`{ty}.{field}` is the interface field `{}.{field}`: transform that one",
            interface.name
        ));
    }
    let mut owners = vec![name.clone()];
    if matches!(definition, ExtendedType::Interface(_)) {
        for (other, definition) in &schema.types {
            let implements = match definition {
                ExtendedType::Object(o) => &o.implements_interfaces,
                ExtendedType::Interface(i) => &i.implements_interfaces,
                _ => continue,
            };
            if implements.iter().any(|i| i.name == *name) {
                owners.push(other.clone());
            }
        }
    }
    Ok(owners)
}

fn field_of<'s>(schema: &'s Schema, ty: &str, field: &str) -> Result<&'s FieldDefinition, String> {
    schema
        .type_field(ty, field)
        .map(|f| &***f)
        .map_err(|_| format!("no field `{ty}.{field}` in this BFF's view"))
}

fn fields_mut<'s>(
    schema: &'s mut Schema,
    ty: &str,
) -> Option<
    &'s mut apollo_compiler::collections::IndexMap<
        Name,
        apollo_compiler::schema::Component<FieldDefinition>,
    >,
> {
    match schema.types.get_mut(ty)? {
        ExtendedType::Object(o) => Some(&mut o.make_mut().fields),
        ExtendedType::Interface(i) => Some(&mut i.make_mut().fields),
        _ => None,
    }
}

fn field_mut<'s>(
    schema: &'s mut Schema,
    ty: &str,
    field: &str,
) -> Result<&'s mut FieldDefinition, String> {
    fields_mut(schema, ty)
        .and_then(|fields| fields.get_mut(field))
        .map(|f| f.make_mut())
        .ok_or_else(|| format!("no field `{ty}.{field}` in this BFF's view"))
}

/// Rename a type and every reference to it.
fn rename_type(schema: &mut Schema, old: &Name, new: &Name) {
    let retype = |ty: &Type| -> Type { renamed(ty, old, new) };
    let rename_in = |set: &mut apollo_compiler::collections::IndexSet<ComponentName>| {
        if set.iter().any(|c| c.name == *old) {
            *set = set
                .iter()
                .map(|c| {
                    if c.name == *old {
                        ComponentName::from(new)
                    } else {
                        c.clone()
                    }
                })
                .collect();
        }
    };
    let types = std::mem::take(&mut schema.types);
    schema.types = types
        .into_iter()
        .map(|(name, mut definition)| {
            match &mut definition {
                ExtendedType::Object(o) => {
                    let o = o.make_mut();
                    rename_in(&mut o.implements_interfaces);
                    for field in o.fields.values_mut() {
                        retype_field(field.make_mut(), &retype);
                    }
                }
                ExtendedType::Interface(i) => {
                    let i = i.make_mut();
                    rename_in(&mut i.implements_interfaces);
                    for field in i.fields.values_mut() {
                        retype_field(field.make_mut(), &retype);
                    }
                }
                ExtendedType::Union(u) => rename_in(&mut u.make_mut().members),
                ExtendedType::InputObject(i) => {
                    for field in i.make_mut().fields.values_mut() {
                        let field = field.make_mut();
                        field.ty = Node::new(retype(&field.ty));
                    }
                }
                ExtendedType::Scalar(_) | ExtendedType::Enum(_) => {}
            }
            if name != *old {
                return (name, definition);
            }
            match &mut definition {
                ExtendedType::Object(o) => o.make_mut().name = new.clone(),
                ExtendedType::Interface(i) => i.make_mut().name = new.clone(),
                ExtendedType::Union(u) => u.make_mut().name = new.clone(),
                ExtendedType::Enum(e) => e.make_mut().name = new.clone(),
                ExtendedType::InputObject(i) => i.make_mut().name = new.clone(),
                ExtendedType::Scalar(s) => s.make_mut().name = new.clone(),
            }
            (new.clone(), definition)
        })
        .collect();
}

fn retype_field(field: &mut FieldDefinition, retype: &impl Fn(&Type) -> Type) {
    field.ty = retype(&field.ty);
    for argument in &mut field.arguments {
        let argument = argument.make_mut();
        argument.ty = Node::new(retype(&argument.ty));
    }
}

fn renamed(ty: &Type, old: &Name, new: &Name) -> Type {
    let name = |n: &Name| if n == old { new.clone() } else { n.clone() };
    match ty {
        Type::Named(n) => Type::Named(name(n)),
        Type::NonNullNamed(n) => Type::NonNullNamed(name(n)),
        Type::List(inner) => Type::List(Box::new(renamed(inner, old, new))),
        Type::NonNullList(inner) => Type::NonNullList(Box::new(renamed(inner, old, new))),
    }
}

/// A config value as a GraphQL literal of type `ty`, checked as input coercion would.
fn literal(schema: &Schema, ty: &Type, value: &Json) -> Result<Value, String> {
    let bad = || format!("{value} is not a value of type {ty}");
    if value.is_null() {
        return if ty.is_non_null() {
            Err(bad())
        } else {
            Ok(Value::Null)
        };
    }
    if let Type::List(inner) | Type::NonNullList(inner) = ty {
        return match value {
            Json::Array(items) => Ok(Value::List(
                items
                    .iter()
                    .map(|v| literal(schema, inner, v).map(Node::new))
                    .collect::<Result<_, _>>()?,
            )),
            // Input coercion: a single value where a list is expected is a list of one.
            other => Ok(Value::List(vec![Node::new(literal(schema, inner, other)?)])),
        };
    }
    let named = ty.inner_named_type();
    match (schema.types.get(named), value) {
        (Some(ExtendedType::Scalar(_)), _) => match (named.as_str(), value) {
            ("Int", Json::Number(n)) => n
                .as_i64()
                .and_then(|i| i32::try_from(i).ok())
                .map(Value::from)
                .ok_or_else(bad),
            ("Float", Json::Number(n)) => n.as_f64().map(Value::from).ok_or_else(bad),
            ("String", Json::String(s)) => Ok(Value::from(s.as_str())),
            ("ID", Json::String(s)) => Ok(Value::from(s.as_str())),
            ("ID", Json::Number(n)) if n.is_i64() => Ok(Value::from(n.to_string())),
            ("Boolean", Json::Bool(b)) => Ok(Value::from(*b)),
            ("Int" | "Float" | "String" | "ID" | "Boolean", _) => Err(bad()),
            // A custom scalar takes any JSON.
            _ => Ok(any(value)),
        },
        (Some(ExtendedType::Enum(e)), Json::String(s)) => e
            .values
            .keys()
            .find(|v| v.as_str() == s)
            .map(|v| Value::Enum(v.clone()))
            .ok_or_else(bad),
        (Some(ExtendedType::InputObject(input)), Json::Object(object)) => {
            if let Some(unknown) = object
                .keys()
                .find(|k| !input.fields.contains_key(k.as_str()))
            {
                return Err(format!("{named} has no field `{unknown}`"));
            }
            let mut fields = Vec::new();
            for (name, field) in &input.fields {
                match object.get(name.as_str()) {
                    Some(v) => {
                        fields.push((name.clone(), Node::new(literal(schema, &field.ty, v)?)))
                    }
                    None if field.ty.is_non_null() && field.default_value.is_none() => {
                        return Err(format!("{named}.{name} is required"));
                    }
                    None => {}
                }
            }
            Ok(Value::Object(fields))
        }
        _ => Err(bad()),
    }
}

/// Any JSON as a GraphQL literal (for custom scalars).
fn any(value: &Json) -> Value {
    match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
            Some(i) => Value::from(i),
            None => n.as_f64().map(Value::from).unwrap_or(Value::Null),
        },
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::List(items.iter().map(|v| Node::new(any(v))).collect()),
        Json::Object(object) => Value::Object(
            object
                .iter()
                .filter_map(|(k, v)| Some((Name::new(k).ok()?, Node::new(any(v)))))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDL: &str = "
        type Query { teams: [Team!]! }
        type Team { lead: User! manager: User members: [User!]! }
        type User { name: String! email(domain: String!): String }
    ";

    fn flatten(entries: &[(&str, &str)], fixed: Option<&str>) -> Result<Schema, String> {
        let schema = Schema::parse_and_validate(SDL, "t.graphql").map_err(|e| e.to_string())?;
        let mut config = TransformConfig::default();
        for (field, path) in entries {
            config.flatten.insert(field.to_string(), path.to_string());
        }
        if let Some(domain) = fixed {
            let rule = ArgumentRule {
                fixed: Some(Json::from(domain)),
                default: None,
            };
            config.arguments.insert("User.email.domain".into(), rule);
        }
        apply(schema.clone(), &schema, &config).map(|(s, _)| s.into_inner())
    }

    fn type_of(schema: &Schema, coordinate: &str) -> String {
        let (ty, field) = coordinate.split_once('.').unwrap_or_default();
        schema
            .type_field(ty, field)
            .map(|f| f.ty.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn a_flattened_field_is_nullable_unless_every_step_is_non_null() {
        let schema = flatten(
            &[
                ("Team.leadName", "lead.name"),
                ("Team.managerName", "manager.name"),
            ],
            None,
        );
        let schema = schema.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(type_of(&schema, "Team.leadName"), "String!");
        assert_eq!(type_of(&schema, "Team.managerName"), "String");
    }

    #[test]
    fn a_step_with_a_required_argument_needs_the_bff_to_set_it() {
        let error = flatten(&[("Team.leadEmail", "lead.email")], None).err();
        assert!(
            error.as_deref().unwrap_or_default().contains(
                "transforms.flatten.Team.leadEmail: `User.email` needs the argument `domain`"
            ),
            "{error:?}"
        );
        let schema = flatten(&[("Team.leadEmail", "lead.email")], Some("example.com"));
        let schema = schema.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(type_of(&schema, "Team.leadEmail"), "String");
        let error = flatten(&[("Team.memberName", "members.name")], None).err();
        assert!(
            error
                .as_deref()
                .unwrap_or_default()
                .contains("`Team.members` is [User!]!"),
            "{error:?}"
        );
    }
}
