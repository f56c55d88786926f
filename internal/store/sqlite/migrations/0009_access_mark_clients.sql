-- Removing an OIDC client ends access already granted: every token it
-- was issued is refused from then on. Its key/value namespace raises the
-- access mark too, so caches of verified tokens check those tokens again.
DROP TRIGGER kv_access_updated;
DROP TRIGGER kv_access_deleted;

CREATE TRIGGER kv_access_updated AFTER UPDATE ON kv
WHEN substr(OLD.name, 1, 13) = 'oidc/revoked/' OR substr(OLD.name, 1, 11) = 'oidc/grant/' OR substr(OLD.name, 1, 18) = 'revoke/not-before/'
	OR substr(OLD.name, 1, 13) = 'oidc/clients/'
BEGIN UPDATE access_mark SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER kv_access_deleted AFTER DELETE ON kv
WHEN substr(OLD.name, 1, 13) = 'oidc/revoked/' OR substr(OLD.name, 1, 11) = 'oidc/grant/' OR substr(OLD.name, 1, 18) = 'revoke/not-before/'
	OR substr(OLD.name, 1, 13) = 'oidc/clients/'
BEGIN UPDATE access_mark SET n = n + 1 WHERE id = 1; END;
