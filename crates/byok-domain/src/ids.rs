//! Typed identifiers. Each is validated when made from outside input, so that code holding one
//! never re-checks it, and a tenant id can never be passed where a region is expected.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an identifier was refused; the message says what a valid one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("'{0}' is not a tenant id: 1 to 64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit")]
    TenantId(String),
    #[error("'{0}' is not an AWS account id: 12 digits")]
    AccountId(String),
    #[error("'{0}' is not an AWS region name such as eu-west-1")]
    Region(String),
    #[error("'{0}' is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")]
    RoleArn(String),
    #[error("'{0}' is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/KEY-ID)")]
    KeyArn(String),
    #[error("an external id is 2 to 1224 characters of letters, digits and +=,.@:/-_")]
    ExternalId,
    #[error("'{0}' is not a context tag: 1 to 12 letters and digits (a-z, A-Z, 0-9)")]
    ContextTag(String),
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                s.parse()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// A tenant of the SaaS product (`acme`, `tenant-42`).
    TenantId
);
string_id!(
    /// A 12-digit AWS account id.
    AccountId
);
string_id!(
    /// An AWS region name (`eu-west-1`).
    Region
);
string_id!(
    /// The ARN of the IAM role the provider assumes in the customer's account.
    RoleArn
);
string_id!(
    /// A customer-managed-key tenant's context tag: 1 to 12 ASCII letters and digits the
    /// customer chose, carried in the encryption context of every KMS call byok makes with the
    /// tenant's keys, so the customer can pick out the provider's use of their key in their own
    /// CloudTrail. Fixed once the tenant is active.
    ContextTag
);

impl std::str::FromStr for ContextTag {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let ok = (1..=12).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric());
        if ok { Ok(Self(s.to_string())) } else { Err(IdError::ContextTag(s.chars().take(40).collect())) }
    }
}
string_id!(
    /// The ARN of a KMS key (never an alias: an alias can be re-pointed).
    KeyArn
);

impl std::str::FromStr for TenantId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            && s.as_bytes()[0].is_ascii_alphanumeric();
        if ok { Ok(Self(s.to_string())) } else { Err(IdError::TenantId(s.to_string())) }
    }
}

impl std::str::FromStr for AccountId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_string()))
        } else {
            Err(IdError::AccountId(s.to_string()))
        }
    }
}

impl Region {
    /// `us-east-1`: where account-wide things default to (STS's global endpoint, the canary).
    pub fn us_east_1() -> Self {
        Self("us-east-1".to_string())
    }
}

impl std::str::FromStr for Region {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        // area-direction-number, e.g. eu-west-1, ap-southeast-2, us-gov-west-1.
        let parts: Vec<&str> = s.split('-').collect();
        let ok = parts.len() >= 3
            && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
            && parts.last().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if ok { Ok(Self(s.to_string())) } else { Err(IdError::Region(s.to_string())) }
    }
}

impl std::str::FromStr for RoleArn {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let err = || IdError::RoleArn(s.to_string());
        let rest = s.strip_prefix("arn:aws:iam::").ok_or_else(err)?;
        let (account, resource) = rest.split_once(':').ok_or_else(err)?;
        account.parse::<AccountId>().map_err(|_| err())?;
        let name = resource.strip_prefix("role/").and_then(|p| p.rsplit('/').next()).ok_or_else(err)?;
        if name.is_empty() || name.len() > 64 {
            return Err(err());
        }
        Ok(Self(s.to_string()))
    }
}

impl RoleArn {
    /// The account the role lives in.
    pub fn account(&self) -> AccountId {
        AccountId(self.0["arn:aws:iam::".len().."arn:aws:iam::".len() + 12].to_string())
    }

    /// The role's name (the last path segment).
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or_default()
    }

    pub fn new(account: &AccountId, name: &str) -> Result<Self, IdError> {
        format!("arn:aws:iam::{account}:role/{name}").parse()
    }
}

impl std::str::FromStr for KeyArn {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let err = || IdError::KeyArn(s.to_string());
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        let ["arn", "aws", "kms", region, account, resource] = parts.as_slice() else { return Err(err()) };
        region.parse::<Region>().map_err(|_| err())?;
        account.parse::<AccountId>().map_err(|_| err())?;
        let id = resource.strip_prefix("key/").ok_or_else(err)?;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(err());
        }
        Ok(Self(s.to_string()))
    }
}

impl KeyArn {
    fn field(&self, n: usize) -> &str {
        self.0.split(':').nth(n).unwrap_or_default()
    }

    pub fn region(&self) -> Region {
        Region(self.field(3).to_string())
    }

    pub fn account(&self) -> AccountId {
        AccountId(self.field(4).to_string())
    }
}

/// The secret-ish value in the trust policy's `sts:ExternalId` condition: not a credential
/// (AWS says so), but it is what stops the confused-deputy problem, so it is unique per
/// tenant and generated by the provider.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ExternalId(String);

impl ExternalId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExternalId(..)")
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ExternalId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let ok = (2..=1224).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c));
        if ok { Ok(Self(s.to_string())) } else { Err(IdError::ExternalId) }
    }
}

impl TryFrom<String> for ExternalId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}

impl From<ExternalId> for String {
    fn from(id: ExternalId) -> String {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_refuse() {
        assert!("acme-1".parse::<TenantId>().is_ok());
        for bad in ["", "Acme", "-a", "a b", &"a".repeat(65)] {
            assert!(bad.parse::<TenantId>().is_err(), "{bad}");
        }
        let role: RoleArn = "arn:aws:iam::111122223333:role/path/byok-key-management".parse().expect("role");
        assert_eq!((role.account().as_str(), role.name()), ("111122223333", "byok-key-management"));
        assert!("arn:aws:iam::1:role/x".parse::<RoleArn>().is_err());
        let key: KeyArn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab".parse().expect("key");
        assert_eq!((key.region().as_str(), key.account().as_str()), ("eu-west-1", "111122223333"));
        assert!("arn:aws:kms:eu-west-1:111122223333:alias/byok".parse::<KeyArn>().is_err());
        assert!("eu-west-1".parse::<Region>().is_ok() && "europe".parse::<Region>().is_err());
        assert!("x".parse::<ExternalId>().is_err());
        let id: ExternalId = "byok-abc".parse().expect("id");
        assert_eq!(format!("{id:?}"), "ExternalId(..)");
    }

    #[test]
    fn a_context_tag_is_one_to_twelve_letters_and_digits() {
        for good in ["a", "Acme01", "ABCDEFGHIJ12"] {
            assert_eq!(good.parse::<ContextTag>().map(|t| t.to_string()), Ok(good.to_string()));
        }
        for bad in ["", "ABCDEFGHIJ123", "acme-1", "acme 1", "acme_1", "café", "a/b"] {
            let refused = bad.parse::<ContextTag>().expect_err(bad);
            assert!(refused.to_string().contains("1 to 12 letters and digits"), "{refused}");
        }
    }
}
