-- The sign-in log: one row per access decision. seq orders rows as
-- written and is the pagination cursor; id makes a retried batch
-- idempotent. The filterable fields are columns; the whole entry is body.
CREATE TABLE sign_ins (
	seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id       TEXT NOT NULL UNIQUE,
	at       BIGINT NOT NULL,
	user_id  TEXT NOT NULL DEFAULT '',
	app      TEXT NOT NULL DEFAULT '',
	decision TEXT NOT NULL DEFAULT '',
	body     TEXT NOT NULL
);
CREATE INDEX sign_ins_at ON sign_ins (at);
CREATE INDEX sign_ins_user ON sign_ins (user_id, seq);
CREATE INDEX sign_ins_app ON sign_ins (app, seq);
CREATE INDEX sign_ins_decision ON sign_ins (decision, seq);

-- Which policies applied to each sign-in, for the policy filter.
CREATE TABLE sign_in_policies (
	policy    TEXT NOT NULL,
	sign_in_id TEXT NOT NULL,
	PRIMARY KEY (policy, sign_in_id)
);
CREATE INDEX sign_in_policies_signin ON sign_in_policies (sign_in_id);
