//! Language banks: phrases, hashtags and image descriptions per language, and rich text with
//! facets whose byte offsets are exact.

use skystream_data::{Map, Value};

/// One language posts are written in.
pub(crate) struct Lang {
    /// BCP-47 tag as it appears in `langs`.
    pub code: &'static str,
    /// Relative share of accounts writing mainly in this language.
    pub weight: u64,
    /// Things people say.
    pub phrases: &'static [&'static str],
    /// Hashtags, without the `#`.
    pub tags: &'static [&'static str],
    /// Image descriptions.
    pub alts: &'static [&'static str],
}

/// Every language the simulator writes, weighted roughly like the network (minority
/// languages are over-weighted a little so short runs still see them).
pub(crate) static LANGS: &[Lang] = &[
    Lang {
        code: "en",
        weight: 420,
        phrases: &[
            "Just finished my morning coffee and I'm ready for the day.",
            "Does anyone have a good book recommendation?",
            "The sunset tonight was unreal.",
            "Working on a new side project this weekend.",
            "Why is it always raining when I forget my umbrella?",
            "Hot take: pineapple belongs on pizza.",
            "Finally got my garden started!",
            "Shipping a small fix today, wish me luck.",
        ],
        tags: &[
            "bluesky",
            "photography",
            "coffee",
            "books",
            "gamedev",
            "caturday",
        ],
        alts: &[
            "A cat asleep on a sunny windowsill",
            "Sunset over the harbour",
            "A cup of coffee next to a notebook",
        ],
    },
    Lang {
        code: "ja",
        weight: 200,
        phrases: &[
            "今日はとても暑いですね。",
            "新しいカメラを買いました！",
            "猫がずっと寝ている。",
            "おはようございます！今日も頑張りましょう。",
            "このラーメン、本当においしい。",
            "週末は京都に行きます。",
            "雨の日は本を読むのが好きです。",
        ],
        tags: &["猫", "写真", "ラーメン", "日本"],
        alts: &["窓辺で寝ている猫", "夕焼けの空", "一杯のラーメン"],
    },
    Lang {
        code: "pt",
        weight: 80,
        phrases: &[
            "Bom dia! Que dia lindo hoje.",
            "Alguém recomenda um livro bom?",
            "Hoje tem jogo do Flamengo!",
            "Finalmente sexta-feira.",
            "O café daqui é maravilhoso.",
            "Estou aprendendo a programar em Rust.",
        ],
        tags: &["futebol", "música", "BomDia"],
        alts: &["Praia ao pôr do sol", "Uma xícara de café"],
    },
    Lang {
        code: "de",
        weight: 50,
        phrases: &[
            "Guten Morgen! Der Kaffee ist fertig.",
            "Heute ist das Wetter wirklich schön.",
            "Kann jemand ein gutes Buch empfehlen?",
            "Die Bahn hat schon wieder Verspätung.",
            "Endlich Wochenende!",
            "Ich fahre morgen nach München.",
        ],
        tags: &["Fußball", "Kaffee", "Berlin"],
        alts: &["Eine Straßenbahn im Regen", "Ein Hund auf einer Wiese"],
    },
    Lang {
        code: "es",
        weight: 50,
        phrases: &[
            "¡Buenos días a todos!",
            "¿Alguien sabe dónde comprar café bueno?",
            "Hoy hace un calor increíble.",
            "Por fin es viernes.",
            "Me encanta esta canción.",
            "Mañana empiezo mis vacaciones.",
        ],
        tags: &["fútbol", "música", "España"],
        alts: &["Una plaza llena de gente", "Un gato durmiendo"],
    },
    Lang {
        code: "fr",
        weight: 40,
        phrases: &[
            "Bonjour tout le monde !",
            "Quelqu'un connaît un bon livre à lire ?",
            "Il pleut encore à Paris.",
            "Enfin le week-end !",
            "Ce café est vraiment délicieux.",
            "Je pars en vacances demain.",
        ],
        tags: &["café", "Paris", "rentrée"],
        alts: &[
            "Un croissant sur une table",
            "La Seine au coucher du soleil",
        ],
    },
    Lang {
        code: "ko",
        weight: 40,
        phrases: &[
            "좋은 아침입니다!",
            "오늘 날씨가 정말 좋네요.",
            "새 카메라를 샀어요.",
            "주말에 뭐 하세요?",
            "이 노래 너무 좋아요.",
            "커피 한 잔 하실래요?",
        ],
        tags: &["고양이", "서울", "커피"],
        alts: &["창가에서 자는 고양이", "서울의 야경"],
    },
    Lang {
        code: "nb",
        weight: 20,
        phrases: &[
            "Jeg er ikke hjemme i dag.",
            "Hva skal vi spise til middag?",
            "Det regner igjen i Bergen.",
            "Jeg gleder meg til helgen!",
            "Hun har ikke sett filmen ennå.",
            "Vi ses i morgen.",
            "Takk for hjelpen!",
        ],
        tags: &["fotball", "norge", "påske"],
        alts: &["Fjorden en stille morgen", "En hund i snøen"],
    },
    Lang {
        code: "nn",
        weight: 12,
        phrases: &[
            "Eg er ikkje heime i dag.",
            "Kva skal vi ete til middag?",
            "Det regnar att i Bergen.",
            "Eg gler meg til helga!",
            "Ho har ikkje sett filmen enno.",
            "Vi sjåast i morgon.",
            "Takk for hjelpa!",
        ],
        tags: &["nynorsk", "fjell", "vestland"],
        alts: &["Fjorden ein stille morgon", "Ein hund i snøen"],
    },
    Lang {
        code: "se",
        weight: 10,
        phrases: &[
            "Buorre beaivi!",
            "Buorre iđit!",
            "Giitu ollu!",
            "Mo manná?",
            "Mun orun Guovdageainnus.",
            "Odne lea čáppa dálki.",
            "Mun hálan veaháš sámegiela.",
        ],
        tags: &["sámegiella", "Sápmi", "davvisámegiella"],
        alts: &["Boazu muohttaga alde", "Guovssahasat almmis"],
    },
    Lang {
        code: "sv",
        weight: 20,
        phrases: &[
            "God morgon allihopa!",
            "Nu är det äntligen helg.",
            "Någon som vill fika?",
            "Det snöar igen i Umeå.",
            "Jag har precis läst ut en riktigt bra bok.",
            "Vi ses i morgon.",
        ],
        tags: &["fika", "Stockholm", "midsommar"],
        alts: &["En kopp kaffe och en kanelbulle", "Snö över Umeå"],
    },
    Lang {
        code: "it",
        weight: 20,
        phrases: &[
            "Buongiorno a tutti!",
            "Finalmente è venerdì.",
            "Qualcuno consiglia un buon libro?",
            "Oggi piove di nuovo a Milano.",
            "Questo caffè è buonissimo.",
            "Domani parto per le vacanze.",
        ],
        tags: &["caffè", "Roma", "pizza"],
        alts: &["Una pizza appena sfornata", "Il Colosseo al tramonto"],
    },
    Lang {
        code: "tr",
        weight: 20,
        phrases: &[
            "Günaydın herkese!",
            "Bugün hava çok güzel.",
            "Sonunda hafta sonu geldi.",
            "İyi bir kitap önerisi olan var mı?",
            "Bu şarkıya bayılıyorum.",
            "Yarın İstanbul'a gidiyorum.",
        ],
        tags: &["İstanbul", "çay", "futbol"],
        alts: &["Boğaz'da gün batımı", "Bir bardak çay"],
    },
    Lang {
        code: "uk",
        weight: 18,
        phrases: &[
            "Доброго ранку всім!",
            "Сьогодні чудова погода.",
            "Нарешті вихідні.",
            "Хтось може порадити гарну книжку?",
            "Ця кава просто неймовірна.",
            "Завтра їду до Львова.",
        ],
        tags: &["Україна", "Київ", "кава"],
        alts: &["Кіт спить на підвіконні", "Захід сонця над Дніпром"],
    },
];

/// The weights of [`LANGS`], in order.
pub(crate) fn lang_weights() -> Vec<u64> {
    LANGS.iter().map(|l| l.weight).collect()
}

/// Tags anyone may add, whatever the language.
pub(crate) static COMMON_TAGS: &[&str] = &["atproto", "bluesky", "art", "news"];

/// Given names for display names and handle changes (ASCII, lower case: handle-safe).
pub(crate) static NAMES: &[&str] = &[
    "nora", "kenji", "ana", "lukas", "sofia", "mateo", "chloe", "minji", "ingrid", "aslak", "elsa",
    "giulia", "emre", "olena", "sam", "yuki", "joao", "lea", "ola", "mikkel",
];

/// Hosts external links point at (all under the reserved `.test` TLD).
pub(crate) static LINK_HOSTS: &[&str] = &[
    "news.sim.test",
    "blog.sim.test",
    "video.sim.test",
    "shop.sim.test",
    "science.sim.test",
];

/// Text with facets, built left to right so every facet's byte range is exact.
#[derive(Default)]
pub(crate) struct RichText {
    pub text: String,
    pub facets: Vec<Value<'static>>,
}

impl RichText {
    /// Appends plain text.
    pub(crate) fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    /// Appends `s` and a facet over exactly its bytes.
    pub(crate) fn push_facet(&mut self, s: &str, feature: Map<'static>) {
        let start = self.text.len() as i64;
        self.text.push_str(s);
        let end = self.text.len() as i64;
        let index = Map::new().with("byteStart", start).with("byteEnd", end);
        self.facets.push(Value::Map(
            Map::new()
                .with("$type", "app.bsky.richtext.facet")
                .with("index", index)
                .with("features", Value::Array(vec![Value::Map(feature)])),
        ));
    }

    /// Appends `#tag` with a tag facet.
    pub(crate) fn tag(&mut self, tag: &str) {
        self.push_facet(
            &format!("#{tag}"),
            Map::new()
                .with("$type", "app.bsky.richtext.facet#tag")
                .with("tag", tag.to_owned()),
        );
    }

    /// Appends `@handle` with a mention facet for `did`.
    pub(crate) fn mention(&mut self, handle: &str, did: &str) {
        self.push_facet(
            &format!("@{handle}"),
            Map::new()
                .with("$type", "app.bsky.richtext.facet#mention")
                .with("did", did.to_owned()),
        );
    }

    /// Appends the link as clients show it (without the scheme) with a link facet for `uri`.
    pub(crate) fn link(&mut self, uri: &str) {
        let shown = uri
            .strip_prefix("https://")
            .or_else(|| uri.strip_prefix("http://"))
            .unwrap_or(uri);
        self.push_facet(
            shown,
            Map::new()
                .with("$type", "app.bsky.richtext.facet#link")
                .with("uri", uri.to_owned()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banks_are_complete_and_distinct() {
        assert!(LANGS.len() >= 10);
        for l in LANGS {
            assert!(skystream_syntax::is_valid_language(l.code), "{}", l.code);
            assert!(l.phrases.len() >= 5, "{}", l.code);
            assert!(!l.tags.is_empty() && !l.alts.is_empty(), "{}", l.code);
            for t in l.tags {
                assert!(!t.contains(' ') && !t.starts_with('#'), "{t}");
            }
        }
        let nb = LANGS.iter().find(|l| l.code == "nb").expect("nb");
        let nn = LANGS.iter().find(|l| l.code == "nn").expect("nn");
        for p in nb.phrases {
            assert!(!nn.phrases.contains(p), "{p}");
        }
        assert!(nb.phrases.contains(&"Jeg er ikke hjemme i dag."));
        assert!(nn.phrases.contains(&"Eg er ikkje heime i dag."));
    }

    #[test]
    fn facet_offsets_are_bytes() {
        let mut rt = RichText::default();
        rt.push("Odne lea čáppa dálki ");
        rt.tag("sámegiella");
        let Value::Map(f) = &rt.facets[0] else {
            panic!("facet")
        };
        let idx = f.get("index").expect("index");
        let s = idx.get("byteStart").and_then(Value::as_i64).expect("start") as usize;
        let e = idx.get("byteEnd").and_then(Value::as_i64).expect("end") as usize;
        assert_eq!(&rt.text.as_bytes()[s..e], "#sámegiella".as_bytes());
        assert!(s > "Odne lea čáppa dálki ".chars().count());
    }
}
