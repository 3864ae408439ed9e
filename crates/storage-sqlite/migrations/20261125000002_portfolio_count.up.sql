-- The total behind every unfiltered search, kept by triggers instead of counted per request:
-- count(*) over 100,000 rows costs milliseconds, this row costs one lookup. SQLite runs one
-- writer at a time, so the single counter row never becomes a point of contention, and the
-- triggers run inside the writing transaction, so the count is exact in every snapshot.
CREATE TABLE portfolio_count (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    total INTEGER NOT NULL
);
INSERT INTO portfolio_count (id, total) SELECT 1, count(*) FROM portfolio;

CREATE TRIGGER portfolio_count_insert AFTER INSERT ON portfolio
BEGIN
    UPDATE portfolio_count SET total = total + 1 WHERE id = 1;
END;

CREATE TRIGGER portfolio_count_delete AFTER DELETE ON portfolio
BEGIN
    UPDATE portfolio_count SET total = total - 1 WHERE id = 1;
END;
