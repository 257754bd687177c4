//! Language codes and language detection.
//!
//! Detection runs only for posts without `langs`, and is three steps:
//!
//! 1. **Northern Sámi** (`se`) by a small rule: no detector crate models any Sámi language, so a
//!    text with at least two distinctive Northern Sámi words (`lea`, `ahte`, `giitu`, …), or one
//!    such word and a letter only Sámi orthography has together with `á` (`ŋ`, `ŧ`, `đ`), is `se`.
//! 2. **lingua** over the 36 languages this crate enables (see `Cargo.toml`), giving confidence
//!    values that sum to 1. lingua is the one maintained detector with separate Bokmål and Nynorsk
//!    models; `whatlang` knows only Bokmål and mixes short Norwegian, Danish and Swedish texts.
//! 3. **A Nordic refinement.** When lingua's best guess is Bokmål, Nynorsk, Danish or Swedish,
//!    the function words of the text vote (`ikkje`/`eg`/`kva` for Nynorsk, `ikke`/`jeg`/`hva` for
//!    Bokmål, `hvad`/`mig`/`efter` for Danish, `inte`/`jag`/`och` for Swedish; `æ`/`ø` against
//!    `ä`/`ö`). If one language gets strictly more votes than every other, it takes the whole
//!    Nordic share of the confidence. lingua alone puts "Hvordan går det med deg?" in Danish;
//!    `deg` is not Danish. A text with no telling word keeps lingua's split, so "Fin dag på
//!    fjellet!" is Norwegian (Bokmål + Nynorsk ≈ 0.6) without being either one.
//!
//! Work is bounded: mentions, links and hashtags are dropped, then at most
//! [`MAX_DETECT_BYTES`] of text is looked at. lingua loads each model on first use
//! (memory-mapped; ~100 MB resident once all 36 are used) and takes about 1 ms a text.

use std::sync::LazyLock;

use lingua::{Language, LanguageDetector, LanguageDetectorBuilder};

/// The most text, in bytes, that detection looks at.
pub const MAX_DETECT_BYTES: usize = 1000;

/// The most candidates a [`DetectedLanguage`] keeps.
const MAX_CANDIDATES: usize = 5;

/// Confidence given to a Northern Sámi text found by the rule (no model gives a real value).
const SAMI_CONFIDENCE: f64 = 0.9;

/// The languages the detector can return, as ISO 639-1 codes (`se` by the Sámi rule, the rest
/// by lingua).
pub const DETECTABLE_LANGUAGES: &[&str] = &[
    "ar", "ca", "cs", "da", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fr", "he", "hi", "hu",
    "id", "is", "it", "ja", "ko", "ms", "nb", "nl", "nn", "pl", "pt", "ro", "ru", "se", "sv", "th",
    "tl", "tr", "uk", "vi", "zh",
];

/// lingua's languages with their codes.
const LINGUA_LANGUAGES: &[(Language, &str)] = &[
    (Language::Arabic, "ar"),
    (Language::Basque, "eu"),
    (Language::Bokmal, "nb"),
    (Language::Catalan, "ca"),
    (Language::Chinese, "zh"),
    (Language::Czech, "cs"),
    (Language::Danish, "da"),
    (Language::Dutch, "nl"),
    (Language::English, "en"),
    (Language::Estonian, "et"),
    (Language::Finnish, "fi"),
    (Language::French, "fr"),
    (Language::German, "de"),
    (Language::Greek, "el"),
    (Language::Hebrew, "he"),
    (Language::Hindi, "hi"),
    (Language::Hungarian, "hu"),
    (Language::Icelandic, "is"),
    (Language::Indonesian, "id"),
    (Language::Italian, "it"),
    (Language::Japanese, "ja"),
    (Language::Korean, "ko"),
    (Language::Malay, "ms"),
    (Language::Nynorsk, "nn"),
    (Language::Persian, "fa"),
    (Language::Polish, "pl"),
    (Language::Portuguese, "pt"),
    (Language::Romanian, "ro"),
    (Language::Russian, "ru"),
    (Language::Spanish, "es"),
    (Language::Swedish, "sv"),
    (Language::Tagalog, "tl"),
    (Language::Thai, "th"),
    (Language::Turkish, "tr"),
    (Language::Ukrainian, "uk"),
    (Language::Vietnamese, "vi"),
];

static DETECTOR: LazyLock<LanguageDetector> = LazyLock::new(|| {
    let languages: Vec<Language> = LINGUA_LANGUAGES.iter().map(|(l, _)| *l).collect();
    LanguageDetectorBuilder::from_languages(&languages).build()
});

fn lingua_code(language: Language) -> Option<&'static str> {
    LINGUA_LANGUAGES
        .iter()
        .find(|(l, _)| *l == language)
        .map(|(_, c)| *c)
}

/// The result of detecting a text's language: the likeliest languages with confidences in
/// `0.0..=1.0` (summing to at most 1), best first.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectedLanguage {
    /// `(ISO 639-1 code, confidence)`, best first, at most five.
    pub candidates: Vec<(&'static str, f64)>,
}

impl DetectedLanguage {
    /// The likeliest language and its confidence.
    pub fn best(&self) -> Option<(&'static str, f64)> {
        self.candidates.first().copied()
    }

    /// The summed confidence of the candidates `accept` takes (for a feed of several languages,
    /// the chance the text is in any of them).
    pub fn confidence_of(&self, mut accept: impl FnMut(&str) -> bool) -> f64 {
        self.candidates
            .iter()
            .filter(|(code, _)| accept(code))
            .map(|(_, c)| c)
            .sum()
    }
}

/// Detects the language of `text` (see the module docs for how). `None` when the text has too
/// few letters to tell.
pub fn detect_language(text: &str) -> Option<DetectedLanguage> {
    let text = detection_text(text);
    if text.chars().filter(|c| c.is_alphabetic()).count() < 3 {
        return None;
    }
    if is_northern_sami(&text) {
        return Some(DetectedLanguage {
            candidates: vec![("se", SAMI_CONFIDENCE)],
        });
    }
    let mut candidates: Vec<(&'static str, f64)> = DETECTOR
        .compute_language_confidence_values(text.as_str())
        .into_iter()
        .filter(|(_, c)| *c > 0.0)
        .filter_map(|(l, c)| lingua_code(l).map(|code| (code, c)))
        .collect();
    if candidates.is_empty() {
        return None;
    }
    if NORDIC.contains(&candidates[0].0) {
        if let Some(winners) = nordic_vote(&text) {
            refine_nordic(&mut candidates, &winners);
        }
    }
    candidates.truncate(MAX_CANDIDATES);
    Some(DetectedLanguage { candidates })
}

/// The text detection looks at: words that are mentions, links or hashtags dropped (they are
/// names, not language), at most [`MAX_DETECT_BYTES`].
fn detection_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_DETECT_BYTES));
    for word in text.split_whitespace() {
        let skip =
            word.starts_with(['@', '#', '＃']) || word.contains("://") || word.starts_with("www.");
        if skip {
            continue;
        }
        if out.len() + word.len() + 1 > MAX_DETECT_BYTES {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Lowercased alphabetic words of `text`, at most `limit`.
fn words(text: &str, limit: usize) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .take(limit)
        .map(str::to_lowercase)
}

/// Common Northern Sámi words that are not words of the languages around it (no place names:
/// a Norwegian text about Kárášjohka is not Sámi).
const SAMI_WORDS: &[&str] = &[
    "lea",
    "leat",
    "ledje",
    "ahte",
    "dát",
    "dál",
    "buorre",
    "giitu",
    "sámegiella",
    "sámegillii",
    "beaivi",
    "odne",
    "ikte",
    "muhto",
    "ollu",
    "ođđa",
    "áigi",
    "giella",
    "dearvva",
    "dearvvuođat",
    "máŋga",
    "čállit",
    "eai",
    "iige",
    "maŋŋil",
    "boahtit",
    "mánát",
    "oahppat",
    "bargu",
];

fn is_northern_sami(text: &str) -> bool {
    let mut found: Vec<String> = Vec::new();
    for w in words(text, 300) {
        if SAMI_WORDS.contains(&w.as_str()) && !found.contains(&w) {
            found.push(w);
        }
    }
    let letters = text.contains('á') && text.contains(['ŋ', 'ŧ', 'đ', 'Ŋ', 'Ŧ', 'Đ']);
    found.len() >= 2 || (found.len() == 1 && letters)
}

const NB: u8 = 1;
const NN: u8 = 2;
const DA: u8 = 4;
const SV: u8 = 8;
const NORDIC: &[&str] = &["nb", "nn", "da", "sv"];

/// Which of Bokmål, Nynorsk, Danish and Swedish use `word` as written. Only words that tell
/// the four apart are listed.
fn nordic_mask(word: &str) -> u8 {
    match word {
        // Nynorsk only.
        "ikkje" | "eg" | "kva" | "korleis" | "kvifor" | "kven" | "kvar" | "ho" | "dei"
        | "berre" | "noko" | "nokon" | "nokre" | "heime" | "frå" | "vere" | "mykje" | "eit"
        | "ein" | "òg" | "sjølv" | "sjå" | "seie" | "seier" | "gjere" | "fekk" | "gjekk"
        | "kjem" | "kome" | "veit" | "trur" | "tykkjer" | "synest" | "saman" | "difor" | "enno"
        | "gong" | "gonger" | "eigentleg" | "verkeleg" | "heilt" | "sidan" | "kvarandre"
        | "fleire" | "meir" | "dykk" | "dykkar" | "tenkjer" | "kaffi" | "elskar" | "noreg"
        | "endeleg" | "heile" | "sommar" | "veke" | "høyrt" | "heim" => NN,
        // Bokmål only.
        "hva" | "noe" | "noen" | "mye" | "uten" | "ble" | "gjøre" | "sier" | "si" | "fikk"
        | "gikk" | "ennå" | "hverandre" | "dere" | "tenker" => NB,
        // Danish only.
        "hvad" | "noget" | "nogen" | "meget" | "af" | "op" | "ud" | "bliver" | "lidt" | "sådan"
        | "uden" | "gøre" | "siger" | "sige" | "fik" | "gik" | "havde" | "endnu" | "hinanden"
        | "mellem" | "vores" | "jer" | "måske" | "ude" | "tusind" => DA,
        // Swedish only.
        "inte" | "jag" | "vad" | "hur" | "hon" | "bara" | "något" | "någon" | "hemma" | "från"
        | "vara" | "mycket" | "också" | "och" | "är" | "att" | "upp" | "ska" | "skall"
        | "måste" | "själv" | "tillsammans" | "därför" | "väldigt" | "riktigt" | "göra"
        | "säger" | "säga" | "fick" | "gick" | "hade" | "ännu" | "gång" | "nog" | "säkert"
        | "mellan" | "varandra" | "kanske" | "vem" | "varför" | "ett" | "egentligen"
        | "verkligen" | "många" | "fler" | "flera" | "sedan" | "morgon" | "alla" | "detta"
        | "tack" => SV,
        // Two or three of them.
        "ikke" | "jeg" | "hvordan" | "hun" | "hjemme" | "fra" | "være" | "selv" | "sammen"
        | "derfor" | "synes" | "hvis" | "hvor" | "hvem" | "hvorfor" | "et" | "egentlig"
        | "bare" | "virkelig" | "siden" | "flere" => NB | DA,
        "meg" | "deg" | "seg" | "nå" | "etter" | "opp" | "litt" | "sånn" | "veldig" | "riktig"
        | "kanskje" | "hadde" | "hatt" | "mellom" | "takk" | "hei" | "nei" | "skjer"
        | "gratulerer" => NB | NN,
        "hej" | "nej" | "sker" => DA | SV,
        "å" => NB | NN,
        "mig" | "dig" | "sig" | "nu" | "efter" | "blev" | "haft" => DA | SV,
        "elsker" => NB | DA,
        "vet" | "mer" => NB | SV,
        "mere" => NB | DA,
        "medan" | "utan" | "viss" => NN | SV,
        "og" | "er" | "også" | "fordi" | "skal" | "nok" | "sikkert" | "mange" | "at" | "komme" => {
            NB | NN | DA
        }
        "av" | "ut" | "blir" | "ute" | "bra" | "tusen" => NB | NN | SV,
        "alle" | "dette" | "morgen" => NB | NN | DA,
        "tror" | "kommer" => NB | DA | SV,
        _ => {
            if word.contains(['ä', 'ö']) {
                SV
            } else if word.contains(['æ', 'ø']) {
                NB | NN | DA
            } else {
                0
            }
        }
    }
}

/// The Nordic languages the function words of `text` favour: those with the most votes, when
/// that is not all four (no telling word, or a tie of all four, says nothing).
fn nordic_vote(text: &str) -> Option<Vec<&'static str>> {
    let mut votes = [0u32; 4];
    for w in words(text, 300) {
        let mask = nordic_mask(&w);
        for (i, bit) in [NB, NN, DA, SV].into_iter().enumerate() {
            if mask & bit != 0 {
                votes[i] += 1;
            }
        }
    }
    let top = votes.iter().copied().max().unwrap_or(0);
    if top == 0 || votes.iter().all(|v| *v == top) {
        return None;
    }
    Some(
        NORDIC
            .iter()
            .zip(votes)
            .filter(|(_, v)| *v == top)
            .map(|(code, _)| *code)
            .collect(),
    )
}

/// Gives the Nordic languages' whole share of the confidence to `winners`, split as lingua
/// split it between them (evenly if lingua gave them nothing).
fn refine_nordic(candidates: &mut Vec<(&'static str, f64)>, winners: &[&'static str]) {
    let share: f64 = candidates
        .iter()
        .filter(|(code, _)| NORDIC.contains(code))
        .map(|(_, c)| c)
        .sum();
    let confidence = |code: &str| {
        candidates
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(0.0, |(_, v)| *v)
    };
    let winners_total: f64 = winners.iter().map(|w| confidence(w)).sum();
    let refined: Vec<(&'static str, f64)> = winners
        .iter()
        .map(|w| {
            let part = if winners_total > 0.0 {
                confidence(w) / winners_total
            } else {
                1.0 / winners.len() as f64
            };
            (*w, share * part)
        })
        .collect();
    candidates.retain(|(code, _)| !NORDIC.contains(code));
    candidates.extend(refined);
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1));
}

/// ISO 639-1 codes (two letters).
const ISO_639_1: &[&str] = &[
    "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bh",
    "bi", "bm", "bn", "bo", "br", "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da",
    "de", "dv", "dz", "ee", "el", "en", "eo", "es", "et", "eu", "fa", "ff", "fi", "fj", "fo", "fr",
    "fy", "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he", "hi", "ho", "hr", "ht", "hu", "hy", "hz",
    "ia", "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv", "ka", "kg", "ki", "kj",
    "kk", "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li", "ln",
    "lo", "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb",
    "nd", "ne", "ng", "nl", "nn", "no", "nr", "nv", "ny", "oc", "oj", "om", "or", "os", "pa", "pi",
    "pl", "ps", "pt", "qu", "rm", "rn", "ro", "ru", "rw", "sa", "sc", "sd", "se", "sg", "si", "sk",
    "sl", "sm", "sn", "so", "sq", "sr", "ss", "st", "su", "sv", "sw", "ta", "te", "tg", "th", "ti",
    "tk", "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk", "ur", "uz", "ve", "vi", "vo",
    "wa", "wo", "xh", "yi", "yo", "za", "zh", "zu",
];

/// Three-letter codes of languages that have a two-letter code, which BCP 47 says to use.
const THREE_TO_TWO: &[(&str, &str)] = &[
    ("ara", "ar"),
    ("cat", "ca"),
    ("ces", "cs"),
    ("dan", "da"),
    ("deu", "de"),
    ("ell", "el"),
    ("eng", "en"),
    ("est", "et"),
    ("eus", "eu"),
    ("fas", "fa"),
    ("fin", "fi"),
    ("fra", "fr"),
    ("heb", "he"),
    ("hin", "hi"),
    ("hun", "hu"),
    ("ind", "id"),
    ("isl", "is"),
    ("ita", "it"),
    ("jpn", "ja"),
    ("kor", "ko"),
    ("msa", "ms"),
    ("nld", "nl"),
    ("nno", "nn"),
    ("nob", "nb"),
    ("nor", "no"),
    ("pol", "pl"),
    ("por", "pt"),
    ("ron", "ro"),
    ("rus", "ru"),
    ("sme", "se"),
    ("spa", "es"),
    ("swe", "sv"),
    ("tgl", "tl"),
    ("tha", "th"),
    ("tur", "tr"),
    ("ukr", "uk"),
    ("vie", "vi"),
    ("zho", "zh"),
];

/// The Sámi languages a feed can name: Northern, Lule, Southern, Inari and Skolt Sámi.
pub const SAMI_LANGUAGES: &[&str] = &["se", "smj", "sma", "smn", "sms"];

/// Checks a language code from a feed definition: a primary subtag, two letters from ISO 639-1
/// or three lowercase letters (ISO 639-3, for languages without a two-letter code). Returns the
/// lowercased code, or why it is refused.
pub fn check_feed_language(code: &str) -> Result<String, String> {
    let lower = code.to_ascii_lowercase();
    if let Some((primary, _)) = lower.split_once(['-', '_']) {
        return Err(format!(
            "language \"{code}\": feeds match posts by the primary subtag only; write \"{primary}\""
        ));
    }
    match lower.len() {
        2 if lower.bytes().all(|b| b.is_ascii_lowercase()) => {
            if ISO_639_1.contains(&lower.as_str()) {
                Ok(lower)
            } else {
                Err(format!("unknown language code \"{code}\""))
            }
        }
        3 if lower.bytes().all(|b| b.is_ascii_lowercase()) => {
            match THREE_TO_TWO.iter().find(|(three, _)| *three == lower) {
                Some((_, two)) => Err(format!(
                    "language \"{code}\": posts tag this language \"{two}\" (BCP 47 uses the two-letter code); write \"{two}\""
                )),
                None => Ok(lower),
            }
        }
        _ => Err(format!(
            "unknown language code \"{code}\": expected a two- or three-letter code such as \"nb\" or \"smj\""
        )),
    }
}

/// Whether a feed's language `feed_code` takes a post whose primary subtag is `post_primary`:
/// equal codes, or the macrolanguage `no` (Norwegian) for `nb` and `nn`.
pub fn language_covers(feed_code: &str, post_primary: &str) -> bool {
    feed_code == post_primary || (feed_code == "no" && matches!(post_primary, "nb" | "nn"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_checked() {
        assert_eq!(check_feed_language("NB").as_deref(), Ok("nb"));
        assert_eq!(check_feed_language("smj").as_deref(), Ok("smj"));
        assert!(check_feed_language("xx").is_err());
        assert!(check_feed_language("nb-NO")
            .expect_err("a region")
            .contains("\"nb\""));
        assert!(check_feed_language("nob")
            .expect_err("three letters")
            .contains("\"nb\""));
        assert!(check_feed_language("norsk").is_err());
        assert!(check_feed_language("").is_err());
        for code in DETECTABLE_LANGUAGES {
            assert!(ISO_639_1.contains(code), "{code}");
        }
        assert_eq!(LINGUA_LANGUAGES.len() + 1, DETECTABLE_LANGUAGES.len());
    }

    #[test]
    fn macrolanguage_no_covers_bokmal_and_nynorsk() {
        assert!(language_covers("no", "nb"));
        assert!(language_covers("no", "nn"));
        assert!(language_covers("nb", "nb"));
        assert!(!language_covers("nb", "no"));
        assert!(!language_covers("nb", "nn"));
    }

    #[test]
    fn nordic_votes() {
        let vote = |text| nordic_vote(text).map(|w| w.join(","));
        assert_eq!(vote("Hvordan går det med deg?").as_deref(), Some("nb"));
        assert_eq!(vote("Korleis går det med deg?").as_deref(), Some("nn"));
        assert_eq!(
            vote("Hvordan har du det? Jeg har det godt nu.").as_deref(),
            Some("da")
        );
        assert_eq!(vote("Hur mår du? Jag mår bra.").as_deref(), Some("sv"));
        assert_eq!(vote("Fin dag på fjellet i dag!"), None);
        assert_eq!(vote("Jeg elsker Norge").as_deref(), Some("nb,da"));
        assert_eq!(vote("Det er så fint ute i dag").as_deref(), Some("nb,nn"));
        assert_eq!(vote("Takk for i dag").as_deref(), Some("nb,nn"));
    }

    #[test]
    fn refinement_moves_the_nordic_share() {
        let mut c = vec![
            ("sv", 0.3),
            ("nb", 0.2),
            ("en", 0.2),
            ("nn", 0.2),
            ("da", 0.1),
        ];
        refine_nordic(&mut c, &["nb", "nn"]);
        let get = |code| c.iter().find(|(x, _)| *x == code).map(|(_, v)| *v);
        assert!((get("nb").unwrap_or(0.0) - 0.4).abs() < 1e-9);
        assert!((get("nn").unwrap_or(0.0) - 0.4).abs() < 1e-9);
        assert_eq!(get("en"), Some(0.2));
        assert_eq!(get("sv"), None);
        assert_eq!(c[2].0, "en");
    }

    #[test]
    fn detection_text_drops_names_and_is_bounded() {
        assert_eq!(
            detection_text("@ola.bsky.social se https://nrk.no #Tromsø her www.vg.no"),
            "se her"
        );
        let long = "ord ".repeat(1000);
        assert!(detection_text(&long).len() <= MAX_DETECT_BYTES);
    }

    #[test]
    fn sami_rule() {
        assert!(is_northern_sami("Buorre beaivi! Dál lea čáppa dálki."));
        assert!(is_northern_sami("Giitu ollu!"));
        assert!(!is_northern_sami("Giitu"));
        assert!(!is_northern_sami("Hôm nay trời đẹp quá, đá bóng không?"));
        assert!(!is_northern_sami("Lea er en fin jente"));
    }
}
