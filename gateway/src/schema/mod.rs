//! Schemas: reading a precomposed supergraph, composing one from subgraph SDLs, and
//! deriving the API schema that clients see.

pub mod api;
pub mod compose;
pub mod fieldset;
pub mod supergraph;

use std::sync::Arc;

use apollo_compiler::Name;
use apollo_compiler::Schema;
use apollo_compiler::collections::HashMap;
use apollo_compiler::schema::Implementers;
use apollo_compiler::validation::Valid;

pub use supergraph::{GraphId, SchemaError, Supergraph};

/// One immutable version of the schema: the planner's model and the clients' view.
#[derive(Debug)]
pub struct SchemaSnapshot {
    pub supergraph: Supergraph,
    pub api: Valid<Schema>,
    pub implementers: HashMap<Name, Implementers>,
}

impl SchemaSnapshot {
    pub fn from_supergraph_sdl(sdl: &str) -> Result<Arc<Self>, SchemaError> {
        let supergraph = Supergraph::parse(sdl)?;
        let api = api::api_schema(&supergraph.schema)?;
        let implementers = api.implementers_map();
        Ok(Arc::new(SchemaSnapshot {
            supergraph,
            api,
            implementers,
        }))
    }
}
