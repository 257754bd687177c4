//! The Jetstream section: subscribers by mode, what was sent to them, and the replay log, read
//! from the `skystream_jetstream_*` metrics the Jetstream server records (see its `telemetry`
//! module for their meaning). `skystream jetstream` shows it, and so does `serve` with a
//! `[jetstream]` section.

use crate::prom::Exposition;
use crate::section::{Figure, Section, Unit};

/// The metric names read here, as the Jetstream server records them.
mod names {
    /// Connected subscribers, by `encoding` (`json`, `zstd`), `filter` (`all`, `filtered`)
    /// and `phase` (`waiting`, `replay`, `live`).
    pub const SUBSCRIBERS: &str = "skystream_jetstream_subscribers";
    /// Events sent, by `encoding` and `phase`.
    pub const EVENTS_SENT: &str = "skystream_jetstream_events_sent_total";
    /// Bytes sent (as sent: compressed or not), by `encoding` and `phase`.
    pub const BYTES_SENT: &str = "skystream_jetstream_bytes_sent_total";
    /// Events appended to the replay log.
    pub const APPENDED: &str = "skystream_jetstream_events_appended_total";
    /// The replay log's files on disk.
    pub const LOG_SIZE: &str = "skystream_jetstream_log_size_bytes";
    /// The oldest and newest `time_us` in the log (0: empty).
    pub const LOG_OLDEST: &str = "skystream_jetstream_log_oldest_time_us";
    /// See [`LOG_OLDEST`].
    pub const LOG_NEWEST: &str = "skystream_jetstream_log_newest_time_us";
    /// JSON bytes over zstd bytes of everything appended.
    pub const COMPRESSION: &str = "skystream_jetstream_compression_ratio";
    /// Subscribers closed for being slow, by `reason`.
    pub const SLOW_CLOSES: &str = "skystream_jetstream_slow_closes_total";
    /// Connections refused, by `reason`.
    pub const REJECTED: &str = "skystream_jetstream_rejected_total";
}

/// The Jetstream section of the status page.
pub fn jetstream_section() -> Section {
    Section::new("Jetstream", figures)
}

fn figures(e: &Exposition) -> Vec<Figure> {
    // Counters and the subscriber gauge appear with their first subscriber or event: until
    // then the true figure is zero, not unknown.
    let count = |name: &str, with: &[(&str, &str)]| Some(e.sum(name, with).unwrap_or(0.0));
    // An empty log reports its bounds as 0, which is no time.
    let time = |name: &str| e.sum(name, &[]).filter(|t| *t > 0.0);
    let figure = |key, label, value, unit| Figure {
        key,
        label,
        value,
        unit,
    };
    use names::*;
    use Unit::*;
    vec![
        figure("subscribers", "Subscribers", count(SUBSCRIBERS, &[]), Count),
        figure(
            "subscribers_json",
            "Subscribers, JSON",
            count(SUBSCRIBERS, &[("encoding", "json")]),
            Count,
        ),
        figure(
            "subscribers_zstd",
            "Subscribers, zstd compressed",
            count(SUBSCRIBERS, &[("encoding", "zstd")]),
            Count,
        ),
        figure(
            "subscribers_all",
            "Subscribers taking every event",
            count(SUBSCRIBERS, &[("filter", "all")]),
            Count,
        ),
        figure(
            "subscribers_filtered",
            "Subscribers with a filter",
            count(SUBSCRIBERS, &[("filter", "filtered")]),
            Count,
        ),
        figure(
            "subscribers_waiting",
            "Subscribers waiting for their hello",
            count(SUBSCRIBERS, &[("phase", "waiting")]),
            Count,
        ),
        figure(
            "subscribers_replay",
            "Subscribers replaying",
            count(SUBSCRIBERS, &[("phase", "replay")]),
            Count,
        ),
        figure(
            "subscribers_live",
            "Subscribers live",
            count(SUBSCRIBERS, &[("phase", "live")]),
            Count,
        ),
        figure("events_sent", "Events sent", count(EVENTS_SENT, &[]), Count),
        figure("bytes_sent", "Bytes sent", count(BYTES_SENT, &[]), Bytes),
        figure(
            "bytes_sent_json",
            "Bytes sent, JSON",
            count(BYTES_SENT, &[("encoding", "json")]),
            Bytes,
        ),
        figure(
            "bytes_sent_zstd",
            "Bytes sent, zstd compressed",
            count(BYTES_SENT, &[("encoding", "zstd")]),
            Bytes,
        ),
        figure(
            "bytes_sent_replay",
            "Bytes sent replaying",
            count(BYTES_SENT, &[("phase", "replay")]),
            Bytes,
        ),
        figure(
            "bytes_sent_live",
            "Bytes sent live",
            count(BYTES_SENT, &[("phase", "live")]),
            Bytes,
        ),
        figure(
            "slow_closes",
            "Subscribers closed for being slow",
            count(SLOW_CLOSES, &[]),
            Count,
        ),
        figure(
            "rejected",
            "Connections refused",
            count(REJECTED, &[]),
            Count,
        ),
        figure(
            "events_appended",
            "Events appended to the replay log",
            count(APPENDED, &[]),
            Count,
        ),
        figure(
            "log_size_bytes",
            "Replay log on disk",
            e.sum(LOG_SIZE, &[]),
            Bytes,
        ),
        figure(
            "log_oldest_time_us",
            "Replay log's oldest event",
            time(LOG_OLDEST),
            TimeUs,
        ),
        figure(
            "log_newest_time_us",
            "Replay log's newest event",
            time(LOG_NEWEST),
            TimeUs,
        ),
        figure(
            "compression_ratio",
            "Compression ratio (JSON / zstd)",
            e.sum(COMPRESSION, &[]),
            Ratio,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(figures: &[Figure], key: &str) -> Option<f64> {
        figures
            .iter()
            .find(|f| f.key == key)
            .unwrap_or_else(|| panic!("no figure {key}"))
            .value
    }

    #[test]
    fn figures_sum_the_metrics_by_mode() {
        let e = Exposition::parse(
            "skystream_jetstream_subscribers{encoding=\"json\",filter=\"all\",phase=\"live\"} 2\n\
             skystream_jetstream_subscribers{encoding=\"zstd\",filter=\"filtered\",phase=\"replay\"} 1\n\
             skystream_jetstream_subscribers{encoding=\"zstd\",filter=\"all\",phase=\"waiting\"} 0\n\
             skystream_jetstream_bytes_sent_total{encoding=\"json\",phase=\"live\"} 1000\n\
             skystream_jetstream_bytes_sent_total{encoding=\"zstd\",phase=\"replay\"} 300\n\
             skystream_jetstream_events_sent_total{encoding=\"json\",phase=\"live\"} 7\n\
             skystream_jetstream_log_size_bytes 4096\n\
             skystream_jetstream_log_oldest_time_us 1700000000000000\n\
             skystream_jetstream_log_newest_time_us 1700000001000000\n",
        );
        let f = figures(&e);
        assert_eq!(value(&f, "subscribers"), Some(3.0));
        assert_eq!(value(&f, "subscribers_json"), Some(2.0));
        assert_eq!(value(&f, "subscribers_zstd"), Some(1.0));
        assert_eq!(value(&f, "subscribers_all"), Some(2.0));
        assert_eq!(value(&f, "subscribers_filtered"), Some(1.0));
        assert_eq!(value(&f, "subscribers_live"), Some(2.0));
        assert_eq!(value(&f, "subscribers_replay"), Some(1.0));
        assert_eq!(value(&f, "subscribers_waiting"), Some(0.0));
        assert_eq!(value(&f, "bytes_sent"), Some(1300.0));
        assert_eq!(value(&f, "bytes_sent_json"), Some(1000.0));
        assert_eq!(value(&f, "bytes_sent_zstd"), Some(300.0));
        assert_eq!(value(&f, "bytes_sent_replay"), Some(300.0));
        assert_eq!(value(&f, "events_sent"), Some(7.0));
        assert_eq!(value(&f, "log_size_bytes"), Some(4096.0));
        assert_eq!(value(&f, "log_oldest_time_us"), Some(1.7e15));
        // Not recorded yet: nothing was refused, nothing appended since start.
        assert_eq!(value(&f, "rejected"), Some(0.0));
        assert_eq!(value(&f, "compression_ratio"), None);
        let keys: Vec<&str> = f.iter().map(|f| f.key).collect();
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(keys.len(), unique.len(), "keys are unique: {keys:?}");
    }

    #[test]
    fn an_empty_log_has_no_times() {
        let e = Exposition::parse(
            "skystream_jetstream_log_oldest_time_us 0\n\
             skystream_jetstream_log_newest_time_us 0\n\
             skystream_jetstream_log_size_bytes 8192\n",
        );
        let f = figures(&e);
        assert_eq!(value(&f, "log_oldest_time_us"), None);
        assert_eq!(value(&f, "log_newest_time_us"), None);
        assert_eq!(value(&f, "subscribers"), Some(0.0));
        assert_eq!(value(&f, "bytes_sent"), Some(0.0));
    }
}
