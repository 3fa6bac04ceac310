//! API errors: one table maps each error to its HTTP status and Formance `errorCode`, and
//! every error body is `{"errorCode", "errorMessage"}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::storage::StorageError;

/// Formance's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// Something failed on our side.
    Internal,
    /// A value failed validation.
    Validation,
    /// An id is malformed.
    InvalidId,
    /// The body is missing or not valid JSON of the expected shape.
    MissingOrInvalidBody,
    /// The request conflicts with what is stored (e.g. a duplicate name).
    Conflict,
    /// The resource does not exist.
    NotFound,
    /// The database is unreachable (health checks, and reads during an outage).
    Unavailable,
}

impl ErrorCode {
    /// The one table: code → status.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Validation
            | ErrorCode::InvalidId
            | ErrorCode::MissingOrInvalidBody
            | ErrorCode::Conflict => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// An error answered to a client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    /// The Formance error code.
    pub code: ErrorCode,
    /// A message naming what is wrong.
    pub message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    error_code: ErrorCode,
    error_message: &'a str,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(ErrorBody {
            error_code: self.code,
            error_message: &self.message,
        })
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        let code = match &e {
            StorageError::Conflict(_) => ErrorCode::Conflict,
            StorageError::NotFound(_) => ErrorCode::NotFound,
            StorageError::Unavailable { .. } | StorageError::Stopped => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        };
        if code == ErrorCode::Internal {
            tracing::error!(error = %e, "storage error answered as 500");
        }
        ApiError::new(code, e.to_string())
    }
}
