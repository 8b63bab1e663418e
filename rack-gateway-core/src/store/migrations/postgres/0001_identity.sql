-- Users, API tokens and the identity change feed (NOTIFY on channel rgw_identity).

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    email         VARCHAR(254) NOT NULL UNIQUE CHECK (email <> ''),   -- trimmed, lower-cased
    name          VARCHAR(150) NOT NULL,
    roles         JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(roles) = 'array'),
    locked_at     TIMESTAMPTZ,
    locked_reason TEXT,
    suspended     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
    id           BIGSERIAL PRIMARY KEY,
    public_id    UUID NOT NULL UNIQUE,
    token_hash   CHAR(64) NOT NULL UNIQUE,                            -- hex SHA-256
    name         VARCHAR(150) NOT NULL CHECK (name <> ''),
    owner_id     BIGINT REFERENCES users (id) ON DELETE CASCADE,
    permissions  JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(permissions) = 'array'),
    role         TEXT,
    created_by   TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);

-- A name is unique among tokens that are not revoked, so it can be reused after a revocation.
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;
CREATE INDEX api_tokens_owner_id ON api_tokens (owner_id);

CREATE FUNCTION rgw_notify_identity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('rgw_identity', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_identity_changed
    AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION rgw_notify_identity();

CREATE TRIGGER api_tokens_identity_added_or_removed
    AFTER INSERT OR DELETE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION rgw_notify_identity();

-- Recording a use (last_used_at only) is not an identity change: caches must not flush on it.
CREATE TRIGGER api_tokens_identity_changed
    AFTER UPDATE ON api_tokens
    FOR EACH ROW
    WHEN ((to_jsonb(OLD) - 'last_used_at') IS DISTINCT FROM (to_jsonb(NEW) - 'last_used_at'))
    EXECUTE FUNCTION rgw_notify_identity();
