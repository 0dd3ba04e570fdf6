//! `_entities`: per representation, the selected fields of its type; batch calls for
//! every representation at once where a binding declares one.

use std::collections::{HashMap, HashSet};

use apollo_compiler::Name;
use apollo_compiler::Node;
use apollo_compiler::ast;
use apollo_compiler::ast::Selection;
use apollo_compiler::schema::ExtendedType;
use futures::future::join_all;
use indexmap::IndexMap;
use serde_json::Map;
use serde_json::Value as Json;

use crate::sources::mapping::{CallInput, lookup, set_path, text_of};

use super::binding::{Batch, FieldError};
use super::run::Run;
use super::run::{EMPTY_ARGS, Fields, Prefetched, kind_of};

impl<'a> Run<'a> {
    /// `_entities(representations: ...)`: per representation, the selected fields of
    /// its type; batch calls first, then every entity completed in parallel.
    pub(super) async fn entities(&self, key: &Name, nodes: &[&'a Node<ast::Field>]) -> Json {
        let path = [Json::String(key.to_string())];
        let representations = nodes[0]
            .arguments
            .iter()
            .find(|a| a.name == "representations")
            .map(|a| self.value_of(&a.value));
        let Some(Json::Array(reps_owned)) = representations else {
            self.error(
                &path,
                "UPSTREAM_REQUEST_INVALID",
                "`_entities` needs a list of representations",
            );
            return Json::Null;
        };
        let reps = &reps_owned;
        let sets: Vec<&'a [Selection]> = nodes.iter().map(|f| &f.selection_set[..]).collect();
        // Representations by type, and each type's selected fields.
        let mut by_type: IndexMap<Name, Vec<usize>> = IndexMap::new();
        let mut typenames = Vec::with_capacity(reps.len());
        for (i, rep) in reps.iter().enumerate() {
            let name = rep
                .get("__typename")
                .and_then(Json::as_str)
                .and_then(|t| Name::new(t).ok());
            if let Some(name) = &name {
                by_type.entry(name.clone()).or_default().push(i);
            }
            typenames.push(name);
        }
        let fields_of: HashMap<Name, Fields<'a>> = by_type
            .keys()
            .map(|t| (t.clone(), self.collect_fields(t, &sets)))
            .collect();

        // Fetch ahead: batched field calls, and entity objects from type-level bindings.
        let mut prefetched: Vec<Prefetched> = vec![HashMap::new(); reps.len()];
        let mut bases: Vec<Option<Result<Json, FieldError>>> = vec![None; reps.len()];
        let mut batch_calls = Vec::new();
        let mut base_calls = Vec::new();
        for (type_name, indices) in &by_type {
            let fields = &fields_of[type_name];
            for (response_key, field_nodes) in fields {
                let Some(binding) = self.schema.binding(type_name, &field_nodes[0].name) else {
                    continue;
                };
                let (Some(batch), Some(def)) = (
                    &binding.batch,
                    self.schema.field_def(type_name, &field_nodes[0].name),
                ) else {
                    continue;
                };
                let args = self.arguments(field_nodes[0], def);
                let is_list = def.ty.is_list();
                batch_calls.push(async move {
                    let results = self.batch_call(batch, &args, indices, reps, is_list).await;
                    (response_key.clone(), indices, results)
                });
            }
            if let Some(binding) = self.schema.entity_bindings.get(type_name) {
                let needs_base = |rep: &Json| {
                    fields.values().any(|nodes| {
                        let name = &nodes[0].name;
                        name != "__typename"
                            && self.schema.binding(type_name, name).is_none()
                            && rep.get(name.as_str()).is_none()
                    })
                };
                let wanted: Vec<usize> = indices
                    .iter()
                    .copied()
                    .filter(|&i| needs_base(&reps[i]))
                    .collect();
                if wanted.is_empty() {
                    continue;
                }
                base_calls.push(async move {
                    let results = match &binding.batch {
                        Some(batch) => {
                            self.batch_call(batch, &Map::new(), &wanted, reps, false)
                                .await
                        }
                        None => {
                            let calls = wanted.iter().map(|&i| {
                                let input = CallInput {
                                    args: &EMPTY_ARGS,
                                    this: &reps[i],
                                    batch: None,
                                };
                                self.call(&*binding.single, &input)
                            });
                            join_all(calls.collect::<Vec<_>>()).await
                        }
                    };
                    (wanted, results)
                });
            }
        }
        let (batch_results, base_results) =
            futures::join!(join_all(batch_calls), join_all(base_calls));
        for (response_key, indices, results) in batch_results {
            for (&i, result) in indices.iter().zip(results) {
                prefetched[i].insert(response_key.clone(), result);
            }
        }
        for (indices, results) in base_results {
            for (i, result) in indices.into_iter().zip(results) {
                bases[i] = Some(result);
            }
        }

        let completions = reps.iter().enumerate().map(|(i, rep)| {
            let prefetched = &prefetched[i];
            let base = bases[i].take();
            let type_name = typenames[i].clone();
            let fields_of = &fields_of;
            async move {
                let path = [Json::String(key.to_string()), Json::from(i)];
                let Some(type_name) = type_name else {
                    self.error(
                        &path,
                        "UPSTREAM_REQUEST_INVALID",
                        "representation without `__typename`",
                    );
                    return Json::Null;
                };
                if !matches!(
                    self.schema.schema.types.get(&type_name),
                    Some(ExtendedType::Object(_))
                ) {
                    self.error(
                        &path,
                        "UPSTREAM_REQUEST_INVALID",
                        &format!("`{type_name}` is not an object type of this source"),
                    );
                    return Json::Null;
                }
                let object = match base {
                    None => rep.clone(),
                    Some(Err(e)) => {
                        self.field_error(&path, &e);
                        return Json::Null;
                    }
                    Some(Ok(Json::Object(mut base))) => {
                        // Key fields the backend object does not echo come from the
                        // representation.
                        if let Json::Object(rep) = rep {
                            for (k, v) in rep {
                                base.entry(k.clone()).or_insert_with(|| v.clone());
                            }
                        }
                        Json::Object(base)
                    }
                    Some(Ok(Json::Null)) => return Json::Null,
                    Some(Ok(other)) => {
                        self.error(
                            &path,
                            "UPSTREAM_BAD_RESPONSE",
                            &format!(
                                "expected an object for {type_name}, got {}",
                                kind_of(&other)
                            ),
                        );
                        return Json::Null;
                    }
                };
                let fields = &fields_of[&type_name];
                self.complete_fields(&type_name, &object, rep, fields, &path, Some(prefetched))
                    .await
            }
        });
        Json::Array(join_all(completions).await)
    }

    /// One batch call for the representations at `indices`, then each one's value.
    pub(super) async fn batch_call(
        &self,
        batch: &Batch,
        args: &Map<String, Json>,
        indices: &[usize],
        reps: &[Json],
        is_list: bool,
    ) -> Vec<Result<Json, FieldError>> {
        let key_of = |i: usize| lookup(&reps[i], &batch.this_path).and_then(text_of);
        let mut keys: Vec<Json> = Vec::new();
        let mut seen = HashSet::new();
        for &i in indices {
            if let Some(k) = lookup(&reps[i], &batch.this_path)
                && !k.is_null()
                && seen.insert(text_of(k))
            {
                keys.push(k.clone());
            }
        }
        let mut batch_input = Map::new();
        set_path(&mut batch_input, &batch.this_path, Json::Array(keys));
        let batch_input = Json::Object(batch_input);
        let input = CallInput {
            args,
            this: &Json::Null,
            batch: Some(&batch_input),
        };
        let items = match self.call(&*batch.connector, &input).await {
            Ok(Json::Array(items)) => items,
            Ok(other) => {
                let e = FieldError::bad_response(format!(
                    "the batch call returned {}, expected a list of items",
                    kind_of(&other)
                ));
                return indices.iter().map(|_| Err(e.clone())).collect();
            }
            Err(e) => return indices.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut by_key: HashMap<String, Vec<&Json>> = HashMap::new();
        for item in &items {
            if let Some(k) = lookup(item, &batch.item_key).and_then(text_of) {
                by_key.entry(k).or_default().push(item);
            }
        }
        indices
            .iter()
            .map(|&i| {
                let matching = key_of(i)
                    .and_then(|k| by_key.get(&k))
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                Ok(match (&batch.item_value, is_list) {
                    (Some(path), _) => matching
                        .first()
                        .and_then(|item| lookup(item, path))
                        .cloned()
                        .unwrap_or(Json::Null),
                    (None, true) => Json::Array(matching.iter().map(|j| (*j).clone()).collect()),
                    (None, false) => matching.first().map(|j| (*j).clone()).unwrap_or(Json::Null),
                })
            })
            .collect()
    }
}
