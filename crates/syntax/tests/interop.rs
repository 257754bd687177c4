//! Runs every atproto interop syntax fixture against the parsers.
//!
//! For each `X_syntax_valid.txt` / `X_syntax_invalid.txt` /
//! `X_parse_invalid.txt` in the shared fixture directory, every case line
//! (blank lines and `#` comments skipped, no trimming: leading/trailing spaces
//! are part of some invalid cases) must be accepted or rejected by both the
//! `parse` constructor and the matching `is_valid_*` check. Unknown fixture
//! files fail the test so new kinds cannot be skipped silently.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use skystream_syntax as syn;
use skystream_syntax::SyntaxError;

const FIXTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/interop/syntax");

/// Parses with the type's constructor and returns the stored string.
type ParseFn = fn(&str) -> Result<String, SyntaxError>;
type CheckFn = fn(&str) -> bool;

struct Kind {
    /// File-name prefix, e.g. `did` for `did_syntax_valid.txt`.
    prefix: &'static str,
    parse: ParseFn,
    is_valid: CheckFn,
    /// Syntax-only check, for kinds with a `_parse_invalid.txt` fixture whose
    /// cases are well-formed but semantically invalid.
    syntax_only: Option<CheckFn>,
}

fn kinds() -> Vec<Kind> {
    fn k(prefix: &'static str, parse: ParseFn, is_valid: CheckFn) -> Kind {
        Kind {
            prefix,
            parse,
            is_valid,
            syntax_only: None,
        }
    }
    vec![
        k(
            "atidentifier",
            |s| syn::AtIdentifier::parse(s).map(syn::AtIdentifier::into_string),
            syn::is_valid_at_identifier,
        ),
        k(
            "aturi",
            |s| syn::AtUri::parse(s).map(syn::AtUri::into_string),
            syn::is_valid_at_uri,
        ),
        k(
            "cid",
            |s| syn::CidString::parse(s).map(syn::CidString::into_string),
            syn::is_valid_cid,
        ),
        Kind {
            syntax_only: Some(syn::is_valid_datetime_syntax),
            ..k(
                "datetime",
                |s| syn::Datetime::parse(s).map(syn::Datetime::into_string),
                syn::is_valid_datetime,
            )
        },
        k(
            "did",
            |s| syn::Did::parse(s).map(syn::Did::into_string),
            syn::is_valid_did,
        ),
        k(
            "handle",
            |s| syn::Handle::parse(s).map(syn::Handle::into_string),
            syn::is_valid_handle,
        ),
        Kind {
            syntax_only: Some(syn::is_valid_language_syntax),
            ..k(
                "language",
                |s| syn::Language::parse(s).map(syn::Language::into_string),
                syn::is_valid_language,
            )
        },
        k(
            "nsid",
            |s| syn::Nsid::parse(s).map(syn::Nsid::into_string),
            syn::is_valid_nsid,
        ),
        k(
            "recordkey",
            |s| syn::RecordKey::parse(s).map(syn::RecordKey::into_string),
            syn::is_valid_record_key,
        ),
        k(
            "tid",
            |s| syn::Tid::parse(s).map(syn::Tid::into_string),
            syn::is_valid_tid,
        ),
        k(
            "uri",
            |s| syn::Uri::parse(s).map(syn::Uri::into_string),
            syn::is_valid_uri,
        ),
    ]
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Valid,
    SyntaxInvalid,
    ParseInvalid,
}

/// Case lines of a fixture file: `(1-based line number, line)`. Skips empty
/// lines and `#` comments; does not trim anything else.
fn cases(text: &str) -> Vec<(usize, &str)> {
    text.split('\n')
        .enumerate()
        .map(|(i, line)| (i + 1, line.strip_suffix('\r').unwrap_or(line)))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

/// Shortens very long fixture lines (some are 8 KiB) in failure messages.
fn show(line: &str) -> String {
    if line.chars().count() > 80 {
        let head: String = line.chars().take(60).collect();
        format!("{head:?}... ({} bytes)", line.len())
    } else {
        format!("{line:?}")
    }
}

fn check_case(
    kind: &Kind,
    expect: Expect,
    file: &str,
    lineno: usize,
    line: &str,
) -> Option<String> {
    let at = format!("{file}:{lineno}: {}", show(line));
    let parsed = (kind.parse)(line);
    let checked = (kind.is_valid)(line);
    match expect {
        Expect::Valid => match parsed {
            Err(e) => Some(format!("{at}: expected valid, parse failed: {e}")),
            Ok(_) if !checked => Some(format!("{at}: parse ok but is_valid returned false")),
            Ok(stored) if stored != line => Some(format!("{at}: stored form differs from input")),
            Ok(_) => None,
        },
        Expect::SyntaxInvalid | Expect::ParseInvalid => {
            if let Ok(stored) = parsed {
                return Some(format!(
                    "{at}: expected invalid, but parsed as {}",
                    show(&stored)
                ));
            }
            if checked {
                return Some(format!(
                    "{at}: parse rejected it but is_valid returned true"
                ));
            }
            if expect == Expect::ParseInvalid {
                match kind.syntax_only {
                    Some(syntax_ok) if !syntax_ok(line) => {
                        return Some(format!(
                            "{at}: parse-invalid case should pass the syntax-only check"
                        ));
                    }
                    _ => {}
                }
            }
            None
        }
    }
}

#[test]
fn interop_syntax_fixtures() {
    let dir = Path::new(FIXTURE_DIR);
    let kinds = kinds();
    let mut entries: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read fixture dir {}: {e}", dir.display()))
        .map(|entry| {
            entry
                .expect("readable dir entry")
                .file_name()
                .into_string()
                .expect("UTF-8 file name")
        })
        .collect();
    entries.sort();

    let mut failures = Vec::new();
    let mut seen = BTreeSet::new();
    let mut total = 0usize;
    for name in &entries {
        let Some(stem) = name.strip_suffix(".txt") else {
            continue;
        };
        let (prefix, expect) = if let Some(p) = stem.strip_suffix("_syntax_valid") {
            (p, Expect::Valid)
        } else if let Some(p) = stem.strip_suffix("_syntax_invalid") {
            (p, Expect::SyntaxInvalid)
        } else if let Some(p) = stem.strip_suffix("_parse_invalid") {
            (p, Expect::ParseInvalid)
        } else {
            failures.push(format!("{name}: unrecognized fixture file name"));
            continue;
        };
        let Some(kind) = kinds.iter().find(|k| k.prefix == prefix) else {
            failures.push(format!("{name}: no parser registered for kind {prefix:?}"));
            continue;
        };
        if expect == Expect::ParseInvalid && kind.syntax_only.is_none() {
            failures.push(format!("{name}: kind {prefix:?} has no syntax-only check"));
            continue;
        }
        let text = fs::read_to_string(dir.join(name))
            .unwrap_or_else(|e| panic!("cannot read {name}: {e}"));
        let cases = cases(&text);
        if cases.is_empty() {
            failures.push(format!("{name}: no test cases found"));
        }
        for (lineno, line) in &cases {
            failures.extend(check_case(kind, expect, name, *lineno, line));
        }
        println!("{name}: {} cases", cases.len());
        total += cases.len();
        seen.insert(name.clone());
    }

    // Every registered kind must have both fixture files (guards against a
    // wrong or empty directory), and the semantic kinds their parse file.
    for kind in &kinds {
        let mut required = vec![
            format!("{}_syntax_valid.txt", kind.prefix),
            format!("{}_syntax_invalid.txt", kind.prefix),
        ];
        if kind.syntax_only.is_some() {
            required.push(format!("{}_parse_invalid.txt", kind.prefix));
        }
        for file in required {
            if !seen.contains(&file) {
                failures.push(format!("{file}: expected fixture file is missing"));
            }
        }
    }

    println!("{total} cases in {} files", seen.len());
    assert!(
        failures.is_empty(),
        "{} fixture failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
