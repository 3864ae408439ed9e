DROP INDEX job_finished_at;
DROP TABLE job_chunk;
