//! Language tags (BCP 47), checked the way atproto does: a naive syntax
//! check plus the RFC 5646 "no repeated variant / extension" rules.
//!
//! Spec: <https://atproto.com/specs/lexicon#language>.

use crate::macros::string_newtype;
use crate::SyntaxKind;

/// Maximum length of a language tag, in bytes.
pub const MAX_LANGUAGE_LEN: usize = 128;

/// A valid language tag, e.g. `en`, `pt-BR`, `zh-Hant`, `i-navajo`.
///
/// Syntax (naive, as in atproto): a primary subtag that is `i`, two or three
/// lowercase ASCII letters, or the private-use singleton `x`/`X` (which must be
/// followed by at least one subtag), then any number of `-`-separated
/// non-empty ASCII alphanumeric subtags; at most [`MAX_LANGUAGE_LEN`]
/// characters. Region, script and other subtag shapes are not enforced.
///
/// Parsing additionally rejects tags that repeat a variant subtag or an
/// extension singleton, compared case-insensitively (RFC 5646 §2.2.9 and
/// §4.1), e.g. `de-DE-1901-1901` or `en-a-foo-a-bar`. Nothing after a
/// private-use `x` singleton is checked. Use [`is_valid_language_syntax`]
/// for the purely syntactic check.
///
/// Stored exactly as parsed (tags are case-insensitive, but no case
/// normalization is done).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Language(String);

string_newtype!(Language, SyntaxKind::Language, validate);

impl Language {
    /// The primary language subtag in lowercase, e.g. `"pt"` for `pt-BR`,
    /// `"i"` for `i-navajo`, `"x"` for the private-use tag `X-fr-CH`.
    pub fn primary(&self) -> &str {
        let primary = self.0.split('-').next().unwrap_or("");
        if primary == "X" {
            "x"
        } else {
            primary
        }
    }
}

/// Cheap, non-allocating check that `s` is a valid [`Language`] (syntax and
/// duplicate-subtag checks; what [`Language::parse`] accepts).
pub fn is_valid_language(s: &str) -> bool {
    validate(s).is_ok()
}

/// Syntax-only check: accepts well-formed tags such as `de-DE-1901-1901`
/// that repeat a variant or extension singleton.
pub fn is_valid_language_syntax(s: &str) -> bool {
    validate_syntax(s).is_ok()
}

pub(crate) fn validate(s: &str) -> Result<(), &'static str> {
    validate_syntax(s)?;
    validate_no_duplicates(s)
}

fn validate_syntax(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("language tag must not be empty");
    }
    if s.len() > MAX_LANGUAGE_LEN {
        return Err("language tag is too long (max 128 chars)");
    }
    let mut subtags = s.split('-');
    let primary = subtags.next().unwrap_or("");
    let private_use = primary.eq_ignore_ascii_case("x");
    let primary_ok = primary == "i"
        || private_use
        || ((2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase()));
    if !primary_ok {
        return Err("language primary subtag must be 2 or 3 lowercase letters, i or x");
    }
    let mut count = 0usize;
    for sub in subtags {
        if sub.is_empty() || !sub.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("language subtags must be non-empty ASCII letters and digits");
        }
        count += 1;
    }
    if private_use && count == 0 {
        return Err("private-use language tag must have a subtag after x");
    }
    Ok(())
}

/// Whether a subtag has the RFC 5646 variant shape: 5-8 alphanumerics, or
/// 4 starting with a digit.
fn is_variant_shape(sub: &str) -> bool {
    let b = sub.as_bytes();
    (5..=8).contains(&b.len()) || (b.len() == 4 && b[0].is_ascii_digit())
}

/// Bit for an extension singleton (`0-9`, `a-z`, case-insensitive).
fn singleton_bit(c: u8) -> u64 {
    match c.to_ascii_lowercase() {
        d @ b'0'..=b'9' => 1 << (d - b'0'),
        l @ b'a'..=b'z' => 1 << (10 + l - b'a'),
        _ => 0,
    }
}

/// Rejects repeated variants and repeated extension singletons. Assumes
/// [`validate_syntax`] passed. Does not allocate.
fn validate_no_duplicates(s: &str) -> Result<(), &'static str> {
    let mut subtags = s.split('-');
    if subtags.next().is_some_and(|p| p.eq_ignore_ascii_case("x")) {
        return Ok(()); // entirely private use
    }
    let mut seen_singletons = 0u64;
    let mut in_extension = false;
    for (idx, sub) in subtags.enumerate() {
        if sub.len() == 1 {
            let c = sub.as_bytes()[0];
            if c.eq_ignore_ascii_case(&b'x') {
                return Ok(()); // rest is private use
            }
            let bit = singleton_bit(c);
            if seen_singletons & bit != 0 {
                return Err("language tag repeats an extension singleton");
            }
            seen_singletons |= bit;
            in_extension = true;
        } else if !in_extension && is_variant_shape(sub) {
            // Variants only appear before the first extension; compare with
            // the earlier ones (tags are short, so quadratic is fine).
            let repeated = s
                .split('-')
                .skip(1)
                .take(idx)
                .any(|earlier| is_variant_shape(earlier) && earlier.eq_ignore_ascii_case(sub));
            if repeated {
                return Err("language tag repeats a variant subtag");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_subtag() {
        let p = |s: &str| Language::parse(s).expect("valid").primary().to_owned();
        assert_eq!(p("pt-BR"), "pt");
        assert_eq!(p("ja"), "ja");
        assert_eq!(p("i-navajo"), "i");
        assert_eq!(p("X-fr-CH"), "x");
        assert_eq!(p("sgn-BE-NL"), "sgn");
    }

    #[test]
    fn duplicates() {
        assert!(is_valid_language_syntax("de-DE-1901-1901"));
        assert!(!is_valid_language("de-DE-1901-1901"));
        assert!(is_valid_language("de-1901-1996"));
        // Repeats inside extensions or private use are not variants.
        assert!(is_valid_language("en-u-co-phonebk-t-co-phonebk"));
        assert!(is_valid_language("en-x-abcde-abcde"));
        assert!(is_valid_language("en-x-a-x"));
        assert!(!is_valid_language("en-a-foo-A-bar"));
        assert!(!is_valid_language("x"));
    }
}
