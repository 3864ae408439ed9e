DROP TRIGGER IF EXISTS portfolio_count_delete;
DROP TRIGGER IF EXISTS portfolio_count_insert;
DROP TABLE IF EXISTS portfolio_count;
