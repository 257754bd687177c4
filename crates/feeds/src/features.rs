//! What the filters look at in a post record.

use std::sync::OnceLock;

use skystream_data::Value;
use skystream_syntax::{is_valid_did, is_valid_language_syntax, Datetime};

use crate::lang::{detect_language, DetectedLanguage};
use crate::text::{hashtags_in_text, normalize_hashtag, push_unique};

/// The most post text, in bytes, that is kept and scanned (a post's `text` is at most 3000
/// bytes by its lexicon; a longer one is cut at a character boundary).
pub const MAX_TEXT_BYTES: usize = 3000;
/// The most facets read from a record.
pub const MAX_FACETS: usize = 100;
/// The most features read from one facet.
const MAX_FEATURES_PER_FACET: usize = 10;
/// The most `langs` entries read (the lexicon allows 3).
const MAX_LANGS: usize = 8;
/// The most hashtags, mentions or links kept.
pub const MAX_ITEMS: usize = 100;
/// The most self-labels read (the lexicon allows 10).
const MAX_LABELS: usize = 16;
/// The longest URI or DID kept.
const MAX_URI_BYTES: usize = 8192;

/// The kinds of media a post can carry, for the `media` filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// One or more images (`app.bsky.embed.images`, or a `app.bsky.embed.gallery`).
    Images,
    /// A video (`app.bsky.embed.video`).
    Video,
    /// A link card (`app.bsky.embed.external`).
    External,
}

impl MediaKind {
    /// The name used in feed definitions.
    pub fn name(self) -> &'static str {
        match self {
            MediaKind::Images => "images",
            MediaKind::Video => "video",
            MediaKind::External => "external",
        }
    }
}

/// The post's embed, by its `$type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EmbedKind {
    /// No embed.
    #[default]
    None,
    /// `app.bsky.embed.images`.
    Images,
    /// `app.bsky.embed.video`.
    Video,
    /// `app.bsky.embed.gallery`.
    Gallery,
    /// `app.bsky.embed.external`.
    External,
    /// `app.bsky.embed.record` (a quote).
    Record,
    /// `app.bsky.embed.recordWithMedia` (a quote with media).
    RecordWithMedia,
    /// An embed of a type this crate does not know, or without a `$type`.
    Other,
}

/// The references of a reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplyRef {
    /// The post replied to (`reply.parent.uri`).
    pub parent: Option<String>,
    /// The thread's first post (`reply.root.uri`).
    pub root: Option<String>,
}

/// The features of one post that feeds filter on, read from its record.
///
/// Reading never fails: a missing or wrong-typed field is just absent, and the work is bounded
/// (text cut at [`MAX_TEXT_BYTES`], at most [`MAX_FACETS`] facets, [`MAX_ITEMS`] of each list).
#[derive(Clone, Debug, Default)]
pub struct PostFeatures {
    /// The author's DID.
    pub did: String,
    /// The record key.
    pub rkey: String,
    /// The text (at most [`MAX_TEXT_BYTES`]).
    pub text: String,
    /// The `langs` that are well-formed language tags, lowercased (`nb-no`).
    pub langs: Vec<String>,
    /// Hashtags from `#tag` facets, the record's `tags` and the text: lowercased, without `#`,
    /// in that order, without duplicates.
    pub hashtags: Vec<String>,
    /// DIDs from `#mention` facets.
    pub mentions: Vec<String>,
    /// URIs from `#link` facets and an external embed.
    pub links: Vec<String>,
    /// Present when the post is a reply (`reply` is an object, even a malformed one).
    pub reply: Option<ReplyRef>,
    /// The quoted record's AT-URI (record and recordWithMedia embeds).
    pub quote: Option<String>,
    /// The embed's kind.
    pub embed: EmbedKind,
    /// The media the post carries, directly or beside a quote.
    pub media: Option<MediaKind>,
    /// Self-label values (`labels.values[].val` of a `com.atproto.label.defs#selfLabels`).
    pub self_labels: Vec<String>,
    /// `createdAt` as written, if it is a string.
    pub created_at: Option<String>,
    detected: OnceLock<Option<DetectedLanguage>>,
}

impl PostFeatures {
    /// Reads the features of the post `did`/`rkey` from its record.
    pub fn from_record(did: &str, rkey: &str, record: &Value<'_>) -> PostFeatures {
        let mut post = PostFeatures {
            did: did.to_string(),
            rkey: rkey.to_string(),
            ..PostFeatures::default()
        };
        let Some(map) = record.as_map() else {
            return post;
        };
        if let Some(text) = map.get("text").and_then(Value::as_str) {
            post.text = truncate(text, MAX_TEXT_BYTES).to_string();
        }
        if let Some(langs) = map.get("langs").and_then(Value::as_array) {
            for lang in langs.iter().take(MAX_LANGS).filter_map(Value::as_str) {
                let lang = lang.to_ascii_lowercase();
                if is_valid_language_syntax(&lang) {
                    push_unique(&mut post.langs, lang);
                }
            }
        }
        if let Some(facets) = map.get("facets").and_then(Value::as_array) {
            for facet in facets.iter().take(MAX_FACETS) {
                post.read_facet(facet);
            }
        }
        if let Some(tags) = map.get("tags").and_then(Value::as_array) {
            for tag in tags.iter().take(MAX_ITEMS).filter_map(Value::as_str) {
                if let Some(tag) = normalize_hashtag(tag) {
                    push_capped(&mut post.hashtags, tag);
                }
            }
        }
        if post.hashtags.len() < MAX_ITEMS {
            hashtags_in_text(&post.text, &mut post.hashtags, MAX_ITEMS);
        }
        if let Some(reply) = map.get("reply").and_then(Value::as_map) {
            let uri = |key: &str| {
                reply
                    .get(key)
                    .and_then(|r| r.get("uri"))
                    .and_then(Value::as_str)
                    .filter(|u| u.len() <= MAX_URI_BYTES)
                    .map(str::to_string)
            };
            post.reply = Some(ReplyRef {
                parent: uri("parent"),
                root: uri("root"),
            });
        }
        if let Some(embed) = map.get("embed") {
            post.read_embed(embed);
        }
        if let Some(labels) = map.get("labels") {
            if type_of(labels) == Some("com.atproto.label.defs#selfLabels") {
                let values = labels
                    .get("values")
                    .and_then(Value::as_array)
                    .unwrap_or(&[]);
                for label in values.iter().take(MAX_LABELS) {
                    if let Some(val) = label.get("val").and_then(Value::as_str) {
                        push_unique(&mut post.self_labels, val.to_string());
                    }
                }
            }
        }
        post.created_at = map
            .get("createdAt")
            .and_then(Value::as_str)
            .filter(|s| s.len() <= 64)
            .map(str::to_string);
        post
    }

    fn read_facet(&mut self, facet: &Value<'_>) {
        let Some(features) = facet.get("features").and_then(Value::as_array) else {
            return;
        };
        for feature in features.iter().take(MAX_FEATURES_PER_FACET) {
            match type_of(feature) {
                Some("app.bsky.richtext.facet#tag") => {
                    if let Some(tag) = feature
                        .get("tag")
                        .and_then(Value::as_str)
                        .and_then(normalize_hashtag)
                    {
                        push_capped(&mut self.hashtags, tag);
                    }
                }
                Some("app.bsky.richtext.facet#mention") => {
                    if let Some(did) = feature.get("did").and_then(Value::as_str) {
                        if is_valid_did(did) {
                            push_capped(&mut self.mentions, did.to_string());
                        }
                    }
                }
                Some("app.bsky.richtext.facet#link") => {
                    if let Some(uri) = feature.get("uri").and_then(Value::as_str) {
                        if uri.len() <= MAX_URI_BYTES {
                            push_capped(&mut self.links, uri.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn read_embed(&mut self, embed: &Value<'_>) {
        self.embed = match type_of(embed) {
            Some("app.bsky.embed.images") => EmbedKind::Images,
            Some("app.bsky.embed.video") => EmbedKind::Video,
            Some("app.bsky.embed.gallery") => EmbedKind::Gallery,
            Some("app.bsky.embed.external") => EmbedKind::External,
            Some("app.bsky.embed.record") => EmbedKind::Record,
            Some("app.bsky.embed.recordWithMedia") => EmbedKind::RecordWithMedia,
            _ if embed.as_map().is_some() => EmbedKind::Other,
            _ => EmbedKind::None,
        };
        match self.embed {
            EmbedKind::Images | EmbedKind::Gallery => self.media = Some(MediaKind::Images),
            EmbedKind::Video => self.media = Some(MediaKind::Video),
            EmbedKind::External => {
                self.media = Some(MediaKind::External);
                self.read_external(embed);
            }
            EmbedKind::Record => {
                self.quote = quoted_uri(embed.get("record"));
            }
            EmbedKind::RecordWithMedia => {
                // `record` is an app.bsky.embed.record, whose own `record` is the strongRef.
                self.quote = quoted_uri(embed.get("record").and_then(|r| r.get("record")));
                if let Some(media) = embed.get("media") {
                    self.media = match type_of(media) {
                        Some("app.bsky.embed.images" | "app.bsky.embed.gallery") => {
                            Some(MediaKind::Images)
                        }
                        Some("app.bsky.embed.video") => Some(MediaKind::Video),
                        Some("app.bsky.embed.external") => {
                            self.read_external(media);
                            Some(MediaKind::External)
                        }
                        _ => None,
                    };
                }
            }
            EmbedKind::None | EmbedKind::Other => {}
        }
    }

    fn read_external(&mut self, embed: &Value<'_>) {
        if let Some(uri) = embed
            .get("external")
            .and_then(|e| e.get("uri"))
            .and_then(Value::as_str)
        {
            if uri.len() <= MAX_URI_BYTES {
                push_capped(&mut self.links, uri.to_string());
            }
        }
    }

    /// The post's AT-URI.
    pub fn uri(&self) -> String {
        format!("at://{}/app.bsky.feed.post/{}", self.did, self.rkey)
    }

    /// Whether the post is a reply.
    pub fn is_reply(&self) -> bool {
        self.reply.is_some()
    }

    /// `createdAt` in unix microseconds, if it is a valid datetime.
    pub fn created_at_micros(&self) -> Option<i64> {
        Datetime::parse(self.created_at.as_deref()?)
            .ok()?
            .timestamp_micros()
    }

    /// The primary subtags of `langs` (`nb` for `nb-no`).
    pub fn primary_langs(&self) -> impl Iterator<Item = &str> {
        self.langs
            .iter()
            .map(|l| l.split('-').next().unwrap_or(l.as_str()))
    }

    /// The detected language of the text, for a post without `langs`; detected on first call
    /// and kept. `None` when the post has `langs` or the text is too short to tell.
    pub fn detected_language(&self) -> Option<&DetectedLanguage> {
        if !self.langs.is_empty() {
            return None;
        }
        self.detected
            .get_or_init(|| detect_language(&self.text))
            .as_ref()
    }
}

/// The `$type` of a map value.
fn type_of<'v>(value: &'v Value<'_>) -> Option<&'v str> {
    value.get("$type").and_then(Value::as_str)
}

fn quoted_uri(strong_ref: Option<&Value<'_>>) -> Option<String> {
    strong_ref?
        .get("uri")
        .and_then(Value::as_str)
        .filter(|u| u.len() <= MAX_URI_BYTES)
        .map(str::to_string)
}

fn push_capped(list: &mut Vec<String>, item: String) {
    if list.len() < MAX_ITEMS {
        push_unique(list, item);
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_characters() {
        assert_eq!(truncate("æøå", 3), "æ");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn not_a_map_is_empty() {
        let post = PostFeatures::from_record("did:plc:a", "3k", &Value::Integer(1));
        assert!(post.text.is_empty());
        assert_eq!(post.embed, EmbedKind::None);
        assert_eq!(post.uri(), "at://did:plc:a/app.bsky.feed.post/3k");
    }
}
