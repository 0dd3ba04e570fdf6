//! The results: a plain-text table on stdout, and Markdown or JSON for `--out`.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value as Json, json};

use crate::peers::Contender;
use crate::wrk::{Mode, WrkResult};

/// How the runs were made.
#[derive(Debug, Clone)]
pub struct Setup {
    pub duration: Duration,
    pub warmup: Duration,
    /// Every gateway ran once per mode per round, rounds one after the other.
    pub rounds: u32,
    pub connections: u32,
    pub threads: u32,
    /// Gateway on core 0, mocks and wrk on core 1.
    pub pinned: bool,
    pub cpus: usize,
    pub wrk_version: String,
    /// `name version` of each gateway run.
    pub gateways: Vec<String>,
}

/// One mode's figures.
#[derive(Debug, Clone)]
pub struct Row {
    pub gateway: Contender,
    pub mode: Mode,
    /// Which round (from 1).
    pub round: u32,
    pub wrk: WrkResult,
    /// The length of the gateway's answer, which every response was checked against.
    pub response_bytes: usize,
    pub gateway_peak_rss_bytes: u64,
    pub gateway_cpu_seconds: f64,
    pub mocks_cpu_seconds: f64,
    /// Requests the mock subgraphs and services received over the window (fewer than
    /// the plan's when concurrent identical fetches share one call, none from a cache).
    pub upstream_calls: u64,
    /// Requests they received for the one request checked before the load: the
    /// calls the query's plan makes.
    pub plan_calls: u64,
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

    pub fn upstream_calls_per_request(&self) -> f64 {
        self.upstream_calls as f64 / self.wrk.requests.max(1) as f64
    }

    /// The gateway's CPU time per request over the calls its plan makes, in µs:
    /// comparable across queries that fan out differently.
    pub fn gateway_cpu_us_per_call(&self) -> f64 {
        self.gateway_cpu_ms_per_request() * 1e3 / self.plan_calls as f64
    }

    pub fn mocks_cpu_ms_per_request(&self) -> f64 {
        self.per_request_ms(self.mocks_cpu_seconds)
    }

    /// The gateway's CPU time per request over the subgraphs' (the mocks process).
    pub fn overhead(&self) -> f64 {
        self.gateway_cpu_seconds / self.mocks_cpu_seconds.max(1e-9)
    }

    pub fn peak_rss_mib(&self) -> f64 {
        self.gateway_peak_rss_bytes as f64 / (1024.0 * 1024.0)
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

/// One gateway's figures in one mode: the median of each over its rounds (each figure
/// on its own, so they may come from different rounds).
struct Summary {
    gateway: Contender,
    mode: Mode,
    runs: usize,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_ms: f64,
    calls: f64,
    cpu_us_per_call: f64,
    rss_mib: f64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

const SUMMARY_HEADERS: [&str; 10] = [
    "median of rounds",
    "mode",
    "runs",
    "RPS",
    "p50 ms",
    "p99 ms",
    "gw CPU ms/req",
    "calls/req",
    "gw CPU µs/call",
    "gw peak RSS MiB",
];

/// Ours over one peer in one mode (RPS: higher is better for ours; the rest: lower).
struct Comparison {
    peer: Contender,
    mode: Mode,
    rps: f64,
    p99: f64,
    cpu: f64,
    cpu_per_call: f64,
    rss: f64,
}

const COMPARISON_HEADERS: [&str; 7] = [
    "ours / peer",
    "mode",
    "RPS",
    "p99",
    "CPU ms/req",
    "CPU/call",
    "peak RSS",
];

const HEADERS: [&str; 19] = [
    "gateway",
    "mode",
    "round",
    "requests",
    "RPS",
    "p50 ms",
    "p99 ms",
    "non-2xx",
    "bad body",
    "socket err",
    "gw peak RSS MiB",
    "gw CPU ms/req",
    "calls/req",
    "plan calls",
    "gw CPU µs/call",
    "gw cores",
    "mocks CPU ms/req",
    "gw/mocks CPU",
    "CPUs busy",
];

/// A figure per upstream call; `-` when the plan makes none.
fn per_call(us: f64) -> String {
    if us.is_finite() {
        format!("{us:.1}")
    } else {
        "-".into()
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

impl Report {
    fn cells(&self) -> Vec<[String; 19]> {
        self.rows
            .iter()
            .map(|r| {
                [
                    r.gateway.name().to_string(),
                    r.mode.name().to_string(),
                    r.round.to_string(),
                    r.wrk.requests.to_string(),
                    format!("{:.0}", r.rps()),
                    ms(r.wrk.p50),
                    ms(r.wrk.p99),
                    r.wrk.non_2xx.to_string(),
                    r.wrk.bad_body.to_string(),
                    r.wrk.socket_errors.to_string(),
                    format!("{:.1}", r.peak_rss_mib()),
                    format!("{:.3}", r.gateway_cpu_ms_per_request()),
                    format!("{:.2}", r.upstream_calls_per_request()),
                    r.plan_calls.to_string(),
                    per_call(r.gateway_cpu_us_per_call()),
                    format!("{:.2}", r.cores(r.gateway_cpu_seconds)),
                    format!("{:.3}", r.mocks_cpu_ms_per_request()),
                    // Answered without the subgraphs (a cache): no ratio to show.
                    if r.mocks_cpu_seconds < 0.01 {
                        "-".into()
                    } else {
                        format!("{:.0}x", r.overhead())
                    },
                    r.cpu_busy
                        .iter()
                        .map(|b| format!("{b:.2}"))
                        .collect::<Vec<_>>()
                        .join("/"),
                ]
            })
            .collect()
    }

    /// Per gateway and mode (in run order), the medians over the rounds.
    fn summaries(&self) -> Vec<Summary> {
        let mut keys: Vec<(Contender, Mode)> = Vec::new();
        for r in &self.rows {
            if !keys.contains(&(r.gateway, r.mode)) {
                keys.push((r.gateway, r.mode));
            }
        }
        keys.into_iter()
            .map(|(gateway, mode)| {
                let rows: Vec<&Row> = self
                    .rows
                    .iter()
                    .filter(|r| r.gateway == gateway && r.mode == mode)
                    .collect();
                let of = |f: &dyn Fn(&Row) -> f64| median(rows.iter().map(|r| f(r)).collect());
                Summary {
                    gateway,
                    mode,
                    runs: rows.len(),
                    rps: of(&Row::rps),
                    p50_ms: of(&|r| r.wrk.p50.as_secs_f64() * 1e3),
                    p99_ms: of(&|r| r.wrk.p99.as_secs_f64() * 1e3),
                    cpu_ms: of(&Row::gateway_cpu_ms_per_request),
                    calls: of(&Row::upstream_calls_per_request),
                    cpu_us_per_call: of(&Row::gateway_cpu_us_per_call),
                    rss_mib: of(&Row::peak_rss_mib),
                }
            })
            .collect()
    }

    fn summary_cells(&self) -> Vec<[String; 10]> {
        self.summaries()
            .iter()
            .map(|s| {
                [
                    s.gateway.name().to_string(),
                    s.mode.name().to_string(),
                    s.runs.to_string(),
                    format!("{:.0}", s.rps),
                    format!("{:.2}", s.p50_ms),
                    format!("{:.2}", s.p99_ms),
                    format!("{:.3}", s.cpu_ms),
                    format!("{:.2}", s.calls),
                    per_call(s.cpu_us_per_call),
                    format!("{:.1}", s.rss_mib),
                ]
            })
            .collect()
    }

    /// Ours over each peer, mode by mode, from the medians (the only run when there
    /// is one round).
    fn comparisons(&self) -> Vec<Comparison> {
        let summaries = self.summaries();
        let ours = |mode: Mode| {
            summaries
                .iter()
                .find(|s| s.gateway == Contender::Ours && s.mode == mode)
        };
        summaries
            .iter()
            .filter(|s| s.gateway != Contender::Ours)
            .filter_map(|peer| {
                let ours = ours(peer.mode)?;
                let ratio = |a: f64, b: f64| a / b.max(1e-9);
                Some(Comparison {
                    peer: peer.gateway,
                    mode: peer.mode,
                    rps: ratio(ours.rps, peer.rps),
                    p99: ratio(ours.p99_ms, peer.p99_ms),
                    cpu: ratio(ours.cpu_ms, peer.cpu_ms),
                    cpu_per_call: ratio(ours.cpu_us_per_call, peer.cpu_us_per_call),
                    rss: ratio(ours.rss_mib, peer.rss_mib),
                })
            })
            .collect()
    }

    fn comparison_cells(&self) -> Vec<[String; 7]> {
        self.comparisons()
            .iter()
            .map(|c| {
                [
                    c.peer.name().to_string(),
                    c.mode.name().to_string(),
                    format!("{:.2}x", c.rps),
                    format!("{:.2}x", c.p99),
                    format!("{:.2}x", c.cpu),
                    format!("{:.2}x", c.cpu_per_call),
                    format!("{:.2}x", c.rss),
                ]
            })
            .collect()
    }

    pub fn setup_line(&self) -> String {
        let s = &self.setup;
        format!(
            "{} s measured after {} s warm-up per mode, {} round(s), {} connections, \
             {} wrk thread(s), {}, {} CPUs, {}; gateways: {}; a fresh gateway process per run",
            s.duration.as_secs(),
            s.warmup.as_secs(),
            s.rounds,
            s.connections,
            s.threads,
            if s.pinned {
                "gateway pinned to core 0, mocks + wrk to core 1"
            } else {
                "not pinned"
            },
            s.cpus,
            s.wrk_version,
            s.gateways.join(", "),
        )
    }

    /// Aligned plain-text tables: the runs, then ours over each peer.
    pub fn table(&self) -> String {
        let mut out = text_table(&HEADERS, &self.cells());
        if self.setup.rounds > 1 {
            out.push('\n');
            out.push_str(&text_table(&SUMMARY_HEADERS, &self.summary_cells()));
        }
        let comparisons = self.comparison_cells();
        if !comparisons.is_empty() {
            out.push('\n');
            out.push_str(&text_table(&COMPARISON_HEADERS, &comparisons));
        }
        out.push_str(&self.setup_line());
        out.push('\n');
        out
    }

    pub fn markdown(&self) -> String {
        let mut out = markdown_table(&HEADERS, &self.cells());
        if self.setup.rounds > 1 {
            out.push('\n');
            out.push_str(&markdown_table(&SUMMARY_HEADERS, &self.summary_cells()));
        }
        let comparisons = self.comparison_cells();
        if !comparisons.is_empty() {
            out.push('\n');
            out.push_str(&markdown_table(&COMPARISON_HEADERS, &comparisons));
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
                "rounds": s.rounds,
                "connections": s.connections,
                "wrk_threads": s.threads,
                "pinned": s.pinned,
                "cpus": s.cpus,
                "wrk_version": s.wrk_version,
                "gateways": s.gateways,
            },
            "comparisons": self.comparisons().iter().map(|c| json!({
                "peer": c.peer.name(),
                "mode": c.mode.name(),
                "rps": c.rps,
                "p99": c.p99,
                "cpu_per_request": c.cpu,
                "cpu_per_upstream_call": c.cpu_per_call,
                "peak_rss": c.rss,
            })).collect::<Vec<_>>(),
            "medians": self.summaries().iter().map(|s| json!({
                "gateway": s.gateway.name(),
                "mode": s.mode.name(),
                "runs": s.runs,
                "rps": s.rps,
                "p50_ms": s.p50_ms,
                "p99_ms": s.p99_ms,
                "gateway_cpu_ms_per_request": s.cpu_ms,
                "upstream_calls_per_request": s.calls,
                "gateway_cpu_us_per_upstream_call": s.cpu_us_per_call,
                "gateway_peak_rss_mib": s.rss_mib,
            })).collect::<Vec<_>>(),
            "results": self.rows.iter().map(|r| json!({
                "gateway": r.gateway.name(),
                "mode": r.mode.name(),
                "round": r.round,
                "response_bytes": r.response_bytes,
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
                "upstream_calls": r.upstream_calls,
                "upstream_calls_per_request": r.upstream_calls_per_request(),
                "plan_calls": r.plan_calls,
                "gateway_cpu_us_per_upstream_call": r.gateway_cpu_us_per_call(),
                "gateway_cores": r.cores(r.gateway_cpu_seconds),
                "mocks_cpu_seconds": r.mocks_cpu_seconds,
                "mocks_cpu_ms_per_request": r.mocks_cpu_ms_per_request(),
                "mocks_cores": r.cores(r.mocks_cpu_seconds),
                "gateway_over_mocks_cpu": r.overhead(),
                "cpu_busy": r.cpu_busy,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Columns padded to their widest cell; the first left-aligned, the rest right-aligned.
fn text_table<const N: usize>(headers: &[&str; N], cells: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| {
            cells
                .iter()
                .map(|row| row[i].len())
                .chain([headers[i].len()])
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
    line(&headers.map(String::from));
    line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
    for row in cells {
        line(row);
    }
    out
}

fn markdown_table<const N: usize>(headers: &[&str; N], cells: &[[String; N]]) -> String {
    let mut out = format!("| {} |\n|", headers.join(" | "));
    for i in 0..N {
        out.push_str(if i < 2 { " --- |" } else { " ---: |" });
    }
    out.push('\n');
    for row in cells {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(gateway: Contender, mode: Mode, requests: u64, p99_ms: u64, cpu_s: f64) -> Row {
        Row {
            gateway,
            mode,
            round: 1,
            wrk: WrkResult {
                requests,
                duration: Duration::from_secs(10),
                non_2xx: 0,
                bad_body: 0,
                socket_errors: 0,
                p50: Duration::from_millis(p99_ms / 2),
                p90: Duration::from_millis(p99_ms),
                p99: Duration::from_millis(p99_ms),
                max: Duration::from_millis(p99_ms),
            },
            response_bytes: 100,
            gateway_peak_rss_bytes: 40 << 20,
            gateway_cpu_seconds: cpu_s,
            mocks_cpu_seconds: cpu_s / 10.0,
            upstream_calls: requests * 4,
            plan_calls: 4,
            cpu_busy: vec![1.0, 0.1],
        }
    }

    fn report(rows: Vec<Row>) -> Report {
        let rounds = rows.iter().map(|r| r.round).max().unwrap_or(1);
        Report {
            setup: Setup {
                duration: Duration::from_secs(10),
                warmup: Duration::from_secs(1),
                rounds,
                connections: 50,
                threads: 1,
                pinned: true,
                cpus: 2,
                wrk_version: "wrk 4".into(),
                gateways: vec!["ours 0.1.0".into(), "hive-router 0.2.19".into()],
            },
            rows,
        }
    }

    #[test]
    fn compares_ours_with_each_peer_in_the_same_mode() {
        let report = report(vec![
            row(Contender::Ours, Mode::Unique, 3000, 20, 1.0),
            row(Contender::HiveRouter, Mode::Unique, 2000, 40, 1.0),
            row(Contender::HiveRouter, Mode::Identical, 2000, 40, 1.0),
        ]);
        let comparisons = report.comparisons();
        // No row of ours in identical mode: nothing to compare there.
        assert_eq!(comparisons.len(), 1);
        let c = &comparisons[0];
        assert_eq!((c.peer, c.mode), (Contender::HiveRouter, Mode::Unique));
        assert!((c.rps - 1.5).abs() < 1e-9);
        assert!((c.p99 - 0.5).abs() < 1e-9);
        // Same CPU seconds over 1.5x the requests.
        assert!((c.cpu - 2.0 / 3.0).abs() < 1e-9);
        assert!((c.rss - 1.0).abs() < 1e-9);
        let text = report.table();
        assert!(text.contains("ours / peer"), "{text}");
        assert!(text.contains("1.50x"), "{text}");
        let markdown = report.markdown();
        assert!(
            markdown.contains("| hive-router | unique | 1.50x | 0.50x | 0.67x | 0.67x | 1.00x |")
        );
    }

    #[test]
    fn cpu_per_upstream_call_compares_queries_that_fan_out_differently() {
        let report = report(vec![
            // 4 calls per request: 1 s over 4000 calls, 250 µs each.
            row(Contender::Ours, Mode::Unique, 1000, 20, 1.0),
            // 7 calls per request: 1 s over 3500 calls, about 285.7 µs each.
            Row {
                upstream_calls: 3500,
                plan_calls: 7,
                ..row(Contender::OursDashboard, Mode::Unique, 500, 20, 1.0)
            },
            // A cache answered everything under load; its first answer made no call
            // either (as a query of constants would): no figure.
            Row {
                upstream_calls: 0,
                plan_calls: 0,
                ..row(Contender::OursBffCache, Mode::Unique, 9000, 5, 1.0)
            },
        ]);
        let summaries = report.summaries();
        assert!((summaries[0].cpu_us_per_call - 250.0).abs() < 1e-9);
        assert!((summaries[1].calls - 7.0).abs() < 1e-9);
        let comparisons = report.comparisons();
        assert!((comparisons[0].cpu_per_call - 250.0 / (1e6 / 3500.0)).abs() < 1e-9);
        let text = report.table();
        let cache = text
            .lines()
            .find(|l| l.starts_with("ours-bff-cache"))
            .unwrap_or_default();
        assert!(cache.contains(" 0.00 ") && cache.contains(" - "), "{text}");
        // Concurrent identical fetches shared calls: under load fewer than planned, and
        // the figure per call is still per planned call.
        let shared = Row {
            upstream_calls: 2000,
            ..row(Contender::Ours, Mode::Unique, 1000, 20, 1.0)
        };
        assert!((shared.upstream_calls_per_request() - 2.0).abs() < 1e-9);
        assert!((shared.gateway_cpu_us_per_call() - 250.0).abs() < 1e-9);
    }

    #[test]
    fn compares_medians_over_rounds() {
        let mut rows = Vec::new();
        // Ours: 300, 100, 200 RPS (median 200); the peer: 100, 400, 100 (median 100).
        for (round, (ours, peer)) in [(3000, 1000), (1000, 4000), (2000, 1000)]
            .into_iter()
            .enumerate()
        {
            let round = round as u32 + 1;
            rows.push(Row {
                round,
                ..row(Contender::Ours, Mode::Unique, ours, 20, 1.0)
            });
            rows.push(Row {
                round,
                ..row(Contender::HiveRouter, Mode::Unique, peer, 40, 1.0)
            });
        }
        let report = report(rows);
        let summaries = report.summaries();
        assert_eq!(summaries.len(), 2);
        assert_eq!(summaries[0].runs, 3);
        assert!((summaries[0].rps - 200.0).abs() < 1e-9);
        assert!((summaries[1].rps - 100.0).abs() < 1e-9);
        let comparisons = report.comparisons();
        assert!((comparisons[0].rps - 2.0).abs() < 1e-9);
        // CPU per request: 1 s over the median requests (2000 vs 1000).
        assert!((comparisons[0].cpu - 0.5).abs() < 1e-9);
        let text = report.table();
        assert!(text.contains("median of rounds"), "{text}");
        assert!(text.contains("3 round(s)"), "{text}");
        assert_eq!(median(vec![4.0, 1.0]), 2.5);
    }
}
