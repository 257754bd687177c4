//! Parsing `--source` values.

use std::path::PathBuf;

/// A parsed `--source` value.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceSpec {
    /// `relay:ws[s]://HOST[/path]`: the relay firehose.
    Relay {
        /// The full WebSocket URL, with the default path filled in.
        url: String,
    },
    /// `jetstream:ws[s]://HOST[,ws[s]://HOST2…]`: Jetstream, failing over between hosts.
    Jetstream {
        /// Full WebSocket URLs, default path filled in, without query strings.
        urls: Vec<String>,
    },
    /// `file:PATH`: a capture file.
    File {
        /// The file.
        path: PathBuf,
    },
    /// `simulate:RATE`: generated, validly signed traffic at RATE events/s.
    Simulate {
        /// Events per second (0 = as fast as possible).
        rate: u64,
    },
    /// `kafka:BROKERS/TOPIC?group=NAME[&client.setting=value…]`: CloudEvents written by
    /// `skystream kafka`, read back as a consumer group (run by the `skystream-kafka` crate).
    Kafka {
        /// `host:port[,host:port…]`.
        brokers: String,
        /// The topic.
        topic: String,
        /// The consumer group (default `skystream`).
        group: String,
        /// Further librdkafka settings from the query string, in order.
        options: Vec<(String, String)>,
    },
}

/// A `--source` value that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid source {value:?}: {reason}. Expected relay:wss://HOST, jetstream:wss://HOST[,wss://HOST2], file:PATH, simulate:RATE or kafka:BROKERS/TOPIC?group=NAME")]
pub struct SpecError {
    /// What was given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

const RELAY_PATH: &str = "/xrpc/com.atproto.sync.subscribeRepos";
const JETSTREAM_PATH: &str = "/subscribe";

fn normalize_ws(value: &str, url: &str, default_path: &str) -> Result<String, SpecError> {
    let err = |reason: &str| SpecError {
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| err("the URL needs ws:// or wss://"))?;
    if scheme != "ws" && scheme != "wss" {
        return Err(err("the URL scheme must be ws or wss"));
    }
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if host.is_empty() {
        return Err(err("the URL has no host"));
    }
    let path = if path.is_empty() || path == "/" {
        default_path
    } else {
        path.trim_end_matches('/')
    };
    Ok(format!("{scheme}://{host}{path}"))
}

impl SourceSpec {
    /// Parses a `--source` value.
    pub fn parse(value: &str) -> Result<Self, SpecError> {
        let err = |reason: &str| SpecError {
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let (kind, rest) = value
            .split_once(':')
            .ok_or_else(|| err("it has no kind prefix"))?;
        match kind {
            "relay" => Ok(SourceSpec::Relay {
                url: normalize_ws(value, rest, RELAY_PATH)?,
            }),
            "jetstream" => {
                let urls = rest
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|u| normalize_ws(value, u, JETSTREAM_PATH))
                    .collect::<Result<Vec<_>, _>>()?;
                if urls.is_empty() {
                    return Err(err("no Jetstream host given"));
                }
                Ok(SourceSpec::Jetstream { urls })
            }
            "file" => {
                if rest.is_empty() {
                    return Err(err("no file path given"));
                }
                Ok(SourceSpec::File {
                    path: PathBuf::from(rest),
                })
            }
            "simulate" => rest
                .parse()
                .map(|rate| SourceSpec::Simulate { rate })
                .map_err(|_| err("the rate must be a whole number of events per second")),
            "kafka" => parse_kafka(rest).map_err(err),
            _ => Err(err(&format!("unknown kind {kind:?}"))),
        }
    }

    /// The key the source's cursor is saved under: stable across restarts, and different
    /// for different upstreams.
    pub fn cursor_key(&self) -> String {
        match self {
            SourceSpec::Relay { url } => format!("relay:{url}"),
            SourceSpec::Jetstream { urls } => format!("jetstream:{}", urls.join(",")),
            SourceSpec::File { path } => format!("file:{}", path.display()),
            SourceSpec::Simulate { .. } => "simulate".to_owned(),
            SourceSpec::Kafka {
                brokers,
                topic,
                group,
                ..
            } => format!("kafka:{brokers}/{topic}?group={group}"),
        }
    }
}

/// Parses `BROKERS/TOPIC?group=NAME&k=v…` (after `kafka:`).
fn parse_kafka(rest: &str) -> Result<SourceSpec, &'static str> {
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (brokers, topic) = path
        .rsplit_once('/')
        .ok_or("the value needs BROKERS/TOPIC")?;
    let broker_ok = |b: &str| {
        let (host, port) = b.rsplit_once(':').unwrap_or((b, "9092"));
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_[]:".contains(c))
            && port.parse::<u16>().is_ok()
    };
    if brokers.is_empty() || !brokers.split(',').all(broker_ok) {
        return Err("the brokers must be host:port[,host:port]");
    }
    // Kafka's own topic name rule.
    if topic.is_empty()
        || topic.len() > 249
        || !topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err("the topic must be 1-249 characters of [a-zA-Z0-9._-]");
    }
    let mut group = "skystream".to_owned();
    let mut options = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or("each query item must be key=value")?;
        if k == "group" {
            if v.is_empty() {
                return Err("the group is empty");
            }
            group = v.to_owned();
        } else if !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '.') {
            options.push((k.to_owned(), v.to_owned()));
        } else {
            return Err("query keys are group or librdkafka settings (lowercase, dotted)");
        }
    }
    Ok(SourceSpec::Kafka {
        brokers: brokers.to_owned(),
        topic: topic.to_owned(),
        group,
        options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_default_paths() {
        assert_eq!(
            SourceSpec::parse("relay:wss://bsky.network").expect("ok"),
            SourceSpec::Relay {
                url: "wss://bsky.network/xrpc/com.atproto.sync.subscribeRepos".into()
            }
        );
        assert_eq!(
            SourceSpec::parse("relay:ws://127.0.0.1:1234/custom/").expect("ok"),
            SourceSpec::Relay {
                url: "ws://127.0.0.1:1234/custom".into()
            }
        );
        assert_eq!(
            SourceSpec::parse("jetstream:wss://a.example,wss://b.example/subscribe?x=1")
                .expect("ok"),
            SourceSpec::Jetstream {
                urls: vec![
                    "wss://a.example/subscribe".into(),
                    "wss://b.example/subscribe".into()
                ]
            }
        );
        assert_eq!(
            SourceSpec::parse("simulate:2000").expect("ok"),
            SourceSpec::Simulate { rate: 2000 }
        );
    }

    #[test]
    fn kafka_specs() {
        let spec = SourceSpec::parse(
            "kafka:127.0.0.1:9092,b.example:9093/bluesky.events?group=feeds&session.timeout.ms=6000",
        )
        .expect("ok");
        assert_eq!(
            spec,
            SourceSpec::Kafka {
                brokers: "127.0.0.1:9092,b.example:9093".into(),
                topic: "bluesky.events".into(),
                group: "feeds".into(),
                options: vec![("session.timeout.ms".into(), "6000".into())],
            }
        );
        assert_eq!(
            spec.cursor_key(),
            "kafka:127.0.0.1:9092,b.example:9093/bluesky.events?group=feeds"
        );
        let SourceSpec::Kafka { group, .. } =
            SourceSpec::parse("kafka://localhost:9092/t").expect("ok")
        else {
            panic!("not kafka")
        };
        assert_eq!(group, "skystream");
        for bad in [
            "kafka:",
            "kafka:/t",
            "kafka:host:9092/",
            "kafka:host:notaport/t",
            "kafka:host:9092/bad topic",
            "kafka:host:9092/t?group=",
            "kafka:host:9092/t?Bad=1",
            "kafka:host:9092/t?novalue",
        ] {
            assert!(SourceSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_bad_values_with_reasons() {
        for bad in [
            "relay:https://x",
            "relay:wss://",
            "nope:x",
            "simulate:fast",
            "file:",
            "jetstream:",
        ] {
            let e = SourceSpec::parse(bad).expect_err(bad);
            assert!(e.to_string().contains("Expected relay:"), "{e}");
        }
    }
}
