//! Reading the Prometheus text exposition back.
//!
//! The console shows what `/metrics` shows by parsing the very text `/metrics` serves, rendered
//! from the same recorder handle, instead of keeping counters of its own that could drift.

/// One sample line: a metric name, its labels in written order, and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The metric name (`skystream_events_total`).
    pub name: String,
    /// The labels, as written.
    pub labels: Vec<(String, String)>,
    /// The value (`NaN` and `±Inf` as floats).
    pub value: f64,
}

impl Sample {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed exposition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition {
    /// Every sample, in order.
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// Parses the text format; lines that do not parse (there should be none) are skipped, so
    /// one odd line cannot blank the whole console.
    pub fn parse(text: &str) -> Exposition {
        Exposition {
            samples: text.lines().filter_map(parse_line).collect(),
        }
    }

    /// The samples of metric `name`.
    pub fn of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The sum of metric `name` over the samples whose labels include every pair of `with`;
    /// `None` when there is no such sample.
    pub fn sum(&self, name: &str, with: &[(&str, &str)]) -> Option<f64> {
        let mut found = false;
        let mut total = 0.0;
        for s in self.of(name) {
            if with.iter().all(|(k, v)| s.label(k) == Some(*v)) {
                found = true;
                total += s.value;
            }
        }
        found.then_some(total)
    }

    /// Sums metric `name` per value of label `key` (samples without it are left out), sorted
    /// by that value.
    pub fn by_label(&self, name: &str, key: &str, with: &[(&str, &str)]) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = Vec::new();
        for s in self.of(name) {
            if !with.iter().all(|(k, v)| s.label(k) == Some(*v)) {
                continue;
            }
            let Some(value) = s.label(key) else { continue };
            match out.iter_mut().find(|(k, _)| k == value) {
                Some((_, total)) => *total += s.value,
                None => out.push((value.to_owned(), s.value)),
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, tail) = parse_labels(after)?;
        labels = parsed;
        rest = tail;
    }
    // The value, then an optional timestamp.
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

type Labels = Vec<(String, String)>;

/// Parses `k="v",k2="v2"}` (the opening brace already taken); returns the labels and the text
/// after the closing brace.
fn parse_labels(mut s: &str) -> Option<(Labels, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(tail) = s.strip_prefix('}') {
            return Some((labels, tail));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_owned();
        s = s[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        labels.push((key, value));
        s = &s[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP skystream_events_total events
# TYPE skystream_events_total counter
skystream_events_total{kind="commit"} 120
skystream_events_total{kind="identity"} 3
skystream_pipeline_queue_depth 7
skystream_http_request_seconds{endpoint="app.bsky.feed.getFeedSkeleton",feed="a \"b\", c",quantile="0.99"} 0.25
skystream_odd{v="x\\y\nz"} NaN 1700000000
skystream_inf +Inf
this is not a sample
"#;

    #[test]
    fn parses_names_labels_and_values() {
        let e = Exposition::parse(TEXT);
        assert_eq!(e.sum("skystream_events_total", &[]), Some(123.0));
        assert_eq!(
            e.sum("skystream_events_total", &[("kind", "identity")]),
            Some(3.0)
        );
        assert_eq!(e.sum("skystream_pipeline_queue_depth", &[]), Some(7.0));
        assert_eq!(e.sum("skystream_missing", &[]), None);
        let latency = e
            .of("skystream_http_request_seconds")
            .next()
            .expect("latency sample");
        assert_eq!(latency.label("feed"), Some("a \"b\", c"));
        assert_eq!(latency.label("quantile"), Some("0.99"));
        let odd = e.of("skystream_odd").next().expect("odd sample");
        assert_eq!(odd.label("v"), Some("x\\y\nz"));
        assert!(odd.value.is_nan());
        assert_eq!(e.sum("skystream_inf", &[]), Some(f64::INFINITY));
        assert!(e.of("this").next().is_none());
    }

    #[test]
    fn groups_by_label() {
        let e = Exposition::parse(TEXT);
        assert_eq!(
            e.by_label("skystream_events_total", "kind", &[]),
            vec![("commit".to_owned(), 120.0), ("identity".to_owned(), 3.0)]
        );
    }

    #[test]
    fn reads_what_the_exporter_renders() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("skystream_events_total", "kind" => "commit").increment(5);
            metrics::gauge!("skystream_feed_items", "feed" => "wei\"rd").set(9.0);
            metrics::histogram!("skystream_http_request_seconds", "feed" => "x").record(0.5);
        });
        let e = Exposition::parse(&handle.render());
        assert_eq!(
            e.sum("skystream_events_total", &[("kind", "commit")]),
            Some(5.0)
        );
        assert_eq!(
            e.by_label("skystream_feed_items", "feed", &[]),
            vec![("wei\"rd".to_owned(), 9.0)]
        );
        // Quantiles come from a sketch: close, not exact.
        let p99 = e
            .sum(
                "skystream_http_request_seconds",
                &[("feed", "x"), ("quantile", "0.99")],
            )
            .expect("a p99");
        assert!((p99 - 0.5).abs() < 0.01, "{p99}");
    }
}
