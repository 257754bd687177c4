//! The time series behind the status charts: rings of samples taken from the metrics.
//!
//! Kept on the server, not in the page, so a page opened now still shows the last hour. Two
//! rings: one point a second for the last five minutes (what the charts show first, and what a
//! fresh server has data for), and one point every ten seconds for the last hour.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{json, Map, Value};

use crate::prom::Exposition;

/// Points of the per-second ring (five minutes).
pub const SECOND_POINTS: usize = 300;
/// Points of the per-ten-seconds ring (one hour).
pub const TEN_SECOND_POINTS: usize = 360;

/// The metric names the series are computed from.
pub mod names {
    /// Events from the source, by `kind`.
    pub const EVENTS: &str = "skystream_events_total";
    /// Frames or records that did not decode, by `reason`.
    pub const DECODE_ERRORS: &str = "skystream_decode_errors_total";
    /// Envelopes waiting in the pipeline's queue.
    pub const QUEUE_DEPTH: &str = "skystream_pipeline_queue_depth";
    /// The committed cursor, by `source`.
    pub const CURSOR: &str = "skystream_cursor";
    /// HTTP requests, by `endpoint`, `feed`, `status`.
    pub const REQUESTS: &str = "skystream_http_requests_total";
    /// HTTP latency (a summary with quantiles), by `endpoint`, `feed`.
    pub const LATENCY: &str = "skystream_http_request_seconds";
    /// The getFeedSkeleton endpoint label.
    pub const SKELETON: &str = "app.bsky.feed.getFeedSkeleton";
    /// Bytes the store takes (published by the sampler).
    pub const STORE_BYTES: &str = "skystream_store_size_bytes";
    /// Items per feed (published by the sampler), by `feed`.
    pub const FEED_ITEMS: &str = "skystream_feed_items";
}

/// Counter totals at one moment, for rates between two moments.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    /// Events by kind.
    pub events: Vec<(String, f64)>,
    /// Decode errors, all reasons.
    pub decode_errors: f64,
    /// getFeedSkeleton requests by feed (every status).
    pub requests: Vec<(String, f64)>,
}

impl Totals {
    /// Reads the counters from an exposition.
    pub fn read(e: &Exposition) -> Totals {
        Totals {
            events: e.by_label(names::EVENTS, "kind", &[]),
            decode_errors: e.sum(names::DECODE_ERRORS, &[]).unwrap_or(0.0),
            requests: e.by_label(names::REQUESTS, "feed", &[("endpoint", names::SKELETON)]),
        }
    }
}

/// One point: when, and the value of each series (absent: not known then).
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Unix milliseconds.
    pub t_ms: i64,
    /// Series name to value.
    pub values: BTreeMap<String, f64>,
}

/// A bounded ring of points at a fixed step, with the totals of its last point for rates.
#[derive(Debug)]
pub struct Ring {
    step_ms: i64,
    cap: usize,
    points: VecDeque<Point>,
    last: Option<(i64, Totals)>,
}

fn rate(now: f64, before: f64, seconds: f64) -> f64 {
    // A counter only goes down when the process restarted; that interval has no rate.
    ((now - before).max(0.0)) / seconds
}

fn lookup(list: &[(String, f64)], key: &str) -> f64 {
    list.iter().find(|(k, _)| k == key).map_or(0.0, |(_, v)| *v)
}

impl Ring {
    /// A ring of `cap` points, one every `step_ms`.
    pub fn new(step_ms: i64, cap: usize) -> Ring {
        Ring {
            step_ms,
            cap,
            points: VecDeque::with_capacity(cap),
            last: None,
        }
    }

    /// The step between points, in seconds.
    pub fn step_seconds(&self) -> f64 {
        self.step_ms as f64 / 1000.0
    }

    /// Records a point at `t_ms` if a step has passed since the last one. Rates are over the
    /// time since the last point; gauges (`gauges`) are taken as they are now.
    pub fn offer(&mut self, t_ms: i64, totals: &Totals, gauges: &BTreeMap<String, f64>) -> bool {
        // A little slack so a timer firing a few ms early does not skip a point.
        if let Some((last_t, _)) = &self.last {
            if t_ms - last_t < self.step_ms - self.step_ms / 10 {
                return false;
            }
        }
        let mut values = gauges.clone();
        if let Some((last_t, before)) = &self.last {
            let seconds = (t_ms - last_t) as f64 / 1000.0;
            if seconds > 0.0 {
                for (kind, n) in &totals.events {
                    values.insert(
                        format!("events.{kind}"),
                        rate(*n, lookup(&before.events, kind), seconds),
                    );
                }
                values.insert(
                    "decode_errors".to_owned(),
                    rate(totals.decode_errors, before.decode_errors, seconds),
                );
                for (feed, n) in &totals.requests {
                    values.insert(
                        format!("requests.{feed}"),
                        rate(*n, lookup(&before.requests, feed), seconds),
                    );
                }
            }
        }
        if self.points.len() == self.cap {
            self.points.pop_front();
        }
        self.points.push_back(Point { t_ms, values });
        self.last = Some((t_ms, totals.clone()));
        true
    }

    /// The newest point.
    pub fn latest(&self) -> Option<&Point> {
        self.points.back()
    }

    /// The points after `since_ms`, as columns: `{"step_s", "t": [...], "series": {name:
    /// [value or null, ...]}}`.
    pub fn columns(&self, since_ms: Option<i64>) -> Value {
        let points: Vec<&Point> = self
            .points
            .iter()
            .filter(|p| since_ms.is_none_or(|s| p.t_ms > s))
            .collect();
        let keys: BTreeSet<&String> = points.iter().flat_map(|p| p.values.keys()).collect();
        let mut series = Map::new();
        for key in keys {
            let column: Vec<Value> = points
                .iter()
                .map(|p| p.values.get(key).map_or(Value::Null, |v| json!(v)))
                .collect();
            series.insert(key.clone(), Value::Array(column));
        }
        json!({
            "step_s": self.step_seconds(),
            "t": points.iter().map(|p| p.t_ms).collect::<Vec<_>>(),
            "series": series,
        })
    }
}

/// Both rings.
#[derive(Debug)]
pub struct History {
    /// One point a second, five minutes.
    pub seconds: Ring,
    /// One point every ten seconds, an hour.
    pub tens: Ring,
}

impl Default for History {
    fn default() -> Self {
        History {
            seconds: Ring::new(1000, SECOND_POINTS),
            tens: Ring::new(10_000, TEN_SECOND_POINTS),
        }
    }
}

impl History {
    /// Takes a sample: counters for rates, and the gauges charted as they are (queue depth,
    /// lag, per-feed p99 latency).
    pub fn record(&mut self, t_ms: i64, e: &Exposition, lag_seconds: Option<f64>) {
        let totals = Totals::read(e);
        let mut gauges = BTreeMap::new();
        if let Some(q) = e.sum(names::QUEUE_DEPTH, &[]) {
            gauges.insert("queue_depth".to_owned(), q);
        }
        if let Some(lag) = lag_seconds {
            gauges.insert("lag_seconds".to_owned(), lag);
        }
        for (feed, p99) in e.by_label(
            names::LATENCY,
            "feed",
            &[("endpoint", names::SKELETON), ("quantile", "0.99")],
        ) {
            gauges.insert(format!("p99.{feed}"), p99);
        }
        self.seconds.offer(t_ms, &totals, &gauges);
        self.tens.offer(t_ms, &totals, &gauges);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposition(commits: u64, errors: u64, queue: u64) -> Exposition {
        Exposition::parse(&format!(
            "skystream_events_total{{kind=\"commit\"}} {commits}\n\
             skystream_decode_errors_total{{reason=\"zstd\"}} {errors}\n\
             skystream_pipeline_queue_depth {queue}\n\
             skystream_http_requests_total{{endpoint=\"app.bsky.feed.getFeedSkeleton\",feed=\"f\",status=\"200\"}} {commits}\n"
        ))
    }

    #[test]
    fn rates_come_from_counter_differences() {
        let mut h = History::default();
        h.record(1_000, &exposition(100, 0, 3), Some(0.5));
        h.record(2_000, &exposition(300, 4, 5), Some(0.25));
        let p = h.seconds.latest().expect("a point");
        assert_eq!(p.values["events.commit"], 200.0);
        assert_eq!(p.values["decode_errors"], 4.0);
        assert_eq!(p.values["queue_depth"], 5.0);
        assert_eq!(p.values["lag_seconds"], 0.25);
        assert_eq!(p.values["requests.f"], 200.0);
        // The ten-second ring took only the first sample.
        assert_eq!(h.tens.columns(None)["t"], json!([1_000]));
        h.record(11_000, &exposition(1_300, 4, 0), None);
        let ten = h.tens.latest().expect("a ten-second point");
        assert_eq!(ten.values["events.commit"], 120.0);
    }

    #[test]
    fn a_counter_reset_is_not_a_negative_rate() {
        let mut h = History::default();
        h.record(1_000, &exposition(100, 0, 0), None);
        h.record(2_000, &exposition(10, 0, 0), None);
        assert_eq!(
            h.seconds.latest().expect("point").values["events.commit"],
            0.0
        );
    }

    #[test]
    fn rings_are_bounded_and_columns_align() {
        let mut ring = Ring::new(1000, 3);
        let gauges = BTreeMap::from([("queue_depth".to_owned(), 1.0)]);
        for i in 0..5 {
            ring.offer(i * 1000, &Totals::default(), &gauges);
        }
        let c = ring.columns(None);
        assert_eq!(c["t"], json!([2000, 3000, 4000]));
        assert_eq!(c["series"]["queue_depth"], json!([1.0, 1.0, 1.0]));
        assert_eq!(c["series"]["decode_errors"], json!([0.0, 0.0, 0.0]));
        let newer = ring.columns(Some(3000));
        assert_eq!(newer["t"], json!([4000]));
        // Too soon after the last point: not taken.
        assert!(!ring.offer(4_100, &Totals::default(), &gauges));
    }
}
