-- tally schema v1: organizations, API keys, customers, billable metrics, events, idempotency keys, rollups.
-- Times are microseconds since the Unix epoch (UTC) unless a column says seconds.

CREATE TABLE organizations (
    seq             INTEGER PRIMARY KEY,            -- compact id used by high-volume tables
    id              TEXT NOT NULL UNIQUE,           -- UUID
    name            TEXT NOT NULL,
    identifier_case TEXT NOT NULL DEFAULT 'none',
    timezone        TEXT NOT NULL DEFAULT 'UTC',
    created_at      INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    org             INTEGER NOT NULL REFERENCES organizations(seq),
    name            TEXT NOT NULL,
    scope           TEXT NOT NULL CHECK (scope IN ('admin', 'ingest', 'read')),
    prefix          TEXT NOT NULL,
    secret_hash     BLOB NOT NULL UNIQUE,           -- SHA-256 of the secret; the secret is never stored
    created_at      INTEGER NOT NULL,
    revoked_at      INTEGER
);

CREATE TABLE customers (
    id              TEXT PRIMARY KEY,
    org             INTEGER NOT NULL REFERENCES organizations(seq),
    sequential_id   INTEGER NOT NULL,
    external_id     TEXT NOT NULL,
    name            TEXT,
    email           TEXT,
    country         TEXT,
    currency        TEXT,
    profile         TEXT NOT NULL,                  -- JSON of the descriptive fields
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    deleted_at      INTEGER
);
-- One live customer per external id; deleted ones keep their row for history.
CREATE UNIQUE INDEX customers_live_external_id ON customers(org, external_id) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX customers_sequential_id ON customers(org, sequential_id);

CREATE TABLE billable_metrics (
    seq                 INTEGER PRIMARY KEY,        -- compact id used by rollups
    id                  TEXT NOT NULL UNIQUE,       -- UUID (lago_id; the meter id is the same bits as a ULID)
    org                 INTEGER NOT NULL REFERENCES organizations(seq),
    code                TEXT NOT NULL,
    name                TEXT NOT NULL,
    description         TEXT,
    aggregation         TEXT NOT NULL,
    event_type          TEXT NOT NULL,
    field               TEXT,                       -- JSONPath of the value, NULL for counts
    recurring           INTEGER NOT NULL DEFAULT 0,
    rounding_function   TEXT,
    rounding_precision  INTEGER,
    filters             TEXT NOT NULL DEFAULT '[]', -- [{"key":…,"values":[…]}]
    group_by            TEXT NOT NULL DEFAULT '{}', -- {"name":"$.path"}
    event_from          INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    deleted_at          INTEGER
);
CREATE UNIQUE INDEX billable_metrics_live_code ON billable_metrics(org, code) WHERE deleted_at IS NULL;
CREATE INDEX billable_metrics_event_type ON billable_metrics(org, event_type) WHERE deleted_at IS NULL;

-- Raw events: append-only, the source of truth. `id` is the ingest sequence.
CREATE TABLE events (
    id                          INTEGER PRIMARY KEY,
    org                         INTEGER NOT NULL,
    key_hash                    INTEGER NOT NULL,   -- fingerprint of (org, source, transaction_id)
    source                      TEXT,               -- CloudEvent source; NULL for Lago events
    transaction_id              TEXT NOT NULL,
    code                        TEXT NOT NULL,      -- after the case policy
    subject                     TEXT,               -- external customer id / CloudEvent subject, as sent
    external_subscription_id    TEXT,
    timestamp                   INTEGER NOT NULL,
    received_at                 INTEGER NOT NULL,
    properties                  TEXT NOT NULL,      -- JSON, after the case policy
    original                    TEXT,               -- code and properties as sent, when the case policy changed them
    precise_total_amount_cents  TEXT,
    issue                       TEXT,               -- why it cannot be billed; NULL when billable
    issue_detail                TEXT
);
-- Raw reads by metric and time: sub-minute range edges, unique counts, rebuilds.
CREATE INDEX events_code_time ON events(org, code, timestamp);
-- Unbillable events stay few; this keeps listing and re-checking them cheap.
CREATE INDEX events_unbillable ON events(org, id) WHERE issue IS NOT NULL;

-- Idempotency keys, partitioned by generation (the event id >> 16: 65,536 events each) so that new keys
-- land in one small, hot part of the index instead of dirtying pages all over a large one. A key is
-- unique within its generation by this primary key and across generations by the single writer,
-- which checks an in-memory filter of every key and probes the generations the filter cannot rule out
-- (see docs/decisions.md, "Idempotency at scale").
CREATE TABLE event_keys (
    generation      INTEGER NOT NULL,
    key_hash        INTEGER NOT NULL,
    payload_hash    INTEGER NOT NULL,
    event_id        INTEGER NOT NULL,
    PRIMARY KEY (generation, key_hash)
) WITHOUT ROWID;

-- Pre-aggregated usage per metric, subject, subscription, group and minute (width 60) or hour (3600).
-- Written in the same transaction as the events they count; `tally rollups rebuild` recomputes them.
CREATE TABLE rollups (
    org             INTEGER NOT NULL,
    metric          INTEGER NOT NULL,
    width           INTEGER NOT NULL,
    subject         TEXT NOT NULL,
    bucket          INTEGER NOT NULL,               -- bucket start, seconds since the epoch
    subscription    TEXT NOT NULL,
    group_key       TEXT NOT NULL,
    count           INTEGER NOT NULL,
    sum             TEXT NOT NULL,
    min             TEXT,
    max             TEXT,
    latest_at       INTEGER,
    latest_seq      INTEGER,
    latest_value    TEXT,
    weighted        TEXT NOT NULL,                  -- Σ value × (time − bucket) in seconds
    PRIMARY KEY (org, metric, width, subject, bucket, subscription, group_key)
) WITHOUT ROWID;
CREATE INDEX rollups_time ON rollups(org, metric, width, bucket);
