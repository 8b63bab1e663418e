-- Settings: global rows (app_name NULL) and per-app rows, one per (app, key). Every change
-- notifies the identity channel, so that the settings cache of every instance reloads.

CREATE TABLE settings (
    id          BIGSERIAL PRIMARY KEY,
    app_name    TEXT CHECK (app_name <> ''),
    key         TEXT NOT NULL CHECK (key <> ''),
    value       JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by  TEXT                                                  -- email or token name
);

CREATE UNIQUE INDEX settings_app_key ON settings ((COALESCE(app_name, '')), key);

CREATE TRIGGER settings_changed
    AFTER INSERT OR UPDATE OR DELETE ON settings
    FOR EACH ROW EXECUTE FUNCTION rgw_notify_identity();
