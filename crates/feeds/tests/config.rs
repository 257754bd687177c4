//! The config file: the example at the repository root, defaults, and errors with their lines.

use std::net::SocketAddr;
use std::time::Duration;

use skystream_feeds::{
    Auth, Config, ConfigError, ConfigErrorKind, ContentMode, MediaKind, Ranking, Replies,
};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../skystream.example.toml");

fn example_text() -> String {
    std::fs::read_to_string(EXAMPLE).expect("skystream.example.toml at the repository root")
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, "skystream.toml")
}

fn error(text: &str) -> ConfigError {
    match parse(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

const FEED: &str = "[[feed]]\nid = \"t\"\ndisplay_name = \"Test\"\n";

#[test]
fn the_example_has_norskys_four_feeds() {
    let config = Config::load(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<&str> = config.feeds.iter().map(|f| f.id()).collect();
    assert_eq!(ids, ["bokmaal", "nynorsk", "sami", "all"]);
    let languages = |id: &str| {
        config
            .feed(id)
            .map(|f| f.filters().languages.join(","))
            .unwrap_or_default()
    };
    assert_eq!(languages("bokmaal"), "nb");
    assert_eq!(languages("nynorsk"), "nn");
    assert_eq!(languages("sami"), "se,smj,sma,smn,sms");
    assert_eq!(languages("all"), "nb,nn,no,se,smj,sma,smn,sms");
    for feed in &config.feeds {
        assert_eq!(feed.ranking(), Ranking::Chronological, "{}", feed.id());
        assert!(feed.config().description.is_some(), "{}", feed.id());
    }
    assert_eq!(
        config.service.did().as_deref(),
        Some("did:web:feeds.example.com")
    );
    assert_eq!(config.ingest.recent_window, 100_000);
    assert!(config.ingest.source.is_some() && config.ingest.database.is_some());
}

#[test]
fn the_examples_commented_engagement_feed_is_valid() {
    let text = example_text();
    let start = text
        .find("# [[feed]]")
        .expect("a commented [[feed]] in the example");
    let uncommented: String = text[start..]
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let config =
        parse(&format!("{}\n{uncommented}\n", &text[..start])).unwrap_or_else(|e| panic!("{e}"));
    let feed = config.feeds.last().expect("five feeds");
    assert_eq!(config.feeds.len(), 5);
    assert_eq!(
        feed.ranking(),
        Ranking::Engagement {
            half_life: Duration::from_secs(6 * 3600)
        }
    );
    assert!(!feed.filters().keywords.is_empty());
    assert!(!feed.filters().hashtags.is_empty());
    assert_eq!(feed.filters().replies, Replies::Exclude);
    assert_eq!(feed.config().max_age, Duration::from_secs(3 * 86_400));
}

#[test]
fn an_empty_file_is_all_defaults() {
    let config = parse("").unwrap_or_else(|e| panic!("{e}"));
    assert!(config.feeds.is_empty());
    assert_eq!(
        config.service.listen,
        SocketAddr::from(([0, 0, 0, 0], 3000))
    );
    assert_eq!(config.service.did(), None);
    assert_eq!(config.ingest.recent_window, 100_000);
    assert_eq!(config.ingest.source, None);
}

#[test]
fn feed_defaults_and_every_key() {
    let config = parse(FEED).unwrap_or_else(|e| panic!("{e}"));
    let c = config.feeds[0].config();
    assert_eq!(c.auth, Auth::Off);
    assert_eq!(c.max_age, Duration::from_secs(7 * 86_400));
    assert!(!c.accepts_interactions);
    assert_eq!(c.content_mode, ContentMode::Unspecified);
    assert_eq!(c.ranking, Ranking::Chronological);
    assert_eq!(c.filters.language_confidence, 0.5);
    assert_eq!(c.filters.replies, Replies::Include);

    let text = r##"
[service]
hostname = "Feeds.Example.com"
service_did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
publisher_did = "did:plc:z72i7hdynmk6r22z27h6tvur"
listen = "127.0.0.1:8080"

[ingest]
source = "relay:wss://bsky.network"
database = "postgres://skystream@localhost/skystream"
recent_window = 5000

[[feed]]
id = "video-2"
display_name = "Video"
description = "Videoer"
avatar = "video.JPG"
auth = "required"
max_age = "1d12h"
accepts_interactions = true
content_mode = "video"
ranking = "engagement"
half_life = "90m"
languages = ["NB", "nn", "nb"]
language_confidence = 0.7
keywords = ["fotball"]
keywords_out = ["reklame"]
regex = '(?i)\bmål\b'
regex_out = "spam"
hashtags = ["#Eliteserien", "eliteserien"]
authors = ["did:plc:ewvi7nxzyoun6zhxrhs64oiz"]
authors_out = ["did:plc:44ybard66vv44zksje25o7dz"]
mentions = ["did:plc:z72i7hdynmk6r22z27h6tvur"]
replies = "only"
reposts = false
media = ["video"]
labels_out = ["porn", "graphic-media"]
min_likes = 3
"##;
    let config = parse(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.service.hostname.as_deref(),
        Some("feeds.example.com")
    );
    assert_eq!(
        config.service.did().as_deref(),
        Some("did:plc:ewvi7nxzyoun6zhxrhs64oiz")
    );
    assert_eq!(
        config.service.feed_uri("video-2").as_deref(),
        Some("at://did:plc:z72i7hdynmk6r22z27h6tvur/app.bsky.feed.generator/video-2")
    );
    assert_eq!(config.service.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.ingest.recent_window, 5000);
    let c = config.feeds[0].config();
    assert_eq!(c.auth, Auth::Required);
    assert_eq!(c.max_age, Duration::from_secs(36 * 3600));
    assert!(c.accepts_interactions);
    assert_eq!(c.content_mode, ContentMode::Video);
    assert_eq!(
        c.content_mode.token(),
        "app.bsky.feed.defs#contentModeVideo"
    );
    assert_eq!(
        c.ranking,
        Ranking::Engagement {
            half_life: Duration::from_secs(5400)
        }
    );
    assert_eq!(c.filters.languages, ["nb", "nn"]);
    assert_eq!(c.filters.hashtags, ["eliteserien"]);
    assert_eq!(c.filters.media, [MediaKind::Video]);
    assert_eq!(c.filters.replies, Replies::Only);
    assert!(
        !c.filters.reposts,
        "a ranked feed cannot take reposts as items"
    );
    assert_eq!(c.filters.min_likes, 3);
}

#[test]
fn load_resolves_the_avatar_and_reports_io_errors() {
    let dir = std::env::temp_dir().join(format!("skystream-feeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("skystream.toml");
    std::fs::write(&path, format!("{FEED}avatar = \"assets/t.png\"\n")).expect("write");
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.feeds[0].config().avatar.as_deref(),
        Some(dir.join("assets/t.png").as_path())
    );
    std::fs::remove_dir_all(&dir).expect("clean up");

    let e = Config::load(dir.join("missing.toml")).expect_err("no such file");
    assert_eq!(e.kind, ConfigErrorKind::Io);
    assert_eq!((e.line, e.column), (0, 0));
    assert!(e
        .to_string()
        .starts_with(&dir.join("missing.toml").display().to_string()));
}

/// `(config text, line, column, kind, a fragment of the reason)`.
type ErrorCase = (&'static str, usize, usize, ConfigErrorKind, &'static str);

#[test]
fn errors_have_the_line_column_and_reason() {
    use ConfigErrorKind::{Invalid, Toml};
    let cases: &[ErrorCase] = &[
        (
            "[[feed]]\nid = \"t\"\ndisplay_name = \"Test\"\n\n    langauges = [\"nb\"]\n",
            5, 5, Toml, "unknown field `langauges`, expected one of",
        ),
        ("[[feeds]]\nid = \"t\"\n", 1, 3, Toml, "unknown field `feeds`"),
        ("[service]\nhostname = \"a\"\nport = 3000\n", 3, 1, Toml, "unknown field `port`"),
        (
            "[[feed]]\nid = \"t\n",
            2, 8, Toml, "invalid basic string",
        ),
        (
            "[[feed]]\nid = \"t\"\ndisplay_name = \"Test\"\nlanguages = \"nb\"\n",
            4, 13, Toml, "invalid type: string \"nb\", expected a sequence",
        ),
        (
            "[[feed]]\nid = \"t\"\ndisplay_name = \"Test\"\nreplies = \"sometimes\"\n",
            4, 11, Toml, "unknown variant `sometimes`",
        ),
        (
            "[[feed]]\nid = \"t\"\ndisplay_name = \"Test\"\nmedia = [\"gif\"]\n",
            4, 10, Toml, "unknown variant `gif`",
        ),
        ("[[feed]]\nid = \"t\"\n", 1, 1, Toml, "missing field `display_name`"),
        (
            "[ingest]\nrecent_window = -5\n",
            2, 17, Toml, "",
        ),
        (
            "[[feed]]\nid = \"all\"\ndisplay_name = \"A\"\n\n[[feed]]\nid = \"all\"\ndisplay_name = \"B\"\n",
            6, 6, Invalid, "duplicate feed id \"all\" (first defined on line 2)",
        ),
        (
            "[[feed]]\nid = \"t\"\ndisplay_name = \"Test\"\nlanguages = [\"nb\", \"xx\"]\n",
            4, 20, Invalid, "unknown language code \"xx\"",
        ),
        (
            "[[feed]]\nid = \"t\"\ndisplay_name = \"Test\"\nlanguages = [\"nb-NO\"]\n",
            4, 14, Invalid, "write \"nb\"",
        ),
        (
            "[[feed]]\nid = \"t\"\ndisplay_name = \"Test\"\nregex = \"(unclosed\"\n",
            4, 9, Invalid, "bad regex \"(unclosed\": unclosed group",
        ),
        (
            "[[feed]]\nid = \"t\"\ndisplay_name = \"Test\"\nreposts = true\nranking = \"engagement\"\n",
            5, 11, Invalid, "reposts = true needs ranking = \"chronological\"",
        ),
        (
            "[[feed]]\nid = \"t\"\ndisplay_name = \"Test\"\nmax_age = \"7 days\"\n",
            4, 11, Invalid, "bad duration \"7 days\"",
        ),
        (
            "[[feed]]\nid = \"t\"\ndisplay_name = \"Test\"\nhalf_life = \"6h\"\n",
            4, 13, Invalid, "half_life applies only to ranking = \"engagement\"",
        ),
        (
            "[[feed]]\nid = \"Bokmål\"\ndisplay_name = \"Test\"\n",
            2, 6, Invalid, "may only have lowercase letters",
        ),
        (
            "[[feed]]\nid = \"a-very-long-feed-id\"\ndisplay_name = \"Test\"\n",
            2, 6, Invalid, "1 to 15 characters",
        ),
        (
            "[[feed]]\nid = \"t\"\ndisplay_name = \"Norske innlegg om alt mulig\"\n",
            3, 16, Invalid, "display_name is 27 graphemes; at most 24",
        ),
        (
            "[[feed]]\nid = \"t\"\ndisplay_name = \"\"\n",
            3, 16, Invalid, "display name is empty",
        ),
        (
            "[[feed]]\nid = \"t\"\ndisplay_name = \"Test\"\nauthors = [\n  \"did:plc:ewvi7nxzyoun6zhxrhs64oiz\",\n  \"nrk.no\",\n]\n",
            6, 3, Invalid, "not a DID: \"nrk.no\" (a handle",
        ),
        (
            "[[feed]]\nid = \"t\"\ndisplay_name = \"Test\"\ncontent_mode = \"video\"\nmedia = [\"images\"]\n",
            5, 9, Invalid, "media can only be [\"video\"]",
        ),
        (
            "[[feed]]\nid = \"t\"\ndisplay_name = \"Test\"\nkeywords = [\"øl\", \" \"]\n",
            4, 19, Invalid, "empty keyword",
        ),
        (
            "[[feed]]\nid = \"t\"\ndisplay_name = \"Test\"\navatar = \"avatar.gif\"\n",
            4, 10, Invalid, "must be a PNG or JPEG",
        ),
        (
            "[[feed]]\nid = \"t\"\ndisplay_name = \"Test\"\nlanguage_confidence = 1.5\n",
            4, 23, Invalid, "at most 1",
        ),
        ("[service]\nlisten = \"localhost\"\n", 2, 10, Invalid, "bad listen address"),
        ("[service]\nhostname = \"https://x.example\"\n", 2, 12, Invalid, "bad hostname"),
        ("[service]\npublisher_did = \"alice.bsky.social\"\n", 2, 17, Invalid, "not a DID"),
        ("[ingest]\nrecent_window = 0\n", 2, 17, Invalid, "at least 1"),
    ];
    let mut failures = Vec::new();
    for (text, line, column, kind, reason) in cases {
        let e = error(text);
        if (e.line, e.column, e.kind) != (*line, *column, *kind) || !e.reason.contains(reason) {
            failures.push(format!(
                "{text:?}\n  expected {line}:{column} {kind:?} {reason:?}\n  got      {}:{} {:?} {:?}",
                e.line, e.column, e.kind, e.reason
            ));
        }
        assert!(!e.reason.contains('\n'), "one-line reason: {:?}", e.reason);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn errors_display_as_path_line_column_reason() {
    let e = error("[[feed]]\nid = \"t\"\ndisplay_name = \"Test\"\n\n    langauges = [\"nb\"]\n");
    let shown = e.to_string();
    assert!(
        shown.starts_with("skystream.toml:5:5: unknown field `langauges`, expected one of"),
        "{shown}"
    );
    assert_eq!(e.kind.name(), "toml");
}

#[test]
fn display_name_counts_graphemes_not_bytes() {
    // 24 graphemes, several of them more than one code point.
    let name = "Norsk 🇳🇴🇸🇪🇩🇰 bokmål nynorsk";
    assert_eq!(name.chars().count(), 27);
    let text = format!("[[feed]]\nid = \"t\"\ndisplay_name = \"{name}\"\n");
    assert!(parse(&text).is_ok(), "{:?}", parse(&text).err());
    let long = format!(
        "[[feed]]\nid = \"t\"\ndisplay_name = \"t\"\ndescription = \"{}\"\n",
        "å".repeat(301)
    );
    assert!(error(&long).reason.contains("301 graphemes; at most 300"));
}
