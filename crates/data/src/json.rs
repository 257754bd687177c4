//! atproto's JSON form of the data model, as the XRPC APIs and Jetstream print it.
//!
//! Links become `{"$link": "bafy…"}` and bytes `{"$bytes": "<base64, standard alphabet, no
//! padding>"}`. This is not IPLD's DAG-JSON (`{"/": …}`). Map keys are written in bytewise
//! order, as Go's `encoding/json` (and so Jetstream) writes them.

use std::borrow::Cow;
use std::fmt::Write as _;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

use crate::value::{Map, Value};
use crate::Cid;

/// Accepts standard base64 with or without padding, as atproto producers differ.
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Appends `value` as atproto JSON to `out`.
pub fn write_value(value: &Value<'_>, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        Value::String(s) => write_str(s, out),
        Value::Bytes(b) => {
            out.push_str("{\"$bytes\":\"");
            STANDARD_NO_PAD.encode_string(b, out);
            out.push_str("\"}");
        }
        Value::Link(cid) => write_link(cid, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Map(m) => write_map(m, out),
    }
}

fn write_map(m: &Map<'_>, out: &mut String) {
    let mut entries: Vec<(&str, &Value<'_>)> = m.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push('{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(k, out);
        out.push(':');
        write_value(v, out);
    }
    out.push('}');
}

/// Appends `{"$link":"<cid>"}`.
pub fn write_link(cid: &Cid, out: &mut String) {
    out.push_str("{\"$link\":\"");
    let _ = write!(out, "{cid}");
    out.push_str("\"}");
}

/// Appends `s` as a JSON string literal.
pub fn write_str(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{:04x}", b);
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// `value` as atproto JSON text.
pub fn to_string(value: &Value<'_>) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

/// Why a JSON document is not valid atproto data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid atproto data at {path}: {reason}")]
pub struct JsonError {
    /// Where in the document, as a JSON-pointer-like path.
    pub path: String,
    /// What is wrong.
    pub reason: Cow<'static, str>,
}

fn jerr(path: &str, reason: impl Into<Cow<'static, str>>) -> JsonError {
    JsonError {
        path: if path.is_empty() {
            "/".into()
        } else {
            path.into()
        },
        reason: reason.into(),
    }
}

/// Parses a record: atproto data whose top level is an object.
pub fn record_from_json(json: &serde_json::Value) -> Result<Value<'static>, JsonError> {
    if !json.is_object() {
        return Err(jerr("", "a record must be a JSON object"));
    }
    from_json(json)
}

/// Converts atproto JSON to a data-model value, enforcing the data model's rules: integers only
/// (integral floats are accepted as integers), `$link` and `$bytes` objects with exactly one key
/// of the right type, `$type` a non-empty string, and blobs with `ref`, `mimeType` and `size`.
pub fn from_json(json: &serde_json::Value) -> Result<Value<'static>, JsonError> {
    convert(json, &mut String::new())
}

fn convert(json: &serde_json::Value, path: &mut String) -> Result<Value<'static>, JsonError> {
    use serde_json::Value as J;
    Ok(match json {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Integer(i)
            } else if let Some(f) = n.as_f64() {
                if f.fract() == 0.0 && f >= -(2f64.powi(63)) && f < 2f64.powi(63) {
                    Value::Integer(f as i64)
                } else {
                    return Err(jerr(path, "floats are not part of the atproto data model"));
                }
            } else {
                return Err(jerr(path, "integer out of the signed 64-bit range"));
            }
        }
        J::String(s) => Value::String(Cow::Owned(s.clone())),
        J::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                let _ = write!(path, "/{i}");
                out.push(convert(item, path)?);
                path.truncate(len);
            }
            Value::Array(out)
        }
        J::Object(obj) => {
            if let Some(link) = obj.get("$link") {
                if obj.len() != 1 {
                    return Err(jerr(path, "a $link object must have no other keys"));
                }
                let s = link
                    .as_str()
                    .ok_or_else(|| jerr(path, "$link must be a string"))?;
                let cid: Cid = s
                    .parse()
                    .map_err(|_| jerr(path, format!("$link {s:?} is not a CID")))?;
                return Ok(Value::Link(cid));
            }
            if let Some(bytes) = obj.get("$bytes") {
                if obj.len() != 1 {
                    return Err(jerr(path, "a $bytes object must have no other keys"));
                }
                let s = bytes
                    .as_str()
                    .ok_or_else(|| jerr(path, "$bytes must be a base64 string"))?;
                let b = BASE64_LENIENT
                    .decode(s)
                    .map_err(|_| jerr(path, "$bytes is not valid base64"))?;
                return Ok(Value::Bytes(Cow::Owned(b)));
            }
            let mut m = Map::new();
            for (k, v) in obj {
                let len = path.len();
                path.push('/');
                path.push_str(k);
                m.insert(Cow::Owned(k.clone()), convert(v, path)?);
                path.truncate(len);
            }
            check_typed_object(&m, path)?;
            Value::Map(m)
        }
    })
}

fn check_typed_object(m: &Map<'_>, path: &str) -> Result<(), JsonError> {
    let Some(t) = m.get("$type") else {
        return Ok(());
    };
    match t.as_str() {
        None => return Err(jerr(path, "$type must be a string")),
        Some("") => return Err(jerr(path, "$type must not be empty")),
        Some("blob") => {
            if m.get("ref").and_then(Value::as_link).is_none() {
                return Err(jerr(path, "a blob needs a ref link"));
            }
            if m.get("mimeType").and_then(Value::as_str).is_none() {
                return Err(jerr(path, "a blob needs a string mimeType"));
            }
            if m.get("size").and_then(Value::as_i64).is_none() {
                return Err(jerr(path, "a blob needs an integer size"));
            }
        }
        Some(_) => {}
    }
    Ok(())
}
