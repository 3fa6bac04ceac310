//! API errors: one table maps each error to its HTTP status and Formance `errorCode`, and
//! every error body is `{"errorCode", "errorMessage"}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::ids::InvalidId;
use crate::runtime::RuntimeError;
use crate::sdk::TaskError;
use crate::storage::StorageError;

/// Formance's error codes (and the status each one answers with).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ErrorCode {
    /// Something failed on our side.
    #[serde(rename = "INTERNAL")]
    Internal,
    /// The database is unreachable right now: retry later.
    #[serde(rename = "INTERNAL")]
    Unavailable,
    /// A value failed validation.
    #[serde(rename = "VALIDATION")]
    Validation,
    /// An id is malformed.
    #[serde(rename = "INVALID_ID")]
    InvalidId,
    /// The body is missing, not JSON, or not of the expected shape.
    #[serde(rename = "MISSING_OR_INVALID_BODY")]
    MissingOrInvalidBody,
    /// The body is larger than `server.max_body_bytes`.
    #[serde(rename = "MISSING_OR_INVALID_BODY")]
    BodyTooLarge,
    /// The request conflicts with what is stored (a duplicate name, a busy connector).
    #[serde(rename = "CONFLICT")]
    Conflict,
    /// The connector does not implement what was asked of it (money out, bank accounts,
    /// webhooks).
    #[serde(rename = "CONNECTOR_CAPABILITY_NOT_SUPPORTED")]
    CapabilityNotSupported,
    /// The resource does not exist.
    #[serde(rename = "NOT_FOUND")]
    NotFound,
    /// A browser request from an origin that is not allowed, or a token without the scope
    /// the request needs.
    #[serde(rename = "FORBIDDEN")]
    Forbidden,
    /// No bearer token, or one that is not valid (authentication is on).
    #[serde(rename = "UNAUTHORIZED")]
    Unauthorized,
}

impl ErrorCode {
    /// The one table: code → status.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Validation
            | ErrorCode::InvalidId
            | ErrorCode::MissingOrInvalidBody
            | ErrorCode::Conflict
            | ErrorCode::CapabilityNotSupported => StatusCode::BAD_REQUEST,
            ErrorCode::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
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

/// Every error's body, as Formance writes it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody<'a> {
    /// What kind of error.
    error_code: ErrorCode,
    /// What is wrong, naming the field or value.
    #[schema(example = "pageSize must be a non-negative integer, not \"ten\"")]
    error_message: &'a str,
}

impl ErrorCode {
    /// Each code as written on the wire, once (several variants share a code).
    pub const WIRE: [&'static str; 9] = [
        "INTERNAL",
        "VALIDATION",
        "INVALID_ID",
        "MISSING_OR_INVALID_BODY",
        "CONFLICT",
        "CONNECTOR_CAPABILITY_NOT_SUPPORTED",
        "NOT_FOUND",
        "FORBIDDEN",
        "UNAUTHORIZED",
    ];
}

// Written by hand: a derived schema would list the shared codes twice.
impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some(Self::WIRE))
            .into()
    }
}

impl utoipa::ToSchema for ErrorCode {}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// 400 VALIDATION.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Validation, message)
    }

    /// 404 NOT_FOUND.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// 400 CONNECTOR_CAPABILITY_NOT_SUPPORTED, naming the connector and what it lacks.
    pub fn capability_not_supported(connector_id: &str, capability: &str) -> Self {
        Self::new(
            ErrorCode::CapabilityNotSupported,
            format!("connector {connector_id} does not support {capability}"),
        )
    }

    /// 400 MISSING_OR_INVALID_BODY.
    pub fn bad_body(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::MissingOrInvalidBody, message)
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

impl From<InvalidId> for ApiError {
    fn from(e: InvalidId) -> Self {
        ApiError::new(ErrorCode::InvalidId, e.to_string())
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        let code = match &e {
            StorageError::Conflict(_) => ErrorCode::Conflict,
            StorageError::NotFound(_) => ErrorCode::NotFound,
            StorageError::InvalidInput(_) => ErrorCode::Validation,
            e if e.is_transient() => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        };
        if code == ErrorCode::Internal {
            tracing::error!(error = %e, "storage error answered as 500");
        }
        ApiError::new(code, e.to_string())
    }
}

impl From<RuntimeError> for ApiError {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::UnknownProvider(_)
            | RuntimeError::ConnectorNotFound(_)
            | RuntimeError::TaskNotFound(_) => ApiError::not_found(e.to_string()),
            RuntimeError::InstallFailed(TaskError::Retryable(_))
            | RuntimeError::ConfigHookFailed(TaskError::Retryable(_))
            | RuntimeError::ConnectorCallFailed(TaskError::Retryable(_)) => {
                ApiError::new(ErrorCode::Unavailable, e.to_string())
            }
            RuntimeError::Validation(_)
            | RuntimeError::InstallFailed(_)
            | RuntimeError::ConfigHookFailed(_)
            | RuntimeError::ConnectorCallFailed(_) => ApiError::validation(e.to_string()),
            RuntimeError::TaskIsLive { .. }
            | RuntimeError::Conflict(_)
            | RuntimeError::ConnectorNotLoaded(_) => {
                ApiError::new(ErrorCode::Conflict, e.to_string())
            }
            RuntimeError::Storage(e) => e.into(),
            RuntimeError::Stopped | RuntimeError::Task(_) => {
                ApiError::new(ErrorCode::Unavailable, e.to_string())
            }
            // A stored secret the keyring cannot read: the operator's problem, not the client's.
            RuntimeError::Secrets(_) => {
                tracing::error!(error = %e, "stored connector secret unreadable");
                ApiError::new(ErrorCode::Internal, e.to_string())
            }
        }
    }
}
