-- A service token may be limited to some tenants: their ids, comma-separated, in order. NULL:
-- every tenant (asked for explicitly when the token is issued; the tokens from before this
-- migration keep reaching every tenant).
ALTER TABLE tokens ADD COLUMN service_tenants TEXT;
