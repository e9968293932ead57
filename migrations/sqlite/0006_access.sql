-- API tokens (only their SHA-256 digests) with their roles, and the audit log of admin actions
-- and refused requests. Times are microseconds since the Unix epoch.
CREATE TABLE tokens (
    token_id   TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at INTEGER
);
CREATE UNIQUE INDEX tokens_active_name ON tokens (name) WHERE revoked_at IS NULL;

CREATE TABLE audit_events (
    seq     INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    caller  TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT,
    outcome TEXT NOT NULL,
    client  TEXT,
    detail  TEXT
);
CREATE INDEX audit_events_by_time ON audit_events (at);
