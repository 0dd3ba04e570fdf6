//! A reference router beside the gateway in the compatibility fixtures: with
//! `COMPAT_ORACLE=/path/to/hive_router` set (loadbench installs hive-router 0.2.19 into
//! `target/bench-peers/bin/hive_router`), every `check` of `tests/compat.rs` also asks
//! that router, against the same fixture subgraphs, and appends one line to
//! `COMPAT_ORACLE_OUT` (default `target/compat-oracle.tsv`): whether each answer matches
//! the expected one, whether the two answers agree, and the subgraph requests each made.
//! Informational, never asserted: without the variable nothing starts.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// A running reference router, killed on drop.
pub struct Oracle {
    child: Child,
    url: String,
    supergraph: PathBuf,
}

impl Oracle {
    /// Start the router named by `COMPAT_ORACLE` for `supergraph`, its subgraph URLs
    /// replaced by `urls`; `None` when the variable is unset.
    pub async fn start(supergraph: &str, urls: &[(&str, String)]) -> Option<Oracle> {
        let program = std::env::var_os("COMPAT_ORACLE")?;
        let sdl = with_urls(supergraph, urls);
        let port = crate::free_port();
        let file = std::env::temp_dir().join(format!(
            "compat-oracle-{}-{port}.graphql",
            std::process::id()
        ));
        std::fs::write(&file, sdl).expect("write the oracle's supergraph");
        let child = Command::new(&program)
            .current_dir(std::env::temp_dir())
            .env("SUPERGRAPH_FILE_PATH", &file)
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("LOG_LEVEL", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program:?}: {e}"));
        let oracle = Oracle {
            child,
            url: format!("http://127.0.0.1:{port}/graphql"),
            supergraph: file,
        };
        // Ready when it answers a query (bounded).
        let client = crate::client();
        for _ in 0..200 {
            if oracle
                .ask(&client, "{ __typename }", &json!({}))
                .await
                .is_some()
            {
                return Some(oracle);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the oracle at {} did not answer within 10 s", oracle.url);
    }

    /// The router's answer, or `None` when it does not answer with JSON.
    pub async fn ask(
        &self,
        client: &reqwest::Client,
        query: &str,
        variables: &Value,
    ) -> Option<Value> {
        let response = client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(json!({"query": query, "variables": variables}).to_string())
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.supergraph);
    }
}

/// One compared query, as a line of the report.
pub struct Comparison<'a> {
    pub query: &'a str,
    pub expected: &'a Value,
    pub ours: &'a Value,
    pub theirs: &'a Value,
    pub our_requests: usize,
    pub their_requests: usize,
}

impl Comparison<'_> {
    /// Append the line: test, ours == expected, theirs == expected, same data, same error
    /// paths, requests ours / theirs, the query, and the peer's answer when unexpected.
    pub fn record(&self) {
        let test = std::thread::current()
            .name()
            .unwrap_or("?")
            .trim_start_matches("compat::")
            .to_string();
        let paths = |v: &Value| -> Vec<Value> {
            v["errors"]
                .as_array()
                .map(|errors| errors.iter().map(|e| e["path"].clone()).collect())
                .unwrap_or_default()
        };
        let yes = |b: bool| if b { "yes" } else { "NO" };
        // Where the peer's answer is not the expected one, it goes on the line.
        let theirs = if self.theirs == self.expected {
            String::new()
        } else {
            self.theirs.to_string().chars().take(400).collect()
        };
        let line = format!(
            "{test}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{theirs}\n",
            yes(self.ours == self.expected),
            yes(self.theirs == self.expected),
            yes(self.ours["data"] == self.theirs["data"]),
            yes(paths(self.ours) == paths(self.theirs)),
            self.our_requests,
            self.their_requests,
            self.query.split_whitespace().collect::<Vec<_>>().join(" "),
        );
        let out = std::env::var_os("COMPAT_ORACLE_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::workspace_root().join("target/compat-oracle.tsv"));
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
        {
            let _ = file.write_all(line.as_bytes());
        }
    }
}

/// The supergraph with each `@join__graph(name: "x", url: "...")` pointing at `urls`.
fn with_urls(supergraph: &str, urls: &[(&str, String)]) -> String {
    let mut sdl = supergraph.to_string();
    for (name, url) in urls {
        let marker = format!("@join__graph(name: \"{name}\"");
        let url_at = |sdl: &str| {
            let at = sdl.find(&marker)?;
            Some(at + sdl[at..].find("url: \"")? + "url: \"".len())
        };
        if let Some(start) = url_at(&sdl)
            && let Some(len) = sdl[start..].find('"')
        {
            sdl.replace_range(start..start + len, url);
        }
    }
    sdl
}
