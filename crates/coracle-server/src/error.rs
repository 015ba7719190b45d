//! KFP's error body, `{"code": <gRPC code>, "message": "...", "details": []}`, with the HTTP
//! status that goes with the code.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An API error: the HTTP status and a message that says what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
    /// 400, gRPC InvalidArgument.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    /// 404, gRPC NotFound.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    /// 409, gRPC AlreadyExists.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    /// 412, gRPC FailedPrecondition.
    pub fn precondition(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, message)
    }
    /// 500, gRPC Internal: a fault of the server, never of the request.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The gRPC code KFP puts in `code`.
    pub fn grpc_code(&self) -> u16 {
        match self.status {
            StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => 3,
            StatusCode::NOT_FOUND => 5,
            StatusCode::CONFLICT => 6,
            StatusCode::FORBIDDEN => 7,
            StatusCode::PAYLOAD_TOO_LARGE => 8,
            StatusCode::PRECONDITION_FAILED => 9,
            StatusCode::NOT_IMPLEMENTED | StatusCode::METHOD_NOT_ALLOWED => 12,
            StatusCode::SERVICE_UNAVAILABLE => 14,
            StatusCode::UNAUTHORIZED => 16,
            _ => 13,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": self.message,
            "code": self.grpc_code(),
            "message": self.message,
            "details": [],
        });
        (self.status, Json(body)).into_response()
    }
}

/// The store's errors as API errors: not found → 404, already exists → 409, a bad list
/// argument → 400; the rest are the server's fault (500).
impl From<coracle_store::Error> for ApiError {
    fn from(e: coracle_store::Error) -> Self {
        match &e {
            coracle_store::Error::NotFound { .. } => ApiError::not_found(e.to_string()),
            coracle_store::Error::AlreadyExists { .. } => ApiError::conflict(e.to_string()),
            coracle_store::Error::InvalidArgument(message) => ApiError::invalid(message.clone()),
            coracle_store::Error::FailedPrecondition(message) => {
                ApiError::precondition(message.clone())
            }
            _ => ApiError::internal(e.to_string()),
        }
    }
}

/// Routes that do not exist.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no API route {}", uri.path()))
}
