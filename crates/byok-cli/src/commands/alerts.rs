//! `byok alerts`: the operator's alerts.

use byok_api as api;

use super::{rfc3339, status_name};
use crate::client::Client;
use crate::error::CliError;

pub(crate) async fn run(client: Client, open: bool) -> Result<(), CliError> {
    let alerts: Vec<api::Alert> = client.alerts(open).await?;
    for a in alerts {
        println!("#{} [{}] {} (opened {}, updated {})", a.id, status_name(&a.status), a.title, rfc3339(a.opened_at), rfc3339(a.updated_at));
    }
    Ok(())
}
