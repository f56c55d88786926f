-- The class of the SQL statement an entry of the database gateway
-- decided, for the filters "statements on this database" and "statements
-- of this class"; empty for every other entry. Entries written before
-- the column existed get theirs from the body: only those holding a
-- statement are read and rewritten, not the whole log.
ALTER TABLE sign_ins ADD COLUMN statement_class TEXT NOT NULL DEFAULT '';
UPDATE sign_ins SET statement_class = coalesce(body::jsonb #>> '{statement,class}', '')
	WHERE body LIKE '%"statement":{%';
-- Partial: only statements are indexed, so the log of a deployment
-- without databases pays nothing for them.
CREATE INDEX sign_ins_statement_app ON sign_ins (app, statement_class, seq) WHERE statement_class <> '';
CREATE INDEX sign_ins_statement_class ON sign_ins (statement_class, seq) WHERE statement_class <> '';
