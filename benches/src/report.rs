//! The results: a plain-text table on stdout, and Markdown or JSON for `--out`.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value as Json, json};

use crate::wrk::{Mode, WrkResult};

/// How the runs were made.
#[derive(Debug, Clone)]
pub struct Setup {
    pub duration: Duration,
    pub warmup: Duration,
    pub connections: u32,
    pub threads: u32,
    /// Gateway on core 0, mocks and wrk on core 1.
    pub pinned: bool,
    pub cpus: usize,
    pub wrk_version: String,
    pub response_bytes: usize,
}

/// One mode's figures.
#[derive(Debug, Clone)]
pub struct Row {
    pub mode: Mode,
    pub wrk: WrkResult,
    pub gateway_peak_rss_bytes: u64,
    pub gateway_cpu_seconds: f64,
    pub mocks_cpu_seconds: f64,
    /// Busy fraction of each CPU over the window, whatever ran on it (`/proc/stat`).
    pub cpu_busy: Vec<f64>,
}

impl Row {
    pub fn rps(&self) -> f64 {
        self.wrk.requests as f64 / self.wrk.duration.as_secs_f64().max(1e-9)
    }

    pub fn errors(&self) -> u64 {
        self.wrk.non_2xx + self.wrk.bad_body + self.wrk.socket_errors
    }

    fn per_request_ms(&self, seconds: f64) -> f64 {
        seconds * 1e3 / self.wrk.requests.max(1) as f64
    }

    pub fn gateway_cpu_ms_per_request(&self) -> f64 {
        self.per_request_ms(self.gateway_cpu_seconds)
    }

    pub fn mocks_cpu_ms_per_request(&self) -> f64 {
        self.per_request_ms(self.mocks_cpu_seconds)
    }

    /// CPU time over wall time: 1.0 is one core busy all the time.
    fn cores(&self, seconds: f64) -> f64 {
        seconds / self.wrk.duration.as_secs_f64().max(1e-9)
    }
}

pub struct Report {
    pub setup: Setup,
    pub rows: Vec<Row>,
}

const HEADERS: [&str; 13] = [
    "mode",
    "requests",
    "RPS",
    "p50 ms",
    "p99 ms",
    "non-2xx",
    "bad body",
    "socket err",
    "gw peak RSS MiB",
    "gw CPU ms/req",
    "gw cores",
    "mocks CPU ms/req",
    "CPUs busy",
];

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

impl Report {
    fn cells(&self) -> Vec<[String; 13]> {
        self.rows
            .iter()
            .map(|r| {
                [
                    r.mode.name().to_string(),
                    r.wrk.requests.to_string(),
                    format!("{:.0}", r.rps()),
                    ms(r.wrk.p50),
                    ms(r.wrk.p99),
                    r.wrk.non_2xx.to_string(),
                    r.wrk.bad_body.to_string(),
                    r.wrk.socket_errors.to_string(),
                    format!("{:.1}", r.gateway_peak_rss_bytes as f64 / (1024.0 * 1024.0)),
                    format!("{:.3}", r.gateway_cpu_ms_per_request()),
                    format!("{:.2}", r.cores(r.gateway_cpu_seconds)),
                    format!("{:.3}", r.mocks_cpu_ms_per_request()),
                    r.cpu_busy
                        .iter()
                        .map(|b| format!("{b:.2}"))
                        .collect::<Vec<_>>()
                        .join("/"),
                ]
            })
            .collect()
    }

    pub fn setup_line(&self) -> String {
        let s = &self.setup;
        format!(
            "{} s measured after {} s warm-up per mode, {} connections, {} wrk thread(s), {}, \
             {} CPUs, {}, response {} bytes; fresh gateway per mode",
            s.duration.as_secs(),
            s.warmup.as_secs(),
            s.connections,
            s.threads,
            if s.pinned {
                "gateway pinned to core 0, mocks + wrk to core 1"
            } else {
                "not pinned"
            },
            s.cpus,
            s.wrk_version,
            s.response_bytes,
        )
    }

    /// Aligned plain-text table.
    pub fn table(&self) -> String {
        let cells = self.cells();
        let widths: Vec<usize> = (0..HEADERS.len())
            .map(|i| {
                cells
                    .iter()
                    .map(|row| row[i].len())
                    .chain([HEADERS[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        let mut line = |row: &[String]| {
            let parts: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (c, w))| {
                    if i == 0 {
                        format!("{c:<w$}")
                    } else {
                        format!("{c:>w$}")
                    }
                })
                .collect();
            let _ = writeln!(out, "{}", parts.join("  ").trim_end());
        };
        line(&HEADERS.map(String::from));
        line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
        for row in &cells {
            line(row);
        }
        out.push_str(&self.setup_line());
        out.push('\n');
        out
    }

    pub fn markdown(&self) -> String {
        let mut out = format!("| {} |\n|", HEADERS.join(" | "));
        for i in 0..HEADERS.len() {
            out.push_str(if i == 0 { " --- |" } else { " ---: |" });
        }
        out.push('\n');
        for row in self.cells() {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        let _ = writeln!(out, "\n{}", self.setup_line());
        out
    }

    pub fn json(&self) -> Json {
        let s = &self.setup;
        json!({
            "setup": {
                "duration_s": s.duration.as_secs(),
                "warmup_s": s.warmup.as_secs(),
                "connections": s.connections,
                "wrk_threads": s.threads,
                "pinned": s.pinned,
                "cpus": s.cpus,
                "wrk_version": s.wrk_version,
                "response_bytes": s.response_bytes,
            },
            "results": self.rows.iter().map(|r| json!({
                "mode": r.mode.name(),
                "requests": r.wrk.requests,
                "duration_s": r.wrk.duration.as_secs_f64(),
                "rps": r.rps(),
                "latency_ms": {
                    "p50": r.wrk.p50.as_secs_f64() * 1e3,
                    "p90": r.wrk.p90.as_secs_f64() * 1e3,
                    "p99": r.wrk.p99.as_secs_f64() * 1e3,
                    "max": r.wrk.max.as_secs_f64() * 1e3,
                },
                "errors": r.errors(),
                "non_2xx": r.wrk.non_2xx,
                "bad_body": r.wrk.bad_body,
                "socket_errors": r.wrk.socket_errors,
                "gateway_peak_rss_bytes": r.gateway_peak_rss_bytes,
                "gateway_cpu_seconds": r.gateway_cpu_seconds,
                "gateway_cpu_ms_per_request": r.gateway_cpu_ms_per_request(),
                "gateway_cores": r.cores(r.gateway_cpu_seconds),
                "mocks_cpu_seconds": r.mocks_cpu_seconds,
                "mocks_cpu_ms_per_request": r.mocks_cpu_ms_per_request(),
                "mocks_cores": r.cores(r.mocks_cpu_seconds),
                "cpu_busy": r.cpu_busy,
            })).collect::<Vec<_>>(),
        })
    }
}
