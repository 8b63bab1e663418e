-- Users, API tokens and the identity change counter polled by watchers in every process.
-- Timestamps are microseconds since the Unix epoch (UTC).

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,                  -- ids are never reused
    email         TEXT NOT NULL UNIQUE CHECK (length(email) BETWEEN 1 AND 254),
    name          TEXT NOT NULL CHECK (length(name) <= 150),
    roles         TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(roles) AND json_type(roles) = 'array'),
    locked_at     INTEGER,
    locked_reason TEXT,
    suspended     INTEGER NOT NULL DEFAULT 0 CHECK (suspended IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id    TEXT NOT NULL UNIQUE CHECK (length(public_id) = 36),
    token_hash   TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 150),
    owner_id     INTEGER REFERENCES users (id) ON DELETE CASCADE,
    permissions  TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(permissions) AND json_type(permissions) = 'array'),
    role         TEXT,
    created_by   TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;

CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;
CREATE INDEX api_tokens_owner_id ON api_tokens (owner_id);

CREATE TABLE identity_generation (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
) STRICT;
INSERT INTO identity_generation (id, value) VALUES (1, 0);

CREATE TRIGGER users_identity_inserted AFTER INSERT ON users
BEGIN UPDATE identity_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER users_identity_updated AFTER UPDATE ON users
BEGIN UPDATE identity_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER users_identity_deleted AFTER DELETE ON users
BEGIN UPDATE identity_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER api_tokens_identity_inserted AFTER INSERT ON api_tokens
BEGIN UPDATE identity_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER api_tokens_identity_deleted AFTER DELETE ON api_tokens
BEGIN UPDATE identity_generation SET value = value + 1 WHERE id = 1; END;

-- Every column but last_used_at: recording a use is not an identity change.
-- A later migration that adds a column to api_tokens must recreate this trigger.
CREATE TRIGGER api_tokens_identity_updated AFTER UPDATE ON api_tokens
WHEN OLD.id IS NOT NEW.id
  OR OLD.public_id IS NOT NEW.public_id
  OR OLD.token_hash IS NOT NEW.token_hash
  OR OLD.name IS NOT NEW.name
  OR OLD.owner_id IS NOT NEW.owner_id
  OR OLD.permissions IS NOT NEW.permissions
  OR OLD.role IS NOT NEW.role
  OR OLD.created_by IS NOT NEW.created_by
  OR OLD.created_at IS NOT NEW.created_at
  OR OLD.expires_at IS NOT NEW.expires_at
  OR OLD.revoked_at IS NOT NEW.revoked_at
BEGIN UPDATE identity_generation SET value = value + 1 WHERE id = 1; END;
