//! The API commands, one module each, every one owning its clap enum and its handler:
//! [`tenant`], [`ticket`], [`audit`], [`revocations`], [`token`], [`identity`], and [`data`]
//! (encrypt, decrypt), [`alerts`] and [`webhook`]; [`migrate`] works on the store directly; [`provider`] prints the provider's side on AWS. Helpers they share are here.

use std::io::Read;

use crate::error::CliError;

pub(crate) mod alerts;
pub(crate) mod audit;
pub(crate) mod data;
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
