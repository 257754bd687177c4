//! Store URLs: which backend, where, and how to name the database in logs.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{error_chain, StoreError};

/// The forms [`StoreUrl::parse`] accepts, quoted in its errors.
pub(crate) const ACCEPTED_FORMS: &str = "accepted forms: a SQLite file path (./skystream.db), \
     sqlite:PATH, sqlite://PATH, :memory: (SQLite in memory, gone at exit), or \
     postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (postgresql:// too)";

/// Which database a store keeps its state in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendKind {
    /// [`MemoryStore`](crate::MemoryStore): a map in the process, for tests.
    Memory,
    /// [`SqliteStore`](crate::SqliteStore): an embedded SQLite file (or `:memory:`).
    Sqlite,
    /// [`PostgresStore`](crate::PostgresStore): a PostgreSQL server.
    Postgres,
}

impl BackendKind {
    /// A short lowercase name: `memory`, `sqlite` or `postgres`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed store URL: the backend, its location, and a description safe to log.
///
/// Accepted forms (surrounding whitespace is ignored):
///
/// | form | backend |
/// | --- | --- |
/// | `./skystream.db`, `/var/lib/skystream.db` (anything without a `scheme://`) | SQLite file |
/// | `sqlite:PATH`, `sqlite://PATH` (so `sqlite:///abs/path` is absolute) | SQLite file |
/// | `:memory:`, `sqlite::memory:`, `sqlite://:memory:` | SQLite in memory |
/// | `postgres://…`, `postgresql://…` (libpq URL syntax, parsed by `tokio-postgres`) | PostgreSQL |
///
/// A SQLite path is taken literally (no `?mode=` options, no `file:` URIs); its directory must
/// exist, and the file is created if missing. `Display` and `Debug` show
/// [`redacted`](Self::redacted), never a password.
#[derive(Clone)]
pub struct StoreUrl {
    target: Target,
    redacted: String,
}

#[derive(Clone)]
pub(crate) enum Target {
    SqliteFile(PathBuf),
    SqliteMemory,
    Postgres(Box<tokio_postgres::Config>),
}

impl StoreUrl {
    /// Parses a store URL; a [`Config`](crate::StoreErrorKind::Config) error says which forms
    /// are accepted.
    pub fn parse(url: &str) -> Result<StoreUrl, StoreError> {
        let url = url.trim();
        if url.is_empty() {
            return Err(StoreError::config(format!(
                "the store URL is empty; {ACCEPTED_FORMS}"
            )));
        }
        if url == ":memory:" {
            return Ok(Self::sqlite_memory());
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let redacted = redact_url(url);
            let config = url.parse::<tokio_postgres::Config>().map_err(|e| {
                StoreError::config(format!(
                    "invalid PostgreSQL URL {redacted}: {}; expected \
                     postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAM=VALUE&…]",
                    error_chain(&e)
                ))
            })?;
            return Ok(StoreUrl {
                target: Target::Postgres(Box::new(config)),
                redacted,
            });
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(StoreError::config(format!(
                    "the store URL {url:?} has no path after the scheme; {ACCEPTED_FORMS}"
                )));
            }
            if path == ":memory:" {
                return Ok(Self::sqlite_memory());
            }
            return Ok(Self::sqlite_file(path));
        }
        if let Some(scheme) = scheme_of(url) {
            return Err(StoreError::config(format!(
                "unsupported store URL scheme {scheme:?} in {}; {ACCEPTED_FORMS}",
                redact_url(url)
            )));
        }
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            return Err(StoreError::config(format!(
                "the store URL {} looks like PostgreSQL but lacks \"//\"; write \
                 postgres://USER@HOST/DATABASE ({ACCEPTED_FORMS})",
                redact_url(url)
            )));
        }
        Ok(Self::sqlite_file(url))
    }

    /// A SQLite database file at `path` (created if missing).
    pub fn sqlite_file(path: impl AsRef<Path>) -> StoreUrl {
        let path = path.as_ref().to_path_buf();
        StoreUrl {
            redacted: format!("sqlite:{}", path.display()),
            target: Target::SqliteFile(path),
        }
    }

    /// A private SQLite database in memory, gone when the store is dropped.
    pub fn sqlite_memory() -> StoreUrl {
        StoreUrl {
            target: Target::SqliteMemory,
            redacted: "sqlite::memory:".to_owned(),
        }
    }

    /// Which backend the URL selects.
    pub fn backend(&self) -> BackendKind {
        match self.target {
            Target::SqliteFile(_) | Target::SqliteMemory => BackendKind::Sqlite,
            Target::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// The URL for logs: `sqlite:./skystream.db`, `sqlite::memory:`, or the PostgreSQL URL with
    /// any password (in the user info or a `password=` parameter) replaced by `***`.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }
}

impl FromStr for StoreUrl {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StoreUrl::parse(s)
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StoreUrl").field(&self.redacted).finish()
    }
}

/// The scheme of `scheme://…`, if the string starts with one (RFC 3986 scheme characters).
fn scheme_of(url: &str) -> Option<&str> {
    let end = url.find("://")?;
    let scheme = &url[..end];
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// `url` with the password in its user info and any `password=` query parameter replaced by
/// `***`. Errs on the side of hiding: everything between the first `:` of the user info and the
/// last `@` before the query goes, even if the password holds unescaped `/` or `@`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let (head, rest) = url.split_at(scheme_end + 3);
    let (before_query, query) = match rest.find('?') {
        Some(q) => rest.split_at(q),
        None => (rest, ""),
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(head);
    match before_query.rfind('@') {
        Some(at) => {
            let userinfo = &before_query[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&before_query[at..]);
        }
        None => out.push_str(before_query),
    }
    if let Some(params) = query.strip_prefix('?') {
        out.push('?');
        for (i, param) in params.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match param.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                    out.push_str(key);
                    out.push_str("=***");
                }
                _ => out.push_str(param),
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::StoreErrorKind;

    fn file(url: &str) -> PathBuf {
        match StoreUrl::parse(url).unwrap().target {
            Target::SqliteFile(p) => p,
            _ => panic!("{url} is not a SQLite file"),
        }
    }

    #[test]
    fn sqlite_forms() {
        assert_eq!(file("./skystream.db"), Path::new("./skystream.db"));
        assert_eq!(file("skystream.db"), Path::new("skystream.db"));
        assert_eq!(file("/var/lib/s.db"), Path::new("/var/lib/s.db"));
        assert_eq!(file("sqlite:./s.db"), Path::new("./s.db"));
        assert_eq!(file("sqlite:s.db"), Path::new("s.db"));
        assert_eq!(file("sqlite://s.db"), Path::new("s.db"));
        assert_eq!(file("sqlite:///abs/s.db"), Path::new("/abs/s.db"));
        assert_eq!(file("  ./s.db\n"), Path::new("./s.db"));
        for url in [":memory:", "sqlite::memory:", "sqlite://:memory:"] {
            let parsed = StoreUrl::parse(url).unwrap();
            assert!(matches!(parsed.target, Target::SqliteMemory), "{url}");
            assert_eq!(parsed.redacted(), "sqlite::memory:");
            assert_eq!(parsed.backend(), BackendKind::Sqlite);
        }
        assert_eq!(
            StoreUrl::parse("./skystream.db").unwrap().to_string(),
            "sqlite:./skystream.db"
        );
        assert_eq!(
            StoreUrl::parse("sqlite:///abs/s.db").unwrap().redacted(),
            "sqlite:/abs/s.db"
        );
    }

    #[test]
    fn postgres_forms() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/test",
            "postgresql://u:secret@db.example/skystream?connect_timeout=3",
            "postgres://localhost/skystream",
        ] {
            let parsed = StoreUrl::parse(url).unwrap();
            assert_eq!(parsed.backend(), BackendKind::Postgres, "{url}");
            assert!(!parsed.to_string().contains("secret"));
            assert!(!format!("{parsed:?}").contains("secret"));
        }
    }

    #[test]
    fn rejected_forms_say_what_is_accepted() {
        for url in [
            "",
            "   ",
            "mysql://x",
            "MYSQL://u:pw@h/db",
            "sqlite:",
            "sqlite://",
            "postgres:db",
            "postgres://h:notaport/db",
            "postgres://h/db?nonsense=1",
        ] {
            let err = StoreUrl::parse(url).unwrap_err();
            assert_eq!(err.kind(), StoreErrorKind::Config, "{url}");
            let msg = err.to_string();
            assert!(msg.contains("postgres://"), "{url}: {msg}");
            assert!(!msg.contains("pw"), "{url}: {msg}");
        }
        let msg = StoreUrl::parse("mysql://x").unwrap_err().to_string();
        assert!(msg.contains("\"mysql\""), "{msg}");
        assert!(msg.contains("sqlite:PATH"), "{msg}");
        assert!(msg.contains(":memory:"), "{msg}");
        assert!(StoreUrl::parse("")
            .unwrap_err()
            .to_string()
            .contains("empty"));
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact_url("postgres://u@h:5432/db"),
            "postgres://u@h:5432/db"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(
            redact_url("postgres://u:se/cr@et@h/db?password=x&user=u"),
            "postgres://u:***@h/db?password=***&user=u"
        );
        assert_eq!(
            redact_url("postgres://h/db?sslmode=disable&PASSWORD=x"),
            "postgres://h/db?sslmode=disable&PASSWORD=***"
        );
        assert_eq!(redact_url("./plain.db"), "./plain.db");
    }
}
