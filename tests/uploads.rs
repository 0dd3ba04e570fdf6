//! File uploads (the GraphQL multipart request spec), sent by curl (`curl -F`) to the
//! gateway, which streams them to a fixture subgraph that reads them with `multer`
//! and answers with what arrived (name, type, size, SHA-256).

use std::path::{Path, PathBuf};

use e2e_tests::fixture_subgraph::{Fixture, FixtureSubgraph};
use e2e_tests::gateway_with_config;
use gateway::schema::compose::{SubgraphInput, compose};
use gateway::server::RunningGateway;
use serde_json::{Value, json};
use sha2::Digest;

const FILES_SDL: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
scalar Upload
type File @key(fields: "sha256") {
  sha256: ID!
  name: String
  type: String
  size: Int
}
type Query { files: [File] }
type Mutation {
  upload(file: Upload!, note: String): File
  uploadMany(files: [Upload!]!): [File]
  uploadInput(input: Attachment!): File
}
input Attachment { title: String, file: Upload }
"#;

/// A second subgraph: an entity field after the upload, and a mutation that takes files
/// too (files go to one subgraph request per operation).
const SCAN_SDL: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
scalar Upload
type File @key(fields: "sha256") {
  sha256: ID!
  verdict: String
}
type Query { scans: Int }
type Mutation { scan(file: Upload): String }
"#;

struct Env {
    files: FixtureSubgraph,
    scan: FixtureSubgraph,
    gateway: RunningGateway,
    dir: PathBuf,
}

impl Env {
    async fn start(edge: &str) -> Env {
        let file = |_: &serde_json::Map<String, Value>, args: &serde_json::Map<String, Value>| {
            Ok(args.get("file").cloned().unwrap_or(Value::Null))
        };
        let files = Fixture::new(FILES_SDL, json!({ "Query": { "files": [] } }))
            .resolver("Mutation", "upload", file)
            .resolver("Mutation", "uploadMany", |_, args| {
                Ok(args.get("files").cloned().unwrap_or(Value::Null))
            })
            .resolver("Mutation", "uploadInput", |_, args| {
                Ok(args["input"].get("file").cloned().unwrap_or(Value::Null))
            })
            .start()
            .await;
        let scan = Fixture::new(SCAN_SDL, json!({ "Query": { "scans": 0 } }))
            .resolver("File", "verdict", |parent, _| {
                Ok(json!(format!(
                    "clean:{}",
                    parent["sha256"].as_str().unwrap_or("?").len()
                )))
            })
            .resolver("Mutation", "scan", |_, _| Ok(json!("scanned")))
            .start()
            .await;
        let inputs = [("files", FILES_SDL), ("scan", SCAN_SDL)].map(|(name, sdl)| SubgraphInput {
            name: name.into(),
            url: format!("http://127.0.0.1:9/{name}"),
            sdl: sdl.into(),
        });
        let supergraph = compose(&inputs).unwrap_or_else(|e| panic!("composition failed:\n{e}"));
        let urls = [("files", files.url.clone()), ("scan", scan.url.clone())];
        let gateway = gateway_with_config(&supergraph, &urls, edge).await;
        let dir = std::env::temp_dir().join(format!(
            "gateway-uploads-{}-{}",
            std::process::id(),
            e2e_tests::free_port()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Env {
            files,
            scan,
            gateway,
            dir,
        }
    }

    /// A file of `size` bytes (a repeating pattern) and its SHA-256.
    fn file(&self, name: &str, size: usize) -> (PathBuf, String) {
        let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let path = self.dir.join(name);
        std::fs::write(&path, &bytes).expect("write the file");
        (path, hex(&sha2::Sha256::digest(&bytes)))
    }

    /// `curl -F` each form part to the gateway; (status, body).
    async fn curl(&self, headers: &[&str], parts: &[String]) -> (u16, Value) {
        curl(&self.gateway.url(), headers, parts).await
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs curl in a blocking task; `-F` parts as given (`name=value`, `name=@path`).
async fn curl(url: &str, headers: &[&str], parts: &[String]) -> (u16, Value) {
    let mut args: Vec<String> = vec![
        "-sS".into(),
        "--max-time".into(),
        "30".into(),
        "-o".into(),
        "-".into(),
        "-w".into(),
        "\n%{http_code}".into(),
        "-H".into(),
        "accept: application/graphql-response+json".into(),
    ];
    for header in headers {
        args.push("-H".into());
        args.push(header.to_string());
    }
    for part in parts {
        args.push("-F".into());
        args.push(part.clone());
    }
    args.push(url.to_string());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl").args(&args).output()
    })
    .await
    .expect("curl task")
    .expect("curl runs (install it: apt-get install curl)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status = status.trim().parse().unwrap_or_else(|_| {
        panic!(
            "curl gave no status: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn operations(query: &str, variables: Value) -> String {
    format!(
        "operations={}",
        json!({ "query": query, "variables": variables })
    )
}

fn file_part(name: &str, path: &Path, content_type: &str) -> String {
    format!("{name}=@{};type={content_type}", path.display())
}

const PREFLIGHT: &str = "apollo-require-preflight: true";

fn uploads_on(max_files: usize, max_total_bytes: usize) -> String {
    format!(
        "edge:\n  uploads: {{ enabled: true, max_files: {max_files}, max_total_bytes: {max_total_bytes} }}\n"
    )
}

fn first_error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
}

#[tokio::test]
async fn a_file_goes_to_the_subgraph_that_owns_the_mutation_and_the_plan_goes_on() {
    let env = Env::start(&uploads_on(3, 1024 * 1024)).await;
    let (path, sha) = env.file("report.txt", 200_000);
    let query = "mutation Up($f: Upload!) { upload(file: $f, note: \"q3\") { name type size sha256 verdict } }";
    let (status, body) = env
        .curl(
            &[PREFLIGHT],
            &[
                operations(query, json!({ "f": null })),
                r#"map={"0":["variables.f"]}"#.into(),
                file_part("0", &path, "text/plain"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "data": { "upload": {
            "name": "report.txt", "type": "text/plain", "size": 200_000, "sha256": sha,
            "verdict": "clean:64",
        } } })
    );
    let received = env.files.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let sent = &received[0];
    assert_eq!(sent["map"], json!({ "0": ["variables.f"] }));
    assert_eq!(sent["preflight"], json!("true"));
    assert_eq!(sent["variables"]["f"]["sha256"], json!(sha), "{sent}");
    assert!(
        sent["query"]
            .as_str()
            .unwrap_or("")
            .contains("upload(file:$f,note:"),
        "{sent}"
    );
    // The entity field came from the other subgraph, as a JSON request.
    assert_eq!(env.scan.request_count(), 1);
}

#[tokio::test]
async fn lists_of_files_and_files_inside_input_objects() {
    let env = Env::start(&uploads_on(3, 1024 * 1024)).await;
    let (a, sha_a) = env.file("a.bin", 10_000);
    let (b, sha_b) = env.file("b.bin", 1);
    let (status, body) = env
        .curl(
            &["x-apollo-operation-name: Many"],
            &[
                operations(
                    "mutation Many($fs: [Upload!]!) { uploadMany(files: $fs) { name size sha256 } }",
                    json!({ "fs": [null, null] }),
                ),
                r#"map={"x":["variables.fs.1"],"y":["variables.fs.0"]}"#.into(),
                file_part("x", &b, "application/octet-stream"),
                file_part("y", &a, "application/octet-stream"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["uploadMany"],
        json!([
            { "name": "a.bin", "size": 10_000, "sha256": sha_a },
            { "name": "b.bin", "size": 1, "sha256": sha_b },
        ])
    );
    let (status, body) = env
        .curl(
            &[PREFLIGHT],
            &[
                operations(
                    "mutation($in: Attachment!) { uploadInput(input: $in) { name size } }",
                    json!({ "in": { "title": "t", "file": null } }),
                ),
                r#"map={"0":["variables.in.file"]}"#.into(),
                file_part("0", &a, "image/png"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["uploadInput"],
        json!({ "name": "a.bin", "size": 10_000 })
    );
}

#[tokio::test]
async fn multipart_requests_need_a_preflight_header_and_uploads_turned_on() {
    let env = Env::start(&uploads_on(3, 1024 * 1024)).await;
    let (path, _) = env.file("x.txt", 10);
    let parts = [
        operations(
            "mutation($f: Upload!) { upload(file: $f) { size } }",
            json!({ "f": null }),
        ),
        r#"map={"0":["variables.f"]}"#.to_string(),
        file_part("0", &path, "text/plain"),
    ];
    // A form another origin's page could post: refused before anything is read.
    let (status, body) = env.curl(&[], &parts).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(first_error_code(&body), "BAD_UPLOAD");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("CSRF")
    );
    assert_eq!(env.files.request_count(), 0);

    let off = Env::start("").await;
    let (status, body) = off.curl(&[PREFLIGHT], &parts).await;
    assert_eq!(status, 415, "{body}");
    assert_eq!(off.files.request_count(), 0);
}

#[tokio::test]
async fn bad_multipart_requests_are_refused_with_the_reason() {
    let env = Env::start(&uploads_on(2, 100_000)).await;
    let (small, _) = env.file("small.txt", 100);
    let (big, _) = env.file("big.bin", 300_000);
    let single = || {
        operations(
            "mutation($f: Upload!) { upload(file: $f) { size } }",
            json!({ "f": null }),
        )
    };
    let many = |n: usize| {
        operations(
            "mutation($fs: [Upload!]!) { uploadMany(files: $fs) { size } }",
            json!({ "fs": vec![Value::Null; n] }),
        )
    };
    let cases: Vec<(&str, Vec<String>, u16, &str)> = vec![
        (
            "a map entry without its file",
            vec![
                many(2),
                r#"map={"0":["variables.fs.0"],"1":["variables.fs.1"]}"#.into(),
                file_part("0", &small, "text/plain"),
            ],
            400,
            "`map` names the file `1`",
        ),
        (
            "a file map does not name",
            vec![
                single(),
                r#"map={"0":["variables.f"]}"#.into(),
                file_part("0", &small, "text/plain"),
                file_part("extra", &small, "text/plain"),
            ],
            400,
            "a file `extra` that `map` does not name",
        ),
        (
            "a path to a variable that is not null",
            vec![
                operations(
                    "mutation($f: Upload!, $n: String) { upload(file: $f, note: $n) { size } }",
                    json!({ "f": null, "n": "x" }),
                ),
                r#"map={"0":["variables.n"]}"#.into(),
                file_part("0", &small, "text/plain"),
            ],
            400,
            "not a `null` in `variables`",
        ),
        (
            "a path outside the variables",
            vec![
                single(),
                r#"map={"0":["query"]}"#.into(),
                file_part("0", &small, "text/plain"),
            ],
            400,
            "paths look like",
        ),
        (
            "operations that are not JSON",
            vec!["operations={nope".into(), r#"map={}"#.into()],
            400,
            "`operations` is not valid JSON",
        ),
        (
            "map before operations",
            vec![r#"map={"0":["variables.f"]}"#.into(), single()],
            400,
            "no `operations` part",
        ),
        (
            "more files than allowed",
            vec![
                many(3),
                r#"map={"0":["variables.fs.0"],"1":["variables.fs.1"],"2":["variables.fs.2"]}"#
                    .into(),
                file_part("0", &small, "text/plain"),
                file_part("1", &small, "text/plain"),
                file_part("2", &small, "text/plain"),
            ],
            413,
            "at most 2 are allowed",
        ),
        (
            "a file over the size limit",
            vec![
                single(),
                r#"map={"0":["variables.f"]}"#.into(),
                file_part("0", &big, "application/octet-stream"),
            ],
            413,
            "larger than 100000 bytes",
        ),
    ];
    for (case, parts, status, message) in cases {
        let (got, body) = env.curl(&[PREFLIGHT], &parts).await;
        assert_eq!(got, status, "{case}: {body}");
        let text = body["errors"][0]["message"].as_str().unwrap_or("");
        assert!(text.contains(message), "{case}: {body}");
        assert_eq!(body.get("data"), None, "{case}: {body}");
    }
    // Invalid GraphQL in a well-formed multipart request is a GraphQL request error.
    let (status, body) = env
        .curl(
            &[PREFLIGHT],
            &[operations("mutation { nope }", json!({})), "map={}".into()],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(first_error_code(&body), "GRAPHQL_VALIDATION_FAILED");
    // Still serving, and nothing half-sent confused the subgraph into an answer.
    let (status, body) = env
        .curl(
            &[PREFLIGHT],
            &[
                single(),
                r#"map={"0":["variables.f"]}"#.into(),
                file_part("0", &small, "text/plain"),
            ],
        )
        .await;
    assert_eq!(
        (status, &body["data"]["upload"]["size"]),
        (200, &json!(100)),
        "{body}"
    );
}

#[tokio::test]
async fn files_go_to_one_subgraph_request_per_operation() {
    let env = Env::start(&uploads_on(3, 1024 * 1024)).await;
    let (path, _) = env.file("x.txt", 10);
    let (status, body) = env
        .curl(
            &[PREFLIGHT],
            &[
                operations(
                    "mutation($f: Upload!) { upload(file: $f) { size } scan(file: $f) }",
                    json!({ "f": null }),
                ),
                r#"map={"0":["variables.f"]}"#.into(),
                file_part("0", &path, "text/plain"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!({ "upload": { "size": 10 }, "scan": null })
    );
    assert_eq!(first_error_code(&body), "UPLOAD_ALREADY_SENT", "{body}");
    assert_eq!(body["errors"][0]["path"], json!(["scan"]));
    assert_eq!(env.scan.request_count(), 0);
}
