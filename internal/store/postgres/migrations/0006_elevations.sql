-- Just-in-time elevation: role assignments (standing or eligible, to a
-- user or a group, optionally scoped to apps) and elevation requests.
CREATE TABLE role_assignments (
	id          TEXT PRIMARY KEY,
	role        TEXT NOT NULL,
	kind        TEXT NOT NULL,
	principal   TEXT NOT NULL,
	scope_json  TEXT NOT NULL DEFAULT '[]',
	created_by  TEXT NOT NULL DEFAULT '',
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL,
	version     BIGINT NOT NULL,
	UNIQUE (role, kind, principal)
);
CREATE INDEX role_assignments_principal ON role_assignments (principal, kind);

CREATE TABLE elevations (
	id             TEXT PRIMARY KEY,
	user_id        TEXT NOT NULL,
	role           TEXT NOT NULL,
	scope_json     TEXT NOT NULL DEFAULT '[]',
	duration_us    BIGINT NOT NULL,
	justification  TEXT NOT NULL DEFAULT '',
	ticket         TEXT NOT NULL DEFAULT '',
	state          TEXT NOT NULL,
	requested_at   BIGINT NOT NULL,
	proven_at      BIGINT NOT NULL DEFAULT 0,
	deadline       BIGINT NOT NULL DEFAULT 0,
	decisions_json TEXT NOT NULL DEFAULT '[]',
	activated_at   BIGINT NOT NULL DEFAULT 0,
	until_at       BIGINT NOT NULL DEFAULT 0,
	ended_at       BIGINT NOT NULL DEFAULT 0,
	ended_by       TEXT NOT NULL DEFAULT '',
	end_reason     TEXT NOT NULL DEFAULT '',
	created_at     BIGINT NOT NULL,
	updated_at     BIGINT NOT NULL,
	version        BIGINT NOT NULL
);
-- A user's active elevations are read with every user lookup.
CREATE INDEX elevations_user_state ON elevations (user_id, state);
CREATE INDEX elevations_state ON elevations (state, requested_at);
CREATE INDEX elevations_requested ON elevations (requested_at, id);
