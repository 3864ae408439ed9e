-- Portfolios, keyed by the 24-hex ObjectId so ids stay interchangeable with MongoDB.
-- WITHOUT ROWID clusters rows by id: a get is one b-tree lookup, and the v1 list
-- (creation order = ascending id) is a plain scan of the table.
CREATE TABLE portfolio (
    id           TEXT    NOT NULL PRIMARY KEY,
    name         TEXT    NOT NULL,
    date_created INTEGER NOT NULL, -- milliseconds since the Unix epoch, UTC
    version      INTEGER NOT NULL
) WITHOUT ROWID;

-- Every search orders by newest first with the id as tie-break.
CREATE INDEX portfolio_by_created ON portfolio (date_created DESC, id DESC);

-- Exact, ASCII-case-insensitive name search in the same order (search terms are ASCII).
CREATE INDEX portfolio_by_name_nocase ON portfolio (name COLLATE NOCASE, date_created DESC, id DESC);
