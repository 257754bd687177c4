//! The page, its stylesheet and its script, embedded in the binary.
//!
//! They are separate files (not one page with inline `<style>` and `<script>`) so the
//! Content-Security-Policy can forbid inline script outright: even a post text that slipped
//! past escaping could not run. Every URL in them is relative, so a reverse proxy may mount the
//! console under any path prefix.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The page.
pub const INDEX_HTML: &str = include_str!("../assets/index.html");
/// The stylesheet.
pub const CONSOLE_CSS: &str = include_str!("../assets/console.css");
/// The script.
pub const CONSOLE_JS: &str = include_str!("../assets/console.js");

/// Same-origin script, style and fetches only; no inline script, no frames, no plugins, no
/// form posts, and images only from this origin (the console shows none from posts).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            // The assets change with the binary; revalidating is cheap and avoids a stale
            // script after an upgrade.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

pub(crate) async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

pub(crate) async fn css() -> Response {
    asset("text/css; charset=utf-8", CONSOLE_CSS)
}

pub(crate) async fn js() -> Response {
    asset("text/javascript; charset=utf-8", CONSOLE_JS)
}
