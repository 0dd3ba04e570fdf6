//! Third-party JavaScript clients (`tests/node`: the npm `graphql-ws` and `graphql-sse`
//! packages) run by Node.js as child processes; their JSON lines come back as values.
//! `.ci/run` installs Node.js and the packages when they are missing.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::workspace_root;

/// How long a test waits for one line from the client.
const WAIT: Duration = Duration::from_secs(20);

pub struct NodeClient {
    child: Child,
    lines: mpsc::UnboundedReceiver<Value>,
}

impl NodeClient {
    /// Run `tests/node/<script>` with the plan as its argument.
    pub fn start(script: &str, plan: &Value) -> Self {
        let dir = workspace_root().join("tests/node");
        assert!(
            dir.join("node_modules").is_dir(),
            "the npm packages are missing: run `npm ci --prefix tests/node` (.ci/run does)"
        );
        let mut child = Command::new("node")
            .arg(dir.join(script))
            .arg(plan.to_string())
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run node (install Node.js; .ci/run does)");
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        NodeClient { child, lines }
    }

    /// The next line the client printed.
    pub async fn line(&mut self) -> Value {
        tokio::time::timeout(WAIT, self.lines.recv())
            .await
            .expect("the client printed a line in time")
            .expect("the client is still running")
    }

    /// Wait for the client to exit; its exit code.
    pub async fn finish(mut self) -> Option<i32> {
        let started = std::time::Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if started.elapsed() > WAIT {
                let _ = self.child.kill();
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for NodeClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
