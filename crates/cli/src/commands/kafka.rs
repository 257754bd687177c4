//! `skystream kafka`: a source published to Kafka as CloudEvents. The flags mirror the seed
//! bridge's, and its environment variables are accepted as fallbacks, so its users can switch
//! by changing the binary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use skystream_kafka::{
    connection_string, Collection, ContentMode, KafkaSink, Mapping, Sampler, SinkConfig,
};
use skystream_pipeline::{ConsumerError, CursorSink};
use skystream_source::SourceSpec;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cli::{ContentModeArg, KafkaArgs};
use crate::ingest;

/// The relay the seed bridge read by default.
const DEFAULT_SOURCE: &str = "relay:wss://bsky.network";

/// A value from the first of the seed bridge's environment variables that is set and not
/// empty. clap reads one variable per flag (the `SKYSTREAM_*` one); these are read here, only
/// when neither the flag nor that variable was given.
fn seed_env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .filter_map(|n| std::env::var(n).ok())
        .find(|v| !v.trim().is_empty())
}

/// Everything the command needs, with flags, `SKYSTREAM_*` variables and the seed's variables
/// resolved in that order.
#[derive(Debug)]
struct Resolved {
    source: String,
    sink: SinkConfig,
    cursor_file: Option<PathBuf>,
}

fn resolve(args: &KafkaArgs) -> anyhow::Result<Resolved> {
    let mut client: Vec<(String, String)> = Vec::new();
    let mut topic = args
        .kafka_topic
        .clone()
        .or_else(|| seed_env(&["KAFKA_TOPIC"]));
    let connection = args
        .connection_string
        .clone()
        .or_else(|| seed_env(&["EVENTHUB_CONNECTION_STRING", "CONNECTION_STRING"]));
    if let Some(cs) = connection {
        let c = connection_string::parse(&cs)?;
        if topic.is_none() {
            topic = c.topic.clone();
        }
        client.extend(c.client_config());
    } else {
        let servers = args
            .kafka_bootstrap_servers
            .clone()
            .or_else(|| seed_env(&["KAFKA_BOOTSTRAP_SERVERS"]))
            .context("no Kafka given: use --kafka-bootstrap-servers and --kafka-topic, or --connection-string")?;
        client.push(("bootstrap.servers".into(), servers));
        let user = args
            .sasl_username
            .clone()
            .or_else(|| seed_env(&["SASL_USERNAME"]));
        let password = args
            .sasl_password
            .clone()
            .or_else(|| seed_env(&["SASL_PASSWORD"]));
        if user.is_some() || password.is_some() {
            // As the seed bridge: credentials mean SASL PLAIN over TLS (override with
            // --kafka-option security.protocol=SASL_PLAINTEXT for a local test broker).
            client.push(("security.protocol".into(), "SASL_SSL".into()));
            client.push(("sasl.mechanism".into(), "PLAIN".into()));
            client.push(("sasl.username".into(), user.unwrap_or_default()));
            client.push(("sasl.password".into(), password.unwrap_or_default()));
        }
    }
    let topic = topic
        .context("no Kafka topic: use --kafka-topic (or a connection string with EntityPath)")?;
    for opt in &args.kafka_options {
        let (k, v) = opt
            .split_once('=')
            .with_context(|| format!("--kafka-option {opt:?} is not key=value"))?;
        client.push((k.trim().to_owned(), v.trim().to_owned()));
    }

    let names: Vec<String> = if args.collections.is_empty() {
        seed_env(&["BLUESKY_COLLECTIONS"])
            .map(|v| v.split(',').map(str::to_owned).collect())
            .unwrap_or_default()
    } else {
        args.collections.clone()
    };
    let mut collections = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let c = Collection::parse(name).with_context(|| {
            format!("unknown collection {name:?}: use post, like, repost, follow, block or profile (or their NSIDs)")
        })?;
        if !collections.contains(&c) {
            collections.push(c);
        }
    }
    if collections.is_empty() {
        collections = Collection::DEFAULT.to_vec();
    }

    let rate = match args.sample_rate {
        Some(r) => r,
        None => match seed_env(&["BLUESKY_SAMPLE_RATE"]) {
            Some(v) => v
                .trim()
                .parse()
                .with_context(|| format!("BLUESKY_SAMPLE_RATE {v:?} is not a number"))?,
            None => 1.0,
        },
    };
    if !(0.0..=1.0).contains(&rate) {
        anyhow::bail!("--sample-rate must be between 0.0 and 1.0, not {rate}");
    }
    let mode = match args.content_mode {
        Some(ContentModeArg::Structured) => ContentMode::Structured,
        Some(ContentModeArg::Binary) => ContentMode::Binary,
        None => match seed_env(&["CLOUDEVENTS_MODE"]).as_deref().map(str::trim) {
            None | Some("structured") => ContentMode::Structured,
            Some("binary") => ContentMode::Binary,
            Some(other) => anyhow::bail!("CLOUDEVENTS_MODE {other:?} is not structured or binary"),
        },
    };

    let source = match &args.ingest.source {
        Some(s) => s.clone(),
        None => match args
            .firehose_url
            .clone()
            .or_else(|| seed_env(&["BLUESKY_FIREHOSE_URL"]))
        {
            Some(url) => format!("relay:{url}"),
            None => DEFAULT_SOURCE.to_owned(),
        },
    };
    let cursor_file = args
        .cursor_file
        .clone()
        .or_else(|| seed_env(&["BLUESKY_CURSOR_FILE"]).map(PathBuf::from));

    let mut sink = SinkConfig::new("", &topic);
    sink.client = client;
    sink.mode = mode;
    sink.sampler = Sampler::new(rate);
    sink.max_message_bytes = args.max_message_bytes;
    sink.dead_letter_topic = args.dead_letter_topic.clone();
    sink.mapping = Mapping {
        source: args.cloudevents_source.clone(),
        collections,
    };
    Ok(Resolved {
        source,
        sink,
        cursor_file,
    })
}

/// The upstream cursor in a file, in the seed bridge's format `{"cursor": N}`, replaced
/// atomically (write, fsync, rename) so a crash leaves the old or the new value.
struct FileCursor {
    path: PathBuf,
}

impl FileCursor {
    fn load(path: &Path) -> anyhow::Result<Option<u64>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        if let Ok(n) = text.parse::<u64>() {
            return Ok(Some(n));
        }
        let v: serde_json::Value = serde_json::from_str(text).with_context(|| {
            format!(
                "{} is not a cursor file ({{\"cursor\": N}})",
                path.display()
            )
        })?;
        match v.get("cursor") {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(c) => c.as_u64().map(Some).with_context(|| {
                format!(
                    "{}: the cursor is not a non-negative integer",
                    path.display()
                )
            }),
        }
    }
}

#[async_trait]
impl CursorSink for FileCursor {
    async fn save(&self, _source: &str, cursor: u64) -> Result<(), ConsumerError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write as _;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("tmp");
            let mut f = std::fs::File::create(&tmp)?;
            writeln!(f, "{{\"cursor\": {cursor}}}")?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        })
        .await??;
        Ok(())
    }
}

pub async fn run(args: &KafkaArgs) -> anyhow::Result<ExitCode> {
    let r = resolve(args)?;
    let spec = SourceSpec::parse(&r.source)?;
    ingest::start_metrics(args.ingest.metrics_listen)?;
    let topic = r.sink.topic.clone();
    info!(source = %r.source, topic = %topic, mode = ?r.sink.mode, sample_rate = r.sink.sampler.rate(),
        collections = ?r.sink.mapping.collections, "publishing CloudEvents to Kafka");
    let sink = KafkaSink::new(r.sink).context("cannot set up the Kafka producer")?;
    // Connecting now shows a wrong address or topic at once; a broker that is down is not
    // fatal, since the sink holds the stream (and the cursor) until it is back.
    match sink.connect(std::time::Duration::from_secs(15)).await {
        Ok(partitions) => info!(topic = %topic, partitions, "connected to Kafka"),
        Err(e) => warn!(topic = %topic, error = %e,
            "cannot connect to Kafka yet: no metadata for the topic, or no producer id for the idempotent producer (check --kafka-bootstrap-servers, --kafka-topic and the credentials); the sink keeps trying and holds the stream meanwhile"),
    }
    let source = ingest::build_source(&spec, &args.ingest, false)?;
    // The cursor is this pipeline's (upstream → this topic), so it is kept apart from a
    // `serve` reading the same upstream into the same database.
    let key = format!("{}>kafka:{topic}", source.cursor_key());
    let (start, cursor_sink): (Option<u64>, Arc<dyn CursorSink>) = match &r.cursor_file {
        Some(path) => (
            FileCursor::load(path)?,
            Arc::new(FileCursor { path: path.clone() }),
        ),
        None => {
            let store = ingest::open_store(&args.ingest.database).await?;
            use skystream_store::CursorStore as _;
            let start = store
                .load_cursor(&key)
                .await
                .with_context(|| format!("cannot read the saved cursor for {key}"))?;
            (start, Arc::new(ingest::StoreSink(store)))
        }
    };
    let stop = CancellationToken::new();
    ingest::cancel_on_signals(stop.clone());
    let outcome = ingest::run_from(
        source,
        key,
        start,
        cursor_sink,
        vec![Box::new(sink)],
        &args.ingest,
        args.max_events,
        stop,
    )
    .await?;
    info!(events = outcome.summary.events, cursor = ?outcome.summary.cursor, end = ?outcome.end, "kafka finished");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn args(argv: &[&str]) -> KafkaArgs {
        let mut full = vec!["skystream", "kafka"];
        full.extend_from_slice(argv);
        match crate::cli::Cli::try_parse_from(full)
            .expect("parses")
            .command
        {
            crate::cli::Command::Kafka(a) => a,
            other => panic!("not kafka: {other:?}"),
        }
    }

    #[test]
    fn the_seed_usage_lines_resolve() {
        let r = resolve(&args(&[
            "--kafka-bootstrap-servers",
            "localhost:9092",
            "--kafka-topic",
            "bluesky",
            "--collections",
            "post,app.bsky.graph.block",
            "--sample-rate",
            "0.25",
            "--content-mode",
            "binary",
            "--kafka-option",
            "compression.type=lz4",
        ]))
        .expect("resolves");
        assert_eq!(r.sink.topic, "bluesky");
        assert_eq!(r.sink.mode, ContentMode::Binary);
        assert_eq!(
            r.sink.mapping.collections,
            vec![Collection::Post, Collection::Block]
        );
        assert_eq!(r.sink.sampler.rate(), 0.25);
        assert!(r
            .sink
            .client
            .contains(&("compression.type".into(), "lz4".into())));
        assert_eq!(r.source, DEFAULT_SOURCE);

        let cs = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=s;EntityPath=hub";
        let r = resolve(&args(&[
            "--connection-string",
            cs,
            "--firehose-url",
            "wss://relay.example",
        ]))
        .expect("resolves");
        assert_eq!(r.sink.topic, "hub");
        assert!(r.sink.client.contains(&(
            "bootstrap.servers".into(),
            "ns.servicebus.windows.net:9093".into()
        )));
        assert!(r
            .sink
            .client
            .contains(&("sasl.username".into(), "$ConnectionString".into())));
        assert_eq!(r.source, "relay:wss://relay.example");
        assert_eq!(r.sink.mapping.collections, Collection::DEFAULT.to_vec());

        for bad in [
            vec!["--kafka-topic", "t"],
            vec!["--kafka-bootstrap-servers", "h:1"],
            vec![
                "--kafka-bootstrap-servers",
                "h:1",
                "--kafka-topic",
                "t",
                "--collections",
                "lists",
            ],
            vec![
                "--kafka-bootstrap-servers",
                "h:1",
                "--kafka-topic",
                "t",
                "--sample-rate",
                "2",
            ],
            vec![
                "--kafka-bootstrap-servers",
                "h:1",
                "--kafka-topic",
                "t",
                "--kafka-option",
                "novalue",
            ],
        ] {
            assert!(resolve(&args(&bad)).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn cursor_file_round_trip_in_the_seed_format() {
        let dir = std::env::temp_dir().join(format!("skystream-cursor-{}", std::process::id()));
        let path = dir.join("cursor");
        assert_eq!(FileCursor::load(&path).expect("absent"), None);
        let sink = FileCursor { path: path.clone() };
        sink.save("x", 31527015471).await.expect("save");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read").trim(),
            "{\"cursor\": 31527015471}"
        );
        assert_eq!(FileCursor::load(&path).expect("load"), Some(31527015471));
        std::fs::write(&path, "{\"cursor\": null}").expect("write");
        assert_eq!(FileCursor::load(&path).expect("null"), None);
        std::fs::write(&path, "{\"cursor\": -1}").expect("write");
        assert!(FileCursor::load(&path).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
