//! Record and embed builders for the `app.bsky.*` lexicons, in the atproto data model.

use skystream_data::{cid_for, Map, Value, RAW};

use crate::rng::Rng;
use crate::text::{Lang, LINK_HOSTS};

/// A `com.atproto.repo.strongRef`: a record's AT-URI and CID (as a string).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StrongRef {
    pub uri: String,
    pub cid: String,
}

impl StrongRef {
    pub(crate) fn to_value(&self) -> Value<'static> {
        Value::Map(
            Map::new()
                .with("uri", self.uri.clone())
                .with("cid", self.cid.clone()),
        )
    }
}

/// A blob reference: `{$type: blob, ref: <raw CID>, mimeType, size}`. The CID is of bytes
/// that exist nowhere, as on the firehose (blobs travel out of band).
pub(crate) fn blob(rng: &mut Rng, mime: &'static str, size: u64) -> Value<'static> {
    let cid = cid_for(RAW, &rng.next_u64().to_be_bytes());
    Value::Map(
        Map::new()
            .with("$type", "blob")
            .with("ref", cid)
            .with("mimeType", mime)
            .with("size", size as i64),
    )
}

fn aspect_ratio(rng: &mut Rng) -> Value<'static> {
    let (w, h) = *rng.pick(&[
        (1000i64, 1000i64),
        (1200, 800),
        (800, 1200),
        (1920, 1080),
        (1080, 1920),
        (2000, 1500),
    ]);
    Value::Map(Map::new().with("width", w).with("height", h))
}

/// `app.bsky.embed.images` with one to four images.
pub(crate) fn images(rng: &mut Rng, lang: &Lang) -> Value<'static> {
    let n = 1 + rng.index(4);
    let imgs = (0..n)
        .map(|_| {
            let alt = if rng.chance(250) {
                String::new()
            } else {
                (*rng.pick(lang.alts)).to_owned()
            };
            let mime = *rng.pick(&["image/jpeg", "image/jpeg", "image/png", "image/webp"]);
            let size = rng.range(40_000, 980_000);
            Value::Map(
                Map::new()
                    .with("alt", alt)
                    .with("image", blob(rng, mime, size))
                    .with("aspectRatio", aspect_ratio(rng)),
            )
        })
        .collect();
    Value::Map(
        Map::new()
            .with("$type", "app.bsky.embed.images")
            .with("images", Value::Array(imgs)),
    )
}

/// `app.bsky.embed.video`.
pub(crate) fn video(rng: &mut Rng, lang: &Lang) -> Value<'static> {
    let size = rng.range(500_000, 50_000_000);
    let mut m = Map::new()
        .with("$type", "app.bsky.embed.video")
        .with("video", blob(rng, "video/mp4", size))
        .with("aspectRatio", aspect_ratio(rng));
    if rng.chance(400) {
        m.insert("alt", (*rng.pick(lang.alts)).to_owned());
    }
    Value::Map(m)
}

/// A link to a page on one of the simulated hosts.
pub(crate) fn link_uri(rng: &mut Rng) -> String {
    let host = *rng.pick(LINK_HOSTS);
    format!(
        "https://{host}/{}/{}-{}",
        2020 + rng.below(7),
        *rng.pick(&["story", "post", "watch", "item", "paper"]),
        rng.below(100_000)
    )
}

/// `app.bsky.embed.external` for `uri`.
pub(crate) fn external(rng: &mut Rng, lang: &Lang, uri: &str) -> Value<'static> {
    let mut ext = Map::new()
        .with("uri", uri.to_owned())
        .with("title", (*rng.pick(lang.phrases)).to_owned())
        .with("description", (*rng.pick(lang.phrases)).to_owned());
    if rng.chance(600) {
        let size = rng.range(10_000, 300_000);
        ext.insert("thumb", blob(rng, "image/jpeg", size));
    }
    Value::Map(
        Map::new()
            .with("$type", "app.bsky.embed.external")
            .with("external", ext),
    )
}

/// `app.bsky.embed.record` quoting `target`.
pub(crate) fn quote(target: &StrongRef) -> Value<'static> {
    Value::Map(
        Map::new()
            .with("$type", "app.bsky.embed.record")
            .with("record", target.to_value()),
    )
}

/// `app.bsky.embed.recordWithMedia`: a quote plus `media` (an images, video or external embed).
pub(crate) fn record_with_media(target: &StrongRef, media: Value<'static>) -> Value<'static> {
    Value::Map(
        Map::new()
            .with("$type", "app.bsky.embed.recordWithMedia")
            .with("record", quote(target))
            .with("media", media),
    )
}

/// `com.atproto.label.defs#selfLabels` with one value.
pub(crate) fn self_labels(val: &'static str) -> Value<'static> {
    Value::Map(
        Map::new()
            .with("$type", "com.atproto.label.defs#selfLabels")
            .with(
                "values",
                Value::Array(vec![Value::Map(Map::new().with("val", val))]),
            ),
    )
}

/// `{root, parent}` of a reply.
pub(crate) fn reply_ref(root: &StrongRef, parent: &StrongRef) -> Value<'static> {
    Value::Map(
        Map::new()
            .with("root", root.to_value())
            .with("parent", parent.to_value()),
    )
}

/// A like or repost (`collection` says which) of `subject`.
pub(crate) fn subject_record(
    collection: &'static str,
    subject: &StrongRef,
    created_at: String,
) -> Value<'static> {
    Value::Map(
        Map::new()
            .with("$type", collection)
            .with("subject", subject.to_value())
            .with("createdAt", created_at),
    )
}

/// A follow or block (`collection` says which) of the account `did`.
pub(crate) fn graph_record(
    collection: &'static str,
    did: &str,
    created_at: String,
) -> Value<'static> {
    Value::Map(
        Map::new()
            .with("$type", collection)
            .with("subject", did.to_owned())
            .with("createdAt", created_at),
    )
}

/// `app.bsky.actor.profile` (record key `self`).
pub(crate) fn profile(
    rng: &mut Rng,
    display_name: String,
    lang: &Lang,
    created_at: String,
) -> Value<'static> {
    let mut m = Map::new()
        .with("$type", "app.bsky.actor.profile")
        .with("displayName", display_name)
        .with("description", (*rng.pick(lang.phrases)).to_owned())
        .with("createdAt", created_at);
    let size = rng.range(20_000, 900_000);
    m.insert("avatar", blob(rng, "image/jpeg", size));
    if rng.chance(500) {
        let size = rng.range(50_000, 900_000);
        m.insert("banner", blob(rng, "image/jpeg", size));
    }
    Value::Map(m)
}
