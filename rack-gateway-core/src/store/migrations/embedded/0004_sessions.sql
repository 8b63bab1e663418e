-- Sessions of people signed in through the browser or the CLI, and sign-ins in progress.
-- Only hashes of secrets are stored: the session token's, the OIDC state's, the browser
-- cookie's (hex SHA-256). Timestamps are microseconds since the Unix epoch (UTC).

CREATE TABLE sessions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id      TEXT NOT NULL UNIQUE CHECK (length(public_id) = 36),
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash     TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    kind           TEXT NOT NULL CHECK (kind IN ('web', 'cli')),
    created_at     INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL,
    revoked_at     INTEGER,
    revoked_reason TEXT,
    ip             TEXT,
    user_agent     TEXT CHECK (length(user_agent) <= 512),
    device_name    TEXT CHECK (length(device_name) <= 150),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
) STRICT;

CREATE INDEX sessions_user_id ON sessions (user_id);
-- Revoked rows stay (they are the history people see); the sweeper reads only the others.
CREATE INDEX sessions_unrevoked ON sessions (kind, last_seen_at) WHERE revoked_at IS NULL;

CREATE TRIGGER sessions_identity_inserted AFTER INSERT ON sessions
BEGIN UPDATE identity_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER sessions_identity_deleted AFTER DELETE ON sessions
BEGIN UPDATE identity_generation SET value = value + 1 WHERE id = 1; END;

-- Every column but last_seen_at: recording a use is not an identity change.
-- A later migration that adds a column to sessions must recreate this trigger.
CREATE TRIGGER sessions_identity_updated AFTER UPDATE ON sessions
WHEN OLD.id IS NOT NEW.id
  OR OLD.public_id IS NOT NEW.public_id
  OR OLD.user_id IS NOT NEW.user_id
  OR OLD.token_hash IS NOT NEW.token_hash
  OR OLD.kind IS NOT NEW.kind
  OR OLD.created_at IS NOT NEW.created_at
  OR OLD.revoked_at IS NOT NEW.revoked_at
  OR OLD.revoked_reason IS NOT NEW.revoked_reason
  OR OLD.ip IS NOT NEW.ip
  OR OLD.user_agent IS NOT NEW.user_agent
  OR OLD.device_name IS NOT NEW.device_name
BEGIN UPDATE identity_generation SET value = value + 1 WHERE id = 1; END;

-- Sign-ins in progress. Not identity changes: nothing here bumps the counter.
CREATE TABLE login_states (
    state_hash   TEXT PRIMARY KEY CHECK (length(state_hash) = 64),
    kind         TEXT NOT NULL CHECK (kind IN ('web', 'cli')),
    browser_hash TEXT CHECK (length(browser_hash) = 64),
    return_to    TEXT CHECK (length(return_to) <= 2048),
    device_name  TEXT CHECK (length(device_name) <= 150),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    consumed_at  INTEGER,
    user_id      INTEGER REFERENCES users (id) ON DELETE CASCADE,
    error        TEXT,
    CHECK (user_id IS NULL OR error IS NULL)
) STRICT;

CREATE INDEX login_states_expires_at ON login_states (expires_at);
