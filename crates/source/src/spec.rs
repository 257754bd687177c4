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
}

/// A `--source` value that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid source {value:?}: {reason}. Expected relay:wss://HOST, jetstream:wss://HOST[,wss://HOST2], file:PATH or simulate:RATE")]
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
        }
    }
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
