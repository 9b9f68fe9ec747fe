//! Classifying AWS failures. The heart of "impossible to fool into a false revocation": only a
//! *definitive* answer from AWS about the customer's own resources is a [`Denial`]; throttling,
//! 5xx, timeouts, dropped connections and expired sessions are [`Fault`]s, and problems with
//! the provider's own credentials are neither.
//!
//! A `Denial` here is still only a candidate: an STS `AccessDenied` can come from the
//! provider's side too (its role deleted, an SCP, a session policy), so the monitor counts one
//! only while the provider's canary passes, and only when it is specific to a few tenants.
//! `KMSInvalidStateException` is not a denial at all: it also means "custom key store
//! disconnected"; the key's state (DescribeKey) decides.

use byok_domain::Region;

pub use byok_domain::Denial;

/// A failure that says nothing about the customer's intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Throttled,
    /// 5xx, `KMSInternalException`, `DependencyTimeoutException`, `KeyUnavailableException`.
    ServerError,
    Timeout,
    /// Connection refused, reset or dropped; DNS.
    Network,
    /// The session expired between calls: assume again.
    ExpiredSession,
    /// `KMSInvalidStateException`: the key cannot be used in its current state. Pending deletion
    /// or disabled (then DescribeKey says so, and that is the denial), or a disconnected custom
    /// key store (CloudHSM, XKS), which is the provider's outage, not the customer's decision.
    KeyState,
}

/// Why access to a key failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("{}: {message}", denial_text(*denial, region.as_ref()))]
    Denied { denial: Denial, region: Option<Region>, message: String },
    #[error("AWS is unavailable ({fault:?}{}): {message}", region.as_ref().map(|r| format!(" in {r}")).unwrap_or_default())]
    Transient { fault: Fault, region: Option<Region>, message: String },
    /// The wrapped key does not decrypt (wrong context, corrupted): not the customer's doing.
    #[error("the wrapped tenant key in {region} does not decrypt: {message}")]
    Corrupt { region: Region, message: String },
    /// The provider's own identity was refused (bad or expired provider credentials).
    #[error("the provider's own AWS credentials were refused: {message}")]
    Provider { message: String },
    /// Anything else AWS answered (validation errors, …): a bug or a misconfiguration.
    #[error("AWS refused the request ({code}): {message}")]
    Other { code: String, message: String },
}

fn denial_text(denial: Denial, region: Option<&Region>) -> String {
    let region = region.map(|r| r.to_string()).unwrap_or_else(|| "IAM".into());
    match denial {
        Denial::TrustPolicy => "the customer's role does not let the provider assume it (trust policy)".to_string(),
        Denial::KeyDisabled => format!("the key in {region} is disabled"),
        Denial::KeyPendingDeletion => format!("the key in {region} is pending deletion"),
        Denial::KeyNotFound => format!("the key in {region} does not exist"),
        Denial::KeyPolicy => format!("the key policy in {region} does not allow the provider"),
        Denial::IncorrectKey => format!("the key in {region} is not the key the data was wrapped under"),
    }
}

impl AccessError {
    pub fn is_definitive(&self) -> bool {
        matches!(self, AccessError::Denied { .. })
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, AccessError::Transient { .. })
    }

    /// Classifies an AWS error code (and HTTP status) from STS or KMS.
    pub fn from_code(code: Option<&str>, status: Option<u16>, message: String, region: Option<Region>) -> Self {
        let denied = |denial| AccessError::Denied { denial, region: region.clone(), message: message.clone() };
        let transient = |fault| AccessError::Transient { fault, region: region.clone(), message: message.clone() };
        match code.unwrap_or_default() {
            "AccessDenied" => denied(Denial::TrustPolicy),
            "DisabledException" => denied(Denial::KeyDisabled),
            "KMSInvalidStateException" => transient(Fault::KeyState),
            "NotFoundException" => denied(Denial::KeyNotFound),
            "AccessDeniedException" => denied(Denial::KeyPolicy),
            "IncorrectKeyException" => denied(Denial::IncorrectKey),
            "ThrottlingException" | "Throttling" | "TooManyRequestsException" | "RequestLimitExceeded" | "LimitExceededException" => {
                transient(Fault::Throttled)
            }
            "ExpiredTokenException" | "ExpiredToken" => transient(Fault::ExpiredSession),
            "KMSInternalException"
            | "DependencyTimeoutException"
            | "KeyUnavailableException"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "InternalError"
            | "ServiceFailure" => transient(Fault::ServerError),
            "InvalidCiphertextException" => match region {
                Some(region) => AccessError::Corrupt { region, message },
                None => AccessError::Other { code: "InvalidCiphertextException".into(), message },
            },
            "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "InvalidSignatureException"
            | "SignatureDoesNotMatch"
            | "MissingAuthenticationToken"
            | "MissingAuthenticationTokenException"
            | "IncompleteSignature"
            | "IncompleteSignatureException" => AccessError::Provider { message },
            _ if status.is_some_and(|s| s >= 500) => transient(Fault::ServerError),
            // An answer whose error code could not be read: say so, with the HTTP status.
            "" => AccessError::Other {
                code: match status {
                    Some(status) => format!("no readable error code, HTTP {status}"),
                    None => "no readable error code".into(),
                },
                message: if message.is_empty() { "AWS's answer carried no readable error".into() } else { message },
            },
            other => AccessError::Other { code: other.to_string(), message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_error_says_so_with_its_status() {
        let e = AccessError::from_code(None, Some(403), String::new(), None);
        assert_eq!(e.to_string(), "AWS refused the request (no readable error code, HTTP 403): AWS's answer carried no readable error");
        assert!(!e.is_definitive() && !e.is_transient());
        let e = AccessError::from_code(Some(""), None, "odd".into(), None);
        assert_eq!(e.to_string(), "AWS refused the request (no readable error code): odd");
    }

    #[test]
    fn classification() {
        let r: Region = "eu-west-1".parse().expect("region");
        let c = |code: &str, status| AccessError::from_code(Some(code), Some(status), String::new(), Some(r.clone()));
        for code in ["AccessDenied", "DisabledException", "NotFoundException", "AccessDeniedException", "IncorrectKeyException"] {
            assert!(c(code, 400).is_definitive(), "{code}");
        }
        for (code, status) in [
            ("ThrottlingException", 400),
            ("Throttling", 400),
            ("KMSInternalException", 500),
            ("ExpiredTokenException", 400),
            ("KMSInvalidStateException", 400),
            ("Whatever", 503),
        ] {
            assert!(c(code, status).is_transient(), "{code}");
        }
        for code in
            ["UnrecognizedClientException", "SignatureDoesNotMatch", "InvalidCiphertextException", "ValidationException", "SomethingNew"]
        {
            let e = c(code, 400);
            assert!(!e.is_definitive() && !e.is_transient(), "{code}: never a revocation");
        }
    }
}
