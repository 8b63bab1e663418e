-- Sessions of people signed in through the browser or the CLI, and sign-ins in progress.
-- Only hashes of secrets are stored: the session token's, the OIDC state's, the browser
-- cookie's (hex SHA-256).

CREATE TABLE sessions (
    id             BIGSERIAL PRIMARY KEY,
    public_id      UUID NOT NULL UNIQUE,
    user_id        BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash     CHAR(64) NOT NULL UNIQUE,
    kind           TEXT NOT NULL CHECK (kind IN ('web', 'cli')),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at     TIMESTAMPTZ,
    revoked_reason TEXT,
    ip             INET,
    user_agent     VARCHAR(512),
    device_name    VARCHAR(150),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);

CREATE INDEX sessions_user_id ON sessions (user_id);
-- Revoked rows stay (they are the history people see); the sweeper reads only the others.
CREATE INDEX sessions_unrevoked ON sessions (kind, last_seen_at) WHERE revoked_at IS NULL;

CREATE TRIGGER sessions_identity_added_or_removed
    AFTER INSERT OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION rgw_notify_identity();

-- Recording a use (last_seen_at only) is not an identity change: caches must not flush on it.
CREATE TRIGGER sessions_identity_changed
    AFTER UPDATE ON sessions
    FOR EACH ROW
    WHEN ((to_jsonb(OLD) - 'last_seen_at') IS DISTINCT FROM (to_jsonb(NEW) - 'last_seen_at'))
    EXECUTE FUNCTION rgw_notify_identity();

-- Sign-ins in progress. Not identity changes: nothing here notifies.
CREATE TABLE login_states (
    state_hash   CHAR(64) PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('web', 'cli')),
    browser_hash CHAR(64),
    return_to    TEXT CHECK (length(return_to) <= 2048),
    device_name  VARCHAR(150),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL,
    consumed_at  TIMESTAMPTZ,
    user_id      BIGINT REFERENCES users (id) ON DELETE CASCADE,
    error        TEXT,
    CHECK (user_id IS NULL OR error IS NULL)
);

CREATE INDEX login_states_expires_at ON login_states (expires_at);
