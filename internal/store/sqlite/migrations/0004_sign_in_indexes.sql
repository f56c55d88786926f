-- The policy filter reads a policy's entries newest first and stops at a
-- page, so the policy index is keyed by the entry's seq, not its random
-- id: a page costs the same for a policy that applied to one entry in a
-- thousand as for one that applied to all, and new rows go at the end of
-- each policy's range instead of at random places in the index.
ALTER TABLE sign_in_policies RENAME TO sign_in_policies_by_id;
CREATE TABLE sign_in_policies (
	policy      TEXT NOT NULL,
	sign_in_seq INTEGER NOT NULL,
	PRIMARY KEY (policy, sign_in_seq)
) WITHOUT ROWID;
INSERT INTO sign_in_policies (policy, sign_in_seq)
	SELECT p.policy, s.seq FROM sign_in_policies_by_id p JOIN sign_ins s ON s.id = p.sign_in_id;
DROP TABLE sign_in_policies_by_id;
-- Reading a page's policies, and retention.
CREATE INDEX sign_in_policies_seq ON sign_in_policies (sign_in_seq);

-- App and decision together ("blocks in the bank app"): with an index on
-- each alone, a page of a rare decision in one app read thousands of rows.
CREATE INDEX sign_ins_app_decision ON sign_ins (app, decision, seq);
