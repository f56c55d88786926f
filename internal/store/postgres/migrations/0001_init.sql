-- Times are Unix microseconds; lists are JSON arrays.
CREATE TABLE users (
	id            TEXT PRIMARY KEY,
	username      TEXT NOT NULL UNIQUE,
	email         TEXT NOT NULL DEFAULT '',
	display_name  TEXT NOT NULL DEFAULT '',
	groups_json   TEXT NOT NULL DEFAULT '[]',
	roles_json    TEXT NOT NULL DEFAULT '[]',
	disabled      BOOLEAN NOT NULL DEFAULT FALSE,
	password_hash TEXT NOT NULL DEFAULT '',
	created_at    BIGINT NOT NULL,
	updated_at    BIGINT NOT NULL,
	version       BIGINT NOT NULL
);

CREATE TABLE groups (
	name         TEXT PRIMARY KEY,
	display_name TEXT NOT NULL DEFAULT '',
	description  TEXT NOT NULL DEFAULT '',
	parents_json TEXT NOT NULL DEFAULT '[]',
	created_at   BIGINT NOT NULL,
	updated_at   BIGINT NOT NULL,
	version      BIGINT NOT NULL
);

CREATE TABLE roles (
	name        TEXT PRIMARY KEY,
	description TEXT NOT NULL DEFAULT '',
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL,
	version     BIGINT NOT NULL
);

CREATE TABLE credentials (
	id           TEXT PRIMARY KEY,
	user_id      TEXT NOT NULL,
	type         TEXT NOT NULL,
	name         TEXT NOT NULL DEFAULT '',
	data         BYTEA NOT NULL,
	created_at   BIGINT NOT NULL,
	updated_at   BIGINT NOT NULL,
	last_used_at BIGINT NOT NULL DEFAULT 0,
	version      BIGINT NOT NULL
);
CREATE INDEX credentials_user ON credentials (user_id);

CREATE TABLE sessions (
	id           TEXT PRIMARY KEY,
	user_id      TEXT NOT NULL,
	created_at   BIGINT NOT NULL,
	last_seen_at BIGINT NOT NULL,
	expires_at   BIGINT NOT NULL,
	events_json  TEXT NOT NULL DEFAULT '[]',
	ip           TEXT NOT NULL DEFAULT '',
	user_agent   TEXT NOT NULL DEFAULT '',
	version      BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE kv (
	name       TEXT PRIMARY KEY,
	value      BYTEA NOT NULL,
	updated_at BIGINT NOT NULL,
	version    BIGINT NOT NULL
);
