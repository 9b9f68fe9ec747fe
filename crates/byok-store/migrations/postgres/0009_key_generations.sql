-- Key rotation: a tenant has several generations of tenant keys, each wrapped in every region.
-- The tenant row says which one seals (key_generation), which ones still open
-- (min_generation and up) and which are kept at all (keys_from and up; older ones shredded).
ALTER TABLE tenants ADD COLUMN key_generation BIGINT NOT NULL DEFAULT 1;
ALTER TABLE tenants ADD COLUMN min_generation BIGINT NOT NULL DEFAULT 1;
ALTER TABLE tenants ADD COLUMN keys_from BIGINT NOT NULL DEFAULT 1;
ALTER TABLE tenants ADD COLUMN key_rotated_at BIGINT;
UPDATE tenants SET key_rotated_at = created_at;

-- One wrapped key per region *and generation*.
ALTER TABLE wrapped_keys DROP CONSTRAINT wrapped_keys_pkey;
ALTER TABLE wrapped_keys ADD PRIMARY KEY (tenant_id, generation, region);
