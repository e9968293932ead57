-- Hyphae schema (SQLite). Timestamps are microseconds since the Unix epoch (UTC); JSON is text.

CREATE TABLE workflows (
    workflow_id     TEXT PRIMARY KEY,
    name            TEXT,
    status          TEXT NOT NULL,
    version         INTEGER NOT NULL,
    max_parallel    INTEGER NOT NULL,
    running         INTEGER NOT NULL DEFAULT 0,
    remaining       INTEGER NOT NULL,
    task_count      INTEGER NOT NULL,
    snapshot_every  INTEGER NOT NULL,
    event_seq       INTEGER NOT NULL DEFAULT 0,
    variables       TEXT NOT NULL,
    context         TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    error           TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    started_at      INTEGER,
    finished_at     INTEGER
);
CREATE INDEX workflows_by_created ON workflows (created_at, workflow_id);
CREATE INDEX workflows_by_status ON workflows (status, created_at);

CREATE TABLE tasks (
    workflow_id    TEXT NOT NULL REFERENCES workflows (workflow_id) ON DELETE CASCADE,
    task_id        TEXT NOT NULL,
    position       INTEGER NOT NULL,
    agent_id       TEXT NOT NULL,
    agent_type     TEXT NOT NULL,
    dependencies   TEXT NOT NULL,
    dependents     TEXT NOT NULL,
    input          TEXT NOT NULL,
    retry_policy   TEXT NOT NULL,
    timeout_ms     INTEGER,
    allow_failure  INTEGER NOT NULL,
    metadata       TEXT NOT NULL,
    status         TEXT NOT NULL,
    deps_remaining INTEGER NOT NULL,
    attempt        INTEGER NOT NULL DEFAULT 0,
    ready_at       INTEGER,
    ready_since    INTEGER,
    lease_owner    TEXT,
    lease_expires  INTEGER,
    output         TEXT,
    error          TEXT,
    started_at     INTEGER,
    finished_at    INTEGER,
    PRIMARY KEY (workflow_id, task_id)
);
CREATE INDEX tasks_ready ON tasks (ready_at, position) WHERE ready_at IS NOT NULL;
CREATE INDEX tasks_leased ON tasks (lease_expires) WHERE lease_owner IS NOT NULL;

CREATE TABLE attempts (
    workflow_id   TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    worker_id     TEXT NOT NULL,
    plugin_digest TEXT,
    status        TEXT NOT NULL,
    queue_us      INTEGER,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER,
    error         TEXT,
    log           TEXT,
    PRIMARY KEY (workflow_id, task_id, attempt),
    FOREIGN KEY (workflow_id) REFERENCES workflows (workflow_id) ON DELETE CASCADE
);

CREATE TABLE workflow_versions (
    workflow_id TEXT NOT NULL REFERENCES workflows (workflow_id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    changes     TEXT NOT NULL,
    PRIMARY KEY (workflow_id, version)
);

CREATE TABLE workflow_snapshots (
    workflow_id TEXT NOT NULL REFERENCES workflows (workflow_id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    state       TEXT NOT NULL,
    PRIMARY KEY (workflow_id, version)
);

CREATE TABLE events (
    workflow_id  TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    task_id      TEXT,
    agent_id     TEXT,
    agent_type   TEXT,
    source_agent TEXT,
    target_agent TEXT,
    status       TEXT,
    duration_ms  REAL,
    ts           INTEGER NOT NULL,
    body         TEXT,
    PRIMARY KEY (workflow_id, seq)
);
CREATE INDEX events_by_ts ON events (ts);
CREATE INDEX events_by_agent ON events (agent_id, ts) WHERE agent_id IS NOT NULL;
CREATE INDEX events_by_source ON events (source_agent, ts) WHERE source_agent IS NOT NULL;
CREATE INDEX events_by_target ON events (target_agent, ts) WHERE target_agent IS NOT NULL;

CREATE TABLE workers (
    worker_id   TEXT PRIMARY KEY,
    hostname    TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    last_beat   INTEGER NOT NULL,
    interval_ms INTEGER NOT NULL,
    stopped     INTEGER NOT NULL DEFAULT 0
);
