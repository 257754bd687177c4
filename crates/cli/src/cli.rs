//! Command-line flags. Every flag can also be set through a `SKYSTREAM_*` environment
//! variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// skystream: the AT Protocol firehose, turned into the things people run on it.
#[derive(Debug, Parser)]
#[command(name = "skystream", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "SKYSTREAM_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// Log filter (e.g. `info`, `debug`, `skystream_source=debug`).
    #[arg(long, global = true, env = "SKYSTREAM_LOG", default_value = "info")]
    pub log: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
// Parsed once per run; boxing the larger argument sets would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Summarise a capture file: frames by type, operations, collections, decode errors and,
    /// with --verify, signature and prevData checks.
    Inspect(InspectArgs),
    /// Convert a capture file to another format (Jetstream v1 JSON lines on stdout).
    Convert(ConvertArgs),
    /// Record a source to a capture file, resuming after stalls and restarts without gaps.
    Record(RecordArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate(MigrateArgs),
    /// Run the feed generator: ingest, index and serve the feeds in the config file.
    Serve(ServeArgs),
    /// Ingest and index only (no HTTP), for deployments where several servers share one
    /// PostgreSQL store.
    Ingest(ServeArgs),
    /// Publish feed records (app.bsky.feed.generator) to the publishing account's PDS.
    Publish(PublishArgs),
    /// Remove one feed record from the publishing account's PDS.
    Unpublish(PublishArgs),
    /// Check that the service's DID document, describeFeedGenerator and the feed records agree.
    Verify(VerifyArgs),
}

/// `skystream inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The capture file: relay frames or Jetstream JSON lines, optionally zstd-compressed.
    #[arg(env = "SKYSTREAM_INSPECT_FILE")]
    pub file: PathBuf,
    /// Verify every commit: block CIDs, the signature against the author's DID document, and
    /// the inversion of its operations to prevData.
    #[arg(long, env = "SKYSTREAM_VERIFY", requires = "did_docs")]
    pub verify: bool,
    /// A JSON object mapping each DID to its DID document, used by --verify.
    #[arg(long, env = "SKYSTREAM_DID_DOCS", value_name = "FILE")]
    pub did_docs: Option<PathBuf>,
    /// Print the report as JSON instead of text.
    #[arg(long, env = "SKYSTREAM_JSON")]
    pub json: bool,
}

/// Output formats for `convert`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConvertTo {
    /// Jetstream v1 JSON lines.
    Jetstream,
}

/// `skystream convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The capture file: relay frames or Jetstream JSON lines, optionally zstd-compressed.
    #[arg(env = "SKYSTREAM_CONVERT_FILE")]
    pub file: PathBuf,
    /// The output format.
    #[arg(
        long,
        env = "SKYSTREAM_CONVERT_TO",
        value_enum,
        default_value = "jetstream"
    )]
    pub to: ConvertTo,
}

/// How a `file:` source is replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PaceArg {
    /// As fast as the consumers take events.
    Fast,
    /// Spaced by the events' own times.
    Realtime,
}

/// Flags every long-running command shares.
#[derive(Clone, Debug, Args)]
pub struct IngestArgs {
    /// Where events come from: relay:wss://HOST, jetstream:wss://HOST[,wss://HOST2],
    /// file:PATH or simulate:RATE.
    #[arg(long, env = "SKYSTREAM_SOURCE", value_name = "SPEC")]
    pub source: Option<String>,
    /// The database: a SQLite file path (default), sqlite::memory:, or postgres://…
    #[arg(
        long,
        env = "SKYSTREAM_DATABASE",
        default_value = "./skystream.db",
        value_name = "URL"
    )]
    pub database: String,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, env = "SKYSTREAM_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Replay speed of a file: source.
    #[arg(long, env = "SKYSTREAM_PACE", value_enum, default_value = "fast")]
    pub pace: PaceArg,
    /// Reconnect when a network source sends nothing for this long (0 = never).
    #[arg(long, env = "SKYSTREAM_IDLE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Reconnect when a ping gets no pong within this.
    #[arg(long, env = "SKYSTREAM_PONG_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub pong_timeout: Duration,
    /// Longest wait between reconnect attempts (backoff doubles from 1s up to this).
    #[arg(long, env = "SKYSTREAM_BACKOFF_MAX", default_value = "60s", value_parser = parse_duration)]
    pub backoff_max: Duration,
    /// How often the durable cursor is saved.
    #[arg(long, env = "SKYSTREAM_CURSOR_SAVE_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub cursor_save_interval: Duration,
    /// Verify relay commits (block CIDs, signature, prevData inversion) and stream order (seq,
    /// per-repo rev, inactive accounts); failures are dropped and counted.
    #[arg(long, env = "SKYSTREAM_VERIFY")]
    pub verify: bool,
    /// With --verify, require prevData on every commit (strict Sync 1.1).
    #[arg(long, env = "SKYSTREAM_STRICT_SYNC")]
    pub strict_sync: bool,
    /// With --verify: DID documents from this file (a JSON object DID -> document) instead of
    /// resolving them over the network.
    #[arg(long, env = "SKYSTREAM_DID_DOCS", value_name = "FILE")]
    pub did_docs: Option<PathBuf>,
    /// With --verify: the PLC directory that resolves did:plc.
    #[arg(
        long,
        env = "SKYSTREAM_PLC_URL",
        default_value = "https://plc.directory",
        value_name = "URL"
    )]
    pub plc_url: String,
    /// Zstd dictionary for compressed Jetstream (jetstream: sources).
    #[arg(long, env = "SKYSTREAM_JETSTREAM_DICTIONARY", value_name = "FILE")]
    pub jetstream_dictionary: Option<PathBuf>,
    /// Collections to request from a Jetstream source (repeatable; `prefix.*` allowed).
    #[arg(
        long = "wanted-collection",
        env = "SKYSTREAM_WANTED_COLLECTIONS",
        value_delimiter = ','
    )]
    pub wanted_collections: Vec<String>,
    /// DIDs to request from a Jetstream source (repeatable).
    #[arg(
        long = "wanted-did",
        env = "SKYSTREAM_WANTED_DIDS",
        value_delimiter = ','
    )]
    pub wanted_dids: Vec<String>,
}

/// `skystream record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Source, database, metrics and timers.
    #[command(flatten)]
    pub ingest: IngestArgs,
    /// The capture file to write (relay frames verbatim, or Jetstream JSON lines). A name
    /// ending in `.zst` is zstd-compressed. An existing uncompressed file is appended to.
    #[arg(long, env = "SKYSTREAM_OUT", value_name = "FILE")]
    pub out: PathBuf,
    /// Stop after this many events.
    #[arg(long, env = "SKYSTREAM_MAX_EVENTS")]
    pub max_events: Option<u64>,
    /// Stop after this long (e.g. 30s, 5m, 1h).
    #[arg(long, env = "SKYSTREAM_DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

/// `skystream serve` and `skystream ingest`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Source, database, metrics and timers (the database also reads DATABASE_URL).
    #[command(flatten)]
    pub ingest: IngestArgs,
    /// The feed configuration (TOML). Without it, ./skystream.toml if present, else the built-in
    /// example feeds.
    #[arg(long, env = "SKYSTREAM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address for the HTTP server (overrides [service] listen).
    #[arg(long, env = "SKYSTREAM_LISTEN", value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Public hostname, for did:web and the service endpoint (overrides [service] hostname).
    #[arg(long, env = "SKYSTREAM_HOSTNAME")]
    pub hostname: Option<String>,
    /// Serve HTTP only; another process ingests into the shared database.
    #[arg(long, env = "SKYSTREAM_NO_INGEST")]
    pub no_ingest: bool,
    /// /health fails when ingest lags event time by more than this.
    #[arg(long, env = "SKYSTREAM_MAX_LAG", default_value = "5m", value_parser = parse_duration)]
    pub max_lag: Duration,
    /// Do not serve the web console (status and feed preview) at /.
    #[arg(long, env = "SKYSTREAM_NO_CONSOLE")]
    pub no_console: bool,
}

/// `skystream publish` and `unpublish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The feed configuration (TOML); default ./skystream.toml.
    #[arg(
        long,
        env = "SKYSTREAM_CONFIG",
        value_name = "FILE",
        default_value = "skystream.toml"
    )]
    pub config: PathBuf,
    /// Only this feed (required for unpublish).
    #[arg(long, env = "SKYSTREAM_FEED")]
    pub feed: Option<String>,
    /// The publishing account's PDS.
    #[arg(long, env = "SKYSTREAM_PDS", default_value = "https://bsky.social")]
    pub pds: String,
    /// The publishing account's handle (or DID).
    #[arg(long, env = "SKYSTREAM_HANDLE")]
    pub handle: String,
    /// An app password for that account (prefer the environment variable).
    #[arg(long, env = "SKYSTREAM_APP_PASSWORD", hide_env_values = true)]
    pub app_password: String,
    /// Public hostname (overrides [service] hostname), for the service DID.
    #[arg(long, env = "SKYSTREAM_HOSTNAME")]
    pub hostname: Option<String>,
}

/// `skystream verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The feed configuration (TOML); default ./skystream.toml.
    #[arg(
        long,
        env = "SKYSTREAM_CONFIG",
        value_name = "FILE",
        default_value = "skystream.toml"
    )]
    pub config: PathBuf,
    /// The publishing account's PDS.
    #[arg(long, env = "SKYSTREAM_PDS", default_value = "https://bsky.social")]
    pub pds: String,
    /// Where the service answers (default https://{hostname}).
    #[arg(long, env = "SKYSTREAM_SERVICE_URL")]
    pub service_url: Option<String>,
    /// Public hostname (overrides [service] hostname).
    #[arg(long, env = "SKYSTREAM_HOSTNAME")]
    pub hostname: Option<String>,
}

/// `skystream migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The database: a SQLite file path (default), or postgres://…
    #[arg(
        long,
        env = "SKYSTREAM_DATABASE",
        default_value = "./skystream.db",
        value_name = "URL"
    )]
    pub database: String,
}

/// Parses `500ms`, `30s`, `5m`, `2h`, `1d`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (try 500ms, 30s, 5m, 2h)"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        other => {
            return Err(format!(
                "unknown duration unit {other:?} (use ms, s, m, h or d)"
            ))
        }
    };
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }
}
