//! The config file, `skystream.toml`: `[service]`, `[ingest]` and `[[feed]]` tables.
//!
//! Every key is checked: an unknown key, a value of the wrong type, or a value refused on its
//! merits (a duplicate feed id, an unknown language code, a bad regex or duration, a display
//! name over 24 graphemes) is a [`ConfigError`] with the line and column of the offending value.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use skystream_syntax::is_valid_did;
use toml::Spanned;

use crate::duration::parse_duration;
use crate::features::MediaKind;
use crate::feed::{Auth, ContentMode, Feed, FeedConfig, FeedError, Filters, Replies};
use crate::rank::{Ranking, DEFAULT_HALF_LIFE};

/// The address the server listens on unless `[service] listen` says otherwise.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:3000";
/// How many recent posts the indexer keeps per feed unless `[ingest] recent_window` says
/// otherwise.
pub const DEFAULT_RECENT_WINDOW: u64 = 100_000;

/// The whole config file.
#[derive(Clone, Debug)]
pub struct Config {
    /// `[service]`: how the feed generator is reached and who publishes its feeds.
    pub service: ServiceConfig,
    /// `[ingest]`: where posts come from and where they are kept.
    pub ingest: IngestConfig,
    /// The `[[feed]]` tables, compiled, in file order.
    pub feeds: Vec<Feed>,
    /// `[jetstream]`: when present (and not `enabled = false`), `serve` also serves its
    /// stream as Jetstream v1 at `/subscribe`.
    pub jetstream: Option<JetstreamConfig>,
}

/// `[jetstream]`: the Jetstream server `serve` runs beside the feeds. Every key is optional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JetstreamConfig {
    /// Off when false (the section can stay in the file).
    pub enabled: bool,
    /// Where the replay log lives.
    pub data_dir: std::path::PathBuf,
    /// The zstd dictionary for compressed subscribers (Jetstream v1's).
    pub dictionary: Option<std::path::PathBuf>,
    /// How long the replay log keeps events.
    pub retention: Duration,
    /// The shortest `informCursorSeconds` honoured.
    pub inform_cursor_floor_secs: u64,
    /// Keep backfilled events in the log (off: live subscribers would see old records as new).
    pub include_backfill: bool,
}

/// `[service]`. Every key is optional; the server may take missing ones from flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// The public hostname (with an optional `:port`), e.g. `feeds.example.com`.
    pub hostname: Option<String>,
    /// The feed generator's DID, when it is not `did:web:{hostname}`.
    pub service_did: Option<String>,
    /// The DID of the account whose repository holds the feed records.
    pub publisher_did: Option<String>,
    /// The address to listen on.
    pub listen: SocketAddr,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            hostname: None,
            service_did: None,
            publisher_did: None,
            listen: SocketAddr::from(([0, 0, 0, 0], 3000)),
        }
    }
}

impl ServiceConfig {
    /// The feed generator's DID: `service_did`, else `did:web:{hostname}` (a port's `:` written
    /// `%3A`, as did:web requires).
    pub fn did(&self) -> Option<String> {
        if let Some(did) = &self.service_did {
            return Some(did.clone());
        }
        self.hostname
            .as_ref()
            .map(|h| format!("did:web:{}", h.replace(':', "%3A")))
    }

    /// The AT-URI of feed `id`'s record, `at://{publisher_did}/app.bsky.feed.generator/{id}`,
    /// when the publisher is known.
    pub fn feed_uri(&self, id: &str) -> Option<String> {
        self.publisher_did
            .as_ref()
            .map(|did| format!("at://{did}/app.bsky.feed.generator/{id}"))
    }
}

/// `[ingest]`. Every key is optional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestConfig {
    /// The source spec (as the `--source` flag takes it).
    pub source: Option<String>,
    /// The database URL (as the `--database` flag takes it).
    pub database: Option<String>,
    /// How many recent posts the indexer keeps per feed.
    pub recent_window: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            source: None,
            database: None,
            recent_window: DEFAULT_RECENT_WINDOW,
        }
    }
}

/// The kinds of config error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigErrorKind {
    /// The file could not be read.
    Io,
    /// Not TOML, or not the config's shape: a syntax error, an unknown key, a wrong type, a
    /// missing key.
    Toml,
    /// A value refused on its merits: a duplicate feed id, an unknown language code, a bad
    /// regex or duration, a display name too long, …
    Invalid,
}

impl ConfigErrorKind {
    /// A stable snake_case name, for metrics.
    pub fn name(self) -> &'static str {
        match self {
            ConfigErrorKind::Io => "io",
            ConfigErrorKind::Toml => "toml",
            ConfigErrorKind::Invalid => "invalid",
        }
    }
}

/// A refused config file, with where and why: displayed `path:line:column: reason`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, as given.
    pub path: String,
    /// The 1-based line of the offending value (0 when there is none, as for I/O errors).
    pub line: usize,
    /// The 1-based column, in characters (0 when there is no line).
    pub column: usize,
    /// The kind.
    pub kind: ConfigErrorKind,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path, self.reason)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path, self.line, self.column, self.reason
            )
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and checks the config file at `path`. A relative `avatar` is made relative to the
    /// file's directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: shown.clone(),
            line: 0,
            column: 0,
            kind: ConfigErrorKind::Io,
            reason: e.to_string(),
        })?;
        let mut config = Config::from_toml_str(&text, &shown)?;
        if let Some(dir) = path.parent() {
            for feed in &mut config.feeds {
                feed.resolve_avatar(dir);
            }
        }
        Ok(config)
    }

    /// Parses and checks a config file's text; `path_for_errors` names it in errors.
    pub fn from_toml_str(text: &str, path_for_errors: &str) -> Result<Config, ConfigError> {
        let error = |span: Option<Range<usize>>, kind: ConfigErrorKind, reason: String| {
            let (line, column) = span.map_or((0, 0), |s| line_column(text, s.start));
            ConfigError {
                path: path_for_errors.to_string(),
                line,
                column,
                kind,
                reason,
            }
        };
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| error(e.span(), ConfigErrorKind::Toml, e.message().to_string()))?;
        let invalid = |span: Range<usize>, reason: String| {
            error(Some(span), ConfigErrorKind::Invalid, reason)
        };

        let service = match raw.service {
            None => ServiceConfig::default(),
            Some(s) => s.into_config().map_err(|(span, r)| invalid(span, r))?,
        };
        let ingest = match raw.ingest {
            None => IngestConfig::default(),
            Some(i) => i.into_config().map_err(|(span, r)| invalid(span, r))?,
        };

        let jetstream = match raw.jetstream {
            None => None,
            Some(j) => Some(j.into_config().map_err(|(span, r)| invalid(span, r))?),
        };

        let mut feeds: Vec<Feed> = Vec::with_capacity(raw.feed.len());
        let mut id_spans: Vec<Range<usize>> = Vec::with_capacity(raw.feed.len());
        for raw_feed in raw.feed {
            let id_span = raw_feed.id.span();
            if let Some(first) = feeds.iter().position(|f| f.id() == raw_feed.id.get_ref()) {
                let (line, _) = line_column(text, id_spans[first].start);
                return Err(invalid(
                    id_span,
                    format!(
                        "duplicate feed id \"{}\" (first defined on line {line})",
                        raw_feed.id.get_ref()
                    ),
                ));
            }
            let feed = raw_feed.compile().map_err(|(span, r)| invalid(span, r))?;
            feeds.push(feed);
            id_spans.push(id_span);
        }
        Ok(Config {
            service,
            ingest,
            feeds,
            jetstream,
        })
    }

    /// The feed with id `id`.
    pub fn feed(&self, id: &str) -> Option<&Feed> {
        self.feeds.iter().find(|f| f.id() == id)
    }
}

/// The 1-based line and column (in characters) of byte `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

type Spot = (Range<usize>, String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    service: Option<RawService>,
    ingest: Option<RawIngest>,
    jetstream: Option<RawJetstream>,
    #[serde(default)]
    feed: Vec<RawFeed>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJetstream {
    enabled: Option<bool>,
    data_dir: Option<String>,
    dictionary: Option<String>,
    retention: Option<Spanned<String>>,
    inform_cursor_floor_secs: Option<Spanned<u64>>,
    include_backfill: Option<bool>,
}

impl RawJetstream {
    fn into_config(self) -> Result<JetstreamConfig, Spot> {
        let retention = duration(&self.retention, Duration::from_secs(24 * 3600))?;
        let floor = match self.inform_cursor_floor_secs {
            Some(f) if *f.get_ref() == 0 || *f.get_ref() > 600 => {
                return Err((
                    f.span(),
                    "inform_cursor_floor_secs: between 1 and 600 seconds".to_owned(),
                ))
            }
            Some(f) => f.into_inner(),
            None => 60,
        };
        Ok(JetstreamConfig {
            enabled: self.enabled.unwrap_or(true),
            data_dir: self
                .data_dir
                .unwrap_or_else(|| "jetstream-data".into())
                .into(),
            dictionary: self.dictionary.map(Into::into),
            retention,
            inform_cursor_floor_secs: floor,
            include_backfill: self.include_backfill.unwrap_or(false),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    hostname: Option<Spanned<String>>,
    service_did: Option<Spanned<String>>,
    publisher_did: Option<Spanned<String>>,
    listen: Option<Spanned<String>>,
}

impl RawService {
    fn into_config(self) -> Result<ServiceConfig, Spot> {
        let mut config = ServiceConfig::default();
        if let Some(host) = self.hostname {
            let h = host.get_ref();
            let ok = !h.is_empty()
                && h.len() <= 253
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':');
            if !ok {
                return Err((
                    host.span(),
                    format!("bad hostname {h:?}: a host name such as \"feeds.example.com\", without scheme or path"),
                ));
            }
            config.hostname = Some(h.to_ascii_lowercase());
        }
        for (field, value, slot) in [
            ("service_did", self.service_did, &mut config.service_did),
            (
                "publisher_did",
                self.publisher_did,
                &mut config.publisher_did,
            ),
        ] {
            if let Some(did) = value {
                if !is_valid_did(did.get_ref()) {
                    return Err((
                        did.span(),
                        format!("{field}: not a DID: {:?}", did.get_ref()),
                    ));
                }
                *slot = Some(did.into_inner());
            }
        }
        if let Some(listen) = self.listen {
            config.listen = listen.get_ref().parse().map_err(|_| {
                (
                    listen.span(),
                    format!(
                        "bad listen address {:?}: expected an IP address and port, such as \"{DEFAULT_LISTEN}\"",
                        listen.get_ref()
                    ),
                )
            })?;
        }
        Ok(config)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIngest {
    source: Option<String>,
    database: Option<String>,
    recent_window: Option<Spanned<u64>>,
}

impl RawIngest {
    fn into_config(self) -> Result<IngestConfig, Spot> {
        let recent_window = match self.recent_window {
            None => DEFAULT_RECENT_WINDOW,
            Some(w) if *w.get_ref() == 0 => {
                return Err((w.span(), "recent_window must be at least 1".to_string()))
            }
            Some(w) => w.into_inner(),
        };
        Ok(IngestConfig {
            source: self.source,
            database: self.database,
            recent_window,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RankingKind {
    Chronological,
    Engagement,
}

type Strings = Option<Spanned<Vec<Spanned<String>>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    id: Spanned<String>,
    display_name: Spanned<String>,
    description: Option<Spanned<String>>,
    avatar: Option<Spanned<String>>,
    auth: Option<Auth>,
    max_age: Option<Spanned<String>>,
    accepts_interactions: Option<bool>,
    content_mode: Option<Spanned<ContentMode>>,
    ranking: Option<Spanned<RankingKind>>,
    half_life: Option<Spanned<String>>,
    languages: Strings,
    language_confidence: Option<Spanned<f64>>,
    keywords: Strings,
    keywords_out: Strings,
    regex: Option<Spanned<String>>,
    regex_out: Option<Spanned<String>>,
    hashtags: Strings,
    authors: Strings,
    authors_out: Strings,
    mentions: Strings,
    replies: Option<Replies>,
    reposts: Option<bool>,
    media: Option<Spanned<Vec<MediaKind>>>,
    labels_out: Strings,
    min_likes: Option<u64>,
}

/// A key of a `[[feed]]` table: its name, the span of its value, and those of a list's entries.
type KeySpans = (&'static str, Range<usize>, Vec<Range<usize>>);

/// Where each key of a `[[feed]]` table is, for errors.
struct Spans {
    id: Range<usize>,
    keys: Vec<KeySpans>,
}

impl Spans {
    fn of(&self, field: &str, index: Option<usize>) -> Range<usize> {
        self.keys
            .iter()
            .find(|(name, _, _)| *name == field)
            .map(|(_, whole, items)| {
                index
                    .and_then(|i| items.get(i).cloned())
                    .unwrap_or_else(|| whole.clone())
            })
            .unwrap_or_else(|| self.id.clone())
    }

    fn add<T>(&mut self, field: &'static str, value: &Option<Spanned<T>>) {
        if let Some(v) = value {
            self.keys.push((field, v.span(), Vec::new()));
        }
    }

    fn strings(&mut self, field: &'static str, value: Strings) -> Vec<String> {
        match value {
            None => Vec::new(),
            Some(list) => {
                let whole = list.span();
                let items = list.into_inner();
                self.keys
                    .push((field, whole, items.iter().map(Spanned::span).collect()));
                items.into_iter().map(Spanned::into_inner).collect()
            }
        }
    }
}

fn duration(value: &Option<Spanned<String>>, default: Duration) -> Result<Duration, Spot> {
    match value {
        None => Ok(default),
        Some(v) => parse_duration(v.get_ref()).map_err(|e| (v.span(), e)),
    }
}

impl RawFeed {
    fn compile(self) -> Result<Feed, Spot> {
        let mut spans = Spans {
            id: self.id.span(),
            keys: Vec::new(),
        };
        spans.keys.push(("id", self.id.span(), Vec::new()));
        spans
            .keys
            .push(("display_name", self.display_name.span(), Vec::new()));
        spans.add("description", &self.description);
        spans.add("avatar", &self.avatar);
        spans.add("max_age", &self.max_age);
        spans.add("content_mode", &self.content_mode);
        spans.add("half_life", &self.half_life);
        spans.add("language_confidence", &self.language_confidence);
        spans.add("regex", &self.regex);
        spans.add("regex_out", &self.regex_out);
        spans.add("media", &self.media);

        let max_age = duration(&self.max_age, crate::feed::DEFAULT_MAX_AGE)?;
        let half_life = duration(&self.half_life, DEFAULT_HALF_LIFE)?;
        let ranking = match self.ranking.as_ref().map(|r| *r.get_ref()) {
            None | Some(RankingKind::Chronological) => {
                if let Some(h) = &self.half_life {
                    return Err((
                        h.span(),
                        "half_life applies only to ranking = \"engagement\"".to_string(),
                    ));
                }
                Ranking::Chronological
            }
            Some(RankingKind::Engagement) => {
                // A repost is an item of its own at the time it is made, which has no place
                // in an order by score; in a ranked feed reposts count toward the score.
                if let (Some(true), Some(r)) = (self.reposts, &self.ranking) {
                    return Err((
                        r.span(),
                        "reposts = true needs ranking = \"chronological\": a ranked feed counts reposts toward each post's score instead".to_string(),
                    ));
                }
                Ranking::Engagement { half_life }
            }
        };
        let filters = Filters {
            languages: spans.strings("languages", self.languages),
            language_confidence: self.language_confidence.map_or(
                crate::feed::DEFAULT_LANGUAGE_CONFIDENCE,
                Spanned::into_inner,
            ),
            keywords: spans.strings("keywords", self.keywords),
            keywords_out: spans.strings("keywords_out", self.keywords_out),
            regex: self.regex.map(Spanned::into_inner),
            regex_out: self.regex_out.map(Spanned::into_inner),
            hashtags: spans.strings("hashtags", self.hashtags),
            authors: spans.strings("authors", self.authors),
            authors_out: spans.strings("authors_out", self.authors_out),
            mentions: spans.strings("mentions", self.mentions),
            replies: self.replies.unwrap_or_default(),
            reposts: self.reposts.unwrap_or(false),
            media: self.media.map(Spanned::into_inner).unwrap_or_default(),
            labels_out: spans.strings("labels_out", self.labels_out),
            min_likes: self.min_likes.unwrap_or(0),
        };
        let config = FeedConfig {
            id: self.id.into_inner(),
            display_name: self.display_name.into_inner(),
            description: self.description.map(Spanned::into_inner),
            avatar: self.avatar.map(|a| a.into_inner().into()),
            auth: self.auth.unwrap_or_default(),
            max_age,
            accepts_interactions: self.accepts_interactions.unwrap_or(false),
            content_mode: self
                .content_mode
                .map(Spanned::into_inner)
                .unwrap_or_default(),
            ranking,
            filters,
        };
        Feed::new(config).map_err(
            |FeedError {
                 field,
                 index,
                 reason,
             }| { (spans.of(field, index), reason) },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let text = "a\nbæ c\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 2), (2, 1));
        assert_eq!(line_column(text, 6), (2, 4));
        assert_eq!(line_column(text, 99), (3, 1));
    }

    #[test]
    fn service_did_defaults_to_did_web() {
        let mut s = ServiceConfig {
            hostname: Some("feeds.example.com".into()),
            ..ServiceConfig::default()
        };
        assert_eq!(s.did().as_deref(), Some("did:web:feeds.example.com"));
        s.hostname = Some("localhost:3000".into());
        assert_eq!(s.did().as_deref(), Some("did:web:localhost%3A3000"));
        s.service_did = Some("did:plc:abc".into());
        assert_eq!(s.did().as_deref(), Some("did:plc:abc"));
        assert_eq!(s.feed_uri("all"), None);
        s.publisher_did = Some("did:plc:pub".into());
        assert_eq!(
            s.feed_uri("all").as_deref(),
            Some("at://did:plc:pub/app.bsky.feed.generator/all")
        );
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
    }
}
