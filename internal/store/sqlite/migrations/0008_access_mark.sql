-- The access mark: a counter raised by every write that can end access
-- already granted (a token put on the deny list, a grant revoked, a
-- user's not-before time, a user, group, role, role assignment or
-- elevation changed). Caches of verified tokens compare it before
-- trusting what they hold, so a write by any process - the server, the
-- command line - is seen by the next request.
CREATE TABLE access_mark (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	n  INTEGER NOT NULL
);
INSERT INTO access_mark (id, n) VALUES (1, 0);

CREATE TRIGGER kv_access_inserted AFTER INSERT ON kv
WHEN substr(NEW.name, 1, 13) = 'oidc/revoked/' OR substr(NEW.name, 1, 18) = 'revoke/not-before/'
BEGIN UPDATE access_mark SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER kv_access_updated AFTER UPDATE ON kv
WHEN substr(OLD.name, 1, 13) = 'oidc/revoked/' OR substr(OLD.name, 1, 11) = 'oidc/grant/' OR substr(OLD.name, 1, 18) = 'revoke/not-before/'
BEGIN UPDATE access_mark SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER kv_access_deleted AFTER DELETE ON kv
WHEN substr(OLD.name, 1, 13) = 'oidc/revoked/' OR substr(OLD.name, 1, 11) = 'oidc/grant/' OR substr(OLD.name, 1, 18) = 'revoke/not-before/'
BEGIN UPDATE access_mark SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER users_access_updated AFTER UPDATE ON users BEGIN UPDATE access_mark SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER users_access_deleted AFTER DELETE ON users BEGIN UPDATE access_mark SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER groups_access_updated AFTER UPDATE ON groups BEGIN UPDATE access_mark SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER groups_access_deleted AFTER DELETE ON groups BEGIN UPDATE access_mark SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER roles_access_updated AFTER UPDATE ON roles BEGIN UPDATE access_mark SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER roles_access_deleted AFTER DELETE ON roles BEGIN UPDATE access_mark SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER role_assignments_access_updated AFTER UPDATE ON role_assignments BEGIN UPDATE access_mark SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER role_assignments_access_deleted AFTER DELETE ON role_assignments BEGIN UPDATE access_mark SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER elevations_access_updated AFTER UPDATE ON elevations BEGIN UPDATE access_mark SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER elevations_access_deleted AFTER DELETE ON elevations BEGIN UPDATE access_mark SET n = n + 1 WHERE id = 1; END;
