//! Text matching: hashtags in post text, whole-word keyword sets, and bounded user regexes.

use std::sync::LazyLock;

use regex::{Regex, RegexBuilder};

/// The longest hashtag kept, in characters (Bluesky's limit is 64).
pub const MAX_HASHTAG_CHARS: usize = 64;

/// Compiled-size bound for every regex a feed builds, so a config cannot make one huge.
const REGEX_SIZE_LIMIT: usize = 4 << 20;

/// Characters that end a hashtag besides whitespace: soft hyphen, word joiner, hair and
/// zero-width spaces and joiners, and the combining enclosing keycap (as Bluesky's clients).
const TAG_BREAKS: &str = r"\s\u{00AD}\u{2060}\u{200A}\u{200B}\u{200C}\u{200D}\u{20E2}";

static TAG_IN_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"(?:^|\s)[#＃]([^{TAG_BREAKS}]+)")).expect("static hashtag regex")
});
static TRAILING_PUNCTUATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\p{P}+$").expect("static punctuation regex"));
static NOT_ONLY_DIGITS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[^\d\s\p{P}]").expect("static tag-content regex"));

/// Normalizes a hashtag (from a facet, the record's `tags`, or a feed definition): leading `#`
/// removed, lowercased. `None` if nothing is left or it is longer than [`MAX_HASHTAG_CHARS`].
pub fn normalize_hashtag(tag: &str) -> Option<String> {
    let tag = tag.trim().trim_start_matches(['#', '＃']);
    if tag.is_empty() || tag.chars().count() > MAX_HASHTAG_CHARS {
        return None;
    }
    Some(tag.to_lowercase())
}

/// Appends the hashtags written in `text` to `out` (normalized, without duplicates), stopping
/// at `limit` tags. A hashtag starts with `#` or `＃` at the start of the text or after
/// whitespace, runs to the next whitespace, loses trailing punctuation, and must contain
/// something besides digits (`#1` is not a tag); `#️⃣` is an emoji, not a tag.
pub fn hashtags_in_text(text: &str, out: &mut Vec<String>, limit: usize) {
    for caps in TAG_IN_TEXT.captures_iter(text) {
        if out.len() >= limit {
            return;
        }
        let Some(raw) = caps.get(1).map(|m| m.as_str()) else {
            continue;
        };
        if raw.starts_with('\u{FE0F}') {
            continue;
        }
        let trimmed = TRAILING_PUNCTUATION.replace(raw, "");
        if !NOT_ONLY_DIGITS.is_match(&trimmed) {
            continue;
        }
        if let Some(tag) = normalize_hashtag(&trimmed) {
            push_unique(out, tag);
        }
    }
}

/// Pushes `item` unless `list` has it.
pub fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// A set of keywords or phrases matched case-insensitively as whole words: a keyword matches
/// where the characters either side of it are not letters, digits, marks or `_` (Unicode), so
/// `øl` matches "Øl!" and "#øl" but not "føler". Spaces inside a phrase match any run of
/// whitespace.
#[derive(Clone, Debug)]
pub struct KeywordSet {
    regex: Regex,
    keywords: Vec<String>,
}

impl KeywordSet {
    /// Builds the set. Errors name the keyword at fault, by index.
    pub fn new(keywords: &[String]) -> Result<KeywordSet, (usize, String)> {
        let mut alternatives = Vec::with_capacity(keywords.len());
        for (i, keyword) in keywords.iter().enumerate() {
            let words: Vec<&str> = keyword.split_whitespace().collect();
            if words.is_empty() {
                return Err((i, "empty keyword".to_string()));
            }
            let escaped: Vec<String> = words.iter().map(|w| regex::escape(w)).collect();
            alternatives.push(format!("({})", escaped.join(r"\s+")));
        }
        let pattern = format!(r"(?i)(?:^|\W)(?:{})(?:\W|$)", alternatives.join("|"));
        let regex = RegexBuilder::new(&pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                (
                    0,
                    format!(
                        "the keywords make too large a matcher: {}",
                        regex_reason(&e)
                    ),
                )
            })?;
        Ok(KeywordSet {
            regex,
            keywords: keywords.to_vec(),
        })
    }

    /// The first keyword found in `text`, as configured.
    pub fn find(&self, text: &str) -> Option<&str> {
        let caps = self.regex.captures(text)?;
        (1..caps.len())
            .find(|i| caps.get(*i).is_some())
            .and_then(|i| self.keywords.get(i - 1))
            .map(String::as_str)
    }
}

/// Compiles a user's regex with the size bound.
pub fn compile_user_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("bad regex {pattern:?}: {}", regex_reason(&e)))
}

/// The one-line reason of a regex error (its display spans several lines with a caret).
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.lines().last().unwrap_or("").trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        hashtags_in_text(text, &mut out, 100);
        out
    }

    #[test]
    fn hashtags_like_the_clients() {
        assert_eq!(tags("#Tromsø er fin"), ["tromsø"]);
        assert_eq!(tags("Hei #Bergen! og #bergen."), ["bergen"]);
        assert_eq!(tags("a#b #1 #2024 #️⃣ #"), Vec::<String>::new());
        assert_eq!(tags("#2024valg\n＃日本語"), ["2024valg", "日本語"]);
        assert_eq!(tags("#a\u{200B}b"), ["a"]);
        assert_eq!(tags(&format!("#{}", "x".repeat(65))), Vec::<String>::new());
    }

    #[test]
    fn keywords_are_whole_words() {
        let set = KeywordSet::new(&["øl".into(), "kunstig intelligens".into(), "c++".into()])
            .expect("builds");
        assert_eq!(set.find("Øl!"), Some("øl"));
        assert_eq!(set.find("jeg føler"), None);
        assert_eq!(set.find("#øl i kveld"), Some("øl"));
        assert_eq!(
            set.find("om Kunstig\n intelligens"),
            Some("kunstig intelligens")
        );
        assert_eq!(set.find("I write C++."), Some("c++"));
        assert_eq!(set.find("øl_brygging"), None);
        assert!(KeywordSet::new(&["  ".into()]).is_err());
    }

    #[test]
    fn regex_errors_are_one_line() {
        let e = compile_user_regex("(foo").expect_err("unclosed");
        assert!(!e.contains('\n'), "{e}");
        assert!(e.contains("unclosed group"), "{e}");
    }
}
