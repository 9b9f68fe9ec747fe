//! Moving a fleet of tenants from a plan, one tenant after another: adoptions (`byok tenant
//! adopt --plan`) and moves to customer-managed keys (`byok tenant migrate --plan`). Each tenant's
//! switch is one write in the broker; the plan reports each tenant, the fleet's rate and what was
//! refused, and Ctrl-C stops it before the next switch.

use byok_api as api;

use crate::client::Client;
use crate::error::CliError;

/// What to do to one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    Adopt(api::AdoptRequest),
    Migrate(api::MigrateRequest),
}

/// One line of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Planned {
    pub tenant: String,
    pub change: Change,
}

/// `--interval SECONDS` as a duration (negative or unreadable: none).
pub(crate) fn interval(seconds: f64) -> std::time::Duration {
    std::time::Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or_default()
}

/// The lines of a plan that are not blank or comments (`#`), split into fields, numbered from 1.
fn lines(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines().enumerate().filter_map(|(n, line)| {
        let fields: Vec<&str> = line.split('#').next().unwrap_or_default().split_whitespace().collect();
        (!fields.is_empty()).then_some((n + 1, fields))
    })
}

/// An adoption plan: `TENANT ACCOUNT MODE [CONTEXT_TAG]` per line.
pub(crate) fn adoptions(text: &str) -> Result<Vec<Planned>, CliError> {
    let mut planned = Vec::new();
    for (n, fields) in lines(text) {
        let bad = |why: &str| CliError::Config(format!("plan line {n}: {why} (TENANT ACCOUNT MODE [CONTEXT_TAG])"));
        let (tenant, account, mode) = match fields.as_slice() {
            [t, a, m] | [t, a, m, _] => (*t, *a, *m),
            _ => return Err(bad("expected 3 or 4 fields")),
        };
        let to = match mode {
            "cmk" => api::KeyModeName::Cmk,
            "byok" => api::KeyModeName::Byok,
            _ => return Err(bad("MODE is cmk or byok")),
        };
        let request = api::AdoptRequest {
            to,
            account_id: account.to_string(),
            context_tag: fields.get(3).map(ToString::to_string),
            keys: Default::default(),
        };
        planned.push(Planned { tenant: tenant.to_string(), change: Change::Adopt(request) });
    }
    Ok(planned)
}

/// A plan of moves to customer-managed keys: `TENANT [CONTEXT_TAG]` per line.
pub(crate) fn migrations(text: &str) -> Result<Vec<Planned>, CliError> {
    let mut planned = Vec::new();
    for (n, fields) in lines(text) {
        let (tenant, tag) = match fields.as_slice() {
            [t] => (*t, None),
            [t, tag] => (*t, Some(tag.to_string())),
            _ => return Err(CliError::Config(format!("plan line {n}: expected TENANT [CONTEXT_TAG]"))),
        };
        let request = api::MigrateRequest { to: api::KeyModeName::Cmk, context_tag: tag, keys: Default::default() };
        planned.push(Planned { tenant: tenant.to_string(), change: Change::Migrate(request) });
    }
    Ok(planned)
}

/// Switches every tenant of the plan in turn (`interval` apart), printing each and the fleet's
/// rate; a tenant refused is reported and the next one tried; Ctrl-C stops before the next
/// switch (the one in flight, if any, either switched or did not: the broker writes it at once).
pub(crate) async fn run(client: &Client, planned: Vec<Planned>, interval: std::time::Duration) -> Result<(), CliError> {
    let started = std::time::Instant::now();
    let (mut switched, mut refused) = (0usize, Vec::new());
    let abort = tokio::signal::ctrl_c();
    tokio::pin!(abort);
    for (i, p) in planned.iter().enumerate() {
        let outcome = tokio::select! {
            biased;
            _ = &mut abort => None,
            outcome = async {
                if i > 0 {
                    tokio::time::sleep(interval).await;
                }
                switch(client, p).await
            } => Some(outcome),
        };
        let Some(outcome) = outcome else {
            println!(
                "aborted: {switched} of {} tenants switched; {} and the rest not touched by this run (one in flight either \
                 switched or did not: byok tenant show says)",
                planned.len(),
                p.tenant
            );
            return Err(CliError::Config("aborted".into()));
        };
        match outcome {
            Ok(what) => {
                switched += 1;
                println!(
                    "[{}/{}] {} switched {what}; {:.1} tenants/s",
                    i + 1,
                    planned.len(),
                    p.tenant,
                    switched as f64 / started.elapsed().as_secs_f64().max(1e-3)
                );
            }
            Err(e) => {
                println!("[{}/{}] {} refused: {e}", i + 1, planned.len(), p.tenant);
                refused.push(p.tenant.clone());
            }
        }
    }
    println!("{switched} of {} tenants switched in {:.1} s", planned.len(), started.elapsed().as_secs_f64());
    if refused.is_empty() { Ok(()) } else { Err(CliError::Config(format!("not switched: {}", refused.join(", ")))) }
}

/// One tenant's switch; what to print after "switched".
async fn switch(client: &Client, planned: &Planned) -> Result<String, CliError> {
    match &planned.change {
        Change::Adopt(request) => {
            let adopted = client.adopt(&planned.tenant, request).await?;
            Ok(format!("in {} ms (fresh generation {})", adopted.elapsed_ms, adopted.first_generation))
        }
        Change::Migrate(request) => {
            let moved = client.migrate(&planned.tenant, request).await?;
            Ok(format!("to customer-managed keys in {} ms", moved.elapsed_ms))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adoption_plan_reads_tenants_accounts_modes_and_tags() {
        let plan = adoptions("# fleet\nacme 111122223333 cmk Acme01\n\nglobex 444455556666 byok # role\n").expect("plan");
        assert_eq!(plan.len(), 2);
        let Change::Adopt(acme) = &plan[0].change else { panic!("an adoption") };
        assert_eq!((plan[0].tenant.as_str(), acme.context_tag.as_deref()), ("acme", Some("Acme01")));
        let Change::Adopt(globex) = &plan[1].change else { panic!("an adoption") };
        assert_eq!((globex.to, globex.account_id.as_str()), (api::KeyModeName::Byok, "444455556666"));
        assert!(adoptions("acme 111122223333 provider").is_err(), "adoption is onto the customer's keys");
        assert!(adoptions("acme 111122223333").is_err());
    }

    #[test]
    fn a_migration_plan_reads_tenants_and_tags() {
        let plan = migrations("acme Acme01\nglobex\n").expect("plan");
        let tags: Vec<_> = plan
            .iter()
            .map(|p| match &p.change {
                Change::Migrate(m) => (p.tenant.as_str(), m.context_tag.clone(), m.to),
                Change::Adopt(_) => panic!("a migration"),
            })
            .collect();
        assert_eq!(tags, [("acme", Some("Acme01".into()), api::KeyModeName::Cmk), ("globex", None, api::KeyModeName::Cmk)]);
        assert!(migrations("acme Acme01 extra").is_err());
    }
}
