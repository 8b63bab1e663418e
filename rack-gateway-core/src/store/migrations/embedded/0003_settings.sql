-- Settings: global rows (app_name NULL) and per-app rows, one per (app, key). Every change
-- bumps identity_generation, so that the settings cache of every process reloads.
-- Timestamps are microseconds since the Unix epoch (UTC).

CREATE TABLE settings (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    app_name    TEXT CHECK (app_name <> ''),
    key         TEXT NOT NULL CHECK (key <> ''),
    value       TEXT NOT NULL CHECK (json_valid(value)),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    updated_by  TEXT                                                  -- email or token name
) STRICT;

CREATE UNIQUE INDEX settings_app_key ON settings (COALESCE(app_name, ''), key);

CREATE TRIGGER settings_inserted AFTER INSERT ON settings
BEGIN UPDATE identity_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER settings_updated AFTER UPDATE ON settings
BEGIN UPDATE identity_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER settings_deleted AFTER DELETE ON settings
BEGIN UPDATE identity_generation SET value = value + 1 WHERE id = 1; END;
