//! The `gateway` binary sets its allocator options by executing itself again with them
//! in the environment; an operator's own values win.

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
