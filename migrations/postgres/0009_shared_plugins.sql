-- Plugins shared by every host on the database: components by content digest, and what the API
-- installed per agent type (a component, a manifest, or both). Each worker advertises the agent
-- types it serves with their digests, so claims and reports know who can run what.
CREATE TABLE plugin_blobs (
    digest    TEXT PRIMARY KEY,
    bytes     BYTEA NOT NULL,
    stored_at BIGINT NOT NULL
);

CREATE TABLE installed_plugins (
    agent_type TEXT PRIMARY KEY,
    digest     TEXT REFERENCES plugin_blobs (digest),
    manifest   TEXT,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);

ALTER TABLE workers ADD COLUMN serves JSONB NOT NULL DEFAULT '{}';
