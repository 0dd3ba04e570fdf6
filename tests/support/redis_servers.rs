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
            let client = redis::cluster::ClusterClientBuilder::new(self.urls.clone())
                .connection_timeout(PATIENCE)
                .response_timeout(PATIENCE)
                .build()
                .expect("urls");
            let mut conn = client
                .get_async_connection()
                .await
                .expect("cluster reachable");
            cmd.query_async(&mut conn).await.expect("redis command")
        } else {
            let mut conn = node_connection(&self.urls[0]).await;
            cmd.query_async(&mut conn).await.expect("redis command")
        }
    }
}

impl RedisBackend {
    /// Move the cluster slot of `key` to another master, the way a resharding does
    /// (`IMPORTING` / `MIGRATING`, `MIGRATE` of its keys, then `SETSLOT NODE` on every
    /// master), while clients keep using it. Returns the slot.
    pub async fn move_slot_of(&self, key: &str) -> u16 {
        assert!(self.cluster, "only a cluster has slots");
        let mut nodes = Vec::new();
        for url in &self.urls {
            nodes.push(node_connection(url).await);
        }
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(&mut nodes[0])
            .await
            .expect("KEYSLOT");
        let layout: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut nodes[0])
            .await
            .expect("CLUSTER NODES");
        // `<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <state> <slots>...`
        let owns = |line: &str| {
            line.split_whitespace().skip(8).any(|range| {
                let (from, to) = range.split_once('-').unwrap_or((range, range));
                matches!((from.parse::<u16>(), to.parse::<u16>()), (Ok(a), Ok(b)) if a <= slot && slot <= b)
            })
        };
        let field = |line: &str, i: usize| line.split_whitespace().nth(i).unwrap_or("").to_string();
        let source = layout.lines().find(|l| owns(l)).expect("an owner");
        let target = layout
            .lines()
            .find(|l| field(l, 2).contains("master") && !owns(l))
            .expect("another master");
        let (source_id, target_id) = (field(source, 0), field(target, 0));
        let address = |line: &str| field(line, 1).split('@').next().unwrap_or("").to_string();
        let index = |addr: String| {
            self.urls
                .iter()
                .position(|u| u.ends_with(&addr))
                .expect("a node of ours")
        };
        let (from, to) = (index(address(source)), index(address(target)));
        let setslot = |state: &str, id: &str| {
            let mut cmd = redis::cmd("CLUSTER");
            cmd.arg("SETSLOT").arg(slot).arg(state).arg(id);
            cmd
        };
        setslot("IMPORTING", &source_id)
            .query_async::<()>(&mut nodes[to])
            .await
            .expect("IMPORTING");
        setslot("MIGRATING", &target_id)
            .query_async::<()>(&mut nodes[from])
            .await
            .expect("MIGRATING");
        let (host, port) = address(target)
            .rsplit_once(':')
            .map(|(h, p)| (h.to_string(), p.to_string()))
            .expect("host:port");
        loop {
            let keys: Vec<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(100)
                .query_async(&mut nodes[from])
                .await
                .expect("GETKEYSINSLOT");
            if keys.is_empty() {
                break;
            }
            let mut migrate = redis::cmd("MIGRATE");
            migrate
                .arg(&host)
                .arg(&port)
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("KEYS")
                .arg(&keys);
            migrate
                .query_async::<()>(&mut nodes[from])
                .await
                .expect("MIGRATE");
        }
        for node in &mut nodes {
            setslot("NODE", &target_id)
                .query_async::<()>(node)
                .await
                .expect("SETSLOT NODE");
        }
        slot
    }
}

/// How long the tests' own Redis calls wait. The client's defaults (1 s to connect,
/// 500 ms per reply) are for production; on a loaded 2-core CI machine a connect to a
/// node that is busy with the whole suite can take longer.
const PATIENCE: Duration = Duration::from_secs(10);

async fn node_connection(url: &str) -> redis::aio::MultiplexedConnection {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(PATIENCE))
        .set_response_timeout(Some(PATIENCE));
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("node reachable")
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
        let port = crate::free_port();
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
