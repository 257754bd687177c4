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
    /// Write a commented skystream.toml to start from (the example feeds, your hostname,
    /// publisher, source, database and auth), then print the next steps. Never overwrites.
    Init(InitArgs),
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
    /// Read history from repositories (listRepos + getRepo) into the feeds and/or a file:
    /// bounded by days, resumable, throttled. `backfill status` shows the progress.
    Backfill(BackfillArgs),
    /// Publish the firehose to Kafka (or Event Hubs / Fabric) as CloudEvents; the cursor moves
    /// only past events the broker acknowledged.
    #[cfg(feature = "kafka")]
    Kafka(KafkaArgs),
    /// Serve a Jetstream v1 compatible /subscribe from a source, with a durable replay log and
    /// the informCursorSeconds cursor heartbeat.
    Jetstream(JetstreamArgs),
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
    /// file:PATH, simulate:RATE or kafka:BROKERS/TOPIC?group=NAME.
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
    /// Backfill beside live ingest: the last N days (-1: all history; also BACKFILL_DAYS). Live
    /// events for a repository being read wait until it is read. Only one process sharing a
    /// database backfills (a lease in the store).
    #[arg(long, env = "SKYSTREAM_BACKFILL_DAYS", allow_negative_numbers = true)]
    pub backfill_days: Option<i64>,
    /// The relay or PDS whose listRepos enumerates repositories to backfill (also RELAY_URL).
    #[arg(long, env = "SKYSTREAM_BACKFILL_HOST", value_name = "URL")]
    pub backfill_host: Option<String>,
    /// How long the backfill lease outlives a process that stopped without releasing it; the
    /// holder renews it every third of this, and a process that loses it keeps serving.
    #[arg(long = "backfill-lease-ttl", env = "SKYSTREAM_BACKFILL_LEASE_TTL", default_value = "60s", value_parser = parse_duration)]
    pub backfill_lease_ttl: Duration,
    /// /health fails when ingest lags event time by more than this.
    #[arg(long, env = "SKYSTREAM_MAX_LAG", default_value = "5m", value_parser = parse_duration)]
    pub max_lag: Duration,
    /// Do not serve the web console (status and feed preview) at /.
    #[arg(long, env = "SKYSTREAM_NO_CONSOLE")]
    pub no_console: bool,
}

/// CloudEvents layouts for `kafka --content-mode`.
#[cfg(feature = "kafka")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ContentModeArg {
    /// The whole CloudEvent as a JSON object in the message value.
    Structured,
    /// The data in the value, the attributes in ce_* headers.
    Binary,
}

/// `skystream kafka`. The seed bridge's environment variables are read as fallbacks when the
/// `SKYSTREAM_*` one is unset (see `kafka::seed_env`).
#[cfg(feature = "kafka")]
#[derive(Debug, Args)]
pub struct KafkaArgs {
    /// Source, database, metrics and timers (default source: relay:wss://bsky.network).
    #[command(flatten)]
    pub ingest: IngestArgs,
    /// Kafka bootstrap servers, host:port[,host:port] (or KAFKA_BOOTSTRAP_SERVERS).
    #[arg(
        long,
        env = "SKYSTREAM_KAFKA_BOOTSTRAP_SERVERS",
        value_name = "SERVERS"
    )]
    pub kafka_bootstrap_servers: Option<String>,
    /// The topic (or KAFKA_TOPIC; with --connection-string, its EntityPath when not given).
    #[arg(long, env = "SKYSTREAM_KAFKA_TOPIC", value_name = "TOPIC")]
    pub kafka_topic: Option<String>,
    /// SASL PLAIN user, over SASL_SSL (or SASL_USERNAME).
    #[arg(long, env = "SKYSTREAM_SASL_USERNAME")]
    pub sasl_username: Option<String>,
    /// SASL PLAIN password (or SASL_PASSWORD; prefer the environment).
    #[arg(long, env = "SKYSTREAM_SASL_PASSWORD", hide_env_values = true)]
    pub sasl_password: Option<String>,
    /// An Event Hubs / Fabric Event Streams connection string: bootstrap from Endpoint (port
    /// 9093), topic from EntityPath, SASL_SSL PLAIN as $ConnectionString (or
    /// EVENTHUB_CONNECTION_STRING, CONNECTION_STRING).
    #[arg(long, env = "SKYSTREAM_CONNECTION_STRING", hide_env_values = true)]
    pub connection_string: Option<String>,
    /// Record collections to publish: post, like, repost, follow, block, profile, or NSIDs
    /// (or BLUESKY_COLLECTIONS). Default post,like,repost,follow. Identity and account events
    /// are always published.
    #[arg(long, env = "SKYSTREAM_COLLECTIONS", value_delimiter = ',')]
    pub collections: Vec<String>,
    /// Fraction of events to publish, 0.0 to 1.0, chosen by a hash of the event id so reruns
    /// pick the same events (or BLUESKY_SAMPLE_RATE). Default 1.0.
    #[arg(long, env = "SKYSTREAM_SAMPLE_RATE")]
    pub sample_rate: Option<f64>,
    /// CloudEvents content mode (or CLOUDEVENTS_MODE). Default structured.
    #[arg(long, env = "SKYSTREAM_CONTENT_MODE", value_enum)]
    pub content_mode: Option<ContentModeArg>,
    /// A librdkafka setting, key=value, applied last (repeatable; in the environment one per
    /// line).
    #[arg(
        long = "kafka-option",
        env = "SKYSTREAM_KAFKA_OPTIONS",
        value_delimiter = '\n',
        value_name = "KEY=VALUE"
    )]
    pub kafka_options: Vec<String>,
    /// Where messages that can never be delivered go (too large, refused as invalid, not
    /// authorized): a JSON record with the reason, the event's cursor, id and subject. Without
    /// it they are skipped; either way they are counted and logged, and the stream goes on.
    #[arg(long, env = "SKYSTREAM_KAFKA_DEAD_LETTER_TOPIC", value_name = "TOPIC")]
    pub dead_letter_topic: Option<String>,
    /// The largest message sent (key, value and headers); larger ones are dead-lettered. Kafka's
    /// default is 1,000,000 bytes; Event Hubs takes 1,048,576.
    #[arg(long, env = "SKYSTREAM_KAFKA_MAX_MESSAGE_BYTES", default_value_t = skystream_kafka::sink::DEFAULT_MAX_MESSAGE_BYTES, value_name = "BYTES")]
    pub max_message_bytes: usize,
    /// Keep the upstream cursor in this file ({"cursor": N}, the seed bridge's format) instead
    /// of the database (or BLUESKY_CURSOR_FILE).
    #[arg(long, env = "SKYSTREAM_CURSOR_FILE", value_name = "FILE")]
    pub cursor_file: Option<PathBuf>,
    /// The seed bridge's firehose flag: a relay URL, used as --source relay:URL when --source
    /// is not given (or BLUESKY_FIREHOSE_URL).
    #[arg(long, env = "SKYSTREAM_FIREHOSE_URL", value_name = "URL")]
    pub firehose_url: Option<String>,
    /// The CloudEvents `source` attribute: a stable URI naming this deployment.
    #[arg(
        long,
        env = "SKYSTREAM_CLOUDEVENTS_SOURCE",
        default_value = skystream_kafka::cloudevent::DEFAULT_SOURCE,
        value_name = "URI"
    )]
    pub cloudevents_source: String,
    /// Stop after this many events.
    #[arg(long, env = "SKYSTREAM_MAX_EVENTS")]
    pub max_events: Option<u64>,
}

/// `skystream init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the config; an existing file is never replaced.
    #[arg(
        long,
        env = "SKYSTREAM_CONFIG",
        value_name = "FILE",
        default_value = "skystream.toml"
    )]
    pub config: PathBuf,
    /// The public hostname the feed generator answers on; its DID is did:web:{hostname}.
    #[arg(long, env = "SKYSTREAM_HOSTNAME", default_value = "localhost")]
    pub hostname: String,
    /// The DID of the account whose repository will hold the feed records (`publish` fills
    /// it in when it is not given).
    #[arg(long, env = "SKYSTREAM_PUBLISHER_DID", value_name = "DID")]
    pub publisher_did: Option<String>,
    /// Where posts come from, as --source takes it (default: the public Jetstream hosts).
    #[arg(long, env = "SKYSTREAM_SOURCE", value_name = "SPEC")]
    pub source: Option<String>,
    /// Where the index and the cursor are kept: sqlite:PATH or postgres://USER@HOST/DATABASE.
    #[arg(
        long,
        env = "SKYSTREAM_DATABASE",
        default_value = "sqlite:skystream.db",
        value_name = "URL"
    )]
    pub database: String,
    /// The address to listen on (default 0.0.0.0:3000).
    #[arg(long, env = "SKYSTREAM_LISTEN", value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Requester auth for every feed: off, optional (a token is checked when sent) or
    /// required.
    #[arg(long, env = "SKYSTREAM_AUTH", value_enum, default_value = "off")]
    pub auth: AuthArg,
}

/// Requester auth, as `init --auth` sets it on each feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuthArg {
    /// No token is asked for.
    Off,
    /// A token is checked when one is sent.
    Optional,
    /// Every request needs a valid token.
    Required,
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

/// `skystream backfill`. Knobs also read the backfill service's environment names
/// (`BACKFILL_DAYS`, `BACKFILL_BATCH_SIZE`, `BACKFILL_BATCH_DELAY_MS`, `BACKFILL_MAX_CONCURRENT`,
/// `BACKFILL_MAX_MEMORY_MB`, `BACKFILL_USE_IDLE`, `RELAY_URL`, `DATABASE_URL`).
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// `status`: show the progress kept in the database and exit.
    #[command(subcommand)]
    pub action: Option<BackfillAction>,
    /// How far back: N days, -1 for all history, 0 for off (also BACKFILL_DAYS).
    #[arg(long, env = "SKYSTREAM_BACKFILL_DAYS", allow_negative_numbers = true)]
    pub days: Option<i64>,
    /// Backfill these repositories (repeatable) instead of every one the host lists.
    #[arg(
        long = "repo",
        env = "SKYSTREAM_BACKFILL_REPOS",
        value_delimiter = ',',
        value_name = "DID"
    )]
    pub repos: Vec<String>,
    /// The relay or PDS whose listRepos enumerates repositories (also RELAY_URL).
    #[arg(long, env = "SKYSTREAM_BACKFILL_HOST", value_name = "URL")]
    pub host: Option<String>,
    /// Collections to keep (all when not given).
    #[arg(long, env = "SKYSTREAM_BACKFILL_COLLECTIONS", value_delimiter = ',')]
    pub collections: Vec<String>,
    /// The database (its feeds are filled, and the progress is kept there; also DATABASE_URL).
    #[arg(
        long,
        global = true,
        env = "SKYSTREAM_DATABASE",
        default_value = "./skystream.db",
        value_name = "URL"
    )]
    pub database: String,
    /// The feed configuration whose feeds the records are indexed into (default
    /// ./skystream.toml, else the built-in example feeds).
    #[arg(long, env = "SKYSTREAM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Do not index into the feeds (with --out: only export).
    #[arg(long, env = "SKYSTREAM_BACKFILL_NO_INDEX")]
    pub no_index: bool,
    /// Also append what is backfilled to FILE as Jetstream JSON lines (replayable with file:).
    #[arg(long, env = "SKYSTREAM_BACKFILL_OUT", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Repositories per batch (also BACKFILL_BATCH_SIZE; default 5).
    #[arg(long, env = "SKYSTREAM_BACKFILL_BATCH_SIZE")]
    pub batch_size: Option<usize>,
    /// Pause between batches in ms (also BACKFILL_BATCH_DELAY_MS; default 2000).
    #[arg(long, env = "SKYSTREAM_BACKFILL_BATCH_DELAY_MS")]
    pub batch_delay_ms: Option<u64>,
    /// Repositories read at once (also BACKFILL_MAX_CONCURRENT; default 2).
    #[arg(long, env = "SKYSTREAM_BACKFILL_MAX_CONCURRENT")]
    pub max_concurrent: Option<usize>,
    /// Pause while resident memory is above this many MB (also BACKFILL_MAX_MEMORY_MB; default
    /// 512; 0 = no ceiling).
    #[arg(long, env = "SKYSTREAM_BACKFILL_MAX_MEMORY_MB")]
    pub max_memory_mb: Option<u64>,
    /// Most requests per second to any one host.
    #[arg(long, env = "SKYSTREAM_BACKFILL_RATE", default_value = "10")]
    pub requests_per_second: f64,
    /// Attempts per repository before it is left failed.
    #[arg(long, env = "SKYSTREAM_BACKFILL_MAX_ATTEMPTS", default_value = "3")]
    pub max_attempts: u32,
    /// Largest repository export accepted, in MB.
    #[arg(long, env = "SKYSTREAM_BACKFILL_MAX_REPO_MB", default_value = "1024")]
    pub max_repo_mb: u64,
    /// The PLC directory that resolves did:plc to each repository's PDS.
    #[arg(
        long,
        env = "SKYSTREAM_PLC_URL",
        default_value = "https://plc.directory",
        value_name = "URL"
    )]
    pub plc_url: String,
    /// How long the backfill lease outlives a process that stopped without releasing it (only
    /// one process backfills a database; it renews the lease every third of this).
    #[arg(long, env = "SKYSTREAM_BACKFILL_LEASE_TTL", default_value = "60s", value_parser = parse_duration)]
    pub lease_ttl: Duration,
    /// Fetch every repository from --host instead of resolving its PDS.
    #[arg(long, env = "SKYSTREAM_BACKFILL_NO_RESOLVE")]
    pub no_resolve: bool,
}

/// `skystream backfill` subcommands.
#[derive(Debug, Subcommand)]
pub enum BackfillAction {
    /// Show the progress kept in the database.
    Status,
    /// Give failed repositories a fresh start (attempts reset): the named ones, or every
    /// failed one. The next backfill run reads them again.
    Retry {
        /// Repositories to retry (all failed ones when none are named).
        #[arg(value_name = "DID")]
        dids: Vec<String>,
    },
}

/// `skystream jetstream`.
#[derive(Debug, Args)]
pub struct JetstreamArgs {
    /// Source (default relay:wss://bsky.network), cursor database (default DATA_DIR/cursor.db),
    /// metrics and timers.
    #[command(flatten)]
    pub ingest: IngestArgs,
    /// Address for /subscribe, /health, /metrics and the web console at / (Jetstream's port,
    /// on every interface).
    #[arg(
        long,
        env = "SKYSTREAM_LISTEN",
        default_value = "0.0.0.0:6008",
        value_name = "ADDR"
    )]
    pub listen: std::net::SocketAddr,
    /// The zstd dictionary for compressed subscriptions (Jetstream v1's, jetstream-v1.zdict).
    /// Without it, compress=true is refused with HTTP 400.
    #[arg(long, env = "SKYSTREAM_DICTIONARY", value_name = "FILE")]
    pub dictionary: Option<PathBuf>,
    /// How long events stay in the replay log (e.g. 24h, 90m, 3d).
    #[arg(long, env = "SKYSTREAM_RETENTION", default_value = "24h", value_parser = parse_duration)]
    pub retention: Duration,
    /// Where the replay log (and, by default, the upstream cursor) is kept.
    #[arg(
        long,
        env = "SKYSTREAM_DATA_DIR",
        default_value = "./jetstream-data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,
    /// The shortest informCursorSeconds honoured; requests below it are raised to it (the
    /// longest is 600).
    #[arg(long, env = "SKYSTREAM_INFORM_CURSOR_FLOOR_SECS", default_value_t = 60)]
    pub inform_cursor_floor_secs: u64,
    /// Keep events from a backfill in the log (off: live subscribers would see old records
    /// as new).
    #[arg(long, env = "SKYSTREAM_INCLUDE_BACKFILL")]
    pub include_backfill: bool,
    /// Concurrent subscriptions per client address (0 = no limit).
    #[arg(long, env = "SKYSTREAM_MAX_CONNECTIONS_PER_IP", default_value_t = 100)]
    pub max_connections_per_ip: u32,
    /// Events per second sent to one client address, across its subscriptions (0 = no limit).
    #[arg(long, env = "SKYSTREAM_MAX_EVENTS_PER_IP", default_value_t = 5000)]
    pub max_events_per_ip: u32,
    /// Close a live subscriber that falls this far behind the newest event (default: only
    /// when it falls behind retention).
    #[arg(long, env = "SKYSTREAM_MAX_SUBSCRIBER_LAG", value_parser = parse_duration)]
    pub max_subscriber_lag: Option<Duration>,
    /// Take the client address for per-IP limits from this header's first entry (e.g.
    /// X-Forwarded-For behind a proxy you trust).
    #[arg(long, env = "SKYSTREAM_REAL_IP_HEADER", value_name = "HEADER")]
    pub real_ip_header: Option<String>,
    /// Memory (MiB) for the newest events, which live subscribers read without a disk query.
    #[arg(long, env = "SKYSTREAM_TAIL_MEMORY_MB", default_value_t = 64)]
    pub tail_memory_mb: usize,
    /// Do not serve the web console (status and Jetstream figures) at /.
    #[arg(long, env = "SKYSTREAM_NO_CONSOLE")]
    pub no_console: bool,
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
