-- pg_trgm stays: extensions are database-wide, so it may predate this schema or serve other
-- schemas and applications in the same database, and re-creating it needs privileges the
-- service account may not have. Leaving it installed is harmless; `up` tolerates it.
DROP INDEX IF EXISTS portfolio_by_name_trigram;
DROP INDEX IF EXISTS portfolio_by_lower_name;
DROP INDEX IF EXISTS portfolio_by_created;
DROP TABLE IF EXISTS portfolio;
