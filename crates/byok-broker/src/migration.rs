//! Moving a live role-based (BYOK) tenant onto customer-managed keys (CMK), online.
//!
//! The customer first grants the provider's own principal on the keys by key policy (the setup
//! [`Broker::migration_setup`] prints: the role's statements stay, so the old path keeps working
//! until the switch). [`Broker::migrate_to_cmk`] then checks each region as CMK onboarding
//! does (described and used by the provider itself, under the new encryption context with the
//! context tag), unwraps every kept generation of the tenant key by the old path and wraps it
//! under the new one (inside the broker: no plaintext key leaves it), and switches the binding
//! (mode and keys) with every wrapped key in one compare-and-set write. Until that write the
//! tenant is served exactly as before; a refusal or a crash before it changes nothing. Records
//! need no rewrap: they are sealed under the tenant key, which does not change.

use byok_domain::{ContextTag, KeyArn, KeyMode, Region, TenantId};
use byok_kms::{CONTEXT_TAG_KEY, Purpose};
use byok_store::{KeyChange, WrappedKey};
use serde_json::json;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::events::KeyEvent;
use crate::outcomes::Instructions;
use crate::rotation::WrapCheck;
use crate::setup;

/// What a migration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub tenant: TenantId,
    pub context_tag: Option<ContextTag>,
    /// Each region's key after the switch, and the generations rewrapped under it.
    pub regions: Vec<(Region, KeyArn, Vec<u32>)>,
    /// From the first check to the switch.
    pub elapsed: std::time::Duration,
}

impl Broker {
    /// The customer's side of a move to CMK: each key's policy with the provider's statements
    /// added beside the role's (the role keeps working until the switch), as a script of
    /// `aws kms put-key-policy` commands. Only for an active role-based tenant.
    pub async fn migration_setup(&self, id: &TenantId, context_tag: Option<ContextTag>) -> Result<Instructions, BrokerError> {
        let tenant = self.changeable(id).await?;
        let Some((role, _)) = tenant.binding.role() else { return Err(already_cmk(id)) };
        let location = self.config.locations.get(&tenant.location)?;
        let mut target = tenant.binding.clone();
        target.mode = KeyMode::Cmk { context_tag: context_tag.clone() };
        let mut instructions = setup::instructions(&self.config, id, &target, &location);
        let account = tenant.binding.account.to_string();
        let mut both = setup::key_policy(&account, self.config.provider_principal.as_str(), id, context_tag.as_ref());
        let role_policy = setup::key_policy(&account, role.as_str(), id, None);
        if let (Some(statements), Some(role_statements)) = (both["Statement"].as_array_mut(), role_policy["Statement"].as_array()) {
            for mut s in role_statements.iter().filter(|s| s["Sid"] != "AccountAdministration").cloned() {
                s["Sid"] = json!(format!("{}Role", s["Sid"].as_str().unwrap_or("Byok")));
                statements.push(s);
            }
        }
        let file = format!("byok-key-policy-{id}-cmk.json");
        let mut commands = format!(
            "# Moving tenant {id} (AWS account {account}) to customer-managed keys{tagged}.\n\
             # Each key's policy gains statements for the provider's own principal ({provider}); the role's\n\
             # statements stay until the provider has switched (`byok tenant migrate {id} --to cmk`).\n\
             set -euo pipefail\n\n\
             cat > {file} <<'POLICY'\n{policy}\nPOLICY\n",
            tagged = context_tag.as_ref().map(|t| format!(", context tag {t} ({CONTEXT_TAG_KEY})")).unwrap_or_default(),
            provider = self.config.provider_principal,
            policy = serde_json::to_string_pretty(&both).unwrap_or_default(),
        );
        for key in &tenant.binding.keys {
            commands.push_str(&format!(
                "aws kms put-key-policy --region {region} --key-id {arn} --policy-name default --policy file://{file}\n",
                region = key.region,
                arn = key.key_arn
            ));
        }
        commands.push_str(&format!(
            "\n# Then tell your provider: they run `byok tenant migrate {id} --to cmk`. Once it says switched, the role\n\
             # {role} and its statements may go (byok-key-policy-{id}.json of the CMK setup has the provider's alone).\n"
        ));
        instructions.commands = commands;
        instructions.key_policy = both;
        Ok(instructions)
    }

    /// Moves an active role-based tenant onto customer-managed keys: every region's key (by
    /// default the tenant's current one, once its policy grants the provider; or the key
    /// `keys` names for that region) verified as the provider itself under the new encryption
    /// context, every kept generation rewrapped, then one write. See the module's comment.
    pub async fn migrate_to_cmk(
        &self,
        id: &TenantId,
        context_tag: Option<ContextTag>,
        keys: &[(Region, String)],
    ) -> Result<Migration, BrokerError> {
        let started = std::time::Instant::now();
        let tenant = self.changeable(id).await?;
        if tenant.binding.role().is_none() {
            return Err(already_cmk(id));
        }
        if self.config.canary.as_ref().and_then(|c| c.key_policy_key.as_ref()).is_none() {
            return Err(BrokerError::Invalid(
                "customer-managed keys need the key-policy canary (--canary-cmk-key) before a tenant may use them".into(),
            ));
        }
        for (region, _) in keys {
            if tenant.binding.key_for(region).is_none() {
                return Err(refused(region, format!("the tenant has no key in {region}")));
            }
        }
        let mut target = tenant.binding.clone();
        target.mode = KeyMode::Cmk { context_tag: context_tag.clone() };
        for i in 0..target.keys.len() {
            let key = &target.keys[i];
            let key_ref = keys.iter().find(|(r, _)| *r == key.region).map_or_else(|| key.key_arn.to_string(), |(_, k)| k.clone());
            let region = key.region.clone();
            let checked = self.check_cmk_key(&target, &region, &key_ref).await?;
            if let Some(key) = target.keys.get_mut(i) {
                key.key_arn = checked;
            }
        }
        let stored = self.store.wrapped_keys(id).await?;
        let kept: Vec<u32> = (tenant.keys.kept_from..=tenant.keys.current).collect();
        let mut rewrapped: Vec<WrappedKey> = Vec::with_capacity(kept.len() * target.keys.len());
        for &generation in &kept {
            // By the old path (the role), inside the broker.
            let key = self.unwrap_generation(&tenant, &stored, generation, Purpose::Rekey).await?;
            for region_key in &target.keys {
                let region = &region_key.region;
                let wrapped = self
                    .wrap_checked(&target, region, id, &key, Purpose::Rekey, generation)
                    .await
                    .map_err(|e| wrap_refused(region_key, e))?;
                rewrapped.push(WrappedKey { region: region.clone(), key_arn: region_key.key_arn.clone(), generation, wrapped });
            }
        }
        let detail = json!({
            "from": "byok", "to": "cmk", "context_tag": context_tag,
            "keys": target.keys.iter().map(|k| json!({ "region": k.region, "key": k.key_arn })).collect::<Vec<_>>(),
            "generations": kept,
        });
        self.write_change(&tenant, &tenant.keys, KeyChange::Migrate { binding: &target, keys: &rewrapped }, KeyEvent::Migrated, detail)
            .await?;
        // The role's reused data-path session is of no further use.
        self.kms.forget(&tenant.binding);
        tracing::info!(tenant = %id, "moved to customer-managed keys; every generation rewrapped");
        Ok(Migration {
            tenant: id.clone(),
            context_tag,
            regions: target.keys.iter().map(|k| (k.region.clone(), k.key_arn.clone(), kept.clone())).collect(),
            elapsed: started.elapsed(),
        })
    }

    /// A region's key as CMK onboarding checks it, by the provider itself: it exists in the
    /// tenant's account and the region, and is enabled. (The wrap and unwrap follow, per
    /// generation.)
    pub(crate) async fn check_cmk_key(
        &self,
        target: &byok_domain::TenantBinding,
        region: &Region,
        key_ref: &str,
    ) -> Result<KeyArn, BrokerError> {
        let described = self.kms.describe_key(target, region, key_ref, Purpose::Rekey).await;
        self.metrics.kms("DescribeKey", &described);
        let status = described.map_err(|e| {
            if e.is_transient() {
                BrokerError::from_access(e)
            } else {
                refused(region, format!("{key_ref} could not be described by the provider: {e} (does its key policy grant the provider?)"))
            }
        })?;
        let arn: KeyArn = status.arn.parse().map_err(|e| refused(region, format!("{key_ref} does not name a usable key: {e}")))?;
        if arn.region() != *region || arn.account() != target.account {
            return Err(refused(region, format!("{arn} is not in {region} of the tenant's account {}", target.account)));
        }
        if !status.enabled {
            return Err(refused(region, format!("{arn} is {}, not enabled", status.state)));
        }
        Ok(arn)
    }
}

/// A move refused in `region` (422 `migration_refused`), with the reason.
pub(crate) fn refused(region: &Region, reason: String) -> BrokerError {
    BrokerError::MigrationRefused { region: region.to_string(), reason }
}

/// A checked wrap under the new key that failed, as a move says it: a transient fault stays one
/// (tried again later); a refusal names the key; the provider's own layer failing is its own.
pub(crate) fn wrap_refused(key: &byok_domain::RegionKey, e: WrapCheck) -> BrokerError {
    let region = &key.region;
    match e {
        WrapCheck::Encrypt(e) | WrapCheck::Decrypt(e) if e.is_transient() => BrokerError::from_access(e),
        WrapCheck::Encrypt(e) => refused(region, format!("{} refused to encrypt for the provider: {e}", key.key_arn)),
        WrapCheck::Decrypt(e) => refused(region, format!("{} refused to decrypt for the provider: {e}", key.key_arn)),
        WrapCheck::Mismatch => refused(region, format!("{} did not give back what it encrypted", key.key_arn)),
        WrapCheck::Layer(e) => e,
    }
}

fn already_cmk(id: &TenantId) -> BrokerError {
    BrokerError::Invalid(format!("tenant '{id}' already uses customer-managed keys"))
}
