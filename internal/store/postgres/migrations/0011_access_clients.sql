-- Removing an OIDC client ends access already granted: every token it
-- was issued is refused from then on. Its key/value namespace notifies
-- stepgate_access too, so every node checks those tokens again.
DROP TRIGGER kv_access_updated ON kv;
DROP TRIGGER kv_access_deleted ON kv;

CREATE TRIGGER kv_access_updated AFTER UPDATE ON kv FOR EACH ROW
WHEN (substr(OLD.name, 1, 13) = 'oidc/revoked/' OR substr(OLD.name, 1, 11) = 'oidc/grant/' OR substr(OLD.name, 1, 18) = 'revoke/not-before/'
	OR substr(OLD.name, 1, 13) = 'oidc/clients/')
EXECUTE FUNCTION stepgate_access_changed();

CREATE TRIGGER kv_access_deleted AFTER DELETE ON kv FOR EACH ROW
WHEN (substr(OLD.name, 1, 13) = 'oidc/revoked/' OR substr(OLD.name, 1, 11) = 'oidc/grant/' OR substr(OLD.name, 1, 18) = 'revoke/not-before/'
	OR substr(OLD.name, 1, 13) = 'oidc/clients/')
EXECUTE FUNCTION stepgate_access_changed();
