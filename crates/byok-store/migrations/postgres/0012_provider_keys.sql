-- The provider-held layer: one KMS key per tenant and region in the provider's own account,
-- under which each customer-wrapped tenant key is encrypted before it is stored. Destruction
-- disables and schedules the deletion of these keys, so that no copy of the database (backup,
-- dump, replica, dead tuple) can be unwrapped afterwards. See docs/shredding.md.
CREATE TABLE provider_keys (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    region TEXT NOT NULL,
    key_arn TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    deletion_date BIGINT,           -- when AWS deletes it: set once destruction scheduled it
    PRIMARY KEY (tenant_id, region)
);
