//! Closed-loop and open-loop execution, and the server's cost read from `/proc` meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;

use crate::procstat;
use crate::recorder::Recorder;
use crate::report::{Latency, ScenarioResult, StepResult};
use crate::scenario::{Outcome, Shared, Worker};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// N workers, each sending its next request as soon as the previous one is answered.
    Closed,
    /// A fixed arrival rate; latency counts from the moment each operation is due (queueing for a
    /// free connection included).
    Open,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Closed => "closed",
            Mode::Open => "open",
        }
    }
}

pub struct Plan {
    pub mode: Mode,
    pub concurrency: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Operations per second (open loop).
    pub rate: f64,
}

/// The server process (and optionally its database's processes) whose cost is measured.
pub struct Probe {
    pub pid: Option<u32>,
    pub aux_comm: Option<String>,
}

/// Open-loop requests still waiting this long after the end are dropped (counted as errors).
fn grace(duration: Duration) -> Duration {
    duration.min(Duration::from_secs(5))
}

pub async fn run(
    target_name: &str,
    shared: &Arc<Shared>,
    plan: &Plan,
    probe: &Probe,
) -> anyhow::Result<ScenarioResult> {
    let steps = shared.steps();
    let mut workers = Vec::with_capacity(plan.concurrency);
    for _ in 0..plan.concurrency.max(1) {
        let mut worker = Worker::new(shared.clone());
        worker.connect().await.context("connect")?;
        workers.push(worker);
    }
    let begin = Instant::now() + Duration::from_millis(20);
    let start = begin + plan.warmup;
    let end = start + plan.duration;

    let queue = match plan.mode {
        Mode::Closed => None,
        Mode::Open => Some(schedule(begin, end, plan.rate)),
    };
    let mut tasks = Vec::with_capacity(workers.len());
    for mut worker in workers {
        let queue = queue.clone();
        let drop_after = end + grace(plan.duration);
        tasks.push(tokio::spawn(async move {
            let mut rec = Recorder::new(steps.len());
            match queue {
                None => closed_loop(&mut worker, &mut rec, start, end).await,
                Some(queue) => open_loop(&mut worker, &mut rec, &queue, start, drop_after).await,
            }
            rec
        }));
    }

    tokio::time::sleep_until(start).await;
    let cpu_before = probe.pid.and_then(procstat::cpu_ticks);
    let aux_before = probe.aux_comm.as_deref().map(procstat::cpu_ticks_by_comm);
    let sampling = Arc::new(AtomicBool::new(true));
    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampler = probe.pid.map(|pid| {
        let sampling = sampling.clone();
        let peak_rss = peak_rss.clone();
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                if let Some((rss, _)) = procstat::memory_kib(pid) {
                    peak_rss.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });

    let mut total = Recorder::new(steps.len());
    for task in tasks {
        total.merge(&task.await.context("worker task")?);
    }
    let elapsed = start.elapsed().as_secs_f64().max(1e-9);
    let cpu_after = probe.pid.and_then(procstat::cpu_ticks);
    let aux_after = probe.aux_comm.as_deref().map(procstat::cpu_ticks_by_comm);
    sampling.store(false, Ordering::Relaxed);
    if let Some(sampler) = sampler {
        let _ = sampler.await;
    }
    let memory = probe.pid.and_then(procstat::memory_kib);
    if let Some((rss, _)) = memory {
        peak_rss.fetch_max(rss, Ordering::Relaxed);
    }

    let ops = total.ok;
    let per_1k = |seconds: f64, count: u64| (count > 0).then(|| seconds * 1000.0 / count as f64);
    let cpu_seconds = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) => {
            Some(after.saturating_sub(before) as f64 / procstat::clock_ticks() as f64)
        }
        _ => None,
    };
    let aux_seconds = match (&aux_before, &aux_after) {
        (Some(before), Some(after)) => Some(procstat::cpu_seconds_between(before, after)),
        _ => None,
    };
    let completed = total.ok + total.errors;
    Ok(ScenarioResult {
        target: target_name.to_owned(),
        scenario: shared.scenario.name().to_owned(),
        mode: plan.mode.name().to_owned(),
        concurrency: plan.concurrency,
        rate: (plan.mode == Mode::Open).then_some(plan.rate),
        duration_s: plan.duration.as_secs_f64(),
        elapsed_s: elapsed,
        ops,
        errors: total.errors + total.dropped,
        dropped: total.dropped,
        requests: total.requests,
        throughput: ops as f64 / elapsed,
        requests_per_s: total.requests as f64 / elapsed,
        latency: Latency::of(&total.ops),
        steps: steps
            .iter()
            .zip(&total.steps)
            .map(|(name, stats)| StepResult {
                name: (*name).to_owned(),
                count: stats.latency.len(),
                errors: stats.errors,
                mean_body_bytes: (!stats.latency.is_empty())
                    .then(|| stats.body_bytes as f64 / stats.latency.len() as f64),
                latency: Latency::of(&stats.latency),
            })
            .collect(),
        cpu_s: cpu_seconds,
        cpu_s_per_1k_ops: cpu_seconds.and_then(|s| per_1k(s, completed)),
        cpu_s_per_1k_requests: cpu_seconds.and_then(|s| per_1k(s, total.requests)),
        aux_comm: probe.aux_comm.clone(),
        aux_cpu_s_per_1k_ops: aux_seconds.and_then(|s| per_1k(s, completed)),
        rss_peak_mib: probe
            .pid
            .map(|_| peak_rss.load(Ordering::Relaxed) as f64 / 1024.0)
            .filter(|&m| m > 0.0),
        hwm_mib: memory.map(|(_, hwm)| hwm as f64 / 1024.0),
        error_samples: total.error_samples,
    })
}

async fn closed_loop(worker: &mut Worker, rec: &mut Recorder, start: Instant, end: Instant) {
    loop {
        let began = Instant::now();
        if began >= end {
            break;
        }
        rec.recording = began >= start;
        match worker.op(rec).await {
            Ok(Outcome::Done) => rec.op_ok(began.elapsed()),
            Ok(Outcome::Exhausted) => break,
            Err(error) => rec.op_error(&error),
        }
    }
}

/// When an operation was due by the schedule, and when the scheduler released it.
type Due = (Instant, Instant);
type Queue = Arc<Mutex<mpsc::UnboundedReceiver<Due>>>;

/// Releases every operation from `begin` to `end`, at `rate` per second.
///
/// The timer has a granularity of about a millisecond, so due operations are released in small
/// batches. Latency is counted from the release (never earlier than the due time): the
/// scheduler's own lateness is not the server's, but any wait for a free connection is.
fn schedule(begin: Instant, end: Instant, rate: f64) -> Queue {
    let (sender, receiver) = mpsc::unbounded_channel();
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    tokio::spawn(async move {
        let mut sent: u32 = 0;
        loop {
            let now = Instant::now();
            let mut next = begin + interval * sent;
            while next <= now {
                if next >= end || sender.send((next, now)).is_err() {
                    return;
                }
                sent += 1;
                next = begin + interval * sent;
            }
            if next >= end {
                return;
            }
            tokio::time::sleep_until(next).await;
        }
    });
    Arc::new(Mutex::new(receiver))
}

async fn open_loop(
    worker: &mut Worker,
    rec: &mut Recorder,
    queue: &Queue,
    start: Instant,
    drop_after: Instant,
) {
    loop {
        let Some((due, released)) = queue.lock().await.recv().await else {
            break;
        };
        rec.recording = due >= start;
        if Instant::now() > drop_after {
            if rec.recording {
                rec.dropped += 1;
            }
            continue;
        }
        match worker.op(rec).await {
            Ok(Outcome::Done) => rec.op_ok(released.elapsed()),
            Ok(Outcome::Exhausted) => {
                // Nothing left to send: the remaining schedule cannot be served.
                if rec.recording {
                    rec.dropped += 1;
                }
            }
            Err(error) => rec.op_error(&error),
        }
    }
}
