-- Every write that can end access already granted (a token put on the
-- deny list, a grant revoked, a user's not-before time, a user, group,
-- role, role assignment or elevation changed) notifies channel
-- stepgate_access when it commits. Every node listens and stops
-- trusting the tokens it has cached as verified; PostgreSQL sends one
-- notification per transaction however many rows it wrote.
CREATE FUNCTION stepgate_access_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('stepgate_access', '');
	RETURN NULL;
END
$$;

CREATE TRIGGER kv_access_inserted AFTER INSERT ON kv FOR EACH ROW
WHEN (substr(NEW.name, 1, 13) = 'oidc/revoked/' OR substr(NEW.name, 1, 18) = 'revoke/not-before/')
EXECUTE FUNCTION stepgate_access_changed();

CREATE TRIGGER kv_access_updated AFTER UPDATE ON kv FOR EACH ROW
WHEN (substr(OLD.name, 1, 13) = 'oidc/revoked/' OR substr(OLD.name, 1, 11) = 'oidc/grant/' OR substr(OLD.name, 1, 18) = 'revoke/not-before/')
EXECUTE FUNCTION stepgate_access_changed();

CREATE TRIGGER kv_access_deleted AFTER DELETE ON kv FOR EACH ROW
WHEN (substr(OLD.name, 1, 13) = 'oidc/revoked/' OR substr(OLD.name, 1, 11) = 'oidc/grant/' OR substr(OLD.name, 1, 18) = 'revoke/not-before/')
EXECUTE FUNCTION stepgate_access_changed();

CREATE TRIGGER users_access_changed AFTER UPDATE OR DELETE ON users FOR EACH STATEMENT EXECUTE FUNCTION stepgate_access_changed();
CREATE TRIGGER groups_access_changed AFTER UPDATE OR DELETE ON groups FOR EACH STATEMENT EXECUTE FUNCTION stepgate_access_changed();
CREATE TRIGGER roles_access_changed AFTER UPDATE OR DELETE ON roles FOR EACH STATEMENT EXECUTE FUNCTION stepgate_access_changed();
CREATE TRIGGER role_assignments_access_changed AFTER UPDATE OR DELETE ON role_assignments FOR EACH STATEMENT EXECUTE FUNCTION stepgate_access_changed();
CREATE TRIGGER elevations_access_changed AFTER UPDATE OR DELETE ON elevations FOR EACH STATEMENT EXECUTE FUNCTION stepgate_access_changed();
