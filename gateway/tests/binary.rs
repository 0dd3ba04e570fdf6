//! The `gateway` binary as an operator runs it: it sets its allocator options by
//! executing itself again with them in the environment (an operator's own values win),
//! and on SIGTERM it drains: readiness turns false while requests are still served,
//! then the listener closes, requests in flight finish within the grace period, and
//! the process exits 0; `--supergraph-url` serves a registry's supergraph; `check`
//! exits non-zero with every problem; `schema` prints the schema of the unified
//! endpoint and of each example BFF, as checked in under `schemas/views/`; a 50 MiB
//! upload streams through with bounded memory.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SUPERGRAPH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/benchmark-supergraph.graphql"
);

/// Kills the child when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `gateway run` with `env` added and return its environment once it has
/// re-executed itself (bounded wait).
fn environment_after_start(env: &[(&str, &str)]) -> Vec<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    let child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["run", "--supergraph", SUPERGRAPH, "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .envs(env.iter().copied())
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the gateway binary starts");
    let running = Running(child);
    let path = format!("/proc/{}/environ", running.0.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let vars: Vec<String> = std::fs::read(&path)
            .unwrap_or_default()
            .split(|b| *b == 0)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        if vars.iter().any(|v| v == "GATEWAY_ALLOCATOR_TUNED=1") {
            return vars;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not re-execute itself with its allocator options: {vars:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_binary_runs_with_its_allocator_defaults() {
    let vars = environment_after_start(&[]);
    assert!(
        vars.iter().any(|v| v == "MIMALLOC_PURGE_DELAY=50"),
        "{vars:?}"
    );
    assert!(
        vars.iter().any(|v| v == "MIMALLOC_ARENA_EAGER_COMMIT=0"),
        "{vars:?}"
    );
}

#[test]
fn operator_allocator_settings_are_kept() {
    let vars = environment_after_start(&[("MIMALLOC_PURGE_DELAY", "7")]);
    assert!(
        vars.iter().any(|v| v == "MIMALLOC_PURGE_DELAY=7"),
        "{vars:?}"
    );
    assert!(
        !vars.iter().any(|v| v == "MIMALLOC_PURGE_DELAY=50"),
        "{vars:?}"
    );
    assert!(
        vars.iter().any(|v| v == "MIMALLOC_ARENA_EAGER_COMMIT=0"),
        "{vars:?}"
    );
}

/// A free loopback port (bound and released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("local address").port()
}

/// An upstream subgraph that answers `{ hello }` after `delay`.
async fn slow_upstream(delay: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move || async move {
            tokio::time::sleep(delay).await;
            (
                [("content-type", "application/json")],
                r#"{"data":{"hello":"hi"}}"#,
            )
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/")
}

/// `gateway run --config` for one subgraph at `upstream`, with `edge.shutdown` set;
/// returns once `/health/ready` answers 200.
async fn run_gateway(test: &str, upstream: &str, shutdown: &str) -> (Running, String) {
    let dir = std::env::temp_dir().join(format!("gateway-binary-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("a.graphql"), "type Query { hello: String }").expect("sdl");
    let port = free_port();
    let config = format!(
        "listen: 127.0.0.1:{port}\nsubgraphs:\n  - name: a\n    url: {upstream}\n    schema: {{ file: a.graphql }}\nupstream:\n  timeout: 60s\nlimits:\n  deadline: 60s\nedge:\n  shutdown: {shutdown}\n"
    );
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, config).expect("config");
    let path = path.display().to_string();
    spawn_ready(&["run", "--config", &path], &[], port).await
}

/// Spawn the binary with `args` and `env`, listening on `port`; returns once
/// `/health/ready` answers 200.
async fn spawn_ready(args: &[&str], env: &[(&str, &str)], port: u16) -> (Running, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the gateway binary starts");
    let running = Running(child);
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if status(&format!("{base}/health/ready")).await == Some(200) {
            return (running, base);
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The status of a GET, or `None` when nothing answered.
async fn status(url: &str) -> Option<u16> {
    reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// `{ hello }` on a new connection: the status and body, or `None` when the connection
/// failed or was dropped.
async fn hello(base: &str) -> Option<(u16, String)> {
    let response = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .header("content-type", "application/json")
        .body(r#"{"query":"{ hello }"}"#)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

/// [`hello`] in a task of its own.
fn in_background(base: &str) -> tokio::task::JoinHandle<Option<(u16, String)>> {
    let base = base.to_string();
    tokio::spawn(async move { hello(&base).await })
}

fn sigterm(child: &Child) {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
}

/// The exit status, waiting at most `limit`.
async fn exit_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not exit within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
}

#[tokio::test]
async fn sigterm_turns_readiness_false_then_drains_requests_in_flight_and_exits_0() {
    let upstream = slow_upstream(Duration::from_millis(1500)).await;
    let (mut running, base) = run_gateway(
        "drain",
        &upstream,
        "{ readiness_delay: 1s, grace_period: 20s }",
    )
    .await;
    let in_flight = in_background(&base);
    tokio::time::sleep(Duration::from_millis(200)).await;
    sigterm(&running.0);
    // Within the readiness delay: not ready, still alive, still serving.
    let mut ready = status(&format!("{base}/health/ready")).await;
    let deadline = Instant::now() + Duration::from_millis(800);
    while ready == Some(200) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(60)).await;
        ready = status(&format!("{base}/health/ready")).await;
    }
    assert_eq!(ready, Some(503), "readiness turns false first");
    assert_eq!(status(&format!("{base}/health/live")).await, Some(200));
    let during_delay = in_background(&base);
    // Both requests finish, although the listener closes while they run.
    let expected = Some((200, r#"{"data":{"hello":"hi"}}"#.to_string()));
    assert_eq!(in_flight.await.expect("task"), expected);
    assert_eq!(during_delay.await.expect("task"), expected);
    let exit = exit_within(&mut running.0, Duration::from_secs(15)).await;
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    // Nothing listens any more.
    assert_eq!(status(&format!("{base}/health/live")).await, None);
}

#[tokio::test]
async fn a_request_longer_than_the_grace_period_does_not_hold_the_exit_up() {
    let upstream = slow_upstream(Duration::from_secs(60)).await;
    let (mut running, base) = run_gateway(
        "grace",
        &upstream,
        "{ readiness_delay: 0s, grace_period: 1s }",
    )
    .await;
    let stuck = in_background(&base);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let signalled = Instant::now();
    sigterm(&running.0);
    let exit = exit_within(&mut running.0, Duration::from_secs(15)).await;
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    assert!(
        signalled.elapsed() >= Duration::from_secs(1),
        "the request in flight had its grace period"
    );
    assert_eq!(
        stuck.await.expect("task"),
        None,
        "dropped at the end of the grace period"
    );
}

#[tokio::test]
async fn supergraph_url_serves_the_registry_supergraph_with_the_key_from_the_environment() {
    let upstream = slow_upstream(Duration::ZERO).await;
    let supergraph =
        gateway::schema::compose::compose(&[gateway::schema::compose::SubgraphInput {
            name: "a".into(),
            url: upstream,
            sdl: "type Query { hello: String }".into(),
        }])
        .expect("composes");
    let keys = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = keys.clone();
    let app = axum::Router::new().route(
        "/artifacts/supergraph",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let (seen, supergraph) = (seen.clone(), supergraph.clone());
            async move {
                let key = headers.get("x-hive-cdn-key").and_then(|v| v.to_str().ok());
                seen.lock()
                    .expect("keys")
                    .push(key.unwrap_or("").to_string());
                supergraph
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let registry = format!(
        "http://{}/artifacts/supergraph",
        listener.local_addr().expect("addr")
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (_running, base) = spawn_ready(
        &["run", "--supergraph-url", &registry, "--listen", &listen],
        &[("GATEWAY_REGISTRY_KEY", "cdn-key-1")],
        port,
    )
    .await;
    let expected = Some((200, r#"{"data":{"hello":"hi"}}"#.to_string()));
    assert_eq!(hello(&base).await, expected);
    let keys = keys.lock().expect("keys").clone();
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k == "cdn-key-1"),
        "{keys:?}"
    );
}

#[test]
fn check_exits_non_zero_and_lists_each_problem() {
    let dir = std::env::temp_dir().join(format!("gateway-binary-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(
        dir.join("gateway.yaml"),
        "supergraph: missing.graphql\nbffs: [missing-bff.yaml]\n",
    )
    .expect("config");
    let run = |config: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_gateway"))
            .args(["check", "--config"])
            .arg(config)
            .env("RUST_LOG", "error")
            .output()
            .expect("the gateway binary runs")
    };
    let broken = run(&dir.join("gateway.yaml"));
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert_eq!(broken.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("missing-bff.yaml")
            && stderr.contains("missing.graphql")
            && stderr.contains("2 problem(s)"),
        "{stderr}"
    );
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/gateway.yaml");
    let ok = run(std::path::Path::new(example));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("ok: "));
}

/// `gateway schema` for the example config, unified and per BFF, against the snapshots in
/// `schemas/views/` (`UPDATE_SCHEMAS=1` rewrites them); a BFF that does not exist is an
/// error naming the ones that do.
#[test]
fn schema_prints_the_unified_and_each_bff_schema() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let schema = |bff: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gateway"));
        command
            .current_dir(&root)
            .args(["schema", "--config", "schemas/gateway.yaml"])
            .env("RUST_LOG", "error");
        if let Some(name) = bff {
            command.args(["--bff", name]);
        }
        command.output().expect("gateway schema runs")
    };
    let mut seen = Vec::new();
    for (view, bff) in [
        ("unified", None),
        ("web", Some("web")),
        ("mobile", Some("mobile")),
        ("partner", Some("partner")),
    ] {
        let output = schema(bff);
        assert!(
            output.status.success(),
            "{view}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let sdl = String::from_utf8(output.stdout).expect("UTF-8 SDL");
        let path = root.join(format!("schemas/views/{view}.graphql"));
        if std::env::var("UPDATE_SCHEMAS").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &sdl).expect("write the snapshot");
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == sdl,
            "schemas/views/{view}.graphql is out of date: run `UPDATE_SCHEMAS=1 cargo test -p gateway --test binary schema`; now:\n{sdl}"
        );
        seen.push(sdl);
    }
    // `web` shows the whole graph; `mobile` and `partner` hide parts of it.
    assert_eq!(seen[1], seen[0]);
    assert!(seen[2] != seen[0] && seen[3] != seen[0] && seen[2] != seen[3]);
    let unknown = schema(Some("kiosk"));
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("no BFF `kiosk`") && stderr.contains("mobile, partner, web"),
        "{stderr}"
    );
}

/// A subgraph that reads a multipart upload as a stream, slower than curl sends it
/// (60 ms per MiB), and answers its size and SHA-256, holding no more than a chunk.
async fn upload_upstream() -> String {
    use sha2::Digest;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(
            |headers: axum::http::HeaderMap, body: axum::body::Body| async move {
                let content_type = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let Ok(boundary) = multer::parse_boundary(content_type) else {
                    return r#"{"errors":[{"message":"not multipart"}]}"#.to_string();
                };
                let mut parts = multer::Multipart::new(body.into_data_stream(), boundary);
                let (mut size, mut digest) = (0u64, sha2::Sha256::new());
                while let Ok(Some(mut field)) = parts.next_field().await {
                    let is_file = field.file_name().is_some();
                    while let Ok(Some(chunk)) = field.chunk().await {
                        if is_file {
                            // Slower than the client: the gateway must hold back, not
                            // buffer what the client sends meanwhile.
                            if (size >> 20) != ((size + chunk.len() as u64) >> 20) {
                                tokio::time::sleep(Duration::from_millis(60)).await;
                            }
                            size += chunk.len() as u64;
                            digest.update(&chunk);
                        }
                    }
                }
                let hex: String = digest
                    .finalize()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                format!(r#"{{"data":{{"upload":{{"size":{size},"sha256":"{hex}"}}}}}}"#)
            },
        ),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/")
}

/// A `/proc/<pid>/status` figure in KiB (`VmRSS`, `VmHWM`).
fn memory_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim_start_matches(':')
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// A 50 MiB file sent with `curl -F` goes through to the subgraph whole (size and
/// SHA-256 as sent) while the gateway's peak memory grows by a fraction of it: files
/// are streamed, not buffered.
#[tokio::test]
async fn a_50_mib_upload_streams_through_with_bounded_memory() {
    use sha2::Digest;
    let upstream = upload_upstream().await;
    let dir = std::env::temp_dir().join(format!("gateway-binary-upload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(
        dir.join("files.graphql"),
        "scalar Upload\ntype Query { hello: String }\ntype File { size: Int, sha256: String }\ntype Mutation { upload(file: Upload!): File }\n",
    )
    .expect("sdl");
    let port = free_port();
    let config = format!(
        "listen: 127.0.0.1:{port}\nsubgraphs:\n  - name: files\n    url: {upstream}\n    schema: {{ file: files.graphql }}\nedge:\n  uploads: {{ enabled: true, max_total_bytes: 67108864 }}\n"
    );
    std::fs::write(dir.join("gateway.yaml"), config).expect("config");
    let size = 50 * 1024 * 1024;
    let bytes: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
    let sha: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let file = dir.join("big.bin");
    std::fs::write(&file, &bytes).expect("the file");
    drop(bytes);
    let config = dir.join("gateway.yaml").display().to_string();
    let (running, base) = spawn_ready(&["run", "--config", &config], &[], port).await;
    let pid = running.0.id();
    let before = memory_kib(pid, "VmRSS");
    let operations = r#"operations={"query":"mutation($f: Upload!) { upload(file: $f) { size sha256 } }","variables":{"f":null}}"#;
    let form = format!("0=@{}", file.display());
    let url = format!("{base}/graphql");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "120",
                "-H",
                "apollo-require-preflight: true",
            ])
            .args([
                "-F",
                operations,
                "-F",
                r#"map={"0":["variables.f"]}"#,
                "-F",
                &form,
                &url,
            ])
            .output()
    })
    .await
    .expect("curl task")
    .expect("curl runs (install it: apt-get install curl)");
    let body = String::from_utf8_lossy(&out.stdout).to_string();
    let peak = memory_kib(pid, "VmHWM");
    let _ = std::fs::remove_dir_all(&dir);
    let expected = format!(r#"{{"data":{{"upload":{{"size":{size},"sha256":"{sha}"}}}}}}"#);
    assert_eq!(body, expected, "{}", String::from_utf8_lossy(&out.stderr));
    let grown_mib = peak.saturating_sub(before) / 1024;
    eprintln!(
        "gateway RSS before the upload {} MiB, peak {} MiB",
        before / 1024,
        peak / 1024
    );
    assert!(
        before > 0 && grown_mib < 20,
        "the gateway's peak RSS grew by {grown_mib} MiB for a 50 MiB upload (from {} MiB)",
        before / 1024
    );
}
