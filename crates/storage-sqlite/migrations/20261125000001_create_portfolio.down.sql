DROP INDEX IF EXISTS portfolio_by_name_nocase;
DROP INDEX IF EXISTS portfolio_by_created;
DROP TABLE IF EXISTS portfolio;
