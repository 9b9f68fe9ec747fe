-- The customer's account as a column of its own, indexed: adding a tenant asks whether its
-- account already holds another one, which must not read every tenant (10,000 of them).
ALTER TABLE tenants ADD COLUMN account_id TEXT;
UPDATE tenants SET account_id = (binding::jsonb)->>'account';
CREATE INDEX tenants_account ON tenants (account_id);
