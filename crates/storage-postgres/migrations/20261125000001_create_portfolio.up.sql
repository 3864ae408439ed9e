-- Portfolios, keyed by the 24-hex ObjectId so ids stay interchangeable with MongoDB. The
-- CHECK keeps the key canonical (lowercase), so an id matches whatever case a client sent.
CREATE TABLE portfolio (
    id           text        NOT NULL PRIMARY KEY CONSTRAINT portfolio_id_is_object_id CHECK (id ~ '^[0-9a-f]{24}$'),
    name         text        NOT NULL,
    date_created timestamptz NOT NULL, -- whole milliseconds, written and read as epoch millis
    version      bigint      NOT NULL
);

-- Every search orders by newest first with the id as tie-break: the unfiltered page walks
-- this index and stops after offset + limit entries instead of sorting the table.
CREATE INDEX portfolio_by_created ON portfolio (date_created DESC, id DESC);

-- Exact, case-insensitive search, already in page order. Names have no length limit but a
-- btree entry must fit in a third of a page (~2.7 kB), so the index keeps the first 200
-- characters: search terms are at most 200 characters, so equal names have equal prefixes,
-- and the query rechecks the whole name (`left(lower(name), 200) = $1 AND lower(name) = $1`).
CREATE INDEX portfolio_by_lower_name ON portfolio (left(lower(name), 200), date_created DESC, id DESC);

-- Substring search (`lower(name) LIKE '%term%'`). A btree cannot serve a leading wildcard;
-- trigrams can, for terms of three or more characters.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX portfolio_by_name_trigram ON portfolio USING gin (lower(name) gin_trgm_ops);
