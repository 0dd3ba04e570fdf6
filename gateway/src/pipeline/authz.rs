//! Authorization in the schema: `@authenticated` and `@requiresScopes` on types and
//! fields of the supergraph (the API schema has them stripped), enforced before any
//! fetch. The normalized operation is filtered for the request's principal: fields it
//! may not see are removed before planning (the plan cache is keyed by the operation and
//! the set of removed fields), so no upstream is ever asked for them. The response is
//! projected from the unfiltered operation, so removed fields come back as `null`
//! (with non-null propagation), each with an `UNAUTHORIZED` error at its path.
//!
//! Rules, as in Apollo's router: a field needs what its own directives, its parent
//! type's and its return type's directives require; on an abstract parent, also what
//! every possible type (and its field) requires; a fragment on a type the principal may
//! not see is removed with its fields. `@requiresScopes(scopes: [[a, b], [c]])` means
//! (a AND b) OR c; several requirements on one path must all hold.

use apollo_compiler::ast::{Type, Value};
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::{Name, name};
use rustc_hash::FxHashMap;
use serde_json::{Value as Json, json};

use crate::common::principal::Principal;
use crate::planner::computed::Derived;
use crate::planner::operation::{Conditions, Field, Operation, Selection, SelectionSet};
use crate::schema::Supergraph;

/// What one element requires.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirement {
    pub authenticated: bool,
    /// Each entry: alternatives (OR) of scope sets (AND); all entries must hold.
    pub scopes: Vec<Vec<Vec<String>>>,
}

impl Requirement {
    fn is_empty(&self) -> bool {
        !self.authenticated && self.scopes.is_empty()
    }

    fn add(&mut self, other: Option<&Requirement>) {
        if let Some(other) = other {
            self.authenticated |= other.authenticated;
            for s in &other.scopes {
                if !self.scopes.contains(s) {
                    self.scopes.push(s.clone());
                }
            }
        }
    }

    pub fn satisfied_by(&self, principal: &Principal) -> bool {
        (!self.authenticated || principal.is_authenticated())
            && self.scopes.iter().all(|alternatives| {
                alternatives
                    .iter()
                    .any(|set| set.iter().all(|s| principal.scopes.contains(s)))
            })
    }
}

/// The authorization directives of one schema version, read once.
#[derive(Debug, Default)]
pub struct AuthzRules {
    types: FxHashMap<Name, Requirement>,
    fields: FxHashMap<(Name, Name), Requirement>,
    possible: FxHashMap<Name, Vec<Name>>,
}

impl AuthzRules {
    /// `None` when the supergraph uses neither directive (nothing to enforce).
    pub fn from_supergraph(supergraph: &Supergraph) -> Option<Self> {
        let schema = &supergraph.schema;
        let names = directive_names(schema);
        let mut rules = AuthzRules::default();
        for (type_name, ty) in &schema.types {
            let type_req = read(&names, ty.directives().iter().map(|d| &***d));
            if !type_req.is_empty() {
                rules.types.insert(type_name.clone(), type_req);
            }
            let fields: Vec<(&Name, &apollo_compiler::ast::DirectiveList)> = match ty {
                ExtendedType::Object(o) => {
                    o.fields.iter().map(|(n, f)| (n, &f.directives)).collect()
                }
                ExtendedType::Interface(i) => {
                    i.fields.iter().map(|(n, f)| (n, &f.directives)).collect()
                }
                _ => Vec::new(),
            };
            for (field_name, directives) in fields {
                let r = read(&names, directives.iter().map(|d| &**d));
                if !r.is_empty() {
                    rules
                        .fields
                        .insert((type_name.clone(), field_name.clone()), r);
                }
            }
        }
        if rules.types.is_empty() && rules.fields.is_empty() {
            return None;
        }
        rules.possible = supergraph
            .possible_types
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Some(rules)
    }

    fn type_allowed(&self, name: &Name, principal: &Principal) -> bool {
        self.types
            .get(name)
            .is_none_or(|r| r.satisfied_by(principal))
    }

    fn field_requirement(&self, parent: &Name, field: &Field) -> Requirement {
        let mut r = Requirement::default();
        self.add_field(&mut r, parent, &field.name, &field.ty);
        // A BFF's field needs what the fields it is made of need.
        match field.derived.as_deref() {
            Some(Derived::Computed(computed)) => {
                for (dep, ty) in computed.deps() {
                    self.add_field(&mut r, parent, dep, ty);
                }
            }
            Some(Derived::Flatten(path)) => {
                let mut on = parent;
                for step in path {
                    self.add_field(&mut r, on, &step.name, &step.ty);
                    on = step.ty.inner_named_type();
                }
            }
            None => {}
        }
        r
    }

    fn add_field(&self, r: &mut Requirement, parent: &Name, name: &Name, ty: &Type) {
        r.add(self.types.get(parent));
        r.add(self.fields.get(&(parent.clone(), name.clone())));
        r.add(self.types.get(ty.inner_named_type()));
        if let Some(objects) = self.possible.get(parent) {
            for object in objects {
                r.add(self.types.get(object));
                r.add(self.fields.get(&(object.clone(), name.clone())));
            }
        }
    }

    /// The operation without what `principal` may not see, and the response-key paths
    /// (list positions left out) of what was removed; `None` when nothing was.
    pub fn filter(&self, operation: &Operation, principal: &Principal) -> Option<Filtered> {
        // The common case, nothing to remove, without building a filtered copy.
        if !self.removes_any(&operation.selection, &operation.root_type, principal) {
            return None;
        }
        let mut removed = Vec::new();
        let mut path = Vec::new();
        let selection = self.walk(
            &operation.selection,
            &operation.root_type,
            principal,
            &mut path,
            &mut removed,
        );
        if removed.is_empty() {
            return None;
        }
        // Document order (stable for one operation, so fit for a cache key), once each.
        let mut unique: Vec<Vec<String>> = Vec::with_capacity(removed.len());
        for p in removed {
            if !unique.contains(&p) {
                unique.push(p);
            }
        }
        let removed = unique;
        let mut filtered = operation.clone();
        filtered.selection = selection;
        Some(Filtered {
            operation: filtered,
            removed,
        })
    }

    /// Whether [`AuthzRules::walk`] would remove anything.
    fn removes_any(&self, set: &SelectionSet, parent: &Name, principal: &Principal) -> bool {
        set.0.iter().any(|selection| match selection {
            Selection::Field(f) if f.name.starts_with("__") => false,
            Selection::Field(f) => {
                !self.field_requirement(parent, f).satisfied_by(principal)
                    || self.removes_any(&f.selection, f.ty.inner_named_type(), principal)
            }
            Selection::Fragment(fragment) => {
                let on = fragment.type_condition.as_ref().unwrap_or(parent);
                !self.type_allowed(on, principal)
                    || self.removes_any(&fragment.selection, on, principal)
            }
        })
    }

    fn walk(
        &self,
        set: &SelectionSet,
        parent: &Name,
        principal: &Principal,
        path: &mut Vec<String>,
        removed: &mut Vec<Vec<String>>,
    ) -> SelectionSet {
        let mut out = SelectionSet::default();
        for selection in &set.0 {
            match selection {
                Selection::Field(f) if f.name.starts_with("__") => {
                    out.0.push(selection.clone());
                }
                Selection::Field(f) => {
                    if !self.field_requirement(parent, f).satisfied_by(principal) {
                        let mut p = path.clone();
                        p.push(f.key.to_string());
                        removed.push(p);
                        continue;
                    }
                    let mut field = Field {
                        selection: SelectionSet::default(),
                        ..f.clone()
                    };
                    if !f.selection.is_empty() {
                        path.push(f.key.to_string());
                        field.selection = self.walk(
                            &f.selection,
                            f.ty.inner_named_type(),
                            principal,
                            path,
                            removed,
                        );
                        path.pop();
                        // A composite field keeps a valid (non-empty) selection.
                        if field.selection.is_empty() {
                            field.selection.0.push(Selection::Field(typename()));
                        }
                    }
                    out.0.push(Selection::Field(field));
                }
                Selection::Fragment(fragment) => {
                    let on = fragment.type_condition.as_ref().unwrap_or(parent);
                    if !self.type_allowed(on, principal) {
                        top_level_keys(&fragment.selection, path, removed);
                        continue;
                    }
                    let inner = self.walk(&fragment.selection, on, principal, path, removed);
                    if !inner.is_empty() {
                        let mut kept = fragment.clone();
                        kept.selection = inner;
                        out.0.push(Selection::Fragment(kept));
                    }
                }
            }
        }
        out
    }
}

/// The requirement expressed by one element's directives.
fn read<'a>(
    (authenticated, requires_scopes): &(String, String),
    directives: impl Iterator<Item = &'a apollo_compiler::ast::Directive>,
) -> Requirement {
    let mut r = Requirement::default();
    for d in directives {
        if d.name == authenticated.as_str() {
            r.authenticated = true;
        } else if d.name == requires_scopes.as_str()
            && let Some(value) = d.specified_argument_by_name("scopes")
        {
            r.scopes.push(scope_sets(value));
        }
    }
    r
}

/// The result of filtering an operation.
#[derive(Debug)]
pub struct Filtered {
    pub operation: Operation,
    pub removed: Vec<Vec<String>>,
}

fn typename() -> Field {
    Field {
        key: name!("__typename"),
        name: name!("__typename"),
        arguments: Vec::new(),
        conditions: Conditions::default(),
        ty: Type::NonNullNamed(name!("String")),
        selection: SelectionSet::default(),
        derived: None,
    }
}

fn top_level_keys(set: &SelectionSet, path: &[String], removed: &mut Vec<Vec<String>>) {
    for selection in &set.0 {
        match selection {
            Selection::Field(f) if f.name.starts_with("__") => {}
            Selection::Field(f) => {
                let mut p = path.to_vec();
                p.push(f.key.to_string());
                removed.push(p);
            }
            Selection::Fragment(inner) => top_level_keys(&inner.selection, path, removed),
        }
    }
}

/// `[[String!]!]!` as nested vectors (a single list or string is accepted too, as
/// GraphQL input coercion would).
fn scope_sets(value: &Value) -> Vec<Vec<String>> {
    let strings = |v: &Value| -> Vec<String> {
        match v {
            Value::List(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            Value::String(s) => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    match value {
        Value::List(items) => items.iter().map(|i| strings(i)).collect(),
        other => vec![strings(other)],
    }
}

/// Local names of the two directives, from the schema's `@link`s (`as:` and
/// `import: [{name:, as:}]` renames), defaulting to the plain names.
fn directive_names(schema: &apollo_compiler::Schema) -> (String, String) {
    let mut authenticated = "authenticated".to_string();
    let mut requires_scopes = "requiresScopes".to_string();
    for link in schema.schema_definition.directives.get_all("link") {
        let Some(url) = link
            .specified_argument_by_name("url")
            .and_then(|v| v.as_str())
        else {
            continue;
        };
        let (spec, target) = if url.contains("/authenticated/v") {
            ("authenticated", &mut authenticated)
        } else if url.contains("/requiresScopes/v") {
            ("requiresScopes", &mut requires_scopes)
        } else {
            continue;
        };
        if let Some(alias) = link
            .specified_argument_by_name("as")
            .and_then(|v| v.as_str())
        {
            *target = alias.to_string();
        }
        if let Some(Value::List(imports)) = link.specified_argument_by_name("import").map(|v| &**v)
        {
            for import in imports {
                if let Value::Object(fields) = &**import {
                    let get = |k: &str| {
                        fields
                            .iter()
                            .find(|(n, _)| n == k)
                            .and_then(|(_, v)| v.as_str())
                    };
                    if get("name") == Some(&format!("@{spec}"))
                        && let Some(alias) = get("as")
                    {
                        *target = alias.trim_start_matches('@').to_string();
                    }
                }
            }
        }
    }
    (authenticated, requires_scopes)
}

/// Errors for removed fields, in place of the generic non-null errors the projection
/// produced for them; nullable removed fields get one where they are `null`.
pub fn report(removed: &[Vec<String>], data: Option<&Json>, errors: &mut Vec<Json>) {
    let keys_of = |path: &[Json]| -> Vec<String> {
        path.iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    // Per removed field (in document order): where the projection reported a null in a
    // non-null position, and where it left a null.
    let mut by_pattern: Vec<Vec<Vec<Json>>> = vec![Vec::new(); removed.len()];
    errors.retain(|e| {
        let non_null = e["extensions"]["code"] == "NULL_VALUE_IN_NON_NULL_FIELD";
        let found = e["path"]
            .as_array()
            .filter(|_| non_null)
            .and_then(|p| Some((removed.iter().position(|r| *r == keys_of(p))?, p)));
        match found {
            Some((i, p)) => {
                by_pattern[i].push(p.clone());
                false
            }
            None => true,
        }
    });
    if let Some(data) = data {
        for (pattern, out) in removed.iter().zip(by_pattern.iter_mut()) {
            find_nulls(data, pattern, &mut Vec::new(), out);
        }
    }
    let mut paths: Vec<Vec<Json>> = Vec::new();
    for p in by_pattern.into_iter().flatten() {
        if !paths.contains(&p) {
            paths.push(p);
        }
    }
    let unauthorized: Vec<Json> = paths
        .into_iter()
        .filter(|p| !errors.iter().any(|e| e["path"].as_array() == Some(p)))
        .map(|p| {
            json!({
                "message": "Unauthorized field or type",
                "path": p,
                "extensions": { "code": "UNAUTHORIZED" },
            })
        })
        .collect();
    errors.splice(0..0, unauthorized);
}

fn find_nulls(value: &Json, pattern: &[String], path: &mut Vec<Json>, out: &mut Vec<Vec<Json>>) {
    match value {
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Json::from(i));
                find_nulls(item, pattern, path, out);
                path.pop();
            }
        }
        Json::Object(map) => {
            let Some((first, rest)) = pattern.split_first() else {
                return;
            };
            match map.get(first) {
                Some(Json::Null) if rest.is_empty() => {
                    let mut p = path.clone();
                    p.push(Json::String(first.clone()));
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
                Some(v) if !rest.is_empty() => {
                    path.push(Json::String(first.clone()));
                    find_nulls(v, rest, path, out);
                    path.pop();
                }
                _ => {}
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::principal::PrincipalKind;
    use crate::schema::SchemaSnapshot;

    const SUPERGRAPH: &str = r#"
schema
  @link(url: "https://specs.apollo.dev/link/v1.0")
  @link(url: "https://specs.apollo.dev/join/v0.3", for: EXECUTION)
  @link(url: "https://specs.apollo.dev/authenticated/v0.1", for: SECURITY)
  @link(url: "https://specs.apollo.dev/requiresScopes/v0.1", for: SECURITY)
{
  query: Query
}

directive @authenticated on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM
directive @requiresScopes(scopes: [[requiresScopes__Scope!]!]!) on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM
directive @join__enumValue(graph: join__Graph!) repeatable on ENUM_VALUE
directive @join__field(graph: join__Graph, requires: join__FieldSet, provides: join__FieldSet, type: String, external: Boolean, override: String, usedOverridden: Boolean) repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION
directive @join__graph(name: String!, url: String!) on ENUM_VALUE
directive @join__implements(graph: join__Graph!, interface: String!) repeatable on OBJECT | INTERFACE
directive @join__type(graph: join__Graph!, key: join__FieldSet, extension: Boolean! = false, resolvable: Boolean! = true, isInterfaceObject: Boolean! = false) repeatable on OBJECT | INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR
directive @join__unionMember(graph: join__Graph!, member: String!) repeatable on UNION
directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) repeatable on SCHEMA

scalar join__FieldSet
scalar link__Import
scalar requiresScopes__Scope
enum link__Purpose { SECURITY EXECUTION }
enum join__Graph { A @join__graph(name: "a", url: "http://a") }

type Query @join__type(graph: A) {
  public: String
  me: User @authenticated
  users: [User!]!
  audit: String @requiresScopes(scopes: [["audit:read"], ["admin"]])
  teams: [Team!]!
}

type Team @join__type(graph: A) {
  name: String
  lead: User
}

type User @join__type(graph: A) {
  id: ID!
  email: String! @requiresScopes(scopes: [["email:read"]])
}
"#;

    fn principal(authenticated: bool, scopes: &[&str]) -> Principal {
        Principal {
            kind: if authenticated {
                PrincipalKind::Jwt
            } else {
                PrincipalKind::Anonymous
            },
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..Principal::anonymous()
        }
    }

    fn removed(query: &str, who: &Principal) -> Vec<Vec<String>> {
        let snapshot = SchemaSnapshot::from_supergraph_sdl(SUPERGRAPH).expect("supergraph");
        let rules = AuthzRules::from_supergraph(&snapshot.supergraph).expect("rules");
        let prepared = crate::request::prepare(&snapshot, query, None).expect("prepares");
        rules
            .filter(&prepared.operation, who)
            .map(|f| f.removed)
            .unwrap_or_default()
    }

    #[test]
    fn fields_are_removed_by_what_the_principal_lacks() {
        let q = "{ public me { id } users { id email } audit }";
        let anonymous = principal(false, &[]);
        assert_eq!(
            removed(q, &anonymous),
            vec![
                vec!["me".to_string()],
                vec!["users".into(), "email".into()],
                vec!["audit".into()],
            ]
        );
        let user = principal(true, &["email:read"]);
        assert_eq!(removed(q, &user), vec![vec!["audit".to_string()]]);
        let admin = principal(true, &["admin", "email:read"]);
        assert!(removed(q, &admin).is_empty());
    }

    /// A BFF's computed or flattened field needs what the fields it reads need.
    #[test]
    fn fields_a_bff_derives_need_what_they_read() {
        use crate::bff::transform::{ComputedConfig, TransformConfig, apply};
        let snapshot = SchemaSnapshot::from_supergraph_sdl(SUPERGRAPH).expect("supergraph");
        let rules = AuthzRules::from_supergraph(&snapshot.supergraph).expect("rules");
        let mut config = TransformConfig::default();
        config
            .flatten
            .insert("Team.leadEmail".into(), "lead.email".into());
        config
            .flatten
            .insert("Team.leadId".into(), "lead.id".into());
        config.computed.insert(
            "User.contact".into(),
            ComputedConfig {
                ty: "String".into(),
                template: Some("mail {email}".into()),
                expression: None,
                description: None,
            },
        );
        let (api, mapping) = apply(snapshot.api.clone(), &snapshot.api, &config).expect("applies");
        let query = "{ teams { name leadId leadEmail } users { id contact } }";
        let prepared = crate::request::prepare_with(&snapshot, &api, Some(&mapping), query, None)
            .expect("prepares");
        let removed = |who: &Principal| {
            rules
                .filter(&prepared.operation, who)
                .map(|f| f.removed)
                .unwrap_or_default()
        };
        assert_eq!(
            removed(&principal(true, &[])),
            vec![
                vec!["teams".to_string(), "leadEmail".into()],
                vec!["users".into(), "contact".into()],
            ]
        );
        assert!(removed(&principal(true, &["email:read"])).is_empty());
    }

    #[test]
    fn errors_point_at_every_removed_position() {
        let mut errors = vec![json!({
            "message": "Cannot return null for non-nullable field email",
            "path": ["users", 1, "email"],
            "extensions": {"code": "NULL_VALUE_IN_NON_NULL_FIELD"},
        })];
        let data = json!({"public": "x", "me": null, "users": null});
        report(
            &[vec!["me".into()], vec!["users".into(), "email".into()]],
            Some(&data),
            &mut errors,
        );
        let paths: Vec<&Json> = errors.iter().map(|e| &e["path"]).collect();
        assert_eq!(paths, [&json!(["me"]), &json!(["users", 1, "email"])]);
        assert!(
            errors
                .iter()
                .all(|e| e["extensions"]["code"] == "UNAUTHORIZED")
        );
    }
}
