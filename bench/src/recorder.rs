//! Per-worker measurements, merged at the end of a run.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::http::Response;

/// Latencies are recorded in microseconds, from 1 µs to 60 s, with 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant histogram bounds are valid")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// One step (one HTTP request) of an operation.
#[derive(Clone)]
pub struct StepStats {
    pub latency: Histogram<u64>,
    pub errors: u64,
    pub body_bytes: u64,
}

/// What one worker measured. `recording` is false during the warm-up, when nothing is kept.
#[derive(Clone)]
pub struct Recorder {
    pub recording: bool,
    pub steps: Vec<StepStats>,
    pub ops: Histogram<u64>,
    pub ok: u64,
    pub errors: u64,
    pub dropped: u64,
    pub requests: u64,
    pub error_samples: Vec<String>,
}

/// At most this many distinct error messages are kept per run, to say what went wrong.
const MAX_ERROR_SAMPLES: usize = 5;

impl Recorder {
    pub fn new(step_count: usize) -> Recorder {
        Recorder {
            recording: false,
            steps: (0..step_count)
                .map(|_| StepStats {
                    latency: histogram(),
                    errors: 0,
                    body_bytes: 0,
                })
                .collect(),
            ops: histogram(),
            ok: 0,
            errors: 0,
            dropped: 0,
            requests: 0,
            error_samples: Vec::new(),
        }
    }

    /// Times one request of step `step`; a transport error counts against the step.
    pub async fn step<F>(&mut self, step: usize, request: F) -> anyhow::Result<Response>
    where
        F: Future<Output = anyhow::Result<Response>>,
    {
        let started = tokio::time::Instant::now();
        let result = request.await;
        let elapsed = started.elapsed();
        if self.recording {
            self.requests += 1;
            if let Some(stats) = self.steps.get_mut(step) {
                match &result {
                    Ok(response) => {
                        stats.latency.saturating_record(micros(elapsed));
                        stats.body_bytes += response.body.len() as u64;
                    }
                    Err(_) => stats.errors += 1,
                }
            }
        }
        result
    }

    /// Marks the last step as failed although its request succeeded (wrong status or body).
    pub fn fail_step(&mut self, step: usize) {
        if self.recording
            && let Some(stats) = self.steps.get_mut(step)
        {
            stats.errors += 1;
        }
    }

    pub fn op_ok(&mut self, latency: Duration) {
        if self.recording {
            self.ok += 1;
            self.ops.saturating_record(micros(latency));
        }
    }

    pub fn op_error(&mut self, error: &anyhow::Error) {
        if self.recording {
            self.errors += 1;
            self.sample(format!("{error:#}"));
        }
    }

    pub fn sample(&mut self, message: String) {
        if self.error_samples.len() < MAX_ERROR_SAMPLES && !self.error_samples.contains(&message) {
            self.error_samples.push(message);
        }
    }

    pub fn merge(&mut self, other: &Recorder) {
        for (mine, theirs) in self.steps.iter_mut().zip(&other.steps) {
            let _ = mine.latency.add(&theirs.latency);
            mine.errors += theirs.errors;
            mine.body_bytes += theirs.body_bytes;
        }
        let _ = self.ops.add(&other.ops);
        self.ok += other.ok;
        self.errors += other.errors;
        self.dropped += other.dropped;
        self.requests += other.requests;
        for message in &other.error_samples {
            self.sample(message.clone());
        }
    }
}
