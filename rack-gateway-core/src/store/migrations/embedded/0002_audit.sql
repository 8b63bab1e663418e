-- The audit chain (see audit.md): rows stored exactly as hashed, its retention checkpoint, the
-- anchors written to WORM storage, and the leases that elect one holder for a job.
-- Timestamps are microseconds since the Unix epoch (UTC), which is the precision hashed.

-- seq is the rowid (INTEGER PRIMARY KEY), so reading by seq needs no separate index.
CREATE TABLE audit_events (
    seq          INTEGER PRIMARY KEY CHECK (seq > 0),
    recorded_at  INTEGER NOT NULL,
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
    latency_ms   INTEGER NOT NULL,
    details      TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    prev_mac     BLOB NOT NULL CHECK (length(prev_mac) = 32),
    mac          BLOB NOT NULL CHECK (length(mac) = 32)
) STRICT;

-- Few indexes: each one costs every append. Every SQLite index ends with the rowid (seq), so
-- these also serve the newest-first order of the filters.
CREATE INDEX audit_events_recorded_at ON audit_events (recorded_at);
CREATE INDEX audit_events_action ON audit_events (action);
CREATE INDEX audit_events_actor_email ON audit_events (actor_email);
CREATE INDEX audit_events_token_name ON audit_events (token_name) WHERE token_name IS NOT NULL;

-- Where the stored chain starts once old rows are pruned: the last deleted row.
CREATE TABLE audit_checkpoint (
    seq       INTEGER NOT NULL CHECK (seq > 0),
    mac       BLOB NOT NULL CHECK (length(mac) = 32),
    pruned_at INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX audit_checkpoint_single_row ON audit_checkpoint ((1));

-- Append-only: UPDATE is always refused; DELETE (and writing the checkpoint) only while this
-- table holds its row, which the retention job inserts and removes inside its own transaction.
CREATE TABLE audit_prune_guard (
    id INTEGER PRIMARY KEY CHECK (id = 1)
) STRICT;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN NOT EXISTS (SELECT 1 FROM audit_prune_guard)
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused'); END;

CREATE TRIGGER audit_checkpoint_no_insert BEFORE INSERT ON audit_checkpoint
WHEN NOT EXISTS (SELECT 1 FROM audit_prune_guard)
BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is written by retention only: INSERT refused'); END;
CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint
WHEN NOT EXISTS (SELECT 1 FROM audit_prune_guard)
BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is written by retention only: UPDATE refused'); END;
CREATE TRIGGER audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint
BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is written by retention only: DELETE refused'); END;

-- Anchors written to the object store, so the previous one is found without listing S3.
CREATE TABLE audit_anchors (
    object_key TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL CHECK (seq > 0),
    body       TEXT NOT NULL,                                         -- the JSON written
    written_at INTEGER NOT NULL
) STRICT;
CREATE INDEX audit_anchors_seq ON audit_anchors (seq);

-- Leases: at most one holder per name until expires_at.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
