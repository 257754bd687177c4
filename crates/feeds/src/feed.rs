//! Feed definitions, compiled feeds and matching.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;
use skystream_syntax::{is_valid_did, is_valid_handle};
use unicode_segmentation::UnicodeSegmentation;

use crate::features::{MediaKind, PostFeatures};
use crate::lang::{check_feed_language, language_covers};
use crate::rank::Ranking;
use crate::text::{compile_user_regex, normalize_hashtag, KeywordSet};

/// The longest feed id: Bluesky's practical limit for a feed generator's record key.
pub const MAX_FEED_ID_LEN: usize = 15;
/// The most graphemes in a feed's display name (`app.bsky.feed.generator`).
pub const MAX_DISPLAY_NAME_GRAPHEMES: usize = 24;
/// The most bytes in a feed's display name.
pub const MAX_DISPLAY_NAME_BYTES: usize = 240;
/// The most graphemes in a feed's description.
pub const MAX_DESCRIPTION_GRAPHEMES: usize = 300;
/// The most bytes in a feed's description.
pub const MAX_DESCRIPTION_BYTES: usize = 3000;
/// How long a feed keeps a post unless it says otherwise.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(7 * 86_400);
/// The detected-language confidence a post without `langs` needs unless the feed says otherwise.
pub const DEFAULT_LANGUAGE_CONFIDENCE: f64 = 0.5;

/// Whether `getFeedSkeleton` asks for the viewer's token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// No token is read.
    #[default]
    Off,
    /// A valid token is used when sent; requests without one are served.
    Optional,
    /// Requests without a valid token are refused.
    Required,
}

/// What a feed does with replies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Replies {
    /// Replies and top-level posts.
    #[default]
    Include,
    /// Top-level posts only.
    Exclude,
    /// Replies only.
    Only,
}

/// The content mode a feed declares in its record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentMode {
    /// Any kind of post.
    #[default]
    Unspecified,
    /// Posts with video only; the feed then takes only posts with a video.
    Video,
}

impl ContentMode {
    /// The lexicon token for the feed record's `contentMode`.
    pub fn token(self) -> &'static str {
        match self {
            ContentMode::Unspecified => "app.bsky.feed.defs#contentModeUnspecified",
            ContentMode::Video => "app.bsky.feed.defs#contentModeVideo",
        }
    }
}

/// A feed's filters. A post must pass every filter that is set; within a list any entry will
/// do. `keywords`, `hashtags` and `regex` together say what the feed is about: when any of them
/// is set, a post must match at least one of them.
#[derive(Clone, Debug, PartialEq)]
pub struct Filters {
    /// Language codes (primary subtags; `no` also takes `nb` and `nn`). A post matches if one
    /// of its `langs` has one of these primary subtags, or, without `langs`, if the detected
    /// language is one of them with at least `language_confidence`.
    pub languages: Vec<String>,
    /// The summed detector confidence a post without `langs` needs (0 < c ≤ 1).
    pub language_confidence: f64,
    /// Whole-word, case-insensitive keywords or phrases in the text.
    pub keywords: Vec<String>,
    /// Keywords that exclude a post.
    pub keywords_out: Vec<String>,
    /// A regex the text must match.
    pub regex: Option<String>,
    /// A regex that excludes a post whose text matches it.
    pub regex_out: Option<String>,
    /// Hashtags (lowercase, without `#`).
    pub hashtags: Vec<String>,
    /// DIDs whose posts alone are taken (all when empty).
    pub authors: Vec<String>,
    /// DIDs whose posts are never taken.
    pub authors_out: Vec<String>,
    /// DIDs of which a post must mention one.
    pub mentions: Vec<String>,
    /// Replies taken, left out, or alone.
    pub replies: Replies,
    /// Whether a repost can bring a post into the feed (see [`Feed::matches_repost`]).
    pub reposts: bool,
    /// Media of which a post must carry one (any post when empty).
    pub media: Vec<MediaKind>,
    /// Self-labels that exclude a post (`porn`, `sexual`, `nudity`, `graphic-media`, …).
    pub labels_out: Vec<String>,
    /// Likes a post needs.
    pub min_likes: u64,
}

impl Default for Filters {
    fn default() -> Self {
        Filters {
            languages: Vec::new(),
            language_confidence: DEFAULT_LANGUAGE_CONFIDENCE,
            keywords: Vec::new(),
            keywords_out: Vec::new(),
            regex: None,
            regex_out: None,
            hashtags: Vec::new(),
            authors: Vec::new(),
            authors_out: Vec::new(),
            mentions: Vec::new(),
            replies: Replies::Include,
            reposts: false,
            media: Vec::new(),
            labels_out: Vec::new(),
            min_likes: 0,
        }
    }
}

/// One feed as defined: identity, record metadata, serving policy, filters and ranking.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedConfig {
    /// The record key of the feed's `app.bsky.feed.generator` record (`[a-z0-9-]`, 1 to 15).
    pub id: String,
    /// The display name (at most 24 graphemes).
    pub display_name: String,
    /// The description (at most 300 graphemes).
    pub description: Option<String>,
    /// A PNG or JPEG avatar. [`crate::Config::load`] makes a relative path relative to the
    /// config file's directory.
    pub avatar: Option<PathBuf>,
    /// Whether requests must carry a token.
    pub auth: Auth,
    /// How long posts stay in the feed.
    pub max_age: Duration,
    /// The record's `acceptsInteractions`.
    pub accepts_interactions: bool,
    /// The record's `contentMode`.
    pub content_mode: ContentMode,
    /// The order posts are served in.
    pub ranking: Ranking,
    /// Which posts the feed takes.
    pub filters: Filters,
}

impl FeedConfig {
    /// A feed that takes every post, chronologically, with the defaults.
    pub fn new(id: impl Into<String>, display_name: impl Into<String>) -> FeedConfig {
        FeedConfig {
            id: id.into(),
            display_name: display_name.into(),
            description: None,
            avatar: None,
            auth: Auth::Off,
            max_age: DEFAULT_MAX_AGE,
            accepts_interactions: false,
            content_mode: ContentMode::Unspecified,
            ranking: Ranking::Chronological,
            filters: Filters::default(),
        }
    }
}

/// Why a feed definition is refused: the field (its key in the config file), the entry of a
/// list when it is one entry, and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FeedError {
    /// The field's key in the config file (`languages`, `display_name`, …).
    pub field: &'static str,
    /// The index of the offending entry of a list field.
    pub index: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl FeedError {
    fn new(field: &'static str, reason: impl Into<String>) -> FeedError {
        FeedError {
            field,
            index: None,
            reason: reason.into(),
        }
    }

    fn at(field: &'static str, index: usize, reason: impl Into<String>) -> FeedError {
        FeedError {
            field,
            index: Some(index),
            reason: reason.into(),
        }
    }
}

/// Checks a feed id: 1 to 15 characters of `a-z`, `0-9` and `-`.
pub fn check_feed_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_FEED_ID_LEN {
        return Err(format!(
            "feed id \"{id}\" must be 1 to {MAX_FEED_ID_LEN} characters"
        ));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!(
            "feed id \"{id}\" may only have lowercase letters a-z, digits and '-'"
        ));
    }
    Ok(())
}

/// A filter of a feed, named as in the config file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Filter {
    /// `languages`.
    Languages,
    /// `keywords`.
    Keywords,
    /// `keywords_out`.
    KeywordsOut,
    /// `regex`.
    Regex,
    /// `regex_out`.
    RegexOut,
    /// `hashtags`.
    Hashtags,
    /// `authors`.
    Authors,
    /// `authors_out`.
    AuthorsOut,
    /// `mentions`.
    Mentions,
    /// `replies`.
    Replies,
    /// `reposts`.
    Reposts,
    /// `media` (or `content_mode = "video"`).
    Media,
    /// `labels_out`.
    LabelsOut,
    /// `min_likes`.
    MinLikes,
}

impl Filter {
    /// The filter's key in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Filter::Languages => "languages",
            Filter::Keywords => "keywords",
            Filter::KeywordsOut => "keywords_out",
            Filter::Regex => "regex",
            Filter::RegexOut => "regex_out",
            Filter::Hashtags => "hashtags",
            Filter::Authors => "authors",
            Filter::AuthorsOut => "authors_out",
            Filter::Mentions => "mentions",
            Filter::Replies => "replies",
            Filter::Reposts => "reposts",
            Filter::Media => "media",
            Filter::LabelsOut => "labels_out",
            Filter::MinLikes => "min_likes",
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One filter's verdict, with what it saw (`langs nb-no`, `"øl"`, `detected nn (0.82)`).
#[derive(Clone, Debug, PartialEq)]
pub struct Reason {
    /// The filter.
    pub filter: Filter,
    /// What it saw.
    pub detail: String,
}

impl Reason {
    fn new(filter: Filter, detail: impl Into<String>) -> Reason {
        Reason {
            filter,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.filter, self.detail)
    }
}

/// Whether a post belongs in a feed, and why.
#[derive(Clone, Debug, PartialEq)]
pub enum Match {
    /// Every filter holds. The reasons are the filters that chose the post (languages,
    /// keywords, authors, …), empty for a feed that takes every post.
    Yes(Vec<Reason>),
    /// Every filter holds but `min_likes`: the post belongs once it has enough likes, so the
    /// indexer keeps it as a candidate and checks again as likes arrive.
    Pending {
        /// Likes it has.
        likes: u64,
        /// Likes it needs.
        min_likes: u64,
    },
    /// A filter refused the post.
    No(Reason),
}

impl Match {
    /// Whether the post belongs in the feed now.
    pub fn is_match(&self) -> bool {
        matches!(self, Match::Yes(_))
    }

    /// Whether the post would belong with enough likes.
    pub fn is_pending(&self) -> bool {
        matches!(self, Match::Pending { .. })
    }

    /// The filter that decided: the one that refused the post, `min_likes` for a pending post,
    /// or the first that chose it (none for a feed that takes every post).
    pub fn decided_by(&self) -> Option<Filter> {
        match self {
            Match::Yes(reasons) => reasons.first().map(|r| r.filter),
            Match::Pending { .. } => Some(Filter::MinLikes),
            Match::No(reason) => Some(reason.filter),
        }
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Match::Yes(reasons) if reasons.is_empty() => {
                f.write_str("matched: the feed takes every post")
            }
            Match::Yes(reasons) => {
                f.write_str("matched: ")?;
                for (i, r) in reasons.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{r}")?;
                }
                Ok(())
            }
            Match::Pending { likes, min_likes } => {
                write!(f, "pending: {likes} of {min_likes} likes")
            }
            Match::No(reason) => write!(f, "rejected by {}: {}", reason.filter, reason.detail),
        }
    }
}

/// A feed ready to match posts: its definition, checked and normalized, with its keyword sets
/// and regexes built.
#[derive(Clone, Debug)]
pub struct Feed {
    config: FeedConfig,
    keywords: Option<KeywordSet>,
    keywords_out: Option<KeywordSet>,
    regex: Option<Regex>,
    regex_out: Option<Regex>,
}

impl Feed {
    /// Checks and compiles a definition. Languages and hashtags are normalized (lowercase, no
    /// `#`); `content_mode = "video"` implies `media = ["video"]`.
    pub fn new(mut config: FeedConfig) -> Result<Feed, FeedError> {
        check_feed_id(&config.id).map_err(|e| FeedError::new("id", e))?;
        check_text(
            "display_name",
            &config.display_name,
            MAX_DISPLAY_NAME_GRAPHEMES,
            MAX_DISPLAY_NAME_BYTES,
        )?;
        if config.display_name.trim().is_empty() {
            return Err(FeedError::new("display_name", "display name is empty"));
        }
        if let Some(description) = &config.description {
            check_text(
                "description",
                description,
                MAX_DESCRIPTION_GRAPHEMES,
                MAX_DESCRIPTION_BYTES,
            )?;
        }
        if let Some(avatar) = &config.avatar {
            let ext = avatar
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            if !matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg")) {
                return Err(FeedError::new(
                    "avatar",
                    format!(
                        "avatar {} must be a PNG or JPEG (.png, .jpg, .jpeg)",
                        avatar.display()
                    ),
                ));
            }
        }
        if config.max_age.is_zero() {
            return Err(FeedError::new("max_age", "max_age must be more than zero"));
        }
        if let Ranking::Engagement { half_life } = config.ranking {
            if half_life.is_zero() {
                return Err(FeedError::new(
                    "half_life",
                    "half_life must be more than zero",
                ));
            }
        }

        let filters = &mut config.filters;
        let mut languages = Vec::with_capacity(filters.languages.len());
        for (i, code) in filters.languages.iter().enumerate() {
            let code = check_feed_language(code).map_err(|e| FeedError::at("languages", i, e))?;
            if !languages.contains(&code) {
                languages.push(code);
            }
        }
        filters.languages = languages;
        let c = filters.language_confidence;
        if !(c > 0.0 && c <= 1.0) {
            return Err(FeedError::new(
                "language_confidence",
                format!("language_confidence must be more than 0 and at most 1, not {c}"),
            ));
        }
        let mut hashtags = Vec::with_capacity(filters.hashtags.len());
        for (i, tag) in filters.hashtags.iter().enumerate() {
            let tag = normalize_hashtag(tag)
                .ok_or_else(|| FeedError::at("hashtags", i, format!("bad hashtag {tag:?}")))?;
            if !hashtags.contains(&tag) {
                hashtags.push(tag);
            }
        }
        filters.hashtags = hashtags;
        check_dids("authors", &filters.authors)?;
        check_dids("authors_out", &filters.authors_out)?;
        check_dids("mentions", &filters.mentions)?;
        if let Some((i, did)) = filters
            .authors
            .iter()
            .enumerate()
            .find(|(_, d)| filters.authors_out.contains(d))
        {
            return Err(FeedError::at(
                "authors",
                i,
                format!("{did} is in both authors and authors_out"),
            ));
        }
        for (i, label) in filters.labels_out.iter().enumerate() {
            if label.is_empty() || label.len() > 128 {
                return Err(FeedError::at(
                    "labels_out",
                    i,
                    format!("bad label {label:?}: 1 to 128 bytes"),
                ));
            }
        }
        if config.content_mode == ContentMode::Video {
            if filters.media.iter().any(|m| *m != MediaKind::Video) {
                return Err(FeedError::new(
                    "media",
                    "content_mode = \"video\" serves only posts with video; media can only be [\"video\"]",
                ));
            }
            filters.media = vec![MediaKind::Video];
        }
        let mut media = Vec::with_capacity(filters.media.len());
        for kind in &filters.media {
            if !media.contains(kind) {
                media.push(*kind);
            }
        }
        filters.media = media;

        let keywords = keyword_set("keywords", &filters.keywords)?;
        let keywords_out = keyword_set("keywords_out", &filters.keywords_out)?;
        let regex = filters
            .regex
            .as_deref()
            .map(compile_user_regex)
            .transpose()
            .map_err(|e| FeedError::new("regex", e))?;
        let regex_out = filters
            .regex_out
            .as_deref()
            .map(compile_user_regex)
            .transpose()
            .map_err(|e| FeedError::new("regex_out", e))?;
        Ok(Feed {
            config,
            keywords,
            keywords_out,
            regex,
            regex_out,
        })
    }

    /// Makes a relative avatar path relative to `dir`.
    pub(crate) fn resolve_avatar(&mut self, dir: &Path) {
        if let Some(avatar) = &mut self.config.avatar {
            if avatar.is_relative() && !dir.as_os_str().is_empty() {
                *avatar = dir.join(&*avatar);
            }
        }
    }

    /// The feed's id (its record key).
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// The definition, normalized.
    pub fn config(&self) -> &FeedConfig {
        &self.config
    }

    /// The feed's filters, normalized.
    pub fn filters(&self) -> &Filters {
        &self.config.filters
    }

    /// The feed's ranking.
    pub fn ranking(&self) -> Ranking {
        self.config.ranking
    }

    /// Whether `post`, with `likes` likes so far, belongs in the feed. Cheap filters run first;
    /// language detection, the dearest, only runs for a post without `langs` that passed the
    /// rest.
    pub fn matches(&self, post: &PostFeatures, likes: u64) -> Match {
        let mut reasons = Vec::new();
        if let Err(no) = self.check_author(&post.did) {
            return Match::No(no);
        }
        if !self.config.filters.authors.is_empty() {
            reasons.push(Reason::new(Filter::Authors, post.did.clone()));
        }
        if let Err(no) = self.check_content(post, &mut reasons) {
            return Match::No(no);
        }
        self.check_likes(reasons, likes)
    }

    /// Whether a repost by `reposter` brings its subject post into the feed, when the feed has
    /// `reposts = true`. The author filters apply to the reposter (`authors_out` also to the
    /// subject's author); every other filter, and `min_likes` (with the subject's `likes`), to
    /// the subject. When the subject is not known (`None`) only a feed without content filters
    /// takes the repost.
    pub fn matches_repost(
        &self,
        reposter: &str,
        subject: Option<&PostFeatures>,
        likes: u64,
    ) -> Match {
        if !self.config.filters.reposts {
            return Match::No(Reason::new(Filter::Reposts, "the feed takes no reposts"));
        }
        if let Err(no) = self.check_author(reposter) {
            return Match::No(no);
        }
        let mut reasons = vec![Reason::new(
            Filter::Reposts,
            format!("reposted by {reposter}"),
        )];
        match subject {
            Some(post) => {
                if self.config.filters.authors_out.contains(&post.did) {
                    return Match::No(Reason::new(
                        Filter::AuthorsOut,
                        format!("reposted post by {}", post.did),
                    ));
                }
                if let Err(no) = self.check_content(post, &mut reasons) {
                    return Match::No(no);
                }
            }
            None if self.has_content_filters() => {
                return Match::No(Reason::new(
                    Filter::Reposts,
                    "the reposted post is not known, and the feed filters on content",
                ));
            }
            None => {}
        }
        self.check_likes(reasons, likes)
    }

    fn has_content_filters(&self) -> bool {
        let f = &self.config.filters;
        !f.languages.is_empty()
            || !f.keywords.is_empty()
            || !f.keywords_out.is_empty()
            || f.regex.is_some()
            || f.regex_out.is_some()
            || !f.hashtags.is_empty()
            || !f.mentions.is_empty()
            || f.replies != Replies::Include
            || !f.media.is_empty()
            || !f.labels_out.is_empty()
    }

    fn check_author(&self, did: &str) -> Result<(), Reason> {
        let f = &self.config.filters;
        if f.authors_out.iter().any(|d| d == did) {
            return Err(Reason::new(Filter::AuthorsOut, did));
        }
        if !f.authors.is_empty() && !f.authors.iter().any(|d| d == did) {
            return Err(Reason::new(
                Filter::Authors,
                format!("{did} is not one of the authors"),
            ));
        }
        Ok(())
    }

    fn check_likes(&self, reasons: Vec<Reason>, likes: u64) -> Match {
        let min_likes = self.config.filters.min_likes;
        if likes < min_likes {
            return Match::Pending { likes, min_likes };
        }
        Match::Yes(reasons)
    }

    /// Every filter but the author ones and `min_likes`, cheapest first.
    fn check_content(&self, post: &PostFeatures, reasons: &mut Vec<Reason>) -> Result<(), Reason> {
        let f = &self.config.filters;
        match (f.replies, post.is_reply()) {
            (Replies::Exclude, true) => return Err(Reason::new(Filter::Replies, "a reply")),
            (Replies::Only, false) => return Err(Reason::new(Filter::Replies, "not a reply")),
            (Replies::Only, true) => reasons.push(Reason::new(Filter::Replies, "a reply")),
            _ => {}
        }
        if !f.media.is_empty() {
            match post.media {
                Some(kind) if f.media.contains(&kind) => {
                    reasons.push(Reason::new(Filter::Media, kind.name()));
                }
                Some(kind) => {
                    return Err(Reason::new(Filter::Media, format!("has {}", kind.name())));
                }
                None => return Err(Reason::new(Filter::Media, "no media")),
            }
        }
        if let Some(label) = post.self_labels.iter().find(|l| f.labels_out.contains(l)) {
            return Err(Reason::new(
                Filter::LabelsOut,
                format!("self-labelled {label}"),
            ));
        }
        if !f.mentions.is_empty() {
            match post.mentions.iter().find(|m| f.mentions.contains(m)) {
                Some(did) => reasons.push(Reason::new(Filter::Mentions, did.clone())),
                None => {
                    return Err(Reason::new(
                        Filter::Mentions,
                        "mentions none of the accounts",
                    ))
                }
            }
        }
        if let Some(keyword) = self.keywords_out.as_ref().and_then(|k| k.find(&post.text)) {
            return Err(Reason::new(Filter::KeywordsOut, format!("{keyword:?}")));
        }
        if let Some(found) = self.regex_out.as_ref().and_then(|r| r.find(&post.text)) {
            return Err(Reason::new(Filter::RegexOut, snippet(found.as_str())));
        }
        self.check_topic(post, reasons)?;
        self.check_language(post, reasons)
    }

    /// `hashtags`, `keywords` and `regex`: one of those set must match.
    fn check_topic(&self, post: &PostFeatures, reasons: &mut Vec<Reason>) -> Result<(), Reason> {
        let f = &self.config.filters;
        if let Some(tag) = post.hashtags.iter().find(|t| f.hashtags.contains(t)) {
            reasons.push(Reason::new(Filter::Hashtags, format!("#{tag}")));
            return Ok(());
        }
        if let Some(keyword) = self.keywords.as_ref().and_then(|k| k.find(&post.text)) {
            reasons.push(Reason::new(Filter::Keywords, format!("{keyword:?}")));
            return Ok(());
        }
        if let Some(found) = self.regex.as_ref().and_then(|r| r.find(&post.text)) {
            reasons.push(Reason::new(Filter::Regex, snippet(found.as_str())));
            return Ok(());
        }
        let mut set = Vec::new();
        if self.keywords.is_some() {
            set.push(Filter::Keywords);
        }
        if !f.hashtags.is_empty() {
            set.push(Filter::Hashtags);
        }
        if self.regex.is_some() {
            set.push(Filter::Regex);
        }
        match set.first() {
            None => Ok(()),
            Some(first) => {
                let names: Vec<&str> = set.iter().map(|f| f.name()).collect();
                Err(Reason::new(
                    *first,
                    format!("no match for {}", names.join(" or ")),
                ))
            }
        }
    }

    fn check_language(&self, post: &PostFeatures, reasons: &mut Vec<Reason>) -> Result<(), Reason> {
        let f = &self.config.filters;
        if f.languages.is_empty() {
            return Ok(());
        }
        let covered = |primary: &str| f.languages.iter().any(|l| language_covers(l, primary));
        if !post.langs.is_empty() {
            return match post
                .langs
                .iter()
                .find(|tag| covered(tag.split('-').next().unwrap_or(tag)))
            {
                Some(tag) => {
                    reasons.push(Reason::new(Filter::Languages, format!("langs {tag}")));
                    Ok(())
                }
                None => Err(Reason::new(
                    Filter::Languages,
                    format!("langs {}", post.langs.join(", ")),
                )),
            };
        }
        let Some(detected) = post.detected_language() else {
            return Err(Reason::new(
                Filter::Languages,
                "no langs, and too little text to detect",
            ));
        };
        let confidence = detected.confidence_of(covered);
        if confidence >= f.language_confidence {
            let mine: Vec<&str> = detected
                .candidates
                .iter()
                .filter(|(code, _)| covered(code))
                .map(|(code, _)| *code)
                .collect();
            reasons.push(Reason::new(
                Filter::Languages,
                format!("detected {} ({confidence:.2})", mine.join("+")),
            ));
            Ok(())
        } else {
            let best = detected
                .best()
                .map(|(code, c)| format!("{code} ({c:.2})"))
                .unwrap_or_default();
            Err(Reason::new(
                Filter::Languages,
                format!("detected {best}; the feed's languages {confidence:.2}"),
            ))
        }
    }
}

fn check_text(
    field: &'static str,
    text: &str,
    graphemes: usize,
    bytes: usize,
) -> Result<(), FeedError> {
    let count = text.graphemes(true).count();
    if count > graphemes {
        return Err(FeedError::new(
            field,
            format!("{field} is {count} graphemes; at most {graphemes}"),
        ));
    }
    if text.len() > bytes {
        return Err(FeedError::new(
            field,
            format!("{field} is {} bytes; at most {bytes}", text.len()),
        ));
    }
    Ok(())
}

fn check_dids(field: &'static str, dids: &[String]) -> Result<(), FeedError> {
    for (i, did) in dids.iter().enumerate() {
        if !is_valid_did(did) {
            let hint = if is_valid_handle(did.trim_start_matches('@')) {
                " (a handle: write the account's DID, which does not change)"
            } else {
                ""
            };
            return Err(FeedError::at(field, i, format!("not a DID: {did:?}{hint}")));
        }
    }
    Ok(())
}

fn keyword_set(field: &'static str, keywords: &[String]) -> Result<Option<KeywordSet>, FeedError> {
    if keywords.is_empty() {
        return Ok(None);
    }
    KeywordSet::new(keywords)
        .map(Some)
        .map_err(|(i, reason)| FeedError::at(field, i, reason))
}

/// A match shown in a reason: at most 40 characters.
fn snippet(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("{out:?}")
}
