-- Key/value entries may expire (authorization codes, refresh tokens).
ALTER TABLE kv ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX kv_expires ON kv (expires_at);
