-- Key rotation: a tenant has several generations of tenant keys, each wrapped in every region.
-- The tenant row says which one seals (key_generation), which ones still open
-- (min_generation and up) and which are kept at all (keys_from and up; older ones shredded).
ALTER TABLE tenants ADD COLUMN key_generation BIGINT NOT NULL DEFAULT 1;
ALTER TABLE tenants ADD COLUMN min_generation BIGINT NOT NULL DEFAULT 1;
ALTER TABLE tenants ADD COLUMN keys_from BIGINT NOT NULL DEFAULT 1;
ALTER TABLE tenants ADD COLUMN key_rotated_at BIGINT;
UPDATE tenants SET key_rotated_at = created_at;

-- One wrapped key per region *and generation*: SQLite cannot change a primary key in place.
CREATE TABLE wrapped_keys_by_generation (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    region TEXT NOT NULL,
    key_arn TEXT NOT NULL,
    generation BIGINT NOT NULL,
    wrapped BLOB NOT NULL,
    PRIMARY KEY (tenant_id, generation, region)
);
INSERT INTO wrapped_keys_by_generation (tenant_id, region, key_arn, generation, wrapped)
    SELECT tenant_id, region, key_arn, generation, wrapped FROM wrapped_keys;
DROP TABLE wrapped_keys;
ALTER TABLE wrapped_keys_by_generation RENAME TO wrapped_keys;
