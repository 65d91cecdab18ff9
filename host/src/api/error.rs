//! Cinder-style error bodies: `{"itemNotFound": {"code": 404, "message": "..."}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Internal(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    OverLimit(String),
    /// A microversion outside the served range (Cinder's `InvalidGlobalAPIVersion`).
    #[error("{0}")]
    NotAcceptable(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "badRequest"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "itemNotFound"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "computeFault"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "serviceUnavailable"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflictingRequest"),
            ApiError::OverLimit(_) => (StatusCode::PAYLOAD_TOO_LARGE, "overLimit"),
            // Cinder's Fault has no name for 406 and falls back to computeFault.
            ApiError::NotAcceptable(_) => (StatusCode::NOT_ACCEPTABLE, "computeFault"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = self.parts();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body =
            serde_json::json!({ kind: { "code": status.as_u16(), "message": self.to_string() } });
        (status, Json(body)).into_response()
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        match e {
            crate::db::DbError::NotFound(what) => {
                ApiError::NotFound(format!("{what} could not be found."))
            }
            crate::db::DbError::List(e @ crate::db::listing::ListError::Marker(_)) => {
                ApiError::NotFound(e.to_string())
            }
            crate::db::DbError::List(e) => ApiError::BadRequest(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<crate::rpc::RpcError> for ApiError {
    fn from(e: crate::rpc::RpcError) -> Self {
        match e {
            crate::rpc::RpcError::Timeout { .. } => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}
