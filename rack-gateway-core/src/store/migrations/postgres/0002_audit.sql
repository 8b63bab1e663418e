-- The audit chain (see audit.md): rows stored exactly as hashed, its retention checkpoint, the
-- anchors written to WORM storage, and the leases that elect one instance for a job.

-- Text stays text (client_ip is not inet, details is not jsonb): either would normalise the
-- value and break its MAC. TIMESTAMPTZ keeps the microseconds that are hashed.
CREATE TABLE audit_events (
    seq          BIGINT PRIMARY KEY CHECK (seq > 0),
    recorded_at  TIMESTAMPTZ NOT NULL,
    request_id   TEXT NOT NULL,
    actor_kind   TEXT NOT NULL,
    actor_email  TEXT NOT NULL,
    actor_name   TEXT NOT NULL,
    token_id     TEXT,
    token_name   TEXT,
    client_ip    TEXT,
    user_agent   TEXT,
    action       TEXT NOT NULL,
    phase        TEXT NOT NULL,
    resource     TEXT,
    method       TEXT,
    path         TEXT,
    decision     TEXT NOT NULL,
    reason       TEXT NOT NULL,
    http_status  INTEGER NOT NULL,
    latency_ms   BIGINT NOT NULL,
    details      TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    prev_mac     BYTEA NOT NULL CHECK (length(prev_mac) = 32),
    mac          BYTEA NOT NULL CHECK (length(mac) = 32)
);

-- Few indexes: each one costs every append. The filters read newest first by seq, so the
-- equality filters are indexed with seq; recorded_at grows with seq, so a BRIN index (a few
-- pages, nearly free to maintain) is enough for time ranges.
CREATE INDEX audit_events_recorded_at ON audit_events USING brin (recorded_at);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_actor_email ON audit_events (actor_email, seq);
CREATE INDEX audit_events_token_name ON audit_events (token_name, seq) WHERE token_name IS NOT NULL;

-- Where the stored chain starts once old rows are pruned: the last deleted row.
CREATE TABLE audit_checkpoint (
    seq       BIGINT NOT NULL CHECK (seq > 0),
    mac       BYTEA NOT NULL CHECK (length(mac) = 32),
    pruned_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX audit_checkpoint_single_row ON audit_checkpoint ((true));

-- Append-only: UPDATE and TRUNCATE are always refused; DELETE (and writing the checkpoint)
-- only inside a transaction that ran SET LOCAL rgw.audit_prune = 'on', which only
-- the retention job does. Statement-level triggers cost nothing per appended row.
CREATE FUNCTION rgw_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('rgw.audit_prune', true) = 'on' AND (
           (TG_TABLE_NAME = 'audit_events' AND TG_OP = 'DELETE')
        OR (TG_TABLE_NAME = 'audit_checkpoint' AND TG_OP IN ('INSERT', 'UPDATE'))) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION rgw_audit_append_only();

CREATE TRIGGER audit_checkpoint_retention_only
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON audit_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION rgw_audit_append_only();

-- Anchors written to the object store, so the previous one is found without listing S3.
CREATE TABLE audit_anchors (
    object_key TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL CHECK (seq > 0),
    body       TEXT NOT NULL,                                         -- the JSON written
    written_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_anchors_seq ON audit_anchors (seq);

-- Leases: at most one holder per name until expires_at (database time).
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
