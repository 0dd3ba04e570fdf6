//! Start-up failures are reported clearly and stop the gateway: composition errors name
//! the subgraph and the coordinate, bad config files say what to fix. And the deployment
//! files (`deploy/`): the Kubernetes manifests (rendered with `kubectl kustomize` when
//! kubectl is installed) and the Dockerfile agree with the config they ship, and a
//! gateway started from that config serves every probe they point at.

use std::path::PathBuf;

use gateway::config::Config;
use gateway::server::GatewaySpec;

/// A fresh folder under the system temp dir for this test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gateway-startup-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

async fn compose_error(files: &[(&str, &str)]) -> String {
    let dir = scratch(files[0].0);
    let mut config = String::from("subgraphs:\n");
    for (name, sdl) in files {
        std::fs::write(dir.join(format!("{name}.graphql")), sdl).expect("write sdl");
        config.push_str(&format!(
            "  - name: {name}\n    url: http://127.0.0.1:9/{name}\n    schema: {{ file: {name}.graphql }}\n"
        ));
    }
    std::fs::write(dir.join("gateway.yaml"), config).expect("write config");
    let config = Config::load(&dir.join("gateway.yaml")).expect("config is valid");
    match GatewaySpec::from_config(&config).await {
        Ok(_) => panic!("composition should fail"),
        Err(e) => e.to_string(),
    }
}

const FED2: &str = "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.3\", import: [\"@key\", \"@shareable\", \"@requires\", \"@external\"])\n";

#[tokio::test]
async fn conflicting_field_types_name_both_subgraphs() {
    let a = format!(
        "{FED2}type Query {{ a: Int }} type T @key(fields: \"id\") {{ id: ID! size: Int @shareable }}"
    );
    let b = format!(
        "{FED2}type Query {{ b: Int }} type T @key(fields: \"id\") {{ id: ID! size: String @shareable }}"
    );
    let message = compose_error(&[("alpha", &a), ("beta", &b)]).await;
    assert!(message.contains("composition failed"), "{message}");
    assert!(message.contains("T.size"), "{message}");
    assert!(
        message.contains("alpha") && message.contains("beta"),
        "{message}"
    );
}

#[tokio::test]
async fn non_shareable_field_in_two_subgraphs() {
    let a = format!(
        "{FED2}type Query {{ a: Int }} type T @key(fields: \"id\") {{ id: ID! name: String }}"
    );
    let b = format!(
        "{FED2}type Query {{ b: Int }} type T @key(fields: \"id\") {{ id: ID! name: String }}"
    );
    let message = compose_error(&[("one", &a), ("two", &b)]).await;
    assert!(message.contains("INVALID_FIELD_SHARING"), "{message}");
    assert!(message.contains("T.name"), "{message}");
}

#[tokio::test]
async fn requires_and_key_on_missing_fields() {
    let a =
        format!("{FED2}type Query {{ a: T }} type T @key(fields: \"id\") {{ id: ID! price: Int }}");
    let b = format!(
        "{FED2}type T @key(fields: \"id\") {{ id: ID! price: Int @external tax: Int @requires(fields: \"cost\") }}"
    );
    let message = compose_error(&[("shop", &a), ("tax", &b)]).await;
    assert!(message.contains("REQUIRES_INVALID_FIELDS"), "{message}");
    assert!(
        message.contains("[tax]") && message.contains("T.tax"),
        "{message}"
    );

    let c = format!("{FED2}type Query {{ c: U }} type U @key(fields: \"uuid\") {{ id: ID! }}");
    let message = compose_error(&[("keys", &c)]).await;
    assert!(
        message.contains("KEY_INVALID_FIELDS") && message.contains("[keys]"),
        "{message}"
    );
}

#[tokio::test]
async fn syntax_errors_point_at_the_line() {
    let message = compose_error(&[("broken", "type Query { a: Int ")]).await;
    assert!(message.contains("[broken]"), "{message}");
    assert!(message.contains("line 1"), "{message}");
}

#[tokio::test]
async fn a_missing_schema_file_is_named() {
    let dir = scratch("missing");
    std::fs::write(
        dir.join("gateway.yaml"),
        "subgraphs:\n  - name: a\n    url: http://127.0.0.1:9/a\n    schema: { file: nope.graphql }\n",
    )
    .expect("write");
    let config = Config::load(&dir.join("gateway.yaml")).expect("valid config");
    let message = match GatewaySpec::from_config(&config).await {
        Ok(_) => panic!("should fail"),
        Err(e) => e.to_string(),
    };
    assert!(message.contains("nope.graphql"), "{message}");
}

#[tokio::test]
async fn a_precomposed_supergraph_is_accepted_and_a_subgraph_sdl_is_not() {
    let root = e2e_tests::workspace_root();
    let spec = GatewaySpec::from_supergraph_file(
        &root.join("gateway/tests/fixtures/benchmark-supergraph.graphql"),
    )
    .expect("reads");
    assert!(spec.engine().is_ok());
    let spec = GatewaySpec::from_supergraph_file(&root.join("schemas/subgraphs/products.graphql"))
        .expect("reads");
    let message = spec
        .engine()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(message.contains("not a supergraph"), "{message}");
}

#[tokio::test]
async fn subgraph_schemas_can_be_fetched_from_running_subgraphs() {
    let mocks = subgraph_mocks::MockSubgraphs::start("127.0.0.1:0")
        .await
        .expect("mocks");
    let mut text = String::from("subgraphs:\n");
    for name in subgraph_mocks::SUBGRAPHS {
        text.push_str(&format!(
            "  - name: {name}\n    url: {}\n    schema: {{ introspect: true }}\n",
            mocks.url(name)
        ));
    }
    let config = Config::parse(&text, |_| None).expect("valid config");
    let mut spec = GatewaySpec::from_config(&config)
        .await
        .expect("composes from _service { sdl }");
    spec.listen = "127.0.0.1:0".into();
    let gateway = gateway::server::start(&spec).await.expect("starts");
    let body = e2e_tests::post_json(
        &e2e_tests::client(),
        &gateway.url(),
        &serde_json::json!({"query": "{ topProducts(first: 1) { name shippingEstimate reviews { author { name } } } }"}),
    )
    .await
    .body;
    assert!(body.get("errors").is_none(), "{body}");
    assert!(
        body["data"]["topProducts"][0]["reviews"][0]["author"]["name"].is_string(),
        "{body}"
    );
    gateway.shutdown().await;

    // A subgraph that is not there is named in the error.
    let config = Config::parse(
        "subgraphs:\n  - name: ghost\n    url: http://127.0.0.1:9/graphql\n    schema: { introspect: true }\n",
        |_| None,
    )
    .expect("valid config");
    let message = GatewaySpec::from_config(&config)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        message.contains("ghost") && message.contains("http://127.0.0.1:9/graphql"),
        "{message}"
    );
    mocks.shutdown().await;
}

/// A config of the benchmark supergraph with one BFF file.
async fn bff_error(bff_yaml: &str, operations: &[(&str, &str)]) -> String {
    let dir = scratch(&format!("bff-{}", bff_yaml.len()));
    let supergraph =
        e2e_tests::workspace_root().join("gateway/tests/fixtures/benchmark-supergraph.graphql");
    std::fs::create_dir_all(dir.join("ops")).expect("ops dir");
    for (name, text) in operations {
        std::fs::write(dir.join("ops").join(format!("{name}.graphql")), text).expect("op");
    }
    std::fs::write(dir.join("b.yaml"), bff_yaml).expect("bff");
    std::fs::write(
        dir.join("gateway.yaml"),
        format!("supergraph: {}\nbffs: [b.yaml]\n", supergraph.display()),
    )
    .expect("config");
    let config = Config::load(&dir.join("gateway.yaml")).expect("valid config");
    let result = match GatewaySpec::from_config(&config).await {
        Ok(spec) => spec.engine().map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    result
        .err()
        .unwrap_or_else(|| panic!("{bff_yaml} should be rejected"))
}

#[tokio::test]
async fn bff_config_errors_stop_start_up_clearly() {
    let message = bff_error("name: b\nview: { hide: [Shop] }\n", &[]).await;
    assert!(
        message.contains("BFF `b`") && message.contains("unknown type `Shop`"),
        "{message}"
    );
    let message = bff_error("name: b\nview: { root_fields: [Query.nope] }\n", &[]).await;
    assert!(
        message.contains("unknown root field `Query.nope`"),
        "{message}"
    );
    let message = bff_error(
        "name: b\nview: { hide: [User.birthday] }\npersisted: { dir: ops }\n",
        &[("bday", "query bday { me { birthday } }")],
    )
    .await;
    assert!(
        message.contains("persisted operation `bday`") && message.contains("birthday"),
        "{message}"
    );
    let message = bff_error("name: b c\n", &[]).await;
    assert!(message.contains("URL-safe"), "{message}");
    // An auth mode the gateway has no verifier for would ignore every credential.
    let message = bff_error("name: b\nauth: { mode: jwt }\n", &[]).await;
    assert!(
        message.contains("BFF `b`")
            && message.contains("`auth.mode: jwt`")
            && message.contains("neither `jwt` nor `introspection`"),
        "{message}"
    );
    let message = bff_error("name: b\nauth: { mode: api_key }\n", &[]).await;
    assert!(message.contains("no `api_keys`"), "{message}");
}

/// The documents of `deploy/base`: `kubectl kustomize` rendered when kubectl is there,
/// else the listed resources and a ConfigMap made from the generator's files.
fn kubernetes_documents(base: &std::path::Path) -> Vec<serde_json::Value> {
    let split = |text: &str| -> Vec<serde_json::Value> {
        text.split("\n---")
            .filter(|d| !d.trim().is_empty())
            .map(|d| serde_norway::from_str(d).expect("a YAML document"))
            .collect()
    };
    if let Ok(out) = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(base)
        .output()
    {
        assert!(
            out.status.success(),
            "kubectl kustomize failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return split(&String::from_utf8(out.stdout).expect("UTF-8"));
    }
    eprintln!("note: kubectl is not installed; checking deploy/base without rendering it");
    let read = |name: &str| std::fs::read_to_string(base.join(name)).expect("deploy file");
    let kustomization: serde_json::Value =
        serde_norway::from_str(&read("kustomization.yaml")).expect("kustomization");
    let mut docs = Vec::new();
    for resource in kustomization["resources"].as_array().expect("resources") {
        docs.extend(split(&read(resource.as_str().expect("a file"))));
    }
    for generator in kustomization["configMapGenerator"]
        .as_array()
        .expect("generator")
    {
        let mut data = serde_json::Map::new();
        for file in generator["files"].as_array().expect("files") {
            let file = file.as_str().expect("a file");
            data.insert(file.into(), read(file).into());
        }
        docs.push(serde_json::json!({
            "kind": "ConfigMap",
            "metadata": { "name": generator["name"] },
            "data": data,
        }));
    }
    docs
}

fn of_kind<'a>(docs: &'a [serde_json::Value], kind: &str) -> &'a serde_json::Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in deploy/base"))
}

/// A registry serving one supergraph, for a gateway started from the shipped config.
async fn registry_serving(supergraph: String) -> String {
    let app = axum::Router::new().route(
        "/supergraph",
        axum::routing::get(move || {
            let supergraph = supergraph.clone();
            async move { supergraph }
        }),
    );
    let (addr, _) = e2e_tests::serve_router(app).await;
    let url = format!("http://{addr}/supergraph");
    url
}

#[tokio::test]
async fn the_deployment_files_agree_with_their_config_and_probe_what_the_gateway_serves() {
    let root = e2e_tests::workspace_root();
    let base = root.join("deploy/base");
    let docs = kubernetes_documents(&base);
    let deployment = of_kind(&docs, "Deployment");
    let pod = &deployment["spec"]["template"];
    let container = &pod["spec"]["containers"][0];

    // The config the ConfigMap carries loads, with the environment the pod gets.
    let supergraph = e2e_tests::single_subgraph_supergraph(
        "http://127.0.0.1:9/a",
        "type Query { hello: String }",
    );
    let registry = registry_serving(supergraph).await;
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:1".into());
    let env: Vec<&str> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    let config_path = base.join("gateway.yaml");
    let config = Config::load_with(&config_path, |name| {
        assert!(
            env.contains(&name),
            "gateway.yaml reads ${{{name}}}, which the pod does not set"
        );
        match name {
            "SUPERGRAPH_URL" => Some(registry.clone()),
            "REDIS_URL" => Some(redis.clone()),
            _ => Some("test-value".into()),
        }
    })
    .expect("the shipped config loads");
    for secret in ["REDIS_URL", "REGISTRY_KEY"] {
        let entry = container["env"]
            .as_array()
            .and_then(|e| e.iter().find(|e| e["name"] == secret))
            .expect("set");
        assert!(
            entry["valueFrom"]["secretKeyRef"].is_object(),
            "{secret} comes from a Secret"
        );
    }

    // The pod runs the binary on that config, mounted from that ConfigMap.
    let configmap = of_kind(&docs, "ConfigMap");
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    let at = args
        .iter()
        .position(|a| *a == "--config")
        .expect("--config");
    let mounted = std::path::Path::new(args[at + 1]);
    let mount_dir = mounted.parent().expect("a folder").to_str().expect("UTF-8");
    let mount = container["volumeMounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["mountPath"] == mount_dir))
        .expect("the config folder is mounted");
    let volume = pod["spec"]["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == mount["name"]))
        .expect("its volume");
    assert_eq!(volume["configMap"]["name"], configmap["metadata"]["name"]);
    let data = configmap["data"].as_object().expect("data");
    assert!(data.contains_key(mounted.file_name().and_then(|f| f.to_str()).expect("name")));
    for bff in &config.bffs {
        let name = bff.file_name().and_then(|f| f.to_str()).expect("name");
        assert!(
            data.contains_key(name),
            "BFF file {name} is in the ConfigMap"
        );
    }
    let cache = config
        .registry
        .as_ref()
        .and_then(|r| r.cache_file.as_ref())
        .expect("cache");
    assert!(
        container["volumeMounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .any(|m| m["mountPath"]
                .as_str()
                .is_some_and(|p| cache.starts_with(p) && m["readOnly"] != true)),
        "the supergraph cache {} is on a writable volume",
        cache.display()
    );

    // Ports, drain and security.
    let listen_port: u64 = config
        .listen
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let http_port = container["ports"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "http"))
        .expect("an http port");
    assert_eq!(http_port["containerPort"], listen_port);
    assert_eq!(
        of_kind(&docs, "Service")["spec"]["ports"][0]["targetPort"],
        "http"
    );
    let drain = &config.edge.shutdown;
    let grace = pod["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("grace");
    assert!(
        grace > (drain.readiness_delay + drain.grace_period).as_secs(),
        "terminationGracePeriodSeconds {grace} leaves the drain no time"
    );
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
    assert_ne!(pod["spec"]["securityContext"]["runAsUser"], 0);
    assert!(container["resources"]["requests"]["cpu"].is_string());
    let labels = &pod["metadata"]["labels"];
    for kind in ["PodDisruptionBudget"] {
        let selector = &of_kind(&docs, kind)["spec"]["selector"]["matchLabels"];
        for (k, v) in selector.as_object().expect("a selector") {
            assert_eq!(&labels[k], v, "{kind} selects the gateway's pods");
        }
    }
    let hpa = of_kind(&docs, "HorizontalPodAutoscaler");
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["name"],
        deployment["metadata"]["name"]
    );

    // The image runs the same command as a non-root user on the same port.
    let dockerfile = std::fs::read_to_string(root.join("deploy/Dockerfile")).expect("Dockerfile");
    let last_stage = &dockerfile[dockerfile.rfind("\nFROM ").expect("stages")..];
    let line = |word: &str| {
        last_stage
            .lines()
            .find_map(|l| l.strip_prefix(word))
            .unwrap_or_else(|| panic!("no {word} in the runtime stage"))
            .trim()
            .to_string()
    };
    let user = line("USER ");
    assert!(
        !user.starts_with('0') && !user.starts_with("root"),
        "USER {user}"
    );
    assert_eq!(line("EXPOSE "), listen_port.to_string());
    let cmd: Vec<String> = serde_json::from_str(&line("CMD ")).expect("CMD as JSON");
    assert_eq!(cmd, args.iter().map(|a| a.to_string()).collect::<Vec<_>>());
    let entrypoint: Vec<String> = serde_json::from_str(&line("ENTRYPOINT ")).expect("JSON");
    assert!(
        line("COPY ").ends_with(&entrypoint[0]),
        "the binary is where ENTRYPOINT runs it"
    );

    // A gateway from that config serves every probe the pod has.
    let section = config.registry.clone().expect("registry");
    let registry =
        std::sync::Arc::new(gateway::server::registry::Registry::new(section).expect("registry"));
    registry.load().await.expect("the supergraph is fetched");
    let mut spec = GatewaySpec::from_config_with(&config, registry.current().as_deref())
        .await
        .expect("spec");
    spec.listen = "127.0.0.1:0".into();
    let gw = gateway::server::start(&spec).await.expect("starts");
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["port"], "http", "{probe}");
        let path = get["path"].as_str().expect("path");
        let reply =
            e2e_tests::send(e2e_tests::client().get(format!("http://{}{path}", gw.addr))).await;
        assert_eq!(reply.status, 200, "{probe} {path}: {:?}", reply.body);
    }
    gw.shutdown().await;
}

/// Write `files` (name, text) into a fresh folder; the path of its `gateway.yaml`.
fn check_fixture(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = scratch(&format!("check-{name}"));
    for (file, text) in files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("folders");
        std::fs::write(path, text).expect("write");
    }
    dir.join("gateway.yaml")
}

#[tokio::test]
async fn check_lists_every_problem_with_its_file_and_position() {
    // The example config passes.
    let example = e2e_tests::workspace_root().join("schemas/gateway.yaml");
    let checked = gateway::server::check::check(&example)
        .await
        .expect("the example is valid");
    assert_eq!((checked.subgraphs, checked.bffs), (6, 3));

    // Broken YAML: one problem, with its line.
    let yaml = check_fixture(
        "yaml",
        &[("gateway.yaml", "listen: 127.0.0.1:0\nsubgraphs: [ {\n")],
    );
    let problems = gateway::server::check::check(&yaml)
        .await
        .expect_err("broken");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("gateway.yaml") && problems[0].contains("line"),
        "{problems:?}"
    );

    // Independent problems are all reported: a BFF file with an unknown field, a BFF file
    // that is missing, TLS files that are missing, an SDL that does not parse.
    let config = check_fixture(
        "many",
        &[
            (
                "gateway.yaml",
                "subgraphs:\n  - name: a\n    url: http://127.0.0.1:9/a\n    schema: { file: a.graphql }\nbffs: [bad.yaml, missing.yaml]\ntls: { cert_file: no-cert.pem, key_file: no-key.pem }\n",
            ),
            ("a.graphql", "type Query { a: Int "),
            ("bad.yaml", "name: bad\nlimitz: {}\n"),
        ],
    );
    let problems = gateway::server::check::check(&config)
        .await
        .expect_err("broken");
    let all = problems.join("\n");
    assert_eq!(problems.len(), 4, "{all}");
    for expected in [
        "bad.yaml",
        "unknown field `limitz`",
        "line 2",
        "missing.yaml",
        "no-cert.pem",
        "[a] INVALID_GRAPHQL: line 1, column 21",
    ] {
        assert!(all.contains(expected), "{expected:?} in:\n{all}");
    }

    // Later stages: a persisted document that does not validate against the schema, and
    // a gRPC source whose proto is missing.
    let sdl = "type Query { hello: String }";
    let persisted = check_fixture(
        "persisted",
        &[
            (
                "gateway.yaml",
                "subgraphs:\n  - name: a\n    url: http://127.0.0.1:9/a\n    schema: { file: a.graphql }\nbffs: [app.yaml]\n",
            ),
            ("a.graphql", sdl),
            ("app.yaml", "name: app\npersisted: { dir: ops }\n"),
            ("ops/greeting.graphql", "query Greeting { goodbye }"),
        ],
    );
    let problems = gateway::server::check::check(&persisted)
        .await
        .expect_err("broken");
    assert!(
        problems.len() == 1 && problems[0].contains("greeting") && problems[0].contains("goodbye"),
        "{problems:?}"
    );
    let grpc = check_fixture(
        "grpc",
        &[
            (
                "gateway.yaml",
                "subgraphs:\n  - name: n\n    kind: grpc\n    url: http://127.0.0.1:9\n    schema: { file: n.graphql }\n    protos: [missing.proto]\n",
            ),
            ("n.graphql", sdl),
        ],
    );
    let problems = gateway::server::check::check(&grpc)
        .await
        .expect_err("broken");
    assert!(
        problems.len() == 1 && problems[0].contains("missing.proto"),
        "{problems:?}"
    );
}

/// Validate `files` against `schema` with Python's `jsonschema` (PyPI); the errors per
/// file. `None` (with a note) outside CI when Python or the package is missing.
fn schema_errors(schema: &str, files: &[PathBuf]) -> Option<Vec<(String, Vec<String>)>> {
    let schema = e2e_tests::workspace_root().join("schemas").join(schema);
    let mut args = vec![schema.as_os_str()];
    args.extend(files.iter().map(|f| f.as_os_str()));
    let stdout = e2e_tests::python_check("check_config_schemas.py", "jsonschema and yaml", &args)?;
    let text = String::from_utf8(stdout).expect("UTF-8");
    Some(
        text.lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                let errors = v["errors"]
                    .as_array()
                    .map(|e| {
                        e.iter()
                            .filter_map(|e| e.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                (v["file"].as_str().unwrap_or("").to_string(), errors)
            })
            .collect(),
    )
}

#[test]
fn the_example_configs_validate_against_the_checked_in_json_schemas() {
    let root = e2e_tests::workspace_root();
    let gateways = [
        root.join("schemas/gateway.yaml"),
        root.join("deploy/base/gateway.yaml"),
    ];
    let bffs: Vec<PathBuf> = [
        "bffs/web.yaml",
        "bffs/mobile.yaml",
        "bffs/partner.yaml",
        "deploy/base/web.yaml",
    ]
    .iter()
    .map(|f| root.join(f))
    .collect();
    for (schema, files) in [
        ("gateway.schema.json", gateways.to_vec()),
        ("bff.schema.json", bffs),
    ] {
        // Editors find the schema through the file's first line.
        for file in &files {
            let text = std::fs::read_to_string(file).expect("example");
            let first = text.lines().next().unwrap_or("");
            assert!(
                first.starts_with("# yaml-language-server: $schema=") && first.ends_with(schema),
                "{}: {first}",
                file.display()
            );
            let target = file
                .parent()
                .expect("folder")
                .join(first.rsplit('=').next().unwrap_or(""));
            assert!(
                target.exists(),
                "{} points at {}",
                file.display(),
                target.display()
            );
        }
        let Some(results) = schema_errors(schema, &files) else {
            return;
        };
        assert_eq!(results.len(), files.len());
        for (file, errors) in results {
            assert!(errors.is_empty(), "{file}: {errors:?}");
        }
    }
    // And the schema refuses what the loader refuses: an unknown field, a duration without
    // a unit, an unknown enum value.
    let dir = scratch("schema-bad");
    let bad = dir.join("gateway.yaml");
    std::fs::write(
        &bad,
        "supergraph: s.graphql\nlimitz: {}\nupstream: { timeout: 5 }\nrate_limit: { algorithm: leaky }\n",
    )
    .expect("write");
    let Some(results) = schema_errors("gateway.schema.json", &[bad]) else {
        return;
    };
    let errors = results[0].1.join("\n");
    assert_eq!(results[0].1.len(), 3, "{errors}");
    for expected in ["limitz", "upstream/timeout", "rate_limit/algorithm"] {
        assert!(errors.contains(expected), "{expected}: {errors}");
    }
}
