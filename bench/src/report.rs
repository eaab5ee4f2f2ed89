//! Result records (one JSON object per line in a results file) and the report: every figure of a
//! run as a ratio against the peers of the same run, as JSON and as markdown.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latency percentiles, in milliseconds (the unit is in the names, for readers of the JSON).
#[allow(clippy::struct_field_names)]
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    pub fn of(histogram: &Histogram<u64>) -> Latency {
        if histogram.is_empty() {
            return Latency::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Latency {
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p95_ms: ms(histogram.value_at_quantile(0.95)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
            mean_ms: histogram.mean() / 1000.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepResult {
    pub name: String,
    pub count: u64,
    pub errors: u64,
    pub mean_body_bytes: Option<f64>,
    pub latency: Latency,
}

/// One scenario against one server in one mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub target: String,
    pub scenario: String,
    pub mode: String,
    pub concurrency: usize,
    /// Intended operations per second (open loop only).
    pub rate: Option<f64>,
    pub duration_s: f64,
    pub elapsed_s: f64,
    /// Completed operations (an auth-code operation is a whole flow).
    pub ops: u64,
    /// Failed operations, plus open-loop operations that could not be started in time.
    pub errors: u64,
    pub dropped: u64,
    pub requests: u64,
    /// Completed operations per second.
    pub throughput: f64,
    pub requests_per_s: f64,
    /// Per operation: closed loop from its start, open loop from when it was due.
    pub latency: Latency,
    pub steps: Vec<StepResult>,
    pub cpu_s: Option<f64>,
    pub cpu_s_per_1k_ops: Option<f64>,
    pub cpu_s_per_1k_requests: Option<f64>,
    /// Command name of helper processes measured too (e.g. `postgres`), and their CPU.
    pub aux_comm: Option<String>,
    pub aux_cpu_s_per_1k_ops: Option<f64>,
    pub rss_peak_mib: Option<f64>,
    pub hwm_mib: Option<f64>,
    pub error_samples: Vec<String>,
}

/// A physical limit measured in the same run (bare HTTP is a scenario result instead).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LimitResult {
    pub name: String,
    pub ops_per_s: f64,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Scenario(Box<ScenarioResult>),
    Limit(LimitResult),
}

/// Appends one record as a JSON line.
pub fn append(path: &Path, record: &Record) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    let mut line = serde_json::to_vec(record)?;
    line.push(b'\n');
    file.write_all(&line)?;
    Ok(())
}

pub fn load(path: &Path) -> anyhow::Result<Vec<Record>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).with_context(|| format!("bad record: {line}")))
        .collect()
}

// Names run.sh gives the servers; the report compares against these.
pub const PEER: &str = "oidc-provider";
pub const BARE: &str = "bare-http";
pub const LATCHKEY_SQLITE: &str = "latchkey-sqlite";
pub const LATCHKEY_POSTGRES: &str = "latchkey-postgres";
pub const SQLITE_INSERT: &str = "sqlite-insert";
pub const POSTGRES_INSERT: &str = "postgres-insert";

const SCENARIOS: &[&str] = &[
    "client-credentials",
    "client-credentials-jwt",
    "introspect",
    "refresh",
    "auth-code",
    "revoke",
];
const TARGET_ORDER: &[&str] = &[LATCHKEY_SQLITE, LATCHKEY_POSTGRES, PEER, BARE];

pub struct Runs {
    scenarios: Vec<ScenarioResult>,
    limits: Vec<LimitResult>,
}

impl Runs {
    pub fn new(records: Vec<Record>) -> Runs {
        let mut scenarios = Vec::new();
        let mut limits = Vec::new();
        for record in records {
            match record {
                Record::Scenario(s) => scenarios.push(*s),
                Record::Limit(l) => limits.push(l),
            }
        }
        Runs { scenarios, limits }
    }

    /// The last result for a target, scenario and mode.
    pub fn get(&self, target: &str, scenario: &str, mode: &str) -> Option<&ScenarioResult> {
        self.scenarios
            .iter()
            .rev()
            .find(|s| s.target == target && s.scenario == scenario && s.mode == mode)
    }

    fn limit(&self, name: &str) -> Option<&LimitResult> {
        self.limits.iter().rev().find(|l| l.name == name)
    }

    fn targets(&self) -> Vec<String> {
        let mut names: Vec<String> = TARGET_ORDER
            .iter()
            .filter(|t| self.scenarios.iter().any(|s| s.target == **t))
            .map(|t| (*t).to_owned())
            .collect();
        for s in &self.scenarios {
            if !names.contains(&s.target) {
                names.push(s.target.clone());
            }
        }
        names
    }

    fn bare(&self) -> Option<&ScenarioResult> {
        self.get(BARE, "client-credentials", "closed")
    }

    fn db_limit(&self, target: &str) -> Option<&LimitResult> {
        if target.ends_with("sqlite") {
            self.limit(SQLITE_INSERT)
        } else if target.ends_with("postgres") {
            self.limit(POSTGRES_INSERT)
        } else {
            None
        }
    }

    /// The highest peak RSS a target showed in any scenario.
    fn peak_rss(&self, target: &str) -> Option<f64> {
        self.scenarios
            .iter()
            .filter(|s| s.target == target)
            .filter_map(|s| s.rss_peak_mib)
            .reduce(f64::max)
    }

    pub fn total_errors(&self) -> u64 {
        self.scenarios.iter().map(|s| s.errors).sum()
    }
}

/// One comparison in the report.
#[derive(Debug, Serialize)]
pub struct Ratio {
    pub target: String,
    pub scenario: String,
    pub mode: String,
    pub against: String,
    pub metric: String,
    pub value: f64,
}

/// One of issue 7's targets, and where this run stands against it.
#[derive(Debug, Serialize)]
pub struct Goal {
    pub name: String,
    pub measured: String,
    /// None when a figure it needs is missing from this run.
    pub met: Option<bool>,
}

fn ratios(runs: &Runs) -> Vec<Ratio> {
    let mut out = Vec::new();
    let bare = runs.bare();
    for s in &runs.scenarios {
        let mut push = |against: &str, metric: &str, ratio: f64| {
            if ratio.is_finite() {
                out.push(Ratio {
                    target: s.target.clone(),
                    scenario: s.scenario.clone(),
                    mode: s.mode.clone(),
                    against: against.to_owned(),
                    metric: metric.to_owned(),
                    value: ratio,
                });
            }
        };
        if s.target != PEER
            && let Some(peer) = runs.get(PEER, &s.scenario, &s.mode)
        {
            push(PEER, "throughput", s.throughput / peer.throughput);
            push(PEER, "p95", s.latency.p95_ms / peer.latency.p95_ms);
            if let (Some(a), Some(b)) = (s.cpu_s_per_1k_ops, peer.cpu_s_per_1k_ops) {
                push(PEER, "cpu_per_op", a / b);
            }
            if let (Some(a), Some(b)) = (s.rss_peak_mib, peer.rss_peak_mib) {
                push(PEER, "rss_peak", a / b);
            }
        }
        if s.target != BARE
            && s.mode == "closed"
            && let Some(bare) = bare
        {
            push(BARE, "throughput", s.throughput / bare.throughput);
        }
        if s.mode == "closed"
            && let Some(limit) = runs.db_limit(&s.target)
        {
            push(&limit.name, "throughput", s.throughput / limit.ops_per_s);
        }
    }
    out
}

fn goals(runs: &Runs) -> Vec<Goal> {
    let mut goals = Vec::new();
    let closed = |t: &str, s: &str| runs.get(t, s, "closed");

    // 1. client credentials, opaque, SQLite: ≥ 3× the peer's throughput at equal or lower P95.
    let goal = "client credentials, opaque, SQLite: ≥ 3× oidc-provider's throughput at ≤ its P95";
    goals.push(
        match (
            closed(LATCHKEY_SQLITE, "client-credentials"),
            closed(PEER, "client-credentials"),
        ) {
            (Some(l), Some(p)) => {
                let ratio = l.throughput / p.throughput;
                Goal {
                    name: goal.into(),
                    measured: format!(
                        "{ratio:.2}× (P95 {:.2} ms vs {:.2} ms)",
                        l.latency.p95_ms, p.latency.p95_ms
                    ),
                    met: Some(ratio >= 3.0 && l.latency.p95_ms <= p.latency.p95_ms),
                }
            }
            _ => missing(goal),
        },
    );

    // 2. client credentials, JWT: ≥ 50% of the bare HTTP server's throughput.
    for target in [LATCHKEY_SQLITE, LATCHKEY_POSTGRES] {
        let goal = format!("client credentials, JWT, {target}: ≥ 50% of bare HTTP throughput");
        goals.push(
            match (closed(target, "client-credentials-jwt"), runs.bare()) {
                (Some(l), Some(b)) => {
                    let ratio = l.throughput / b.throughput;
                    Goal {
                        name: goal,
                        measured: format!("{:.1}%", ratio * 100.0),
                        met: Some(ratio >= 0.5),
                    }
                }
                _ => missing(&goal),
            },
        );
    }

    // 3. introspection: ≥ 4× the peer.
    for target in [LATCHKEY_SQLITE, LATCHKEY_POSTGRES] {
        let goal = format!("introspection, {target}: ≥ 4× oidc-provider's throughput");
        goals.push(
            match (closed(target, "introspect"), closed(PEER, "introspect")) {
                (Some(l), Some(p)) => {
                    let ratio = l.throughput / p.throughput;
                    Goal {
                        name: goal,
                        measured: format!("{ratio:.2}×"),
                        met: Some(ratio >= 4.0),
                    }
                }
                _ => missing(&goal),
            },
        );
    }

    // 4. authorization code flow on PostgreSQL: every step's P95 < 5 ms at 50% of peak.
    let goal = "auth-code flow, PostgreSQL, open loop at 50% of peak: every step's P95 < 5 ms";
    goals.push(match runs.get(LATCHKEY_POSTGRES, "auth-code", "open") {
        Some(r) if !r.steps.is_empty() => {
            let worst = r
                .steps
                .iter()
                .max_by(|a, b| a.latency.p95_ms.total_cmp(&b.latency.p95_ms));
            let worst_p95 = worst.map_or(0.0, |s| s.latency.p95_ms);
            Goal {
                name: goal.into(),
                measured: format!(
                    "worst step {} P95 {worst_p95:.2} ms at {:.0} flows/s",
                    worst.map_or("-", |s| s.name.as_str()),
                    r.rate.unwrap_or(r.throughput)
                ),
                met: Some(worst_p95 < 5.0 && r.errors == 0),
            }
        }
        _ => missing(goal),
    });

    // 5. RSS under peak load ≤ 64 MB and ≤ half of the peer's.
    for target in [LATCHKEY_SQLITE, LATCHKEY_POSTGRES] {
        let goal = format!("peak RSS, {target}: ≤ 64 MiB and ≤ half of oidc-provider's");
        goals.push(match (runs.peak_rss(target), runs.peak_rss(PEER)) {
            (Some(l), Some(p)) => Goal {
                name: goal,
                measured: format!("{l:.1} MiB vs {p:.1} MiB ({:.2}×)", l / p),
                met: Some(l <= 64.0 && l <= p / 2.0),
            },
            (Some(l), None) => Goal {
                name: goal,
                measured: format!("{l:.1} MiB (no peer figure)"),
                met: None,
            },
            _ => missing(&goal),
        });
    }
    goals
}

fn missing(goal: &str) -> Goal {
    Goal {
        name: goal.to_owned(),
        measured: "n/a (not measured in this run)".to_owned(),
        met: None,
    }
}

fn num(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn ms(value: f64) -> String {
    if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn opt(value: Option<f64>, f: fn(f64) -> String) -> String {
    value.map_or_else(|| "n/a".to_owned(), f)
}

fn times(value: f64) -> String {
    format!("{value:.2}×")
}

fn percent(value: f64) -> String {
    format!("{:.1}%", value * 100.0)
}

#[derive(Serialize)]
struct JsonReport<'a> {
    generated_at: &'a str,
    machine: &'a str,
    settings: &'a str,
    notes: &'a [String],
    goals: Vec<Goal>,
    ratios: Vec<Ratio>,
    limits: &'a [LimitResult],
    results: &'a [ScenarioResult],
}

pub struct ReportMeta {
    pub generated_at: String,
    pub machine: String,
    pub settings: String,
    pub notes: Vec<String>,
}

pub fn write_json(runs: &Runs, meta: &ReportMeta) -> anyhow::Result<String> {
    let report = JsonReport {
        generated_at: &meta.generated_at,
        machine: &meta.machine,
        settings: &meta.settings,
        notes: &meta.notes,
        goals: goals(runs),
        ratios: ratios(runs),
        limits: &runs.limits,
        results: &runs.scenarios,
    };
    Ok(serde_json::to_string_pretty(&report)?)
}

pub fn write_markdown(runs: &Runs, meta: &ReportMeta) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Latchkey benchmark\n");
    let _ = writeln!(md, "- generated: {}", meta.generated_at);
    let _ = writeln!(md, "- machine: {}", meta.machine);
    let _ = writeln!(md, "- settings: {}", meta.settings);
    for note in &meta.notes {
        let _ = writeln!(md, "- {note}");
    }
    let _ = writeln!(
        md,
        "\nEvery ratio compares figures of this run only; absolute figures depend on the machine \
         and are never compared across runs.\n"
    );

    // Goals.
    let _ = writeln!(md, "## Targets (issue 7)\n");
    let _ = writeln!(md, "| target | this run | met |\n| --- | --- | --- |");
    for goal in goals(runs) {
        let met = match goal.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "n/a",
        };
        let _ = writeln!(md, "| {} | {} | {met} |", goal.name, goal.measured);
    }

    // Limits.
    let _ = writeln!(md, "\n## Physical limits\n");
    let _ = writeln!(
        md,
        "| limit | ops/s | P95 ms | detail |\n| --- | --- | --- | --- |"
    );
    if let Some(bare) = runs.bare() {
        let _ = writeln!(
            md,
            "| bare HTTP (hyper, no work, token-sized JSON) | {} | {} | closed loop, {} connections |",
            num(bare.throughput),
            ms(bare.latency.p95_ms),
            bare.concurrency
        );
    }
    for limit in &runs.limits {
        let _ = writeln!(
            md,
            "| {} | {} | | {} |",
            limit.name,
            num(limit.ops_per_s),
            limit.detail
        );
    }

    let bare = runs.bare();
    let targets = runs.targets();
    for scenario in SCENARIOS {
        for mode in ["closed", "open"] {
            let rows: Vec<&ScenarioResult> = targets
                .iter()
                .filter_map(|t| runs.get(t, scenario, mode))
                .collect();
            if rows.is_empty() {
                continue;
            }
            // Servers measured in this scenario (either mode), and the peer, shown as n/a if it
            // was in the run but does not support the scenario.
            let shown: Vec<&String> = targets
                .iter()
                .filter(|t| {
                    *t == PEER
                        || runs.get(t, scenario, "closed").is_some()
                        || runs.get(t, scenario, "open").is_some()
                })
                .collect();
            let peer = runs.get(PEER, scenario, mode);
            let title = if mode == "closed" {
                format!("{scenario}: closed loop, {} workers", rows[0].concurrency)
            } else {
                format!("{scenario}: open loop (fixed rate: 50% of each server's closed-loop peak)")
            };
            let _ = writeln!(md, "\n## {title}\n");
            let _ = writeln!(
                md,
                "| server | ops/s | × {PEER} | % bare HTTP | % DB insert | P50 ms | P95 ms | P99 ms | max ms \
                 | × {PEER} P95 | errors | CPU s/1k ops | DB CPU s/1k ops | peak RSS MiB |"
            );
            let _ = writeln!(md, "|{}", " --- |".repeat(14));
            for target in shown {
                let Some(r) = runs.get(target, scenario, mode) else {
                    let _ = writeln!(md, "| {target} | n/a |{}", " |".repeat(12));
                    continue;
                };
                let vs_peer = peer
                    .filter(|p| p.target != r.target)
                    .map(|p| times(r.throughput / p.throughput));
                let p95_vs_peer = peer
                    .filter(|p| p.target != r.target)
                    .map(|p| times(r.latency.p95_ms / p.latency.p95_ms));
                let vs_bare = bare
                    .filter(|b| mode == "closed" && b.target != r.target)
                    .map(|b| percent(r.throughput / b.throughput));
                let vs_db = runs
                    .db_limit(&r.target)
                    .filter(|_| mode == "closed")
                    .map(|l| percent(r.throughput / l.ops_per_s));
                let ops = match r.rate {
                    Some(rate) => format!("{} (rate {})", num(r.throughput), num(rate)),
                    None => num(r.throughput),
                };
                let _ = writeln!(
                    md,
                    "| {target} | {ops} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    vs_peer.unwrap_or_else(|| "-".into()),
                    vs_bare.unwrap_or_else(|| "-".into()),
                    vs_db.unwrap_or_else(|| "-".into()),
                    ms(r.latency.p50_ms),
                    ms(r.latency.p95_ms),
                    ms(r.latency.p99_ms),
                    ms(r.latency.max_ms),
                    p95_vs_peer.unwrap_or_else(|| "-".into()),
                    r.errors,
                    opt(r.cpu_s_per_1k_ops, num),
                    opt(r.aux_cpu_s_per_1k_ops, num),
                    opt(r.rss_peak_mib, num),
                );
            }
        }
    }

    // Per-step latency of the flows.
    let flows: Vec<&ScenarioResult> = targets
        .iter()
        .flat_map(|t| ["closed", "open"].map(|m| runs.get(t, "auth-code", m)))
        .flatten()
        .collect();
    if !flows.is_empty() {
        let _ = writeln!(md, "\n## auth-code: per step\n");
        let _ = writeln!(
            md,
            "| server | mode | step | P50 ms | P95 ms | P99 ms | max ms | errors |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- |"
        );
        for r in flows {
            for step in &r.steps {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    r.target,
                    r.mode,
                    step.name,
                    ms(step.latency.p50_ms),
                    ms(step.latency.p95_ms),
                    ms(step.latency.p99_ms),
                    ms(step.latency.max_ms),
                    step.errors
                );
            }
        }
    }

    // What went wrong, if anything.
    let failing: Vec<&ScenarioResult> = runs.scenarios.iter().filter(|s| s.errors > 0).collect();
    if !failing.is_empty() {
        let _ = writeln!(md, "\n## Errors\n");
        for r in failing {
            let _ = writeln!(
                md,
                "- {} {} {}: {} errors ({} dropped): {}",
                r.target,
                r.scenario,
                r.mode,
                r.errors,
                r.dropped,
                r.error_samples.join(" | ").replace('\n', " ")
            );
        }
    }
    md
}

/// One field of one result, for run.sh (e.g. the closed-loop peak that sets the open-loop rate).
pub fn query(runs: &Runs, target: &str, scenario: &str, mode: &str, field: &str) -> Option<f64> {
    let r = runs.get(target, scenario, mode)?;
    match field {
        "throughput" => Some(r.throughput),
        "errors" => Some(r.errors as f64),
        "p95_ms" => Some(r.latency.p95_ms),
        "token_body_bytes" => r
            .steps
            .iter()
            .find(|s| s.name == "token")
            .and_then(|s| s.mean_body_bytes),
        _ => None,
    }
}
