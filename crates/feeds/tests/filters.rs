//! Filters over realistic post records: a table of cases, language detection, reposts, the
//! shared relay corpus, and a property test that reading features never panics.

use proptest::prelude::*;
use serde_json::{json, Value as J};
use skystream_data::json::from_json;
use skystream_data::{Map, Value};
use skystream_feeds::{
    detect_language, Config, EmbedKind, Feed, Filter, Match, MediaKind, PostFeatures,
};

const AUTHOR: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const OTHER: &str = "did:plc:z72i7hdynmk6r22z27h6tvur";
const MENTIONED: &str = "did:plc:44ybard66vv44zksje25o7dz";
const CID: &str = "bafkreicwsq23gkygrgpijv7ocssxdyjokfv3quss3f2dg4csds3jpeqkwe";
const POST_CID: &str = "bafyreig2fjxi3rptqdgylg7e5hmjl6mcke7rn2b6cugzlqq3i4zu6rq52q";

/// A feed from the keys of one `[[feed]]` table.
fn feed(keys: &str) -> Feed {
    let text = format!("[[feed]]\nid = \"t\"\ndisplay_name = \"Test\"\n{keys}\n");
    let mut config = Config::from_toml_str(&text, "test.toml")
        .unwrap_or_else(|e| panic!("feed {keys:?} does not parse: {e}"));
    config.feeds.remove(0)
}

/// A post record: `text` with `createdAt`, plus `extra` keys.
fn record(text: &str, extra: J) -> Value<'static> {
    let mut obj = json!({
        "$type": "app.bsky.feed.post",
        "text": text,
        "createdAt": "2025-07-04T10:15:00.000Z",
    });
    if let (Some(o), Some(e)) = (obj.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    from_json(&obj).unwrap_or_else(|e| panic!("record {obj} is not atproto JSON: {e}"))
}

fn features(author: &str, rec: &Value<'_>) -> PostFeatures {
    PostFeatures::from_record(author, "3lbxyzabc2k2a", rec)
}

fn strong_ref(rkey: &str) -> J {
    json!({"uri": format!("at://{OTHER}/app.bsky.feed.post/{rkey}"), "cid": POST_CID})
}

fn reply() -> J {
    json!({"reply": {"root": strong_ref("3lbroot22222a"), "parent": strong_ref("3lbparent222a")}})
}

fn image(mime: &str) -> J {
    json!({
        "alt": "Utsikt fra Fløyen",
        "aspectRatio": {"width": 4000, "height": 3000},
        "image": {"$type": "blob", "ref": {"$link": CID}, "mimeType": mime, "size": 1_997_139},
    })
}

fn images() -> J {
    json!({"embed": {"$type": "app.bsky.embed.images", "images": [image("image/jpeg")]}})
}

fn video() -> J {
    json!({"embed": {
        "$type": "app.bsky.embed.video",
        "video": {"$type": "blob", "ref": {"$link": CID}, "mimeType": "video/mp4", "size": 5_000_000},
        "aspectRatio": {"width": 1080, "height": 1920},
    }})
}

fn external() -> J {
    json!({"embed": {"$type": "app.bsky.embed.external", "external": {
        "uri": "https://www.nrk.no/norge/valget-1.17000000",
        "title": "Valget 2025",
        "description": "Alt om valget",
    }}})
}

fn quote_with_images() -> J {
    json!({"embed": {
        "$type": "app.bsky.embed.recordWithMedia",
        "record": {"$type": "app.bsky.embed.record", "record": strong_ref("3lbquoted222a")},
        "media": {"$type": "app.bsky.embed.images", "images": [image("image/png")]},
    }})
}

fn tag_facet(tag: &str, start: usize, end: usize) -> J {
    json!({"index": {"byteStart": start, "byteEnd": end},
           "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}]})
}

fn mention_facet(did: &str) -> J {
    json!({"index": {"byteStart": 0, "byteEnd": 14},
           "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}]})
}

fn self_labels(kind: &str, val: &str) -> J {
    json!({"labels": {"$type": kind, "values": [{"val": val}]}})
}

fn langs(tags: &[&str]) -> J {
    json!({ "langs": tags })
}

fn merge(parts: &[J]) -> J {
    let mut out = serde_json::Map::new();
    for part in parts {
        if let Some(o) = part.as_object() {
            out.extend(o.clone());
        }
    }
    J::Object(out)
}

#[derive(Debug)]
enum Expect {
    /// Matched, with this filter among the reasons (or none for a feed that takes all).
    Yes(Option<Filter>),
    /// Refused by this filter.
    No(Filter),
    /// Would match with enough likes.
    Pending,
}

struct Case {
    name: &'static str,
    feed: &'static str,
    text: &'static str,
    extra: J,
    author: &'static str,
    likes: u64,
    expect: Expect,
}

fn case(
    name: &'static str,
    feed: &'static str,
    text: &'static str,
    extra: J,
    expect: Expect,
) -> Case {
    Case {
        name,
        feed,
        text,
        extra,
        author: AUTHOR,
        likes: 0,
        expect,
    }
}

const NB: &str = r#"languages = ["nb"]"#;
const NN: &str = r#"languages = ["nn"]"#;
const SAMI: &str = r#"languages = ["se", "smj", "sma", "smn", "sms"]"#;
const ALL: &str = r#"languages = ["nb", "nn", "no", "se", "smj", "sma", "smn", "sms"]"#;

const NB_TEXT: &str =
    "Jeg vet ikke hva jeg skal gjøre i helgen, men det blir sikkert fint vær på Vestlandet.";
const NN_TEXT: &str =
    "Eg veit ikkje kva eg skal gjere i helga, men det blir sikkert fint vêr på Vestlandet.";
const SV_TEXT: &str =
    "Jag vet inte vad jag ska göra i helgen, men det blir säkert fint väder på västkusten.";
const DA_TEXT: &str =
    "Jeg ved ikke hvad jeg skal lave i weekenden, men det bliver sikkert godt vejr i Jylland.";
const EN_TEXT: &str =
    "I have no idea what to do this weekend, but the weather on the west coast looks great.";
const SE_TEXT: &str = "Buorre beaivi! Odne lea čáppa dálki Guovdageainnus, ja mun lean hui ilus.";

#[rustfmt::skip] // one case a line reads as a table
fn cases() -> Vec<Case> {
    use Expect::{No, Pending, Yes};
    let none = || json!({});
    vec![
        // Languages, from `langs` by primary subtag.
        case("nb-NO matches nb", NB, NB_TEXT, langs(&["nb-NO"]), Yes(Some(Filter::Languages))),
        case("nb does not match nn", NN, NB_TEXT, langs(&["nb"]), No(Filter::Languages)),
        case("any of several langs", NB, NB_TEXT, langs(&["en", "nb"]), Yes(Some(Filter::Languages))),
        case("upper-case tag", NN, NN_TEXT, langs(&["NN"]), Yes(Some(Filter::Languages))),
        case("no in the all feed", ALL, NB_TEXT, langs(&["no"]), Yes(Some(Filter::Languages))),
        case("feed no takes nb", r#"languages = ["no"]"#, NB_TEXT, langs(&["nb"]), Yes(Some(Filter::Languages))),
        case("feed nb does not take no", NB, NB_TEXT, langs(&["no"]), No(Filter::Languages)),
        case("se in the sami feed", SAMI, SE_TEXT, langs(&["se"]), Yes(Some(Filter::Languages))),
        case("smj-NO in the sami feed", SAMI, "Buorre biejvve!", langs(&["smj-NO"]), Yes(Some(Filter::Languages))),
        case("sv is not Norwegian", ALL, SV_TEXT, langs(&["sv"]), No(Filter::Languages)),
        case("langs win over the text", NB, EN_TEXT, langs(&["nb"]), Yes(Some(Filter::Languages))),
        // Languages, detected when `langs` is missing.
        case("detected nb in bokmaal", NB, NB_TEXT, none(), Yes(Some(Filter::Languages))),
        case("detected nb not in nynorsk", NN, NB_TEXT, none(), No(Filter::Languages)),
        case("detected nn in nynorsk", NN, NN_TEXT, none(), Yes(Some(Filter::Languages))),
        case("detected nn not in bokmaal", NB, NN_TEXT, none(), No(Filter::Languages)),
        case("detected nn in all", ALL, NN_TEXT, none(), Yes(Some(Filter::Languages))),
        case("detected sv not in all", ALL, SV_TEXT, none(), No(Filter::Languages)),
        case("detected da not in all", ALL, DA_TEXT, none(), No(Filter::Languages)),
        case("detected en not in all", ALL, EN_TEXT, none(), No(Filter::Languages)),
        case("detected se in sami", SAMI, SE_TEXT, none(), Yes(Some(Filter::Languages))),
        case("empty langs means detect", NB, NB_TEXT, langs(&[]), Yes(Some(Filter::Languages))),
        case("no text, nothing to detect", ALL, "", images(), No(Filter::Languages)),
        // Keywords: whole words, any case, Unicode.
        case("øl matches Øl!", r#"keywords = ["øl"]"#, "Øl! Endelig fredag.", none(), Yes(Some(Filter::Keywords))),
        case("øl is not in føler", r#"keywords = ["øl"]"#, "Jeg føler meg ferdig med uka.", none(), No(Filter::Keywords)),
        case("phrase across a line break", r#"keywords = ["kunstig intelligens"]"#, "Mer om Kunstig\nintelligens i skolen", none(), Yes(Some(Filter::Keywords))),
        case("hyphen is a boundary", r#"keywords = ["nrk"]"#, "NRK-sjefen går av", none(), Yes(Some(Filter::Keywords))),
        case("keywords_out excludes", r#"keywords_out = ["reklame"]"#, "Dette er REKLAME for ost", none(), No(Filter::KeywordsOut)),
        case("keywords_out is whole-word too", r#"keywords_out = ["reklame"]"#, "Endelig reklamefri podkast", none(), Yes(None)),
        case("keywords_out beats keywords", "keywords = [\"øl\"]\nkeywords_out = [\"annonse\"]", "Øl på tilbud (annonse)", none(), No(Filter::KeywordsOut)),
        // Regexes.
        case("regex matches", r#"regex = '\b\d{1,2}\. (mai|juni)\b'"#, "Vi ses 17. mai i Oslo", none(), Yes(Some(Filter::Regex))),
        case("regex does not match", r#"regex = '\b\d{1,2}\. (mai|juni)\b'"#, "Vi ses i Oslo", none(), No(Filter::Regex)),
        case("regex_out excludes", r#"regex_out = 'https?://(www\.)?spam\.example'"#, "Se her: https://spam.example/tilbud", none(), No(Filter::RegexOut)),
        // Hashtags, from facets, `tags` and the text.
        case("hashtag from a facet", r#"hashtags = ["tromsø"]"#, "Nordlys over #Tromsø", json!({"facets": [tag_facet("Tromsø", 13, 21)]}), Yes(Some(Filter::Hashtags))),
        case("hashtag from the text", r#"hashtags = ["tromsø"]"#, "Nordlys over #Tromsø i kveld", none(), Yes(Some(Filter::Hashtags))),
        case("feed hashtag with # and case", r##"hashtags = ["#Bergen"]"##, "Regn igjen #bergen!", none(), Yes(Some(Filter::Hashtags))),
        case("hashtag from tags", r#"hashtags = ["fjelltur"]"#, "Fin dag", json!({"tags": ["Fjelltur"]}), Yes(Some(Filter::Hashtags))),
        case("no such hashtag", r#"hashtags = ["tromsø"]"#, "Nordlys over Tromsø", none(), No(Filter::Hashtags)),
        case("topic: hashtag or keyword", "keywords = [\"fjellet\"]\nhashtags = [\"tur\"]", "#tur i dag", none(), Yes(Some(Filter::Hashtags))),
        case("topic: neither", "keywords = [\"fjellet\"]\nhashtags = [\"tur\"]", "Hjemme i dag", none(), No(Filter::Keywords)),
        // Authors and mentions.
        Case { author: AUTHOR, ..case("author allowed", "authors = [\"did:plc:ewvi7nxzyoun6zhxrhs64oiz\"]", "Hei", none(), Yes(Some(Filter::Authors))) },
        Case { author: OTHER, ..case("author not allowed", "authors = [\"did:plc:ewvi7nxzyoun6zhxrhs64oiz\"]", "Hei", none(), No(Filter::Authors)) },
        Case { author: OTHER, ..case("author denied", "authors_out = [\"did:plc:z72i7hdynmk6r22z27h6tvur\"]", "Hei", none(), No(Filter::AuthorsOut)) },
        case("mention found", "mentions = [\"did:plc:44ybard66vv44zksje25o7dz\"]", "@nrk.no hva skjer?", json!({"facets": [mention_facet(MENTIONED)]}), Yes(Some(Filter::Mentions))),
        case("mention missing", "mentions = [\"did:plc:44ybard66vv44zksje25o7dz\"]", "@vg.no hva skjer?", json!({"facets": [mention_facet(OTHER)]}), No(Filter::Mentions)),
        // Replies.
        case("replies excluded", r#"replies = "exclude""#, "Helt enig!", reply(), No(Filter::Replies)),
        case("top-level kept when replies excluded", r#"replies = "exclude""#, "Ny tråd", none(), Yes(None)),
        case("replies only: a reply", r#"replies = "only""#, "Helt enig!", reply(), Yes(Some(Filter::Replies))),
        case("replies only: not a reply", r#"replies = "only""#, "Ny tråd", none(), No(Filter::Replies)),
        case("replies included", r#"replies = "include""#, "Helt enig!", reply(), Yes(None)),
        // Media.
        case("images wanted, images", r#"media = ["images"]"#, "Utsikt", images(), Yes(Some(Filter::Media))),
        case("video wanted, images", r#"media = ["video"]"#, "Utsikt", images(), No(Filter::Media)),
        case("images beside a quote", r#"media = ["images"]"#, "Se dette", quote_with_images(), Yes(Some(Filter::Media))),
        case("external link card", r#"media = ["external", "video"]"#, "Les", external(), Yes(Some(Filter::Media))),
        case("no media", r#"media = ["images"]"#, "Bare tekst", none(), No(Filter::Media)),
        case("video content mode", r#"content_mode = "video""#, "Se", video(), Yes(Some(Filter::Media))),
        case("video content mode, no video", r#"content_mode = "video""#, "Se", images(), No(Filter::Media)),
        // Self-labels.
        case("self-label excluded", r#"labels_out = ["porn", "nudity"]"#, "…", merge(&[images(), self_labels("com.atproto.label.defs#selfLabels", "nudity")]), No(Filter::LabelsOut)),
        case("other self-label kept", r#"labels_out = ["porn"]"#, "…", self_labels("com.atproto.label.defs#selfLabels", "graphic-media"), Yes(None)),
        case("labels without the selfLabels type", r#"labels_out = ["porn"]"#, "…", self_labels("com.example.labels", "porn"), Yes(None)),
        // Likes.
        Case { likes: 2, ..case("below min_likes is pending", "min_likes = 5", "Hei", none(), Pending) },
        Case { likes: 5, ..case("at min_likes matches", "min_likes = 5", "Hei", none(), Yes(None)) },
        Case { likes: 0, ..case("a refusal beats pending", "min_likes = 5\nkeywords_out = [\"reklame\"]", "reklame", none(), No(Filter::KeywordsOut)) },
        // Several filters together.
        case("nb with keyword, no reply", "languages = [\"nb\"]\nkeywords = [\"øl\"]\nreplies = \"exclude\"", "Øl og pizza i kveld", langs(&["nb"]), Yes(Some(Filter::Keywords))),
        case("a feed without filters", "", "Hva som helst", none(), Yes(None)),
    ]
}

#[test]
fn filter_table() {
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let feed = feed(c.feed);
        let post = features(c.author, &record(c.text, c.extra.clone()));
        let got = feed.matches(&post, c.likes);
        let ok = match (&c.expect, &got) {
            (Expect::Yes(None), Match::Yes(_)) => true,
            (Expect::Yes(Some(f)), Match::Yes(reasons)) => reasons.iter().any(|r| r.filter == *f),
            (Expect::No(f), Match::No(reason)) => reason.filter == *f,
            (Expect::Pending, Match::Pending { .. }) => true,
            _ => false,
        };
        if !ok {
            failures.push(format!("{}: expected {:?}, got {got}", c.name, c.expect));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn match_explains_itself() {
    let feed = feed("languages = [\"nb\"]\nkeywords = [\"øl\"]\nmin_likes = 3");
    let post = features(AUTHOR, &record("Øl i kveld?", langs(&["nb-NO"])));
    let m = feed.matches(&post, 1);
    assert_eq!(
        m,
        Match::Pending {
            likes: 1,
            min_likes: 3
        }
    );
    assert_eq!(m.decided_by(), Some(Filter::MinLikes));
    assert_eq!(m.to_string(), "pending: 1 of 3 likes");
    let m = feed.matches(&post, 3);
    assert!(m.is_match());
    assert_eq!(m.decided_by(), Some(Filter::Keywords));
    assert_eq!(
        m.to_string(),
        "matched: keywords (\"øl\"), languages (langs nb-no)"
    );
    let post = features(AUTHOR, &record("Øl i kveld?", langs(&["sv"])));
    assert_eq!(
        feed.matches(&post, 3).to_string(),
        "rejected by languages: langs sv"
    );
}

#[test]
fn detection_tells_the_nordic_languages_apart() {
    let table: &[(&str, &str)] = &[
        (NB_TEXT, "nb"),
        (
            "Hvordan går det med deg? Jeg har ikke hørt fra deg på lenge.",
            "nb",
        ),
        (
            "Nå er det endelig sommer, og vi skal på hytta hele uka.",
            "nb",
        ),
        ("Hun sa at hun ikke ville komme hjem før etter jul.", "nb"),
        (NN_TEXT, "nn"),
        (
            "Korleis går det med deg? Eg har ikkje høyrt frå deg på lenge.",
            "nn",
        ),
        (
            "No er det endeleg sommar, og vi skal på hytta heile veka.",
            "nn",
        ),
        ("Ho sa at ho ikkje ville kome heim før etter jul.", "nn"),
        (SV_TEXT, "sv"),
        ("Hur mår du? Jag har inte hört av dig på länge.", "sv"),
        (DA_TEXT, "da"),
        (
            "Hvordan har du det? Jeg har ikke hørt fra dig i lang tid.",
            "da",
        ),
        (EN_TEXT, "en"),
        (
            "Just finished my first marathon and my legs are absolutely destroyed.",
            "en",
        ),
        (
            "Heute war ein wunderschöner Tag am See, wir waren schwimmen.",
            "de",
        ),
        (
            "Hoy hace mucho calor en Madrid y no tengo aire acondicionado.",
            "es",
        ),
        ("今日はとても暑いですね。アイスが食べたい。", "ja"),
        ("오늘 날씨가 정말 좋네요. 산책하러 가야겠어요.", "ko"),
        (
            "Hoje está muito frio em São Paulo, fiquei em casa o dia todo.",
            "pt",
        ),
        (SE_TEXT, "se"),
    ];
    let mut failures = Vec::new();
    for (text, want) in table {
        let got = detect_language(text);
        let best = got.as_ref().and_then(|d| d.best()).map(|(code, _)| code);
        if best != Some(*want) {
            failures.push(format!("{text:?}: expected {want}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(detect_language("🙂👍 !!"), None);
    assert_eq!(detect_language("@ola.bsky.social https://nrk.no"), None);
}

#[test]
fn detection_is_lazy_and_only_without_langs() {
    let post = features(AUTHOR, &record(NB_TEXT, langs(&["nb"])));
    assert!(post.detected_language().is_none());
    let post = features(AUTHOR, &record(NB_TEXT, json!({})));
    let first = post.detected_language().cloned();
    assert_eq!(
        first.as_ref().and_then(|d| d.best()).map(|b| b.0),
        Some("nb")
    );
    assert_eq!(post.detected_language().cloned(), first);
}

#[test]
fn features_of_a_full_post() {
    let text = "@nrk.no Nordlys over #Tromsø i kveld! Se https://www.yr.no/nordlys #Nordlys #2025";
    let extra = merge(&[
        reply(),
        quote_with_images(),
        json!({
            "langs": ["nb-NO", "en", 7, "not a tag!"],
            "tags": ["Vinter", "#vinter"],
            "facets": [
                mention_facet(MENTIONED),
                tag_facet("Tromsø", 21, 29),
                {"index": {"byteStart": 45, "byteEnd": 67},
                 "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://www.yr.no/nordlys"}]},
                {"index": {"byteStart": 0, "byteEnd": 1},
                 "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "not-a-did"}]},
            ],
        }),
        self_labels("com.atproto.label.defs#selfLabels", "graphic-media"),
    ]);
    let post = features(AUTHOR, &record(text, extra));
    assert_eq!(post.text, text);
    assert_eq!(post.langs, ["nb-no", "en"]);
    assert_eq!(post.primary_langs().collect::<Vec<_>>(), ["nb", "en"]);
    assert_eq!(post.hashtags, ["tromsø", "vinter", "nordlys"]);
    assert_eq!(post.mentions, [MENTIONED]);
    assert_eq!(post.links, ["https://www.yr.no/nordlys"]);
    let reply = post.reply.clone().expect("a reply");
    assert_eq!(
        reply.parent.as_deref(),
        Some(format!("at://{OTHER}/app.bsky.feed.post/3lbparent222a").as_str())
    );
    assert_eq!(
        reply.root.as_deref(),
        Some(format!("at://{OTHER}/app.bsky.feed.post/3lbroot22222a").as_str())
    );
    assert_eq!(
        post.quote.as_deref(),
        Some(format!("at://{OTHER}/app.bsky.feed.post/3lbquoted222a").as_str())
    );
    assert_eq!(post.embed, EmbedKind::RecordWithMedia);
    assert_eq!(post.media, Some(MediaKind::Images));
    assert_eq!(post.self_labels, ["graphic-media"]);
    assert_eq!(post.created_at_micros(), Some(1_751_624_100_000_000));
    assert_eq!(
        post.uri(),
        format!("at://{AUTHOR}/app.bsky.feed.post/3lbxyzabc2k2a")
    );
}

#[test]
fn features_of_plain_quotes_and_link_cards() {
    let quote =
        json!({"embed": {"$type": "app.bsky.embed.record", "record": strong_ref("3lbquoted222a")}});
    let post = features(AUTHOR, &record("Sitat", quote));
    assert_eq!(post.embed, EmbedKind::Record);
    assert_eq!(post.media, None);
    assert!(post.quote.is_some());
    let post = features(AUTHOR, &record("Les", external()));
    assert_eq!(post.embed, EmbedKind::External);
    assert_eq!(post.media, Some(MediaKind::External));
    assert_eq!(post.links, ["https://www.nrk.no/norge/valget-1.17000000"]);
    let post = features(
        AUTHOR,
        &record(
            "?",
            json!({"embed": {"$type": "app.bsky.embed.somethingNew"}}),
        ),
    );
    assert_eq!(post.embed, EmbedKind::Other);
}

#[test]
fn text_is_capped() {
    let long = "ø".repeat(4000);
    let rec = from_json(&json!({"text": long, "createdAt": "x"})).expect("json");
    let post = features(AUTHOR, &rec);
    assert_eq!(post.text.len(), 3000);
    assert_eq!(post.created_at_micros(), None);
}

#[test]
fn reposts() {
    let content = feed("reposts = true\nlanguages = [\"nb\"]\nauthors_out = [\"did:plc:z72i7hdynmk6r22z27h6tvur\"]");
    let subject = features(AUTHOR, &record(NB_TEXT, langs(&["nb"])));
    assert!(content
        .matches_repost(MENTIONED, Some(&subject), 0)
        .is_match());
    assert_eq!(
        content
            .matches_repost(OTHER, Some(&subject), 0)
            .decided_by(),
        Some(Filter::AuthorsOut)
    );
    assert_eq!(
        content.matches_repost(MENTIONED, None, 0).decided_by(),
        Some(Filter::Reposts)
    );
    let by_denied = features(OTHER, &record(NB_TEXT, langs(&["nb"])));
    assert_eq!(
        content
            .matches_repost(MENTIONED, Some(&by_denied), 0)
            .decided_by(),
        Some(Filter::AuthorsOut)
    );
    let swedish = features(AUTHOR, &record(SV_TEXT, langs(&["sv"])));
    assert_eq!(
        content
            .matches_repost(MENTIONED, Some(&swedish), 0)
            .decided_by(),
        Some(Filter::Languages)
    );

    let people =
        feed("reposts = true\nauthors = [\"did:plc:ewvi7nxzyoun6zhxrhs64oiz\"]\nmin_likes = 1");
    assert!(people.matches_repost(AUTHOR, None, 1).is_match());
    assert!(people.matches_repost(AUTHOR, None, 0).is_pending());
    assert_eq!(
        people.matches_repost(OTHER, None, 1).decided_by(),
        Some(Filter::Authors)
    );

    let no_reposts = feed("languages = [\"nb\"]");
    assert_eq!(
        no_reposts
            .matches_repost(AUTHOR, Some(&subject), 0)
            .decided_by(),
        Some(Filter::Reposts)
    );
}

/// Every post of the shared relay corpus (production Jetstream output) reads, and the one
/// without `langs` (in Czech) is detected.
#[test]
fn relay_corpus_posts() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/relay-corpus/expected_v1.jsonl"
    );
    let text = std::fs::read_to_string(path).expect("the shared relay corpus");
    let mut posts = 0;
    let mut detected = Vec::new();
    let mut hashtags = Vec::new();
    for line in text.lines() {
        let event: J = serde_json::from_str(line).expect("jsonl");
        let commit = &event["commit"];
        if commit["collection"] != "app.bsky.feed.post" || commit["operation"] != "create" {
            continue;
        }
        let rec = from_json(&commit["record"]).expect("record");
        let did = event["did"].as_str().expect("did");
        let post = PostFeatures::from_record(did, commit["rkey"].as_str().expect("rkey"), &rec);
        posts += 1;
        hashtags.extend(post.hashtags.clone());
        if post.langs.is_empty() {
            if let Some(d) = post.detected_language() {
                detected.push(d.best().map(|b| b.0));
            }
        }
    }
    assert!(posts >= 15, "{posts} posts");
    assert_eq!(detected, [Some("cs")]);
    assert!(
        hashtags.contains(&"howtotellaitoshutup".to_string()),
        "{hashtags:?}"
    );
}

/// Any value, leaning towards the keys and `$type`s a post has so the reader's paths are hit.
fn arb_value() -> impl Strategy<Value = Value<'static>> {
    let key = prop_oneof![
        Just("text"),
        Just("langs"),
        Just("facets"),
        Just("features"),
        Just("tag"),
        Just("did"),
        Just("uri"),
        Just("embed"),
        Just("media"),
        Just("record"),
        Just("external"),
        Just("images"),
        Just("reply"),
        Just("parent"),
        Just("root"),
        Just("labels"),
        Just("values"),
        Just("val"),
        Just("tags"),
        Just("createdAt"),
        Just("$type"),
        Just("index"),
    ];
    let string = prop_oneof![
        Just("app.bsky.richtext.facet#tag".to_string()),
        Just("app.bsky.richtext.facet#mention".to_string()),
        Just("app.bsky.richtext.facet#link".to_string()),
        Just("app.bsky.embed.images".to_string()),
        Just("app.bsky.embed.video".to_string()),
        Just("app.bsky.embed.external".to_string()),
        Just("app.bsky.embed.record".to_string()),
        Just("app.bsky.embed.recordWithMedia".to_string()),
        Just("app.bsky.embed.gallery".to_string()),
        Just("com.atproto.label.defs#selfLabels".to_string()),
        Just("did:plc:ewvi7nxzyoun6zhxrhs64oiz".to_string()),
        Just("nb-NO".to_string()),
        Just("2025-07-04T10:15:00Z".to_string()),
        "\\PC{0,40}",
        "[#＃ a-zæøå0-9\u{FE0F}\u{200B}.!]{0,30}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Integer),
        string.prop_map(Value::from),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec((key.clone(), inner), 0..8).prop_map(|entries| {
                let mut map = Map::new();
                for (k, v) in entries {
                    map.insert(k, v);
                }
                Value::Map(map)
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn reading_features_never_panics(value in arb_value()) {
        let post = PostFeatures::from_record(AUTHOR, "3lbxyzabc2k2a", &value);
        prop_assert!(post.text.len() <= skystream_feeds::MAX_TEXT_BYTES);
        prop_assert!(post.hashtags.len() <= skystream_feeds::MAX_ITEMS);
        let _ = post.created_at_micros();
        let _ = post.detected_language();
        for keys in [
            "languages = [\"nb\", \"no\"]",
            "languages = [\"nb\"]\nkeywords = [\"øl\"]\nhashtags = [\"tur\"]\nmedia = [\"images\"]\nlabels_out = [\"porn\"]\nmentions = [\"did:plc:ewvi7nxzyoun6zhxrhs64oiz\"]",
        ] {
            let _ = feed(keys).matches(&post, 0).to_string();
        }
    }
}
