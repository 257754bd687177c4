use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An XRPC error: an HTTP status and `{"error": NAME, "message": …}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XrpcError {
    /// The HTTP status.
    pub status: u16,
    /// The XRPC error name.
    pub error: String,
    /// A human-readable message.
    pub message: String,
}

impl XrpcError {
    /// A 400 `InvalidRequest`.
    pub fn invalid(message: impl Into<String>) -> Self {
        XrpcError {
            status: 400,
            error: "InvalidRequest".into(),
            message: message.into(),
        }
    }

    /// A 400 `UnknownFeed`.
    pub fn unknown_feed(message: impl Into<String>) -> Self {
        XrpcError {
            status: 400,
            error: "UnknownFeed".into(),
            message: message.into(),
        }
    }

    /// A 500 `InternalServerError` (never for bad input).
    pub fn internal(message: impl Into<String>) -> Self {
        XrpcError {
            status: 500,
            error: "InternalServerError".into(),
            message: message.into(),
        }
    }
}

impl IntoResponse for XrpcError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            Json(serde_json::json!({"error": self.error, "message": self.message})),
        )
            .into_response()
    }
}

impl From<skystream_store::StoreError> for XrpcError {
    fn from(e: skystream_store::StoreError) -> Self {
        tracing::error!(error = %e, "store error while serving a request");
        XrpcError::internal("the feed store is unavailable")
    }
}

impl From<skystream_auth::AuthError> for XrpcError {
    fn from(e: skystream_auth::AuthError) -> Self {
        XrpcError {
            status: e.status(),
            error: e.error_name().to_owned(),
            message: e.to_string(),
        }
    }
}
