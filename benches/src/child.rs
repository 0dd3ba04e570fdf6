//! Child processes that are always stopped (SIGTERM, then SIGKILL after a grace period),
//! and what `/proc` says about them.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

/// How long a child gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// A long-running child (gateway, mocks) with its output in a log file. Dropping it stops it.
pub struct Service {
    name: &'static str,
    child: Child,
    pid: u32,
    log: PathBuf,
}

impl Service {
    /// Start `program args...` in `cwd` with `env` added, pinned to `cpu` with `taskset`
    /// when given, output to `log`.
    pub fn spawn(
        name: &'static str,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        cwd: &Path,
        cpu: Option<usize>,
        log: PathBuf,
    ) -> anyhow::Result<Self> {
        let mut command = pinned(program, cpu);
        command
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(cwd);
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let pid = child.id().context("the child has no pid")?;
        Ok(Service {
            name,
            child,
            pid,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Fail (with the end of its log) if the process has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); end of its log {}:\n{}",
                self.name,
                self.log.display(),
                self.log_tail()
            );
        }
        Ok(())
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// SIGTERM, and a second one shortly after (our gateway drains on the first, for its
    /// readiness delay of 5 s, and exits on the second); wait up to [`GRACE`], then
    /// SIGKILL. Blocking, bounded in time.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let start = Instant::now();
        let deadline = start + GRACE;
        let mut second = false;
        self.signal_term();
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
                return;
            }
            if !second && start.elapsed() > Duration::from_millis(200) {
                second = true;
                self.signal_term();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "loadbench: {} did not stop within {GRACE:?}; killing it",
            self.name
        );
        let _ = self.child.start_kill();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill(1)`: the workspace forbids `unsafe`, so no direct libc call.
    fn signal_term(&self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `program`, or `taskset -c CPU program` when pinned (taskset execs it: same pid).
pub fn pinned(program: &Path, cpu: Option<usize>) -> Command {
    match cpu {
        Some(cpu) => {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(cpu.to_string()).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// Whether `program` can be started (it may exit with an error: that is fine).
pub fn available(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// User + system CPU time of a process (all its threads), from `/proc/PID/stat`.
pub fn cpu_seconds(pid: u32, clock_ticks: f64) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let after_comm = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("unexpected {path}"))?;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    let ticks = |i: usize| -> anyhow::Result<f64> {
        let value = fields
            .get(i)
            .with_context(|| format!("{path} is too short"))?;
        Ok(value.parse::<u64>()? as f64)
    };
    Ok((ticks(11)? + ticks(12)?) / clock_ticks)
}

/// Peak resident set size in bytes (`VmHWM` in `/proc/PID/status`).
pub fn peak_rss_bytes(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmHWM:").map(|kib| kib * 1024)
}

/// Resident set size now, in bytes (`VmRSS`).
#[allow(dead_code)] // used by streambench, not by loadbench
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmRSS:").map(|kib| kib * 1024)
}

fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .with_context(|| format!("no {field} in {path}"))?;
    line.trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("bad {field} line in {path}: {line:?}"))
}

/// Clock ticks per second for `/proc/PID/stat` (`getconf CLK_TCK`, 100 on Linux by default).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// Busy and total jiffies of each CPU (`cpuN` lines of `/proc/stat`), in CPU order.
pub fn cpu_jiffies() -> anyhow::Result<Vec<(u64, u64)>> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|line| {
            let values = line
                .split_whitespace()
                .skip(1)
                .map(str::parse::<u64>)
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("bad /proc/stat line {line:?}"))?;
            // user nice system idle iowait irq softirq steal ...; guest time is in user.
            let total: u64 = values.iter().take(8).sum();
            let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
            Ok((total - idle, total))
        })
        .collect()
}

/// The busy fraction of each CPU between two [`cpu_jiffies`] readings.
pub fn busy_fractions(before: &[(u64, u64)], after: &[(u64, u64)]) -> Vec<f64> {
    before
        .iter()
        .zip(after)
        .map(|((busy0, total0), (busy1, total1))| {
            let total = total1.saturating_sub(*total0);
            if total == 0 {
                0.0
            } else {
                busy1.saturating_sub(*busy0) as f64 / total as f64
            }
        })
        .collect()
}

/// How long a child may take to answer after it starts.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A port that was free a moment ago (the child binds it right after).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Poll the GraphQL endpoint `url` with `{ __typename }` until it answers 2xx, the
/// service dies, or [`STARTUP_TIMEOUT`] passes. (Every gateway and each mock subgraph
/// answers it; not every one has the same health route.)
pub async fn wait_until_ready(
    service: &mut Service,
    http: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
    get: bool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        service.ensure_running()?;
        let mut request = if get {
            http.get(url)
        } else {
            http.post(url)
                .header("content-type", "application/json")
                .body(r#"{"query":"{ __typename }"}"#)
        };
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let answer = request.send().await;
        if answer.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        if start.elapsed() > STARTUP_TIMEOUT {
            bail!(
                "not ready after {STARTUP_TIMEOUT:?}; end of its log:\n{}",
                service.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where the `subgraph-mocks` process listens: the four GraphQL subgraphs on one port,
/// the REST `orders` service and the gRPC `notifications` service on their own.
#[derive(Debug, Clone, Copy)]
pub struct Mocks {
    pub graphql: u16,
    pub rest: u16,
    pub grpc: u16,
}

/// How to start one gateway for one run (its program is `peers::Contender::program`).
pub struct Launch {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Where it serves the query (`/graphql` unless a BFF's).
    pub path: String,
    /// Sent with every request (credentials).
    pub headers: Vec<(String, String)>,
    /// A persisted GET endpoint: requests have no body.
    pub get: bool,
}

impl Launch {
    /// Our gateway on `config`, serving at `path`.
    pub fn ours(config: &Path, listen: String, path: String) -> Self {
        Launch {
            args: vec![
                "run".into(),
                "--config".into(),
                config.display().to_string(),
                "--listen".into(),
                listen,
            ],
            // Warnings only, like every peer: no access log line per request.
            env: vec![("RUST_LOG".into(), "warn".into())],
            path,
            headers: Vec::new(),
            get: false,
        }
    }
}

/// Install a Debian package (the harness's tools: wrk, protoc).
pub fn apt_install(package: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("sh")
        .args(["-c", "apt-get update -qq && apt-get install -y -qq \"$0\""])
        .arg(package)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "installing {package} failed ({status})");
    Ok(())
}
