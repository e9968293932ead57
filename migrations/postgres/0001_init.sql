-- Hyphae schema (PostgreSQL). Timestamps are microseconds since the Unix epoch (UTC); JSON is text.

CREATE TABLE workflows (
    workflow_id     TEXT PRIMARY KEY,
    name            TEXT,
    status          TEXT NOT NULL,
    version         BIGINT NOT NULL,
    max_parallel    BIGINT NOT NULL,
    running         BIGINT NOT NULL DEFAULT 0,
    remaining       BIGINT NOT NULL,
    task_count      BIGINT NOT NULL,
    snapshot_every  BIGINT NOT NULL,
    event_seq       BIGINT NOT NULL DEFAULT 0,
    variables       TEXT NOT NULL,
    context         TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    error           TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    started_at      BIGINT,
    finished_at     BIGINT
);
CREATE INDEX workflows_by_created ON workflows (created_at, workflow_id);
CREATE INDEX workflows_by_status ON workflows (status, created_at);

CREATE TABLE tasks (
    workflow_id    TEXT NOT NULL REFERENCES workflows (workflow_id) ON DELETE CASCADE,
    task_id        TEXT NOT NULL,
    position       BIGINT NOT NULL,
    agent_id       TEXT NOT NULL,
    agent_type     TEXT NOT NULL,
    dependencies   TEXT NOT NULL,
    dependents     TEXT NOT NULL,
    input          TEXT NOT NULL,
    retry_policy   TEXT NOT NULL,
    timeout_ms     BIGINT,
    allow_failure  BIGINT NOT NULL,
    metadata       TEXT NOT NULL,
    status         TEXT NOT NULL,
    deps_remaining BIGINT NOT NULL,
    attempt        BIGINT NOT NULL DEFAULT 0,
    ready_at       BIGINT,
    ready_since    BIGINT,
    lease_owner    TEXT,
    lease_expires  BIGINT,
    output         TEXT,
    error          TEXT,
    started_at     BIGINT,
    finished_at    BIGINT,
    PRIMARY KEY (workflow_id, task_id)
);
CREATE INDEX tasks_ready ON tasks (ready_at, position) WHERE ready_at IS NOT NULL;
CREATE INDEX tasks_leased ON tasks (lease_expires) WHERE lease_owner IS NOT NULL;

CREATE TABLE attempts (
    workflow_id   TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    attempt       BIGINT NOT NULL,
    worker_id     TEXT NOT NULL,
    plugin_digest TEXT,
    status        TEXT NOT NULL,
    queue_us      BIGINT,
    started_at    BIGINT NOT NULL,
    finished_at   BIGINT,
    error         TEXT,
    log           TEXT,
    PRIMARY KEY (workflow_id, task_id, attempt),
    FOREIGN KEY (workflow_id) REFERENCES workflows (workflow_id) ON DELETE CASCADE
);

CREATE TABLE workflow_versions (
    workflow_id TEXT NOT NULL REFERENCES workflows (workflow_id) ON DELETE CASCADE,
    version     BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    changes     TEXT NOT NULL,
    PRIMARY KEY (workflow_id, version)
);

CREATE TABLE workflow_snapshots (
    workflow_id TEXT NOT NULL REFERENCES workflows (workflow_id) ON DELETE CASCADE,
    version     BIGINT NOT NULL,
    state       TEXT NOT NULL,
    PRIMARY KEY (workflow_id, version)
);

CREATE TABLE events (
    workflow_id  TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    task_id      TEXT,
    agent_id     TEXT,
    agent_type   TEXT,
    source_agent TEXT,
    target_agent TEXT,
    status       TEXT,
    duration_ms  DOUBLE PRECISION,
    ts           BIGINT NOT NULL,
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
    pid         BIGINT NOT NULL,
    started_at  BIGINT NOT NULL,
    last_beat   BIGINT NOT NULL,
    interval_ms BIGINT NOT NULL,
    stopped     BIGINT NOT NULL DEFAULT 0
);
