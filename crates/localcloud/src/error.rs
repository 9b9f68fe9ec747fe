//! AWS errors: one type for every service, rendered in the caller's protocol.
//!
//! A JSON 1.1 service (KMS) answers `{"__type": CODE, "message": …}`; a Query service (IAM, STS)
//! answers an `<ErrorResponse>` XML document. The codes and HTTP statuses are the ones in
//! botocore's service models, so that SDKs raise the modeled exception types.

use std::borrow::Cow;

/// Whether the caller or AWS is at fault (the Query protocol's `<Type>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Sender,
    Receiver,
}

/// One AWS error, as sent on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AwsError {
    pub code: Cow<'static, str>,
    pub message: String,
    pub status: u16,
    pub fault: Fault,
}

impl AwsError {
    pub fn new(code: impl Into<Cow<'static, str>>, status: u16, message: impl Into<String>) -> Self {
        let status_code = status;
        Self { code: code.into(), message: message.into(), status, fault: if status_code >= 500 { Fault::Receiver } else { Fault::Sender } }
    }

    /// `ValidationException` (KMS) / `ValidationError` (Query services), HTTP 400.
    pub fn validation(service: Service, message: impl Into<String>) -> Self {
        let code = match service {
            Service::Kms => "ValidationException",
            Service::Iam | Service::Sts => "ValidationError",
        };
        Self::new(code, 400, message)
    }

    pub fn access_denied(service: Service, message: impl Into<String>) -> Self {
        match service {
            Service::Kms => Self::new("AccessDeniedException", 400, message),
            Service::Iam | Service::Sts => Self::new("AccessDenied", 403, message),
        }
    }

    pub fn throttled(service: Service) -> Self {
        match service {
            Service::Kms => Self::new("ThrottlingException", 400, "Rate exceeded"),
            Service::Iam | Service::Sts => Self::new("Throttling", 400, "Rate exceeded"),
        }
    }

    pub fn internal(service: Service, status: u16) -> Self {
        let code = match (service, status) {
            (Service::Kms, _) => "KMSInternalException",
            (Service::Iam, _) => "ServiceFailure",
            (Service::Sts, 503) => "ServiceUnavailable",
            (Service::Sts, _) => "InternalFailure",
        };
        let message = if status == 503 { "Service unavailable" } else { "An internal error occurred" };
        Self::new(code, status, message)
    }

    pub fn unknown_operation(service: Service, action: &str) -> Self {
        match service {
            Service::Kms => Self::new("UnknownOperationException", 400, format!("Unknown operation {action}")),
            Service::Iam | Service::Sts => Self::new("InvalidAction", 400, format!("Could not find operation {action} for version")),
        }
    }

    pub fn missing_parameter(service: Service, name: &str) -> Self {
        match service {
            Service::Kms => Self::validation(
                service,
                format!(
                    "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                    lower_first(name)
                ),
            ),
            Service::Iam | Service::Sts => Self::new("MissingParameter", 400, format!("The request must contain the parameter {name}")),
        }
    }
}

fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) => c.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

pub type AwsResult<T> = Result<T, AwsError>;

/// The emulated services, named as in the SigV4 credential scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Kms,
    Iam,
    Sts,
}

impl Service {
    pub fn from_scope(name: &str) -> Option<Self> {
        match name {
            "kms" => Some(Self::Kms),
            "iam" => Some(Self::Iam),
            "sts" => Some(Self::Sts),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Kms => "kms",
            Self::Iam => "iam",
            Self::Sts => "sts",
        }
    }

    /// The event source CloudTrail names.
    pub fn event_source(self) -> &'static str {
        match self {
            Self::Kms => "kms.amazonaws.com",
            Self::Iam => "iam.amazonaws.com",
            Self::Sts => "sts.amazonaws.com",
        }
    }

    pub(crate) fn xml_namespace(self) -> &'static str {
        match self {
            Self::Iam => "https://iam.amazonaws.com/doc/2010-05-08/",
            Self::Sts | Self::Kms => "https://sts.amazonaws.com/doc/2011-06-15/",
        }
    }
}
