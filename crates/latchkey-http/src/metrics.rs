//! The Prometheus recorder, installed once per process (every listener and test shares it), and
//! the per-request metrics of the HTTP layer.

use std::collections::HashMap;
use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets, in seconds: fine below 10 ms, where an authorization server should live.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// How often the recorder folds the samples it holds into its histograms' buckets. Until then
/// every recorded latency is kept, one by one, in memory.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The process's recorder handle, installing the recorder on first use.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may exist (an embedding application): keep ours readable anyway.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Folds the histogram samples recorded since the last upkeep (or scrape) into their buckets.
/// A server must call this every [`UPKEEP_INTERVAL`]: the recorder keeps every sample until then,
/// so a server nobody scrapes would otherwise grow by a few bytes per request, forever.
pub fn run_upkeep() {
    handle().run_upkeep();
}

/// The handles of `http_requests_total` and `http_request_duration_seconds` for one listener,
/// registered once per route, method and status instead of looked up by their labels on every
/// request.
pub(crate) struct RequestMetrics {
    listener: &'static str,
    /// Route → the (method, status) pairs seen on it, with their handles. Routes are the
    /// router's own patterns (or "unmatched"), methods the standard ones (or "other"), so the
    /// number of series stays bounded whatever clients send.
    routes: RwLock<HashMap<String, Vec<Series>>>,
}

struct Series {
    method: &'static str,
    status: StatusCode,
    requests: Counter,
    duration: Histogram,
}

impl RequestMetrics {
    pub(crate) fn new(listener: &'static str) -> Self {
        handle();
        Self {
            listener,
            routes: RwLock::new(HashMap::new()),
        }
    }

    /// Counts one request and records how long it took.
    pub(crate) fn record(&self, route: &str, method: &Method, status: StatusCode, took: Duration) {
        let method = method_label(method);
        let seconds = took.as_secs_f64();
        {
            let routes = self.routes.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(s) = routes.get(route).and_then(|series| {
                series
                    .iter()
                    .find(|s| s.method == method && s.status == status)
            }) {
                s.requests.increment(1);
                s.duration.record(seconds);
                return;
            }
        }
        let labels = [
            ("listener", self.listener.to_owned()),
            ("route", route.to_owned()),
            ("method", method.to_owned()),
            ("status", status.as_u16().to_string()),
        ];
        let series = Series {
            method,
            status,
            requests: metrics::counter!("http_requests_total", &labels),
            duration: metrics::histogram!("http_request_duration_seconds", &labels),
        };
        series.requests.increment(1);
        series.duration.record(seconds);
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        let known = routes.entry(route.to_owned()).or_default();
        if !known
            .iter()
            .any(|s| s.method == method && s.status == status)
        {
            known.push(series);
        }
    }
}

/// The label of a request method: the standard methods by name, anything else as "other".
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_per_route_method_and_status() {
        let metrics = RequestMetrics::new("unit-test");
        let route = "/unit-test/route";
        for _ in 0..3 {
            metrics.record(
                route,
                &Method::POST,
                StatusCode::OK,
                Duration::from_millis(1),
            );
        }
        metrics.record(
            route,
            &Method::POST,
            StatusCode::BAD_REQUEST,
            Duration::from_millis(1),
        );
        let weird = Method::from_bytes(b"BREW").expect("an extension method");
        metrics.record(route, &weird, StatusCode::OK, Duration::from_millis(1));
        let text = handle().render();
        let line = |method: &str, status: &str| {
            let prefix = format!(
                "http_requests_total{{listener=\"unit-test\",route=\"{route}\",method=\"{method}\",status=\"{status}\"}} "
            );
            text.lines()
                .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
                .unwrap_or_else(|| panic!("no series {prefix} in\n{text}"))
        };
        assert_eq!(line("POST", "200"), "3");
        assert_eq!(line("POST", "400"), "1");
        assert_eq!(line("other", "200"), "1");
        assert!(
            !text.contains("BREW"),
            "an extension method is not a label value"
        );
        assert!(text.contains(
            "http_request_duration_seconds_count{listener=\"unit-test\",route=\"/unit-test/route\",method=\"POST\",status=\"200\"} 3"
        ));
    }
}
