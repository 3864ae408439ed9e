-- The background job queue (see pfs_storage::jobs). Times are milliseconds since the Unix
-- epoch, UTC. `seq` orders jobs of equal priority by age and is the claim's tie-break.
CREATE TABLE job (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL UNIQUE,
    kind             TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'dead')),
    priority         INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
    payload          BLOB    NOT NULL,
    processed        INTEGER NOT NULL DEFAULT 0,
    total            INTEGER NOT NULL DEFAULT 0,
    report           TEXT,
    last_error       TEXT,
    lease_token      TEXT,
    lease_expires_at INTEGER,
    run_at           INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER
);

-- The claim walks the unfinished jobs in priority, then age order; finished ones (the bulk
-- of the table over time) are not in the index at all.
CREATE INDEX job_claim_order ON job (priority DESC, seq) WHERE state IN ('queued', 'running');
