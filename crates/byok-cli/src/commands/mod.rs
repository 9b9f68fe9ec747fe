//! The API commands, one module each, every one owning its clap enum and its handler:
//! [`tenant`], [`ticket`], [`audit`], [`revocations`], [`token`], [`identity`], and [`data`]
//! (encrypt, decrypt), [`alerts`] and [`webhook`]; [`migrate`] works on the store directly; [`provider`] prints the provider's side on AWS. Helpers they share are here.

use std::io::Read;

use crate::error::CliError;

pub(crate) mod adopt;
pub(crate) mod alerts;
pub(crate) mod audit;
pub(crate) mod data;
pub(crate) mod fleet;
pub(crate) mod identity;
pub(crate) mod migrate;
pub(crate) mod provider;
pub(crate) mod revocations;
pub(crate) mod tenant;
pub(crate) mod ticket;
pub(crate) mod token;
pub(crate) mod webhook;

pub(crate) fn read_stdin() -> Result<Vec<u8>, CliError> {
    let mut buf = Vec::new();
    std::io::stdin().read_to_end(&mut buf).map_err(CliError::io("cannot read stdin"))?;
    Ok(buf)
}

pub(crate) fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

pub(crate) fn status_name(s: &impl serde::Serialize) -> String {
    serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A tenant's key mode, as `--mode` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Mode {
    /// Role-based BYOK: the provider assumes the customer's role.
    Byok,
    /// Customer-managed keys: each key's policy grants the provider's own principal.
    Cmk,
    /// Provider-held keys: KMS keys byok makes in the provider's own account, until the
    /// customer brings theirs (`byok tenant adopt`).
    Provider,
}

impl Mode {
    pub(crate) fn api(self) -> byok_api::KeyModeName {
        match self {
            Mode::Byok => byok_api::KeyModeName::Byok,
            Mode::Cmk => byok_api::KeyModeName::Cmk,
            Mode::Provider => byok_api::KeyModeName::Provider,
        }
    }
}

/// `REGION=KEY`, as `--key` takes it.
pub(crate) fn region_key(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(r, k)| (r.to_string(), k.to_string())).ok_or_else(|| format!("'{s}' is not REGION=KEY"))
}
