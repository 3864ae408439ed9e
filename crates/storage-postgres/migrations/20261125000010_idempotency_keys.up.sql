-- Idempotency-Key records: one row per (route, key), reserved before the keyed write runs and
-- completed with the response to replay. Times are milliseconds since the Unix epoch (the
-- service's clock, so every replica compares leases on one scale).
CREATE TABLE idempotency_keys (
    scope            text    NOT NULL, -- method and route
    key              text    NOT NULL,
    fingerprint      text    NOT NULL, -- digest of the request; another request with the key is refused
    seed             bigint  NOT NULL, -- what the write's ids are derived from, kept across takeovers
    created_at       bigint  NOT NULL,
    token            text    NOT NULL, -- the attempt holding the lease
    locked_until     bigint  NOT NULL,
    expires_at       bigint  NOT NULL,
    response_status  integer,          -- NULL until completed
    response_type    text,
    response_body    bytea,
    PRIMARY KEY (scope, key)
);

-- Purging walks expired keys only.
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
