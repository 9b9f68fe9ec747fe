-- Signatures of AWS sign-ins already taken, by any node: the same signed request presented again
-- (to this node or another) is a replay. Rows older than a signature's validity are pruned.
CREATE TABLE sign_in_signatures (
    signature TEXT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
