-- The background job queue (see pfs_storage::jobs). Times are milliseconds since the Unix
-- epoch, UTC, as every replica computes them. `seq` orders jobs of equal priority by age and
-- is the claim's tie-break.
CREATE TABLE job (
    seq              bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               uuid    NOT NULL UNIQUE,
    kind             text    NOT NULL,
    state            text    NOT NULL CONSTRAINT job_state_is_known
                             CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'dead')),
    priority         integer NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL CHECK (max_attempts >= 1),
    payload          bytea   NOT NULL,
    processed        bigint  NOT NULL DEFAULT 0,
    total            bigint  NOT NULL DEFAULT 0,
    report           text,
    last_error       text,
    lease_token      uuid,
    lease_expires_at bigint,
    run_at           bigint  NOT NULL,
    created_at       bigint  NOT NULL,
    updated_at       bigint  NOT NULL,
    started_at       bigint,
    finished_at      bigint
);

-- The claim (`FOR UPDATE SKIP LOCKED`) walks the unfinished jobs in priority, then age order;
-- finished ones (the bulk of the table over time) are not in the index at all.
CREATE INDEX job_claim_order ON job (priority DESC, seq) WHERE state IN ('queued', 'running');
