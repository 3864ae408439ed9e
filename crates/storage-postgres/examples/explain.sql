-- Plans of every statement PostgresStore issues, on 100,000 realistic portfolios.
--
--   psql "${PORTFOLIO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}" \
--        -X -v ON_ERROR_STOP=1 -f crates/storage-postgres/examples/explain.sql
--
-- Works in a scratch schema `explain_demo` (dropped and re-created), built by the real up
-- migration. The statements are copied verbatim from src/queries.rs; the store sends search
-- queries as unnamed statements, which always get a custom plan, so this script forces
-- custom plans too. Output is in docs/POSTGRES-EXPLAIN.md.

-- The migration's `CREATE EXTENSION IF NOT EXISTS pg_trgm` would otherwise create the extension
-- in the first schema of the search path, explain_demo, and the DROP below would take it away
-- from every other schema of the database.
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
DROP SCHEMA IF EXISTS explain_demo CASCADE;
CREATE SCHEMA explain_demo;
SET search_path = explain_demo, public;
\ir ../migrations/20261125000001_create_portfolio.up.sql

SELECT setseed(0.42);

-- Names: qualifier + style + vehicle (1,800 combinations), 30% with a vintage year, 20% with
-- a client code; one in 5,000 starts with the rare word 'Aurora'. Dates: uniform over eight
-- years, one in ten truncated to midnight so many rows share a timestamp. Ids are ObjectIds
-- whose time part is the creation second, inserted in id order like a live system.
INSERT INTO portfolio (id, name, date_created, version)
SELECT lpad(to_hex(extract(epoch FROM created)::int8), 8, '0') || substr(md5(i::text), 1, 16), name, created, 1 + i % 3
FROM (
    SELECT i,
        CASE WHEN i % 10 = 0 THEN date_trunc('day', t) ELSE t END AS created,
        CASE WHEN i % 5000 = 7 THEN 'Aurora ' ELSE '' END
        || (ARRAY['Tech', 'Global', 'Green', 'Alpha', 'Income', 'Value', 'Growth', 'Dividend', 'Emerging Markets',
                  'Balanced', 'Strategic', 'Core', 'Blue Chip', 'Small Cap', 'Healthcare', 'Energy', 'Real Estate',
                  'Fixed Income', 'Momentum', 'Quality', 'Sustainable', 'Pacific', 'Atlantic', 'Nordic',
                  'Frontier'])[1 + floor(random() * 25)::int]
        || ' ' || (ARRAY['Growth', 'Value', 'Income', 'Opportunities', 'Equity', 'Allocation', 'Select', 'Index',
                         'Reserve', 'Leaders', 'Innovation', 'Infrastructure'])[1 + floor(random() * 12)::int]
        || ' ' || (ARRAY['Fund', 'Portfolio', 'Strategy', 'Trust', 'Account', 'Mandate'])[1 + floor(random() * 6)::int]
        || CASE WHEN r < 0.3 THEN ' ' || (2010 + floor(random() * 16)::int)::text
                WHEN r < 0.5 THEN ' ' || upper(substr(md5(i::text), 17, 6))
                ELSE '' END AS name
    FROM (SELECT i, random() AS r, timestamptz '2018-01-01 00:00:00Z' + random() * interval '8 years' AS t
          FROM generate_series(1, 100000) AS i) AS raw
) AS generated
ORDER BY 1;

-- date_trunc leaves whole seconds; the store keeps milliseconds, so give the others some.
UPDATE portfolio SET date_created = date_trunc('milliseconds', date_created);
VACUUM ANALYZE portfolio;

SELECT count(*) AS rows,
       count(*) FILTER (WHERE lower(name) = lower('tech growth fund')) AS exact_tech_growth_fund,
       count(*) FILTER (WHERE lower(name) LIKE '%aurora%') AS like_aurora,
       count(*) FILTER (WHERE lower(name) LIKE '%fund%') AS like_fund,
       count(*) FILTER (WHERE lower(name) LIKE '%e%') AS like_e,
       count(*) - count(DISTINCT date_created) AS rows_sharing_a_timestamp
FROM portfolio;

SET plan_cache_mode = force_custom_plan;

PREPARE get_by_id(text) AS
SELECT id, name, (extract(epoch FROM date_created) * 1000)::int8 AS millis, version FROM portfolio WHERE id = $1;

PREPARE list_all AS
SELECT id, name, (extract(epoch FROM date_created) * 1000)::int8 AS millis, version FROM portfolio ORDER BY id;

-- Search binds, in order: the count's filter, the page start and end (offset, offset + limit),
-- the forward branch's filter, limit and offset, the backward branch's filter.
PREPARE search_all(int8, int8, int8, int8) AS
WITH c AS MATERIALIZED (SELECT count(*) AS total FROM portfolio),
w AS MATERIALIZED (SELECT total, (page_start >= total OR total - least(page_end, total) >= page_start) AS forward,
                   greatest(total - page_end, 0) AS back_offset, greatest(least(page_end, total) - page_start, 0) AS back_limit
                   FROM c, (SELECT $1::int8 AS page_start, $2::int8 AS page_end) page)
SELECT w.total, p.id, p.name, (extract(epoch FROM p.date_created) * 1000)::int8 AS millis, p.version
FROM w LEFT JOIN portfolio p ON p.id = ANY(ARRAY(
  (SELECT id FROM portfolio WHERE (SELECT forward FROM w) ORDER BY date_created DESC, id DESC LIMIT $3 OFFSET $4)
  UNION ALL
  (SELECT id FROM portfolio WHERE NOT (SELECT forward FROM w) ORDER BY date_created, id
   LIMIT (SELECT back_limit FROM w) OFFSET (SELECT back_offset FROM w))))
ORDER BY p.date_created DESC, p.id DESC;

PREPARE search_exact(text, text, int8, int8, text, text, int8, int8, text, text) AS
WITH c AS MATERIALIZED (SELECT count(*) AS total FROM portfolio WHERE left(lower(name), 200) = $1 AND lower(name) = $2),
w AS MATERIALIZED (SELECT total, (page_start >= total OR total - least(page_end, total) >= page_start) AS forward,
                   greatest(total - page_end, 0) AS back_offset, greatest(least(page_end, total) - page_start, 0) AS back_limit
                   FROM c, (SELECT $3::int8 AS page_start, $4::int8 AS page_end) page)
SELECT w.total, p.id, p.name, (extract(epoch FROM p.date_created) * 1000)::int8 AS millis, p.version
FROM w LEFT JOIN portfolio p ON p.id = ANY(ARRAY(
  (SELECT id FROM portfolio WHERE left(lower(name), 200) = $5 AND lower(name) = $6 AND (SELECT forward FROM w) ORDER BY date_created DESC, id DESC LIMIT $7 OFFSET $8)
  UNION ALL
  (SELECT id FROM portfolio WHERE left(lower(name), 200) = $9 AND lower(name) = $10 AND NOT (SELECT forward FROM w) ORDER BY date_created, id
   LIMIT (SELECT back_limit FROM w) OFFSET (SELECT back_offset FROM w))))
ORDER BY p.date_created DESC, p.id DESC;

PREPARE search_like(text, int8, int8, text, int8, int8, text) AS
WITH c AS MATERIALIZED (SELECT count(*) AS total FROM portfolio WHERE lower(name) LIKE lower($1) ESCAPE '\'),
w AS MATERIALIZED (SELECT total, (page_start >= total OR total - least(page_end, total) >= page_start) AS forward,
                   greatest(total - page_end, 0) AS back_offset, greatest(least(page_end, total) - page_start, 0) AS back_limit
                   FROM c, (SELECT $2::int8 AS page_start, $3::int8 AS page_end) page)
SELECT w.total, p.id, p.name, (extract(epoch FROM p.date_created) * 1000)::int8 AS millis, p.version
FROM w LEFT JOIN portfolio p ON p.id = ANY(ARRAY(
  (SELECT id FROM portfolio WHERE lower(name) LIKE lower($4) ESCAPE '\' AND (SELECT forward FROM w) ORDER BY date_created DESC, id DESC LIMIT $5 OFFSET $6)
  UNION ALL
  (SELECT id FROM portfolio WHERE lower(name) LIKE lower($7) ESCAPE '\' AND NOT (SELECT forward FROM w) ORDER BY date_created, id
   LIMIT (SELECT back_limit FROM w) OFFSET (SELECT back_offset FROM w))))
ORDER BY p.date_created DESC, p.id DESC;

PREPARE update_versioned(text, text, int8, text, int8) AS
UPDATE portfolio SET name = $1, date_created = COALESCE($2::timestamptz, date_created), version = $3
WHERE id = $4 AND version = $5 RETURNING id, name, (extract(epoch FROM date_created) * 1000)::int8 AS millis, version;

PREPARE delete_versioned(text, int8) AS DELETE FROM portfolio WHERE id = $1 AND version = $2;

SELECT id AS some_id, version AS some_version FROM portfolio ORDER BY id OFFSET 54321 LIMIT 1 \gset

\echo '== get by id'
EXPLAIN (ANALYZE, BUFFERS) EXECUTE get_by_id(:'some_id');
\echo '== list_all (100,000 rows)'
EXPLAIN (ANALYZE, BUFFERS) EXECUTE list_all;
\echo '== search All, limit 50 offset 0'
EXPLAIN (ANALYZE, BUFFERS) EXECUTE search_all(0, 50, 50, 0);
\echo '== search All, limit 50 offset 5000'
EXPLAIN (ANALYZE, BUFFERS) EXECUTE search_all(5000, 5050, 50, 5000);
\echo '== search All, limit 50 offset 49950 (the middle: the deepest a page ever walks)'
EXPLAIN (ANALYZE, BUFFERS) EXECUTE search_all(49950, 50000, 50, 49950);
\echo '== search All, limit 50 offset 99950 (the last page)'
EXPLAIN (ANALYZE, BUFFERS) EXECUTE search_all(99950, 100000, 50, 99950);
\echo '== search exact name=tech growth fund'
EXPLAIN (ANALYZE, BUFFERS) EXECUTE search_exact('tech growth fund', 'tech growth fund', 0, 50, 'tech growth fund', 'tech growth fund', 50, 0, 'tech growth fund', 'tech growth fund');
\echo '== search name_like=aurora (selective)'
EXPLAIN (ANALYZE, BUFFERS) EXECUTE search_like('%aurora%', 0, 50, '%aurora%', 50, 0, '%aurora%');
\echo '== search name_like=fund (common)'
EXPLAIN (ANALYZE, BUFFERS) EXECUTE search_like('%fund%', 0, 50, '%fund%', 50, 0, '%fund%');
\echo '== search name_like=e (matches most rows, too short for trigrams)'
EXPLAIN (ANALYZE, BUFFERS) EXECUTE search_like('%e%', 0, 50, '%e%', 50, 0, '%e%');
\echo '== update and delete (rolled back)'
BEGIN;
EXPLAIN (ANALYZE, BUFFERS) EXECUTE update_versioned('renamed', NULL, :some_version + 1, :'some_id', :some_version);
EXPLAIN (ANALYZE, BUFFERS) EXECUTE delete_versioned(:'some_id', :some_version + 1);
ROLLBACK;
