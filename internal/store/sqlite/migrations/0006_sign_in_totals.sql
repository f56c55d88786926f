-- Running totals of the sign-in log per hour (micros of its start, UTC),
-- counter and policy, so the console sums a few hundred rows instead of
-- counting the entries of its period: of all apps together, which the
-- console reads, and of each app. The writer of the log keeps both in
-- the transaction that changes the log. Without a rowid, a period's
-- totals are read from the primary key's b-tree alone: a month of them
-- in half the time.
CREATE TABLE sign_in_totals (
	hour    BIGINT NOT NULL,
	counter TEXT NOT NULL,
	policy  TEXT NOT NULL DEFAULT '',
	n       BIGINT NOT NULL,
	PRIMARY KEY (hour, counter, policy)
) WITHOUT ROWID;
CREATE TABLE sign_in_app_totals (
	app     TEXT NOT NULL,
	hour    BIGINT NOT NULL,
	counter TEXT NOT NULL,
	policy  TEXT NOT NULL DEFAULT '',
	n       BIGINT NOT NULL,
	PRIMARY KEY (app, hour, counter, policy)
) WITHOUT ROWID;
-- Retention drops whole hours of every app.
CREATE INDEX sign_in_app_totals_hour ON sign_in_app_totals (hour);

-- Which version of the counting the totals hold; no row means they were
-- never counted, and the server counts them from the log at start. An
-- empty log has nothing to count.
CREATE TABLE sign_in_totals_state (
	version INTEGER NOT NULL
);
INSERT INTO sign_in_totals_state (version) SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM sign_ins);
