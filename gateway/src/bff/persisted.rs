//! Persisted operations of a BFF: a folder of `.graphql` files (trusted documents),
//! each callable by name (`GET /bff/<client>/<name>`) or by its sha256 hash, plus
//! automatic persisted queries registered at run time where allowed.

use std::path::Path;

use rustc_hash::FxHashMap;

use crate::common::digest::sha256_hex;

/// Largest number of APQ documents kept per BFF.
const APQ_CAPACITY: u64 = 10_000;

#[derive(Debug, Clone)]
pub struct PersistedOperation {
    pub name: String,
    pub document: String,
    pub hash: String,
}

#[derive(Default)]
pub struct Persisted {
    by_name: FxHashMap<String, PersistedOperation>,
    by_hash: FxHashMap<String, String>,
    apq: Option<moka::sync::Cache<String, String>>,
}

impl Persisted {
    pub fn load(dir: Option<&Path>, apq: bool) -> Result<Self, String> {
        let mut out = Persisted {
            apq: apq.then(|| moka::sync::Cache::new(APQ_CAPACITY)),
            ..Default::default()
        };
        let Some(dir) = dir else {
            return Ok(out);
        };
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "graphql"))
            .collect();
        files.sort();
        for path in files {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let document = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let hash = sha256_hex(&document);
            out.by_hash.insert(hash.clone(), name.clone());
            out.by_name.insert(
                name.clone(),
                PersistedOperation {
                    name,
                    document,
                    hash,
                },
            );
        }
        Ok(out)
    }

    pub fn by_name(&self, name: &str) -> Option<&PersistedOperation> {
        self.by_name.get(name)
    }

    pub fn operations(&self) -> impl Iterator<Item = &PersistedOperation> {
        self.by_name.values()
    }

    /// A trusted document, or an APQ registered earlier.
    pub fn by_hash(&self, hash: &str) -> Option<String> {
        if let Some(name) = self.by_hash.get(hash) {
            return self.by_name.get(name).map(|op| op.document.clone());
        }
        self.apq.as_ref().and_then(|c| c.get(hash))
    }

    /// Whether a query text is one of the trusted documents.
    pub fn is_trusted(&self, query: &str) -> bool {
        self.by_hash.contains_key(&sha256_hex(query))
    }

    pub fn accepts_apq(&self) -> bool {
        self.apq.is_some()
    }

    /// Register an APQ document under its hash (the caller checked the hash).
    pub fn register(&self, hash: &str, query: &str) {
        if let Some(apq) = &self.apq {
            apq.insert(hash.to_string(), query.to_string());
        }
    }
}
