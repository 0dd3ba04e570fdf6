//! Federation compatibility: one test per feature area, with data-driven fixture
//! subgraphs on real sockets, a supergraph composed from their SDLs (or written by hand
//! where composition cannot express the case) and the gateway in between. Each query's
//! FULL response (data and errors) is compared with the expected one, and where it
//! matters, how many requests each subgraph received.
//!
//! The fixtures are our own; the behaviours follow the public federation gateway audit
//! (abstract types, interface objects, requires, provides, override, inaccessible, keys,
//! shared roots, intersections, Federation 1, mutations, include/skip, typename, ...).
//!
//! With `COMPAT_ORACLE` naming a reference router binary, every check also asks it and
//! reports the two side by side (`e2e_tests::oracle`; `benches/README.md` shows how).

use e2e_tests::fixture_subgraph::{Fixture, FixtureSubgraph};
use e2e_tests::oracle::{Comparison, Oracle};
use e2e_tests::{client, gateway_for, post_json};
use gateway::schema::compose::{SubgraphInput, compose};
use gateway::server::RunningGateway;
use serde_json::{Value, json};

/// A Federation 2 subgraph SDL with the usual imports.
fn fed2(body: &str) -> String {
    format!(
        "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.3\", import: \
         [\"@key\", \"@shareable\", \"@external\", \"@requires\", \"@provides\", \"@override\", \
         \"@inaccessible\", \"@interfaceObject\", \"@tag\"])\n{body}"
    )
}

struct Env {
    subgraphs: Vec<(String, FixtureSubgraph)>,
    gateway: RunningGateway,
    client: reqwest::Client,
    /// The reference router, when `COMPAT_ORACLE` names one (`e2e_tests::oracle`).
    oracle: Option<Oracle>,
}

impl Env {
    /// Compose the fixtures' SDLs, start them and a gateway.
    async fn start(fixtures: Vec<(&str, Fixture)>) -> Env {
        let inputs: Vec<SubgraphInput> = fixtures
            .iter()
            .map(|(name, f)| SubgraphInput {
                name: name.to_string(),
                url: format!("http://127.0.0.1:9/{name}"),
                sdl: f.sdl().to_string(),
            })
            .collect();
        let supergraph = compose(&inputs).unwrap_or_else(|e| panic!("composition failed:\n{e}"));
        Self::with_supergraph(&supergraph, fixtures).await
    }

    /// Start the fixtures and a gateway for a given supergraph SDL.
    async fn with_supergraph(supergraph: &str, fixtures: Vec<(&str, Fixture)>) -> Env {
        let mut subgraphs = Vec::new();
        for (name, fixture) in fixtures {
            subgraphs.push((name.to_string(), fixture.start().await));
        }
        let urls: Vec<(&str, String)> = subgraphs
            .iter()
            .map(|(n, s)| (n.as_str(), s.url.clone()))
            .collect();
        let gateway = gateway_for(supergraph, &urls).await;
        let oracle = Oracle::start(supergraph, &urls).await;
        Env {
            subgraphs,
            gateway,
            client: client(),
            oracle,
        }
    }

    async fn run(&self, query: &str, variables: Value) -> Value {
        let reply = post_json(
            &self.client,
            &self.gateway.url(),
            &json!({"query": query, "variables": variables}),
        )
        .await;
        reply.body
    }

    /// The query plan the gateway prints for a query (for failure messages).
    async fn plan(&self, query: &str, variables: &Value) -> String {
        let reply = e2e_tests::send(
            self.client
                .post(self.gateway.url())
                .header("content-type", "application/json")
                .header("x-gateway-plan", "true")
                .body(json!({"query": query, "variables": variables}).to_string()),
        )
        .await;
        reply.body["extensions"]["queryPlan"]
            .as_str()
            .unwrap_or("(no plan)")
            .to_string()
    }

    /// Run `query` and compare the full response with `expected`; the requests each
    /// subgraph received since the last reset, ours only (the oracle's come after).
    async fn check(&self, query: &str, variables: Value, expected: Value) -> Vec<(String, usize)> {
        let before = self.total_calls();
        let body = self.run(query, variables.clone()).await;
        let calls = self.calls();
        // A mutation would run twice on the shared fixtures: only queries are compared.
        if let Some(oracle) = self
            .oracle
            .as_ref()
            .filter(|_| !query.starts_with("mutation"))
        {
            let ours = self.total_calls() - before;
            let start = self.total_calls();
            let theirs = oracle
                .ask(&self.client, query, &variables)
                .await
                .unwrap_or(Value::Null);
            Comparison {
                query,
                expected: &expected,
                ours: &body,
                theirs: &theirs,
                our_requests: ours,
                their_requests: self.total_calls() - start,
            }
            .record();
        }
        if body != expected {
            let plan = self.plan(query, &variables).await;
            panic!(
                "query:\n{query}\nexpected:\n{}\ngot:\n{}\nplan:\n{plan}",
                serde_json::to_string_pretty(&expected).unwrap_or_default(),
                serde_json::to_string_pretty(&body).unwrap_or_default()
            );
        }
        calls
    }

    fn total_calls(&self) -> usize {
        self.subgraphs.iter().map(|(_, s)| s.request_count()).sum()
    }

    fn subgraph(&self, name: &str) -> &FixtureSubgraph {
        &self
            .subgraphs
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no subgraph {name}"))
            .1
    }

    /// Requests each subgraph received since the last reset, in subgraph order.
    fn calls(&self) -> Vec<(String, usize)> {
        self.subgraphs
            .iter()
            .map(|(n, s)| (n.clone(), s.request_count()))
            .collect()
    }

    fn reset(&self) {
        for (_, s) in &self.subgraphs {
            s.reset();
        }
    }

    /// Run `query`, compare the response, and check how many requests each subgraph got.
    async fn check_calls(&self, query: &str, expected: Value, calls: &[(&str, usize)]) {
        self.reset();
        let got = self.check(query, json!({}), expected).await;
        for (name, count) in calls {
            let actual = got
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, c)| *c)
                .unwrap_or(0);
            assert_eq!(
                actual,
                *count,
                "requests to {name} for {query}: {got:?}\n{:#?}",
                self.subgraph(name).received()
            );
        }
    }

    async fn shutdown(self) {
        self.gateway.shutdown().await;
    }
}

fn data(value: Value) -> Value {
    json!({ "data": value })
}

// ---------------------------------------------------------------------------------------
// Entity calls, keys
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn entity_calls_and_keys() {
    let catalog = Fixture::new(
        &fed2(
            r#"
            type Query { books: [Book!]! book(isbn: ID!): Book }
            type Book @key(fields: "isbn") @key(fields: "shelf { code } slot") {
              isbn: ID!
              title: String!
              shelf: Shelf!
              slot: Int!
            }
            type Shelf @key(fields: "code") { code: String! }
            "#,
        ),
        json!({
            "Query": {
                "books": [
                    {"__typename": "Book", "isbn": "b-1"},
                    {"__typename": "Book", "isbn": "b-2"},
                    {"__typename": "Book", "isbn": "b-1"}
                ],
                "book": {"$args": [[{"isbn": "b-2"}, {"__typename": "Book", "isbn": "b-2"}]]}
            },
            "Book": [
                {"isbn": "b-1", "title": "Moby Dick", "shelf": {"code": "S1"}, "slot": 3},
                {"isbn": "b-2", "title": "Dracula", "shelf": {"code": "S2"}, "slot": 7}
            ]
        }),
    );
    let stock = Fixture::new(
        &fed2(
            r#"
            type Book @key(fields: "isbn") { isbn: ID! copies: Int! }
            "#,
        ),
        json!({
            "Book": [
                {"isbn": "b-1", "copies": 4},
                {"isbn": "b-2", "copies": 0}
            ]
        }),
    );
    // Knows books only by their position on a shelf (a nested compound key).
    let layout = Fixture::new(
        &fed2(
            r#"
            type Book @key(fields: "shelf { code } slot") {
              shelf: Shelf!
              slot: Int!
              floor: Int
            }
            type Shelf @key(fields: "code", resolvable: false) { code: String! }
            "#,
        ),
        json!({
            "Book": [
                {"shelf": {"code": "S1"}, "slot": 3, "floor": 1},
                {"shelf": {"code": "S2"}, "slot": 7, "floor": 2}
            ]
        }),
    );
    let env = Env::start(vec![
        ("catalog", catalog),
        ("stock", stock),
        ("layout", layout),
    ])
    .await;

    env.check_calls(
        "{ books { isbn title copies } }",
        data(json!({"books": [
            {"isbn": "b-1", "title": "Moby Dick", "copies": 4},
            {"isbn": "b-2", "title": "Dracula", "copies": 0},
            {"isbn": "b-1", "title": "Moby Dick", "copies": 4}
        ]})),
        &[("catalog", 1), ("stock", 1), ("layout", 0)],
    )
    .await;
    // Representations are de-duplicated.
    let sent = &env.subgraph("stock").received()[0];
    assert_eq!(
        sent["variables"]["representations"],
        json!([{"__typename": "Book", "isbn": "b-1"}, {"__typename": "Book", "isbn": "b-2"}])
    );

    // Two subgraphs in parallel, one of them through the compound nested key.
    env.check_calls(
        r#"{ book(isbn: "b-2") { title floor copies } }"#,
        data(json!({"book": {"title": "Dracula", "floor": 2, "copies": 0}})),
        &[("catalog", 1), ("stock", 1), ("layout", 1)],
    )
    .await;
    env.check(
        r#"{ book(isbn: "nope") { title floor copies } }"#,
        json!({}),
        data(json!({"book": null})),
    )
    .await;
    env.shutdown().await;
}

#[tokio::test]
async fn null_keys_are_not_sent() {
    let shelves = Fixture::new(
        &fed2(
            r#"
            type Query { loans: [Loan!]! }
            type Loan { id: ID! reader: Reader }
            type Reader @key(fields: "card") { card: ID }
            "#,
        ),
        json!({
            "Query": {"loans": [
                {"id": "l1", "reader": {"card": "c1"}},
                {"id": "l2", "reader": {"card": null}},
                {"id": "l3", "reader": null}
            ]}
        }),
    );
    let readers = Fixture::new(
        &fed2(
            r#"
            type Reader @key(fields: "card") { card: ID name: String }
            "#,
        ),
        json!({"Reader": [{"card": "c1", "name": "Ada"}]}),
    );
    let env = Env::start(vec![("shelves", shelves), ("readers", readers)]).await;
    env.check_calls(
        "{ loans { id reader { name } } }",
        data(json!({"loans": [
            {"id": "l1", "reader": {"name": "Ada"}},
            {"id": "l2", "reader": {"name": null}},
            {"id": "l3", "reader": null}
        ]})),
        &[("shelves", 1), ("readers", 1)],
    )
    .await;
    let sent = &env.subgraph("readers").received()[0];
    assert_eq!(
        sent["variables"]["representations"],
        json!([{"__typename": "Reader", "card": "c1"}])
    );
    env.shutdown().await;
}

#[tokio::test]
async fn a_field_below_an_entity_field_is_fetched_through_the_parent_entity() {
    // `Genre.stats` lives only in `stats`, where `Genre` is a value type: it can only be
    // reached as `Book.genre { stats }` through the `Book` key, not through `Genre`'s
    // key (which `stats` does not have). `catalog` resolves `Book.genre` too, but cannot
    // go on to `stats`.
    let genre = json!({"__typename": "Genre", "id": "g1", "name": "SF"});
    let shop = Fixture::new(
        &fed2(
            r#"
            type Query { books: [Book!]! }
            type Book @key(fields: "id") @key(fields: "id isbn") { id: ID! isbn: ID! genre: Genre @shareable }
            type Genre @key(fields: "id") { id: ID! name: String! @shareable }
            "#,
        ),
        json!({
            "Query": {"books": [
                {"__typename": "Book", "id": "b1", "isbn": "i1", "genre": genre},
                {"__typename": "Book", "id": "b2", "isbn": "i2", "genre": genre}
            ]},
            "Genre": [genre]
        }),
    );
    let catalog = Fixture::new(
        &fed2(
            r#"
            type Book @key(fields: "id isbn") { id: ID! isbn: ID! genre: Genre @shareable }
            type Genre @key(fields: "id") { id: ID! name: String! @shareable }
            "#,
        ),
        json!({
            "Book": [{"id": "b1", "isbn": "i1", "genre": genre}, {"id": "b2", "isbn": "i2", "genre": genre}],
            "Genre": [genre]
        }),
    );
    let stats = Fixture::new(
        &fed2(
            r#"
            type Book @key(fields: "id isbn") { id: ID! isbn: ID! genre: Genre @shareable }
            type Genre { stats: GenreStats }
            type GenreStats { titles: Int }
            "#,
        ),
        json!({"Book": [
            {"id": "b1", "isbn": "i1", "genre": {"stats": {"titles": 2}}},
            {"id": "b2", "isbn": "i2", "genre": {"stats": {"titles": 2}}}
        ]}),
    );
    let env = Env::start(vec![("shop", shop), ("catalog", catalog), ("stats", stats)]).await;
    env.check_calls(
        "{ books { id genre { id name stats { titles } } } }",
        data(json!({"books": [
            {"id": "b1", "genre": {"id": "g1", "name": "SF", "stats": {"titles": 2}}},
            {"id": "b2", "genre": {"id": "g1", "name": "SF", "stats": {"titles": 2}}}
        ]})),
        &[("shop", 1), ("catalog", 0), ("stats", 1)],
    )
    .await;
    env.shutdown().await;
}

#[tokio::test]
async fn a_value_type_spread_over_subgraphs_is_split_across_parent_entity_calls() {
    // `District` is a value type in `notes` (its `notes`) and `geo` (its `id`), an entity
    // in `names`: no one graph serves `flat.district { id name notes }`; `notes` answers
    // `notes`, `geo` answers `id`, and `name` follows from `geo`'s id through `names`.
    let listing = Fixture::new(
        &fed2(
            r#"
            type Query { flat(id: ID!): Flat }
            type Flat @key(fields: "id") { id: ID name: String }
            "#,
        ),
        json!({
            "Query": {"flat": {"$args": [[{"id": "1"}, {"__typename": "Flat", "id": "1", "name": "Loft"}]]}},
            "Flat": [{"id": "1", "name": "Loft"}]
        }),
    );
    let notes = Fixture::new(
        &fed2(
            r#"
            type Flat @key(fields: "id") { id: ID district: District @shareable }
            type District { notes: String }
            "#,
        ),
        json!({"Flat": [{"id": "1", "district": {"notes": "quiet"}}]}),
    );
    let geo = Fixture::new(
        &fed2(
            r#"
            type Flat @key(fields: "id") { id: ID district: District @shareable }
            type District { id: ID @shareable }
            "#,
        ),
        json!({"Flat": [{"id": "1", "district": {"id": "d7"}}]}),
    );
    let names = Fixture::new(
        &fed2(r#"type District @key(fields: "id") { id: ID name: String }"#),
        json!({"District": [{"id": "d7", "name": "Old Town"}]}),
    );
    let env = Env::start(vec![
        ("listing", listing),
        ("notes", notes),
        ("geo", geo),
        ("names", names),
    ])
    .await;
    env.check_calls(
        r#"{ flat(id: "1") { id name district { id name notes } } }"#,
        data(json!({"flat": {
            "id": "1",
            "name": "Loft",
            "district": {"id": "d7", "name": "Old Town", "notes": "quiet"}
        }})),
        &[("listing", 1), ("notes", 1), ("geo", 1), ("names", 1)],
    )
    .await;
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// __typename
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn typename_on_unions_interfaces_and_objects() {
    let kitchen = Fixture::new(
        &fed2(
            r#"
            type Query { appliance: Appliance gadget: Gadget staff: [Staff!]! }
            union Appliance = Kettle | Blender
            interface Gadget { serial: ID! }
            type Kettle implements Gadget { serial: ID! litres: Float }
            type Blender implements Gadget { serial: ID! speeds: Int }
            interface Staff { name: String! }
            type Chef implements Staff { name: String! }
            "#,
        ),
        json!({
            "Query": {
                "appliance": {"__typename": "Blender", "serial": "b9", "speeds": 5},
                "gadget": {"__typename": "Kettle", "serial": "k1", "litres": 1.5},
                "staff": [{"__typename": "Chef", "name": "Remy"}, {"__typename": "Chef", "name": "Colette"}]
            }
        }),
    );
    let env = Env::start(vec![("kitchen", kitchen)]).await;
    env.check(
        "{ appliance { __typename t: __typename } gadget { serial __typename a: __typename b: __typename } }",
        json!({}),
        data(json!({
            "appliance": {"__typename": "Blender", "t": "Blender"},
            "gadget": {"serial": "k1", "__typename": "Kettle", "a": "Kettle", "b": "Kettle"}
        })),
    )
    .await;
    env.check(
        "{ appliance { __typename ... on Kettle { k: __typename } ... on Blender { k: __typename speeds } } \
           gadget { ... on Blender { k: __typename } ... on Kettle { k: __typename } } \
           staff { __typename } __typename }",
        json!({}),
        data(json!({
            "appliance": {"__typename": "Blender", "k": "Blender", "speeds": 5},
            "gadget": {"k": "Kettle"},
            "staff": [{"__typename": "Chef"}, {"__typename": "Chef"}],
            "__typename": "Query"
        })),
    )
    .await;
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Abstract types
// ---------------------------------------------------------------------------------------

const ABSTRACT_CATALOG: &str = r#"
type Query { tracks: [Track!]! track(id: ID!): Track }
interface Track { id: ID! length: Int! }
type Song implements Track @key(fields: "id") { id: ID! length: Int! artist: String! }
type Podcast implements Track @key(fields: "id") { id: ID! length: Int! host: String! }
"#;

const ABSTRACT_EXTRAS: &str = r#"
type Song @key(fields: "id") { id: ID! lyrics: String mood: Mood }
type Podcast @key(fields: "id") { id: ID! episodes: Int }
enum Mood { HAPPY SAD }
"#;

#[tokio::test]
async fn abstract_types_fragments_and_conditions() {
    let catalog = Fixture::new(
        &fed2(ABSTRACT_CATALOG),
        json!({
            "Query": {
                "tracks": [
                    {"__typename": "Song", "id": "s1"},
                    {"__typename": "Podcast", "id": "p1"},
                    {"__typename": "Song", "id": "s2"}
                ],
                "track": {"$args": [[{"id": "p1"}, {"__typename": "Podcast", "id": "p1"}]]}
            },
            "Song": [
                {"id": "s1", "length": 180, "artist": "Nina"},
                {"id": "s2", "length": 240, "artist": "Miles"}
            ],
            "Podcast": [{"id": "p1", "length": 3600, "host": "Terry"}]
        }),
    );
    let extras = Fixture::new(
        &fed2(ABSTRACT_EXTRAS),
        json!({
            "Song": [
                {"id": "s1", "lyrics": "la la", "mood": "HAPPY"},
                {"id": "s2", "lyrics": null, "mood": "SAD"}
            ],
            "Podcast": [{"id": "p1", "episodes": 12}]
        }),
    );
    let env = Env::start(vec![("catalog", catalog), ("extras", extras)]).await;

    env.check_calls(
        "{ tracks { id length ... on Song { artist lyrics } ... on Podcast { episodes } } }",
        data(json!({"tracks": [
            {"id": "s1", "length": 180, "artist": "Nina", "lyrics": "la la"},
            {"id": "p1", "length": 3600, "episodes": 12},
            {"id": "s2", "length": 240, "artist": "Miles", "lyrics": null}
        ]})),
        &[("catalog", 1), ("extras", 1)],
    )
    .await;
    // Only interface fields: no entity call at all.
    env.check_calls(
        "{ tracks { __typename id } }",
        data(json!({"tracks": [
            {"__typename": "Song", "id": "s1"},
            {"__typename": "Podcast", "id": "p1"},
            {"__typename": "Song", "id": "s2"}
        ]})),
        &[("catalog", 1), ("extras", 0)],
    )
    .await;
    // Fragments with @include / @skip, nested fragments, named fragments.
    let q = "query ($on: Boolean!) { tracks { id ... on Song @include(if: $on) { lyrics ... on Song @skip(if: $on) { artist } } ... on Song { mood } ...P } }
             fragment P on Podcast { host episodes }";
    env.check(
        q,
        json!({"on": true}),
        data(json!({"tracks": [
            {"id": "s1", "lyrics": "la la", "mood": "HAPPY"},
            {"id": "p1", "host": "Terry", "episodes": 12},
            {"id": "s2", "lyrics": null, "mood": "SAD"}
        ]})),
    )
    .await;
    env.check(
        q,
        json!({"on": false}),
        data(json!({"tracks": [
            {"id": "s1", "mood": "HAPPY"},
            {"id": "p1", "host": "Terry", "episodes": 12},
            {"id": "s2", "mood": "SAD"}
        ]})),
    )
    .await;
    env.check(
        r#"{ track(id: "p1") { ... on Track { length } ... on Song { artist } ... on Podcast { episodes } } }"#,
        json!({}),
        data(json!({"track": {"length": 3600, "episodes": 12}})),
    )
    .await;
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Unions and interfaces that differ between subgraphs
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn union_and_interface_members_differ_between_subgraphs() {
    // `north` knows Fox and Owl in `Creature`; `south` knows Owl and Eel.
    let north = Fixture::new(
        &fed2(
            r#"
            type Query { northCreatures: [Creature!]! }
            union Creature = Fox | Owl
            type Fox @key(fields: "id") { id: ID! tail: String }
            type Owl @key(fields: "id") { id: ID! wingspan: Int @shareable }
            interface Named { name: String }
            type Ranger implements Named @key(fields: "id") { id: ID! name: String @shareable }
            "#,
        ),
        json!({
            "Query": {"northCreatures": [
                {"__typename": "Fox", "id": "f1", "tail": "bushy"},
                {"__typename": "Owl", "id": "o1", "wingspan": 90}
            ]},
            "Fox": [{"id": "f1", "tail": "bushy"}],
            "Owl": [{"id": "o1", "wingspan": 90}]
        }),
    );
    let south = Fixture::new(
        &fed2(
            r#"
            type Query { southCreatures: [Creature!]! }
            union Creature = Owl | Eel
            type Owl @key(fields: "id") { id: ID! wingspan: Int @shareable hoots: Boolean }
            type Eel @key(fields: "id") { id: ID! voltage: Int }
            "#,
        ),
        json!({
            "Query": {"southCreatures": [
                {"__typename": "Eel", "id": "e1", "voltage": 600},
                {"__typename": "Owl", "id": "o1", "wingspan": 90, "hoots": true}
            ]},
            "Owl": [{"id": "o1", "wingspan": 90, "hoots": true}],
            "Eel": [{"id": "e1", "voltage": 600}]
        }),
    );
    let env = Env::start(vec![("north", north), ("south", south)]).await;
    env.check(
        "{ northCreatures { __typename ... on Fox { tail } ... on Owl { wingspan hoots } ... on Eel { voltage } } \
           southCreatures { __typename ... on Fox { tail } ... on Owl { wingspan hoots } ... on Eel { voltage } } }",
        json!({}),
        data(json!({
            "northCreatures": [
                {"__typename": "Fox", "tail": "bushy"},
                {"__typename": "Owl", "wingspan": 90, "hoots": true}
            ],
            "southCreatures": [
                {"__typename": "Eel", "voltage": 600},
                {"__typename": "Owl", "wingspan": 90, "hoots": true}
            ]
        })),
    )
    .await;
    env.shutdown().await;
}

#[tokio::test]
async fn a_shared_union_field_sends_each_subgraph_only_its_own_members() {
    // `Query.shelf` is shared; `Item` is Book | Song in `east` and Book | Film in `west`.
    // `Visitor` (only in `east`) has `item: Item` and `book: Book`. The fixtures refuse
    // type conditions they do not know or that can never apply, as a real server does.
    let east = Fixture::new(
        &fed2(
            r#"
            type Query { shelf: Item @shareable visitor: Visitor }
            union Item = Book | Song
            type Book { title: String! @shareable }
            type Song { title: String! @shareable }
            type Visitor { item: Item book: Book favourite: Item }
            "#,
        ),
        json!({"Query": {
            "shelf": {"__typename": "Book", "title": "Dune"},
            "visitor": {
                "item": {"__typename": "Book", "title": "Dune"},
                "book": {"title": "Dune"},
                "favourite": {"__typename": "Song", "title": "Aria"}
            }
        }}),
    );
    let west = Fixture::new(
        &fed2(
            r#"
            type Query { shelf: Item @shareable }
            union Item = Book | Film
            type Book { title: String! @shareable }
            type Film { title: String! @shareable }
            "#,
        ),
        json!({"Query": {"shelf": {"__typename": "Book", "title": "Dune"}}}),
    );
    let env = Env::start(vec![("east", east), ("west", west)]).await;
    // The fixture itself refuses what the gateway must not send it.
    for (query, refusal) in [
        (
            "{ shelf { ... on Film { title } } }",
            "Unknown type \"Film\"",
        ),
        (
            "{ visitor { book { ... on Song { title } } } }",
            "can never be of type \"Song\"",
        ),
        (
            "{ visitor { book { pages } } }",
            "Cannot query field \"pages\"",
        ),
    ] {
        let direct = post_json(
            &env.client,
            &env.subgraph("east").url,
            &json!({"query": query}),
        )
        .await;
        let message = direct.body["errors"][0]["message"].as_str().unwrap_or("");
        assert!(message.contains(refusal), "{query}: {}", direct.body);
    }
    let every = "__typename ... on Book { title } ... on Song { title } ... on Film { title }";
    env.check(
        &format!("{{ shelf {{ {every} }} }}"),
        json!({}),
        data(json!({"shelf": {"__typename": "Book", "title": "Dune"}})),
    )
    .await;
    // Only a member the chosen subgraph does not know: nothing of it can come back.
    env.check(
        "{ shelf { ... on Film { title } } }",
        json!({}),
        data(json!({"shelf": {}})),
    )
    .await;
    env.check(
        "{ shelf { ... on Song { title } } }",
        json!({}),
        data(json!({"shelf": {}})),
    )
    .await;
    env.check(
        &format!("{{ visitor {{ item {{ {every} }} favourite {{ {every} }} book {{ __typename title }} }} }}"),
        json!({}),
        data(json!({"visitor": {
            "item": {"__typename": "Book", "title": "Dune"},
            "favourite": {"__typename": "Song", "title": "Aria"},
            "book": {"__typename": "Book", "title": "Dune"}
        }})),
    )
    .await;
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Interface objects
// ---------------------------------------------------------------------------------------

const SCREENS: &str = r#"
type Query { films: [Film!]! }
interface Show @key(fields: "id") { id: ID! title: String! }
type Film implements Show @key(fields: "id") { id: ID! title: String! director: String! }
type Series implements Show @key(fields: "id") { id: ID! title: String! seasons: Int! }
"#;

const RATINGS: &str = r#"
type Query { topRated: [Show!]! }
type Show @key(fields: "id") @interfaceObject {
  id: ID!
  stars: Int!
  title: String! @external
  blurb: String! @requires(fields: "title")
}
"#;

fn screens() -> Fixture {
    Fixture::new(
        &fed2(SCREENS),
        json!({
            "Query": {"films": [{"__typename": "Film", "id": "m1"}]},
            "Film": [{"id": "m1", "title": "Alien", "director": "Scott"}],
            "Series": [{"id": "t1", "title": "Dark", "seasons": 3}]
        }),
    )
}

fn ratings() -> Fixture {
    Fixture::new(
        &fed2(RATINGS),
        json!({
            "Query": {"topRated": [
                {"__typename": "Show", "id": "t1"},
                {"__typename": "Show", "id": "m1"}
            ]},
            "Show": [{"id": "m1", "stars": 5}, {"id": "t1", "stars": 4}]
        }),
    )
    .resolver("Show", "blurb", |parent, _| {
        let title = parent
            .get("title")
            .and_then(Value::as_str)
            .ok_or("title was not provided")?;
        Ok(json!(format!("{title}!")))
    })
}

#[tokio::test]
async fn interface_object_fields_and_real_types() {
    let env = Env::start(vec![("screens", screens()), ("ratings", ratings())]).await;
    // Interface fields only: the interface-object subgraph answers alone.
    env.check_calls(
        "{ topRated { id stars } }",
        data(json!({"topRated": [{"id": "t1", "stars": 4}, {"id": "m1", "stars": 5}]})),
        &[("ratings", 1), ("screens", 0)],
    )
    .await;
    // __typename must be the real type, which only `screens` knows.
    env.check(
        "{ topRated { __typename id stars } }",
        json!({}),
        data(json!({"topRated": [
            {"__typename": "Series", "id": "t1", "stars": 4},
            {"__typename": "Film", "id": "m1", "stars": 5}
        ]})),
    )
    .await;
    env.check(
        "{ topRated { id title ... on Film { director } ... on Series { seasons } } }",
        json!({}),
        data(json!({"topRated": [
            {"id": "t1", "title": "Dark", "seasons": 3},
            {"id": "m1", "title": "Alien", "director": "Scott"}
        ]})),
    )
    .await;
    // From the implementations' side: interface-object fields on concrete types.
    env.check(
        "{ films { __typename title stars } }",
        json!({}),
        data(json!({"films": [{"__typename": "Film", "title": "Alien", "stars": 5}]})),
    )
    .await;
    env.shutdown().await;
}

#[tokio::test]
async fn interface_object_with_requires() {
    let env = Env::start(vec![("screens", screens()), ("ratings", ratings())]).await;
    env.check(
        "{ topRated { id blurb } }",
        json!({}),
        data(
            json!({"topRated": [{"id": "t1", "blurb": "Dark!"}, {"id": "m1", "blurb": "Alien!"}]}),
        ),
    )
    .await;
    env.check(
        "{ films { id blurb stars } }",
        json!({}),
        data(json!({"films": [{"id": "m1", "blurb": "Alien!", "stars": 5}]})),
    )
    .await;
    env.check(
        "{ topRated { ... on Film { director blurb } id } }",
        json!({}),
        data(json!({"topRated": [
            {"id": "t1"},
            {"director": "Scott", "blurb": "Alien!", "id": "m1"}
        ]})),
    )
    .await;
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// @requires
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn requires_simple_chained_and_nested() {
    // warehouse owns weight and size; shipping computes cost from them; tax computes
    // duty from shipping's cost (a chain); customs needs a nested object and a
    // fragment-free nested selection.
    let warehouse = Fixture::new(
        &fed2(
            r#"
            type Query { parcels: [Parcel!]! }
            type Parcel @key(fields: "id") {
              id: ID!
              weight: Int!
              size: Size!
              origin: Place!
            }
            type Size @shareable { w: Int! h: Int! }
            type Place @shareable { country: String! city: String! }
            "#,
        ),
        json!({
            "Query": {"parcels": [{"__typename": "Parcel", "id": "x1"}, {"__typename": "Parcel", "id": "x2"}]},
            "Parcel": [
                {"id": "x1", "weight": 2, "size": {"w": 10, "h": 20}, "origin": {"country": "FR", "city": "Lyon"}},
                {"id": "x2", "weight": 5, "size": {"w": 1, "h": 1}, "origin": {"country": "JP", "city": "Kyoto"}}
            ]
        }),
    );
    let shipping = Fixture::new(
        &fed2(
            r#"
            type Parcel @key(fields: "id") {
              id: ID!
              weight: Int! @external
              size: Size! @external
              cost: Int! @requires(fields: "weight size { w h }")
            }
            type Size @shareable { w: Int! h: Int! }
            "#,
        ),
        json!({}),
    )
    .resolver("Parcel", "cost", |p, _| {
        let weight = p["weight"].as_i64().ok_or("no weight")?;
        let area =
            p["size"]["w"].as_i64().ok_or("no w")? * p["size"]["h"].as_i64().ok_or("no h")?;
        Ok(json!(weight * 10 + area))
    });
    let tax = Fixture::new(
        &fed2(
            r#"
            type Parcel @key(fields: "id") {
              id: ID!
              cost: Int! @external
              origin: Place! @external
              duty: Int! @requires(fields: "cost origin { country }")
            }
            type Place @shareable { country: String! city: String! @external }
            "#,
        ),
        json!({}),
    )
    .resolver("Parcel", "duty", |p, _| {
        let cost = p["cost"].as_i64().ok_or("no cost")?;
        let rate = if p["origin"]["country"] == "FR" {
            20
        } else {
            10
        };
        Ok(json!(cost * rate / 100))
    });
    let env = Env::start(vec![
        ("warehouse", warehouse),
        ("shipping", shipping),
        ("tax", tax),
    ])
    .await;
    env.check_calls(
        "{ parcels { id cost } }",
        data(json!({"parcels": [{"id": "x1", "cost": 220}, {"id": "x2", "cost": 51}]})),
        &[("warehouse", 1), ("shipping", 1), ("tax", 0)],
    )
    .await;
    env.check_calls(
        "{ parcels { id duty } }",
        data(json!({"parcels": [{"id": "x1", "duty": 44}, {"id": "x2", "duty": 5}]})),
        &[("warehouse", 1), ("shipping", 1), ("tax", 1)],
    )
    .await;
    env.check(
        "{ parcels { duty weight cost origin { city } } }",
        json!({}),
        data(json!({"parcels": [
            {"duty": 44, "weight": 2, "cost": 220, "origin": {"city": "Lyon"}},
            {"duty": 5, "weight": 5, "cost": 51, "origin": {"city": "Kyoto"}}
        ]})),
    )
    .await;
    env.shutdown().await;
}

#[tokio::test]
async fn requires_back_and_forth_between_two_subgraphs() {
    // left: base and final; right: middle. final requires middle requires base.
    let left = Fixture::new(
        &fed2(
            r#"
            type Query { nodes: [Knot!]! }
            type Knot @key(fields: "id") {
              id: ID!
              base: Int!
              middle: Int! @external
              top: Int! @requires(fields: "middle")
            }
            "#,
        ),
        json!({
            "Query": {"nodes": [{"__typename": "Knot", "id": "k1"}, {"__typename": "Knot", "id": "k2"}]},
            "Knot": [{"id": "k1", "base": 1}, {"id": "k2", "base": 2}]
        }),
    )
    .resolver("Knot", "top", |p, _| {
        Ok(json!(p["middle"].as_i64().ok_or("no middle")? * 100))
    });
    let right = Fixture::new(
        &fed2(
            r#"
            type Knot @key(fields: "id") {
              id: ID!
              base: Int! @external
              middle: Int! @requires(fields: "base")
            }
            "#,
        ),
        json!({}),
    )
    .resolver("Knot", "middle", |p, _| {
        Ok(json!(p["base"].as_i64().ok_or("no base")? + 10))
    });
    let env = Env::start(vec![("left", left), ("right", right)]).await;
    env.check_calls(
        "{ nodes { id top } }",
        data(json!({"nodes": [{"id": "k1", "top": 1100}, {"id": "k2", "top": 1200}]})),
        &[("left", 2), ("right", 1)],
    )
    .await;
    env.check(
        "{ nodes { top middle base } }",
        json!({}),
        data(json!({"nodes": [
            {"top": 1100, "middle": 11, "base": 1},
            {"top": 1200, "middle": 12, "base": 2}
        ]})),
    )
    .await;
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// @provides
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn provides_simple_nested_and_abstract() {
    // `feed` returns posts whose author name it can provide; `people` owns authors.
    let feed = Fixture::new(
        &fed2(
            r#"
            type Query {
              posts: [Post!]!
              postsWithAuthors: [Post!]! @provides(fields: "author { name team { label } }")
              pinned: Pinnable @provides(fields: "... on Author { name }")
            }
            type Post @key(fields: "id") { id: ID! author: Author! }
            type Author @key(fields: "id") {
              id: ID!
              name: String! @external
              team: Team @external
            }
            type Team @key(fields: "id") { id: ID! label: String @external }
            union Pinnable = Post | Author
            "#,
        ),
        json!({
            "Query": {
                "posts": [{"id": "p1", "author": {"__typename": "Author", "id": "a1"}}],
                "postsWithAuthors": [{"id": "p1", "author": {"id": "a1", "name": "Local Ann", "team": {"id": "t1", "label": "Local Blue"}}}],
                "pinned": {"__typename": "Author", "id": "a1", "name": "Pinned Ann"}
            }
        }),
    );
    let people = Fixture::new(
        &fed2(
            r#"
            type Author @key(fields: "id") { id: ID! name: String! email: String team: Team }
            type Team @key(fields: "id") { id: ID! label: String }
            "#,
        ),
        json!({
            "Author": [{"id": "a1", "name": "Ann", "email": "ann@x", "team": {"id": "t1"}}],
            "Team": [{"id": "t1", "label": "Blue"}]
        }),
    );
    let env = Env::start(vec![("feed", feed), ("people", people)]).await;
    env.check_calls(
        "{ posts { author { name } } }",
        data(json!({"posts": [{"author": {"name": "Ann"}}]})),
        &[("feed", 1), ("people", 1)],
    )
    .await;
    // Provided on this path (nested too): no entity call.
    env.check_calls(
        "{ postsWithAuthors { author { name team { label } } } }",
        data(json!({"postsWithAuthors": [{"author": {"name": "Local Ann", "team": {"label": "Local Blue"}}}]})),
        &[("feed", 1), ("people", 0)],
    )
    .await;
    // Only what is provided stays local.
    env.check_calls(
        "{ postsWithAuthors { author { name email } } }",
        data(json!({"postsWithAuthors": [{"author": {"name": "Local Ann", "email": "ann@x"}}]})),
        &[("feed", 1), ("people", 1)],
    )
    .await;
    env.check_calls(
        "{ pinned { ... on Author { name } } }",
        data(json!({"pinned": {"name": "Pinned Ann"}})),
        &[("feed", 1), ("people", 0)],
    )
    .await;
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// @override
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn override_moves_fields() {
    let old = Fixture::new(
        &fed2(
            r#"
            type Query { planets: [Planet!]! }
            type Planet @key(fields: "id") { id: ID! name: String! mass: Int! moons: Int! }
            "#,
        ),
        json!({
            "Query": {"planets": [{"__typename": "Planet", "id": "e"}]},
            "Planet": [{"id": "e", "name": "OLD-NAME", "mass": 6, "moons": 99}]
        }),
    );
    let new = Fixture::new(
        &fed2(
            r#"
            type Query { orbit: [Planet!]! }
            type Planet @key(fields: "id") {
              id: ID!
              moons: Int! @override(from: "old")
              rings: Boolean! @override(from: "gone")
              density: Float! @requires(fields: "mass")
              mass: Int! @external
            }
            "#,
        ),
        json!({
            "Query": {"orbit": [{"__typename": "Planet", "id": "e"}]},
            "Planet": [{"id": "e", "moons": 1, "rings": false}]
        }),
    )
    .resolver("Planet", "density", |p, _| {
        Ok(json!(p["mass"].as_i64().ok_or("no mass")? as f64 / 2.0))
    });
    let env = Env::start(vec![("old", old), ("new", new)]).await;
    env.check(
        "{ planets { name moons rings density } orbit { name moons } }",
        json!({}),
        data(json!({
            "planets": [{"name": "OLD-NAME", "moons": 1, "rings": false, "density": 3.0}],
            "orbit": [{"name": "OLD-NAME", "moons": 1}]
        })),
    )
    .await;
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// @inaccessible
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn inaccessible_fields_values_types_and_keys() {
    // `secretId` is the only key between the two subgraphs and is hidden from clients.
    let vault = Fixture::new(
        &fed2(
            r#"
            type Query { agents(level: Level = LOW): [Agent!]! lookup: Lookup }
            type Agent @key(fields: "secretId") {
              secretId: ID! @inaccessible
              codename: String!
              level: Level
              clearance: Level!
            }
            enum Level { LOW HIGH TOP @inaccessible }
            union Lookup = Agent | Hidden
            type Hidden @inaccessible { x: Int }
            "#,
        ),
        json!({
            "Query": {
                "agents": {"$args": [
                    [{"level": "LOW"}, [
                        {"__typename": "Agent", "secretId": "s7"},
                        {"__typename": "Agent", "secretId": "s9"}
                    ]],
                    [{"level": "HIGH"}, [{"__typename": "Agent", "secretId": "s9"}]]
                ]},
                "lookup": {"__typename": "Hidden", "x": 1}
            },
            "Agent": [
                {"secretId": "s7", "codename": "Bond", "level": "TOP", "clearance": "HIGH"},
                {"secretId": "s9", "codename": "Smiley", "level": "LOW", "clearance": "TOP"}
            ]
        }),
    );
    let hq = Fixture::new(
        &fed2(
            r#"
            type Agent @key(fields: "secretId") { secretId: ID! @inaccessible desk: String }
            "#,
        ),
        json!({"Agent": [{"secretId": "s7", "desk": "D1"}, {"secretId": "s9", "desk": "D2"}]}),
    );
    let env = Env::start(vec![("vault", vault), ("hq", hq)]).await;
    env.check(
        "{ agents { codename desk } }",
        json!({}),
        data(json!({"agents": [{"codename": "Bond", "desk": "D1"}, {"codename": "Smiley", "desk": "D2"}]})),
    )
    .await;
    env.check(
        "{ agents(level: HIGH) { codename } }",
        json!({}),
        data(json!({"agents": [{"codename": "Smiley"}]})),
    )
    .await;
    // A hidden enum value from a subgraph: null with an error.
    let body = env.run("{ agents { codename level } }", json!({})).await;
    assert_eq!(
        body["data"],
        json!({"agents": [{"codename": "Bond", "level": null}, {"codename": "Smiley", "level": "LOW"}]}),
        "{body}"
    );
    assert_eq!(
        body["errors"][0]["path"],
        json!(["agents", 0, "level"]),
        "{body}"
    );
    // In a non-null position it bubbles (here up to `data`).
    let body = env
        .run("{ agents { codename clearance } }", json!({}))
        .await;
    assert_eq!(body["data"], Value::Null, "{body}");
    assert_eq!(
        body["errors"][0]["path"],
        json!(["agents", 1, "clearance"]),
        "{body}"
    );
    // A hidden runtime type is null.
    env.check(
        "{ lookup { __typename ... on Agent { codename } } }",
        json!({}),
        data(json!({"lookup": null})),
    )
    .await;
    // Hidden fields and enum values cannot be used.
    let body = env.run("{ agents { secretId } }", json!({})).await;
    assert!(
        body["errors"].is_array() && body.get("data").is_none(),
        "{body}"
    );
    let body = env
        .run("{ agents(level: TOP) { codename } }", json!({}))
        .await;
    assert!(
        body["errors"].is_array() && body.get("data").is_none(),
        "{body}"
    );
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Shared root fields
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn shared_root_fields_pick_the_best_subgraph() {
    let one = Fixture::new(
        &fed2(
            r#"
            type Query { ship(id: ID!): Ship @shareable }
            type Ship @key(fields: "id") { id: ID! name: String! @shareable crew: Int }
            "#,
        ),
        json!({
            "Query": {"ship": {"$args": [[{"id": "s1"}, {"id": "s1", "name": "Nostromo", "crew": 7}]]}},
            "Ship": [{"id": "s1", "name": "Nostromo", "crew": 7}]
        }),
    );
    let two = Fixture::new(
        &fed2(
            r#"
            type Query { ship(id: ID!): Ship @shareable }
            type Ship @key(fields: "id") { id: ID! name: String! @shareable class: String }
            "#,
        ),
        json!({
            "Query": {"ship": {"$args": [[{"id": "s1"}, {"id": "s1", "name": "Nostromo", "class": "tug"}]]}},
            "Ship": [{"id": "s1", "name": "Nostromo", "class": "tug"}]
        }),
    );
    let env = Env::start(vec![("one", one), ("two", two)]).await;
    env.check_calls(
        r#"{ ship(id: "s1") { name crew } }"#,
        data(json!({"ship": {"name": "Nostromo", "crew": 7}})),
        &[("one", 1), ("two", 0)],
    )
    .await;
    env.check_calls(
        r#"{ ship(id: "s1") { name class } }"#,
        data(json!({"ship": {"name": "Nostromo", "class": "tug"}})),
        &[("one", 0), ("two", 1)],
    )
    .await;
    env.check_calls(
        r#"{ ship(id: "s1") { class name crew } }"#,
        data(json!({"ship": {"class": "tug", "name": "Nostromo", "crew": 7}})),
        &[("one", 1), ("two", 1)],
    )
    .await;
    env.shutdown().await;
}

#[tokio::test]
async fn a_shared_root_field_of_a_value_type_is_fetched_from_each_subgraph_it_needs() {
    // `Gadget` has no key: no subgraph can be entered for its fields, but every one of
    // them serves the shared root fields, each with its own fields of the gadget.
    let fed = |field: &str| {
        fed2(&format!(
            "type Query {{ gadget: Gadget @shareable gadgets: [Gadget] @shareable }}\n\
             type Gadget {{ id: ID! @shareable {field} }}"
        ))
    };
    let gadget = |field: &str, value: Value| {
        let one = json!({"id": "g1", field: value});
        json!({"Query": {"gadget": one, "gadgets": [one, {"id": "g2", field: null}]}})
    };
    let env = Env::start(vec![
        (
            "names",
            Fixture::new(&fed("name: String"), gadget("name", json!("Lamp"))),
        ),
        (
            "prices",
            Fixture::new(&fed("price: Int"), gadget("price", json!(30))),
        ),
        (
            "stock",
            Fixture::new(&fed("stock: Int"), gadget("stock", json!(4))),
        ),
    ])
    .await;
    env.check_calls(
        "{ gadget { id name price stock } }",
        data(json!({"gadget": {"id": "g1", "name": "Lamp", "price": 30, "stock": 4}})),
        &[("names", 1), ("prices", 1), ("stock", 1)],
    )
    .await;
    env.check_calls(
        "{ gadgets { name price } }",
        data(json!({"gadgets": [{"name": "Lamp", "price": 30}, {"name": null, "price": null}]})),
        &[("names", 1), ("prices", 1), ("stock", 0)],
    )
    .await;
    // One subgraph completes it: one fetch.
    env.check_calls(
        "{ gadget { id price } }",
        data(json!({"gadget": {"id": "g1", "price": 30}})),
        &[("names", 0), ("prices", 1), ("stock", 0)],
    )
    .await;
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Federation 1 subgraphs
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn federation1_extends_and_external_keys() {
    let products = Fixture::new(
        r#"
        type Query { lamps: [Lamp] }
        type Lamp @key(fields: "sku") { sku: String! watts: Int }
        "#,
        json!({
            "Query": {"lamps": [{"sku": "L1"}, {"sku": "L2"}]},
            "Lamp": [{"sku": "L1", "watts": 40}, {"sku": "L2", "watts": 60}]
        }),
    );
    let prices = Fixture::new(
        r#"
        extend type Lamp @key(fields: "sku") {
          sku: String! @external
          watts: Int @external
          price: Int
          energyCost: Int @requires(fields: "watts")
        }
        extend type Query { cheapest: Lamp }
        "#,
        json!({
            "Query": {"cheapest": {"sku": "L2"}},
            "Lamp": [{"sku": "L1", "price": 12}, {"sku": "L2", "price": 9}]
        }),
    )
    .resolver("Lamp", "energyCost", |p, _| {
        Ok(json!(p["watts"].as_i64().ok_or("no watts")? * 3))
    });
    let env = Env::start(vec![("products", products), ("prices", prices)]).await;
    env.check(
        "{ lamps { sku price energyCost } cheapest { sku watts price } }",
        json!({}),
        data(json!({
            "lamps": [
                {"sku": "L1", "price": 12, "energyCost": 120},
                {"sku": "L2", "price": 9, "energyCost": 180}
            ],
            "cheapest": {"sku": "L2", "watts": 60, "price": 9}
        })),
    )
    .await;
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn mutations_run_in_document_order() {
    use std::sync::{Arc, Mutex};
    let log: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let counter = Arc::new(Mutex::new(0i64));
    let (l1, c1) = (log.clone(), counter.clone());
    let (l2, c2) = (log.clone(), counter.clone());
    let c3 = counter.clone();
    let tally = Fixture::new(
        &fed2(
            r#"
            type Query { total: Int! }
            type Mutation { add(n: Int!): Int! }
            type Entry @key(fields: "id") { id: ID! total: Int! }
            "#,
        ),
        json!({}),
    )
    .resolver("Mutation", "add", move |_, args| {
        let mut c = c1.lock().map_err(|e| e.to_string())?;
        *c += args["n"].as_i64().unwrap_or(0);
        l1.lock()
            .map_err(|e| e.to_string())?
            .push(format!("add:{}", *c));
        Ok(json!(*c))
    })
    .resolver("Query", "total", move |_, _| {
        Ok(json!(*c3.lock().map_err(|e| e.to_string())?))
    })
    .resolver("Entry", "total", {
        let c = counter.clone();
        move |_, _| Ok(json!(*c.lock().map_err(|e| e.to_string())?))
    });
    let journal = Fixture::new(
        &fed2(
            r#"
            type Mutation { double: Entry! }
            type Entry @key(fields: "id") { id: ID! }
            "#,
        ),
        json!({}),
    )
    .resolver("Mutation", "double", move |_, _| {
        let mut c = c2.lock().map_err(|e| e.to_string())?;
        *c *= 2;
        l2.lock()
            .map_err(|e| e.to_string())?
            .push(format!("double:{}", *c));
        Ok(json!({"id": "e1"}))
    });
    let env = Env::start(vec![("tally", tally), ("journal", journal)]).await;
    env.check(
        "mutation { a: add(n: 1) b: add(n: 2) d: double { total } c: add(n: 10) e: double { id total } }",
        json!({}),
        data(json!({"a": 1, "b": 3, "d": {"total": 6}, "c": 16, "e": {"id": "e1", "total": 32}})),
    )
    .await;
    assert_eq!(
        log.lock().map(|l| l.clone()).unwrap_or_default(),
        vec!["add:1", "add:3", "double:6", "add:16", "double:32"]
    );
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// @skip / @include
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn include_and_skip_across_subgraphs() {
    let a = Fixture::new(
        &fed2(
            r#"
            type Query { cars: [Car!]! garage: String }
            type Car @key(fields: "vin") { vin: ID! make: String! }
            "#,
        ),
        json!({
            "Query": {"cars": [{"vin": "v1", "make": "Fiat"}], "garage": "G"},
        }),
    );
    let b = Fixture::new(
        &fed2(
            r#"
            type Car @key(fields: "vin") { vin: ID! color: String owner: Person }
            type Person @key(fields: "name") { name: String! }
            "#,
        ),
        json!({"Car": [{"vin": "v1", "color": "red", "owner": {"name": "Zoe"}}]}),
    );
    let env = Env::start(vec![("a", a), ("b", b)]).await;
    let q = "query ($yes: Boolean!, $no: Boolean!) {
        garage @include(if: $no)
        cars { make color @include(if: $yes) o: owner @skip(if: $yes) { name } ... @include(if: $no) { vin } }
    }";
    env.reset();
    env.check(
        q,
        json!({"yes": true, "no": false}),
        data(json!({"cars": [{"make": "Fiat", "color": "red"}]})),
    )
    .await;
    env.check(
        q,
        json!({"yes": false, "no": true}),
        data(json!({"garage": "G", "cars": [{"make": "Fiat", "o": {"name": "Zoe"}, "vin": "v1"}]})),
    )
    .await;
    // Everything asked of `b` is skipped: `b` is not called at all.
    env.reset();
    env.check(
        "query ($s: Boolean!) { cars { make color @skip(if: $s) } }",
        json!({"s": true}),
        data(json!({"cars": [{"make": "Fiat"}]})),
    )
    .await;
    assert_eq!(
        env.subgraph("b").request_count(),
        0,
        "a fully skipped fetch is not sent"
    );
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Node-style interface field
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn node_interface_resolved_across_subgraphs() {
    let nodes = Fixture::new(
        &fed2(
            r#"
            type Query { node(id: ID!): Node }
            interface Node { id: ID! }
            type Tool implements Node @key(fields: "id") { id: ID! }
            type Crate implements Node @key(fields: "id") { id: ID! }
            "#,
        ),
        json!({
            "Query": {"node": {"$args": [
                [{"id": "t1"}, {"__typename": "Tool", "id": "t1"}],
                [{"id": "c1"}, {"__typename": "Crate", "id": "c1"}]
            ]}}
        }),
    );
    let tools = Fixture::new(
        &fed2(
            r#"
            type Tool @key(fields: "id") { id: ID! label: String! }
            type Crate @key(fields: "id") { id: ID! tools: [Tool!]! }
            "#,
        ),
        json!({
            "Tool": [{"id": "t1", "label": "hammer"}],
            "Crate": [{"id": "c1", "tools": [{"id": "t1"}]}]
        }),
    );
    let prices = Fixture::new(
        &fed2(r#"type Tool @key(fields: "id") { id: ID! price: Int }"#),
        json!({"Tool": [{"id": "t1", "price": 15}]}),
    );
    let env = Env::start(vec![("nodes", nodes), ("tools", tools), ("prices", prices)]).await;
    env.check(
        r#"{ t: node(id: "t1") { ... on Tool { id label __typename price } } c: node(id: "c1") { id __typename ... on Crate { tools { label price } } } none: node(id: "x") { id } }"#,
        json!({}),
        data(json!({
            "t": {"id": "t1", "label": "hammer", "__typename": "Tool", "price": 15},
            "c": {"id": "c1", "__typename": "Crate", "tools": [{"label": "hammer", "price": 15}]},
            "none": null
        })),
    )
    .await;
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// @requires with arguments
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn requires_with_arguments() {
    let pricing = Fixture::new(
        &fed2(
            r#"
            type Query { gems: [Gem!]! }
            type Gem @key(fields: "id") {
              id: ID!
              carats: Int!
              price(unit: String!): Int!
              family: Family!
            }
            type Family @shareable { avg(unit: String!): Int! }
            "#,
        ),
        json!({
            "Query": {"gems": [{"__typename": "Gem", "id": "g1"}, {"__typename": "Gem", "id": "g2"}]},
            "Gem": [
                {"id": "g1", "carats": 2, "price": {"$args": [[{"unit": "EUR"}, 100], [{"unit": "GBP"}, 90]]},
                 "family": {"avg": {"$args": [[{"unit": "EUR"}, 50], [{"unit": "GBP"}, 45]]}}},
                {"id": "g2", "carats": 3, "price": {"$args": [[{"unit": "EUR"}, 20], [{"unit": "GBP"}, 18]]},
                 "family": {"avg": {"$args": [[{"unit": "EUR"}, 10], [{"unit": "GBP"}, 9]]}}}
            ]
        }),
    );
    let insurance = Fixture::new(
        &fed2(
            r#"
            type Gem @key(fields: "id") {
              id: ID!
              carats: Int! @external
              price(unit: String!): Int! @external
              family: Family! @external
              premium: Int! @requires(fields: "price(unit: \"EUR\") carats")
              aboveAverage: Boolean! @requires(fields: "price(unit: \"EUR\") family { avg(unit: \"EUR\") }")
              premiumGbp: Int! @requires(fields: "price(unit: \"GBP\") carats")
            }
            type Family @shareable { avg(unit: String!): Int! @external }
            "#,
        ),
        json!({}),
    )
    .resolver("Gem", "premium", |p, _| {
        Ok(json!(p["price"].as_i64().ok_or("no price")? * p["carats"].as_i64().ok_or("no carats")?))
    })
    .resolver("Gem", "premiumGbp", |p, _| {
        Ok(json!(p["price"].as_i64().ok_or("no price")? * p["carats"].as_i64().ok_or("no carats")?))
    })
    .resolver("Gem", "aboveAverage", |p, _| {
        Ok(json!(p["price"].as_i64().ok_or("no price")? > p["family"]["avg"].as_i64().ok_or("no avg")?))
    });
    let env = Env::start(vec![("pricing", pricing), ("insurance", insurance)]).await;
    env.check(
        "{ gems { id premium aboveAverage } }",
        json!({}),
        data(json!({"gems": [
            {"id": "g1", "premium": 200, "aboveAverage": true},
            {"id": "g2", "premium": 60, "aboveAverage": true}
        ]})),
    )
    .await;
    // Two requirements of one field with different arguments: each computed field sees
    // its own price (one representation cannot carry both).
    env.check(
        "{ gems { id premium premiumGbp } }",
        json!({}),
        data(json!({"gems": [
            {"id": "g1", "premium": 200, "premiumGbp": 180},
            {"id": "g2", "premium": 60, "premiumGbp": 54}
        ]})),
    )
    .await;
    // The client asks for the same field with other arguments: no clash.
    env.check(
        r#"{ gems { price(unit: "GBP") premium family { avg(unit: "GBP") } } }"#,
        json!({}),
        data(json!({"gems": [
            {"price": 90, "premium": 200, "family": {"avg": 45}},
            {"price": 18, "premium": 60, "family": {"avg": 9}}
        ]})),
    )
    .await;
    env.shutdown().await;
}

#[tokio::test]
async fn requires_with_fragments_on_a_union() {
    let store = Fixture::new(
        &fed2(
            r#"
            type Query { parcels: [Parcel!]! }
            type Parcel @key(fields: "id") { id: ID! content: Content }
            union Content = Letter | Crate
            type Letter { pages: Int @shareable }
            type Crate { kilos: Int @shareable }
            "#,
        ),
        json!({"Query": {"parcels": [
            {"__typename": "Parcel", "id": "p1", "content": {"__typename": "Letter", "pages": 3}},
            {"__typename": "Parcel", "id": "p2", "content": {"__typename": "Crate", "kilos": 40}}
        ]}}),
    );
    let postage = Fixture::new(
        &fed2(
            r#"
            type Parcel @key(fields: "id") {
              id: ID!
              content: Content @external
              stamp: String @requires(fields: "content { ... on Letter { pages } ... on Crate { kilos } }")
            }
            union Content = Letter | Crate
            type Letter { pages: Int @shareable }
            type Crate { kilos: Int @shareable }
            "#,
        ),
        json!({}),
    )
    .resolver("Parcel", "stamp", |p, _| {
        let content = &p["content"];
        match (content["pages"].as_i64(), content["kilos"].as_i64()) {
            (Some(pages), _) => Ok(json!(format!("letter/{pages}"))),
            (_, Some(kilos)) => Ok(json!(format!("crate/{kilos}"))),
            _ => Err(format!("no content in the representation: {content}")),
        }
    });
    let env = Env::start(vec![("store", store), ("postage", postage)]).await;
    env.check(
        "{ parcels { id stamp } }",
        json!({}),
        data(json!({"parcels": [
            {"id": "p1", "stamp": "letter/3"},
            {"id": "p2", "stamp": "crate/40"}
        ]})),
    )
    .await;
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Same response key, different types in one subgraph selection
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn fields_with_different_shapes_under_one_key() {
    let basic = Fixture::new(
        &fed2(
            r#"
            type Query { members: [Member!]! }
            type Member { code: ID @shareable }
            "#,
        ),
        json!({"Query": {"members": [{"code": "m1"}]}}),
    );
    let club = Fixture::new(
        &fed2(
            r#"
            type Query { people: [Person!]! }
            union Person = Member | Guest
            type Member @key(fields: "code") { code: ID! nick: String friends: [Person!]! }
            type Guest { code: ID nick: String @shareable friends: [Person!]! }
            "#,
        ),
        json!({
            "Query": {"people": [
                {"__typename": "Member", "code": "m1"},
                {"__typename": "Guest", "code": "g1", "nick": "guest-one",
                 "friends": [{"__typename": "Member", "code": "m1"}]}
            ]},
            "Member": [{"code": "m1", "nick": "member-one",
                        "friends": [{"__typename": "Guest", "code": "g1", "nick": "guest-one", "friends": []}]}]
        }),
    );
    let env = Env::start(vec![("basic", basic), ("club", club)]).await;
    env.check(
        "{ members { code nick } people { ... on Member { code nick } ... on Guest { code nick } } }",
        json!({}),
        data(json!({
            "members": [{"code": "m1", "nick": "member-one"}],
            "people": [{"code": "m1", "nick": "member-one"}, {"code": "g1", "nick": "guest-one"}]
        })),
    )
    .await;
    env.check(
        "{ people { ... on Member { code friends { ... on Member { code } ... on Guest { code } } } \
                    ... on Guest { code friends { ... on Member { code } ... on Guest { code } } } } }",
        json!({}),
        data(json!({"people": [
            {"code": "m1", "friends": [{"code": "g1"}]},
            {"code": "g1", "friends": [{"code": "m1"}]}
        ]})),
    )
    .await;
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Hand-written supergraphs: progressive override labels, join v0.1
// ---------------------------------------------------------------------------------------

const LABELLED_SUPERGRAPH: &str = r#"
schema
  @link(url: "https://specs.apollo.dev/link/v1.0")
  @link(url: "https://specs.apollo.dev/join/v0.5", for: EXECUTION)
{
  query: Query
}

directive @join__enumValue(graph: join__Graph!) repeatable on ENUM_VALUE
directive @join__field(graph: join__Graph, requires: join__FieldSet, provides: join__FieldSet, type: String, external: Boolean, override: String, usedOverridden: Boolean, overrideLabel: String, contextArguments: [join__ContextArgument!]) repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION
directive @join__graph(name: String!, url: String!) on ENUM_VALUE
directive @join__implements(graph: join__Graph!, interface: String!) repeatable on OBJECT | INTERFACE
directive @join__type(graph: join__Graph!, key: join__FieldSet, extension: Boolean! = false, resolvable: Boolean! = true, isInterfaceObject: Boolean! = false) repeatable on OBJECT | INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR
directive @join__unionMember(graph: join__Graph!, member: String!) repeatable on UNION
directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) repeatable on SCHEMA

input join__ContextArgument { name: String! type: String! context: String! selection: join__FieldValue! }
scalar join__FieldSet
scalar join__FieldValue
scalar link__Import
enum link__Purpose { SECURITY EXECUTION }

enum join__Graph {
  FIRST @join__graph(name: "first", url: "http://127.0.0.1:9/first")
  SECOND @join__graph(name: "second", url: "http://127.0.0.1:9/second")
}

type Query @join__type(graph: FIRST) @join__type(graph: SECOND) {
  kites: [Kite!]! @join__field(graph: FIRST)
}

type Kite @join__type(graph: FIRST, key: "id") @join__type(graph: SECOND, key: "id") {
  id: ID!
  colour: String! @join__field(graph: FIRST, overrideLabel: "percent(100)") @join__field(graph: SECOND, override: "first", overrideLabel: "percent(100)")
  tail: Int! @join__field(graph: FIRST, overrideLabel: "percent(0)") @join__field(graph: SECOND, override: "first", overrideLabel: "percent(0)")
  string: Int! @join__field(graph: FIRST, overrideLabel: "some-flag") @join__field(graph: SECOND, override: "first", overrideLabel: "some-flag")
}
"#;

#[tokio::test]
async fn progressive_override_labels() {
    let first = Fixture::new(
        "type Query { kites: [Kite!]! } type Kite @key(fields: \"id\") { id: ID! colour: String! tail: Int! string: Int! }",
        json!({
            "Query": {"kites": [{"id": "k1", "colour": "first-red", "tail": 1, "string": 10}]}
        }),
    );
    let second = Fixture::new(
        "type Kite @key(fields: \"id\") { id: ID! colour: String! tail: Int! string: Int! }",
        json!({"Kite": [{"id": "k1", "colour": "second-red", "tail": 2, "string": 20}]}),
    );
    let env = Env::with_supergraph(
        LABELLED_SUPERGRAPH,
        vec![("first", first), ("second", second)],
    )
    .await;
    // percent(100): overridden; percent(0) and unknown labels: not overridden.
    env.check_calls(
        "{ kites { colour tail string } }",
        data(json!({"kites": [{"colour": "second-red", "tail": 1, "string": 10}]})),
        &[("first", 1), ("second", 1)],
    )
    .await;
    env.check_calls(
        "{ kites { tail string } }",
        data(json!({"kites": [{"tail": 1, "string": 10}]})),
        &[("first", 1), ("second", 0)],
    )
    .await;
    env.shutdown().await;
}

const JOIN_V01_SUPERGRAPH: &str = r#"
schema
  @core(feature: "https://specs.apollo.dev/core/v0.1")
  @core(feature: "https://specs.apollo.dev/join/v0.1")
{
  query: Query
}

directive @core(feature: String!) repeatable on SCHEMA
directive @join__field(graph: join__Graph, requires: join__FieldSet, provides: join__FieldSet) on FIELD_DEFINITION
directive @join__type(graph: join__Graph!, key: join__FieldSet) repeatable on OBJECT | INTERFACE
directive @join__owner(graph: join__Graph!) on OBJECT | INTERFACE
directive @join__graph(name: String!, url: String!) on ENUM_VALUE

scalar join__FieldSet

enum join__Graph {
  BOATS @join__graph(name: "boats" url: "http://127.0.0.1:9/boats")
  DOCKS @join__graph(name: "docks" url: "http://127.0.0.1:9/docks")
}

type Boat
  @join__owner(graph: BOATS)
  @join__type(graph: BOATS, key: "hull")
  @join__type(graph: DOCKS, key: "hull")
{
  hull: String! @join__field(graph: BOATS)
  name: String
  length: Int
  berth: String @join__field(graph: DOCKS)
  fee: Int @join__field(graph: DOCKS, requires: "length")
}

interface Vessel { hull: String! }

type Query {
  boats: [Boat] @join__field(graph: BOATS)
  moored: [Boat] @join__field(graph: DOCKS)
}
"#;

#[tokio::test]
async fn join_v01_supergraph_with_owners() {
    let boats = Fixture::new(
        "type Query { boats: [Boat] } type Boat @key(fields: \"hull\") { hull: String! name: String length: Int }",
        json!({
            "Query": {"boats": [{"hull": "H1"}, {"hull": "H2"}]},
            "Boat": [{"hull": "H1", "name": "Ark", "length": 30}, {"hull": "H2", "name": "Bounty", "length": 12}]
        }),
    );
    let docks = Fixture::new(
        "extend type Query { moored: [Boat] } extend type Boat @key(fields: \"hull\") { hull: String! @external length: Int @external berth: String fee: Int @requires(fields: \"length\") }",
        json!({
            "Query": {"moored": [{"hull": "H2"}]},
            "Boat": [{"hull": "H1", "berth": "B-1"}, {"hull": "H2", "berth": "B-2"}]
        }),
    )
    .resolver("Boat", "fee", |p, _| Ok(json!(p["length"].as_i64().ok_or("no length")? * 2)));
    let env = Env::with_supergraph(
        JOIN_V01_SUPERGRAPH,
        vec![("boats", boats), ("docks", docks)],
    )
    .await;
    env.check(
        "{ boats { name berth fee } moored { hull name length } }",
        json!({}),
        data(json!({
            "boats": [
                {"name": "Ark", "berth": "B-1", "fee": 60},
                {"name": "Bounty", "berth": "B-2", "fee": 24}
            ],
            "moored": [{"hull": "H2", "name": "Bounty", "length": 12}]
        })),
    )
    .await;
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Errors and nulls from subgraphs
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn subgraph_errors_and_null_entities() {
    let orders = Fixture::new(
        &fed2(
            r#"
            type Query { orders: [Order!]! broken: String }
            type Order @key(fields: "id") { id: ID! }
            "#,
        ),
        json!({
            "Query": {
                "orders": [{"id": "o1"}, {"id": "o2"}, {"id": "o3"}],
                "broken": {"$error": "broken on purpose"}
            }
        }),
    );
    let details = Fixture::new(
        &fed2(
            r#"
            type Order @key(fields: "id") { id: ID! note: String total: Int! }
            "#,
        ),
        json!({
            "Order": [
                {"id": "o1", "note": "first", "total": 5},
                {"id": "o3", "note": {"$error": "note hidden"}, "total": 7}
            ]
        }),
    );
    let env = Env::start(vec![("orders", orders), ("details", details)]).await;
    // o2 is unknown to `details` (a null entity): its nullable field is null.
    env.check(
        "{ orders { id note } }",
        json!({}),
        json!({
            "errors": [{
                "message": "note hidden",
                "path": ["orders", 2, "note"],
                "extensions": {"code": "DOWNSTREAM_SERVICE_ERROR", "service": "details"}
            }],
            "data": {"orders": [
                {"id": "o1", "note": "first"},
                {"id": "o2", "note": null},
                {"id": "o3", "note": null}
            ]}
        }),
    )
    .await;
    // A non-null field of a null entity makes the element null, and `[Order!]!` makes
    // `data` null.
    let body = env.run("{ orders { id total } }", json!({})).await;
    assert_eq!(body["data"], Value::Null, "{body}");
    assert_eq!(
        body["errors"][0]["path"],
        json!(["orders", 1, "total"]),
        "{body}"
    );
    // A root field error keeps the other root fields.
    env.check(
        "{ broken orders { id } }",
        json!({}),
        json!({
            "errors": [{
                "message": "broken on purpose",
                "path": ["broken"],
                "extensions": {"code": "DOWNSTREAM_SERVICE_ERROR", "service": "orders"}
            }],
            "data": {"broken": null, "orders": [{"id": "o1"}, {"id": "o2"}, {"id": "o3"}]}
        }),
    )
    .await;
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Operations the supergraph cannot serve
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_operation_no_subgraph_can_route_is_a_request_error() {
    // `note` lives in `b`, which can only be entered through `Box.id`; `a` returns boxes
    // without a key `b` could use.
    let a = Fixture::new(
        &fed2("type Query { box: Box } type Box { label: String @shareable }"),
        json!({"Query": {"box": {"label": "x"}}}),
    );
    let b = Fixture::new(
        &fed2(r#"type Box @key(fields: "id") { id: ID! label: String @shareable note: String }"#),
        json!({"Box": [{"id": "1", "label": "x", "note": "n"}]}),
    );
    let env = Env::start(vec![("a", a), ("b", b)]).await;
    env.reset();
    for (accept, status) in [
        ("application/graphql-response+json", 400),
        ("application/json", 200),
    ] {
        let reply = e2e_tests::send(
            env.client
                .post(env.gateway.url())
                .header("content-type", "application/json")
                .header("accept", accept)
                .body(json!({"query": "{ box { label note } }"}).to_string()),
        )
        .await;
        assert_eq!(reply.status, status, "{accept}: {}", reply.body);
        assert_eq!(reply.body["data"], Value::Null, "{}", reply.body);
        assert_eq!(
            reply.body["errors"][0]["extensions"]["code"],
            "QUERY_PLANNING_FAILED"
        );
        let message = reply.body["errors"][0]["message"].as_str().unwrap_or("");
        // It names where the route ends (the key `b` would need).
        assert!(message.starts_with("cannot plan Box."), "{message}");
    }
    assert_eq!(env.calls(), [("a".to_string(), 0), ("b".to_string(), 0)]);
    // What the subgraphs can route still runs.
    env.check(
        "{ box { label } }",
        json!({}),
        data(json!({"box": {"label": "x"}})),
    )
    .await;
    env.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Join data that no query path satisfies
// ---------------------------------------------------------------------------------------

/// `node` is shared by two subgraphs, each of which has one implementation's `id` only as
/// `@external` (so it can neither answer it nor enter the other subgraph with it).
fn members_and_posts() -> Vec<(&'static str, Fixture)> {
    let a = Fixture::new(
        &fed2(
            r#"
            type Query { node(id: ID!): Node @shareable member(id: ID!): Member }
            interface Node { id: ID! }
            type Member implements Node @key(fields: "id") { id: ID! handle: String! }
            type Post implements Node @key(fields: "id") { id: ID! @external author: Member! }
            "#,
        ),
        json!({
            "Query": {
                "node": {"$args": [
                    [{"id": "m1"}, {"__typename": "Member", "id": "m1", "handle": "ann"}],
                    [{"id": "p1"}, {"__typename": "Post", "id": "never", "author": {"id": "m1"}}]
                ]},
                "member": {"$args": [[{"id": "m1"}, {"id": "m1"}]]}
            },
            "Member": [{"id": "m1", "handle": "ann"}],
            "Post": [{"id": "p1", "author": {"id": "m1"}}]
        }),
    );
    let b = Fixture::new(
        &fed2(
            r#"
            type Query { node(id: ID!): Node @shareable post(id: ID!): Post }
            interface Node { id: ID! }
            type Member implements Node @key(fields: "id") { id: ID! @external posts: [Post!]! }
            type Post implements Node @key(fields: "id") { id: ID! body: String! }
            "#,
        ),
        json!({
            "Query": {
                "node": {"$args": [
                    [{"id": "m1"}, {"__typename": "Member", "id": "never", "posts": [{"id": "p1"}]}],
                    [{"id": "p1"}, {"__typename": "Post", "id": "p1", "body": "hello"}]
                ]},
                "post": {"$args": [[{"id": "p1"}, {"id": "p1"}]]}
            },
            "Member": [{"id": "m1", "posts": [{"id": "p1"}]}],
            "Post": [{"id": "p1", "body": "hello"}]
        }),
    );
    vec![("a", a), ("b", b)]
}

async fn planning_error(env: &Env, query: &str) {
    env.reset();
    let body = env.run(query, json!({})).await;
    if body["data"] != Value::Null {
        let plan = env.plan(query, &json!({})).await;
        panic!("{query}: expected a planning error, got {body}\nplan:\n{plan}");
    }
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "QUERY_PLANNING_FAILED",
        "{query}: {body}"
    );
    assert_eq!(env.total_calls(), 0, "{query}");
    // The reference router's answer beside ours (its error wording differs; the data
    // column says whether it refused too).
    if let Some(oracle) = &env.oracle {
        let theirs = oracle
            .ask(&env.client, query, &json!({}))
            .await
            .unwrap_or(Value::Null);
        Comparison {
            query,
            expected: &body,
            ours: &body,
            theirs: &theirs,
            our_requests: 0,
            their_requests: env.total_calls(),
        }
        .record();
    }
}

#[tokio::test]
async fn an_interface_field_no_subgraph_resolves_for_every_implementation_is_refused() {
    let env = Env::start(members_and_posts()).await;
    // `a` has Post.id only as external, `b` Member.id: no subgraph answers `id` for
    // every node, and neither can enter the other with a key it does not have.
    planning_error(&env, r#"{ node(id: "m1") { id } }"#).await;
    planning_error(&env, r#"{ m: node(id: "m1") { id ... on Post { id } } }"#).await;
    env.check_calls(
        r#"{ m: node(id: "m1") { __typename } p: node(id: "p1") { __typename } }"#,
        data(json!({"m": {"__typename": "Member"}, "p": {"__typename": "Post"}})),
        &[("a", 1), ("b", 0)],
    )
    .await;
    env.check_calls(
        r#"{ m: node(id: "m1") { ... on Member { id handle } } p: node(id: "p1") { ... on Post { id body } } }"#,
        data(json!({"m": {"id": "m1", "handle": "ann"}, "p": {"id": "p1", "body": "hello"}})),
        &[("a", 1), ("b", 1)],
    )
    .await;
    env.check_calls(
        r#"{ m: node(id: "m1") { __typename ... on Post { id } } p: node(id: "p1") { ... on Member { id } } }"#,
        data(json!({"m": {"__typename": "Member"}, "p": {}})),
        &[("a", 1), ("b", 1)],
    )
    .await;
    env.check_calls(
        r#"{ post(id: "p1") { id body author { id handle } } }"#,
        data(
            json!({"post": {"id": "p1", "body": "hello", "author": {"id": "m1", "handle": "ann"}}}),
        ),
        &[("a", 1), ("b", 1)],
    )
    .await;
    env.check_calls(
        r#"{ member(id: "m1") { id handle posts { id body } } }"#,
        data(json!({"member": {"id": "m1", "handle": "ann", "posts": [{"id": "p1", "body": "hello"}]}})),
        &[("a", 1), ("b", 1)],
    )
    .await;
    env.shutdown().await;
}

/// `b` adds `Node.note` as an `@interfaceObject` whose key is not resolvable: nothing can
/// enter it; `a` returns `Node` without an implementation of its own.
#[tokio::test]
async fn a_non_resolvable_interface_object_is_not_entered() {
    let a = Fixture::new(
        &fed2(
            r#"
            type Query { a: Node }
            interface Node { id: ID! }
            "#,
        ),
        json!({"Query": {"a": {"$error": "no type of this subgraph implements Node"}}}),
    );
    let b = Fixture::new(
        &fed2(
            r#"
            type Query { b: Node }
            type Node @interfaceObject @key(fields: "id", resolvable: false) { id: ID! note: String }
            "#,
        ),
        json!({"Query": {"b": {"id": "n1", "note": "foo"}}}),
    );
    let env = Env::start(vec![("a", a), ("b", b)]).await;
    env.check_calls(
        "{ b { id note } }",
        data(json!({"b": {"id": "n1", "note": "foo"}})),
        &[("a", 0), ("b", 1)],
    )
    .await;
    planning_error(&env, "{ a { note } }").await;
    env.reset();
    let body = env.run("{ a { id } }", json!({})).await;
    assert_eq!(body["data"], json!({"a": null}), "{body}");
    assert_eq!(body["errors"][0]["path"], json!(["a"]), "{body}");
    env.shutdown().await;
}

/// `Item` is `OnlyA | Both` in `a` and `OnlyB | Both` in `b`, and each subgraph also has the
/// other's member type, outside the union: membership follows each subgraph's union
/// (`join__unionMember`), never the supergraph's, so neither is sent a type condition
/// that cannot apply there, and a member a subgraph cannot return stays absent.
#[tokio::test]
async fn union_membership_follows_each_subgraph() {
    let a = Fixture::new(
        &fed2(
            r#"
            type Query { fromA: [Item!]! pick: Item @shareable onlyB: OnlyB }
            union Item = OnlyA | Both
            type OnlyA { x: Int }
            type OnlyB { y: Int @shareable }
            type Both { z: Int @shareable }
            "#,
        ),
        json!({"Query": {
            "fromA": [{"__typename": "OnlyA", "x": 1}, {"__typename": "Both", "z": 3}],
            "pick": {"__typename": "OnlyA", "x": 1},
            "onlyB": {"y": 20}
        }}),
    );
    let b = Fixture::new(
        &fed2(
            r#"
            type Query { fromB: [Item!]! pick: Item @shareable }
            union Item = OnlyB | Both
            type OnlyB { y: Int @shareable }
            type Both { z: Int @shareable }
            "#,
        ),
        json!({"Query": {
            "fromB": [{"__typename": "OnlyB", "y": 2}, {"__typename": "Both", "z": 4}],
            "pick": {"__typename": "OnlyB", "y": 2}
        }}),
    );
    let env = Env::start(vec![("a", a), ("b", b)]).await;
    let members = "__typename ... on OnlyA { x } ... on OnlyB { y } ... on Both { z }";
    env.check_calls(
        &format!("{{ fromA {{ {members} }} fromB {{ {members} }} }}"),
        data(json!({
            "fromA": [{"__typename": "OnlyA", "x": 1}, {"__typename": "Both", "z": 3}],
            "fromB": [{"__typename": "OnlyB", "y": 2}, {"__typename": "Both", "z": 4}]
        })),
        &[("a", 1), ("b", 1)],
    )
    .await;
    // Only `b`'s members asked for: `a` is still asked for `fromA` (it has no such
    // member, so the items are empty objects), with no condition on `OnlyB`.
    env.check_calls(
        "{ fromA { ... on OnlyB { y } } onlyB { y } }",
        data(json!({"fromA": [{}, {}], "onlyB": {"y": 20}})),
        &[("a", 1), ("b", 0)],
    )
    .await;
    let sent = env.subgraph("a").received();
    let query = sent[0]["query"].as_str().unwrap_or("");
    assert!(!query.contains("on OnlyB"), "{query}");
    // A shared root field answered by one subgraph: the other's members never appear.
    env.reset();
    let body = env
        .run(&format!("{{ pick {{ {members} }} }}"), json!({}))
        .await;
    let pick = &body["data"]["pick"];
    assert!(
        *pick == json!({"__typename": "OnlyA", "x": 1})
            || *pick == json!({"__typename": "OnlyB", "y": 2}),
        "{body}"
    );
    assert_eq!(env.total_calls(), 1);
    env.shutdown().await;
}
