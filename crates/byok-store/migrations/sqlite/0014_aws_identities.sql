-- Product services that sign in with their own AWS IAM role (POST /v1/auth/aws): the role's ARN
-- and the tenants its short-lived tokens reach (comma-separated ids; NULL: every tenant).
CREATE TABLE aws_identities (
    role_arn TEXT PRIMARY KEY,
    service_tenants TEXT,
    created_at BIGINT NOT NULL
);
