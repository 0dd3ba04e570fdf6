//! The Redis servers of the distributed-mode tests: the node and the cluster that
//! `.ci/run` starts (`REDIS_URL`, `REDIS_CLUSTER_URLS`), and servers a test starts for
//! itself (TLS, passwords) from the `redis-server` binary.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A Redis the distributed-mode tests run against: one node or a cluster.
#[derive(Debug, Clone)]
pub struct RedisBackend {
    pub name: &'static str,
    urls: Vec<String>,
    cluster: bool,
}

impl RedisBackend {
    /// A `redis:` section pointing at it, with the test's key prefix.
    pub fn yaml(&self, prefix: &str) -> String {
        let location = if self.cluster {
            let seeds: Vec<String> = self.urls.iter().map(|u| format!("\"{u}\"")).collect();
            format!("cluster: [{}]", seeds.join(", "))
        } else {
            format!("url: \"{}\"", self.urls[0])
        };
        format!("redis:\n  {location}\n  prefix: \"{prefix}\"\n  timeout: 2s\n")
    }

    /// Run one command (through a cluster client on the cluster, so it reaches the
    /// key's node).
    pub async fn exec<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        if self.cluster {
            let client = redis::cluster::ClusterClient::new(self.urls.clone()).expect("urls");
            let mut conn = client
                .get_async_connection()
                .await
                .expect("cluster reachable");
            cmd.query_async(&mut conn).await.expect("redis command")
        } else {
            let client = redis::Client::open(self.urls[0].as_str()).expect("url");
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .expect("redis reachable");
            cmd.query_async(&mut conn).await.expect("redis command")
        }
    }
}

/// The node and the cluster of the distributed-mode tests. Outside CI a missing variable
/// skips that backend with a note; in CI (`CI=true`, where `.ci/run` starts both) it
/// fails.
pub fn redis_backends() -> Vec<RedisBackend> {
    let mut backends = Vec::new();
    if let Some(url) = test_env("REDIS_URL") {
        backends.push(RedisBackend {
            name: "node",
            urls: vec![url],
            cluster: false,
        });
    }
    if let Some(urls) = test_env("REDIS_CLUSTER_URLS") {
        backends.push(RedisBackend {
            name: "cluster",
            urls: urls.split(',').map(|u| u.trim().to_string()).collect(),
            cluster: true,
        });
    }
    backends
}

fn test_env(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Some(value),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{name} is not set in CI: .ci/run starts Redis for these tests")
        }
        _ => {
            eprintln!(
                "note: {name} is not set, skipping this Redis backend (`.ci/run` starts a node and a cluster)"
            );
            None
        }
    }
}

/// A key prefix no other test (or earlier run) uses.
pub fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("test:{test}:{}:{nanos}:", std::process::id())
}

/// A `redis-server` this test started; killed when dropped.
pub struct RedisProcess {
    pub port: u16,
    child: Child,
}

impl RedisProcess {
    /// Start `redis-server` on a free loopback port with `args` (the port flags are
    /// added: `--port` for plain TCP, `--tls-port` when `tls` is set) and wait until it
    /// accepts connections. `None` when the binary is missing outside CI.
    pub fn start(dir: &Path, tls: bool, args: &[&str]) -> Option<RedisProcess> {
        let binary_missing = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err();
        if binary_missing {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("redis-server is not installed in CI: .ci/run installs it");
            }
            eprintln!("note: redis-server is not installed, skipping this test");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let port_text = port.to_string();
        let mut command = Command::new("redis-server");
        if tls {
            command.args(["--port", "0", "--tls-port", &port_text]);
        } else {
            command.args(["--port", &port_text]);
        }
        let child = command
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .args(args)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let process = RedisProcess { port, child };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(process);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
        panic!("redis-server did not listen on {port} within 5s:\n{log}");
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
