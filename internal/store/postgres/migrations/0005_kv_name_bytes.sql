-- Quotas count the entries under a key prefix: an index in byte order
-- serves that range whatever the database's collation.
CREATE INDEX kv_name_bytes ON kv (name COLLATE "C");
