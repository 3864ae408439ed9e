-- Idempotency-Key records: one row per (route, key), reserved before the keyed write runs and
-- completed with the response to replay. Times are milliseconds since the Unix epoch.
CREATE TABLE idempotency_keys (
    scope            TEXT    NOT NULL, -- method and route
    key              TEXT    NOT NULL,
    fingerprint      TEXT    NOT NULL, -- digest of the request; another request with the key is refused
    seed             INTEGER NOT NULL, -- what the write's ids are derived from, kept across takeovers
    created_at       INTEGER NOT NULL,
    token            TEXT    NOT NULL, -- the attempt holding the lease
    locked_until     INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    response_status  INTEGER,          -- NULL until completed
    response_type    TEXT,
    response_body    BLOB,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;

-- Purging walks expired keys only.
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
