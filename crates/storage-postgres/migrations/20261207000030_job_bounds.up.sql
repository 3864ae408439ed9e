-- An import's portfolios, staged in bounded chunks while its upload streams in, read back one
-- chunk at a time by the job (see pfs_storage::jobs). A chunk whose job row does not exist
-- (an upload that was refused or cut off) is purged after a grace period.
CREATE TABLE job_chunk (
    job_id    uuid    NOT NULL,
    seq       integer NOT NULL,
    payload   bytea   NOT NULL,
    staged_at bigint  NOT NULL,
    PRIMARY KEY (job_id, seq)
);

-- The retention purge walks finished jobs by age.
CREATE INDEX job_finished_at ON job (finished_at) WHERE state IN ('succeeded', 'failed', 'dead');
