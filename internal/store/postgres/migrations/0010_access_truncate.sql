-- TRUNCATE fires no row or DELETE trigger: an operator emptying a table
-- whose rows keep access granted (grants and the deny list in kv, users,
-- groups, roles, role assignments, elevations) notifies every node too,
-- or each would go on trusting the tokens it cached as verified.
CREATE TRIGGER kv_access_truncated AFTER TRUNCATE ON kv FOR EACH STATEMENT EXECUTE FUNCTION stepgate_access_changed();
CREATE TRIGGER users_access_truncated AFTER TRUNCATE ON users FOR EACH STATEMENT EXECUTE FUNCTION stepgate_access_changed();
CREATE TRIGGER groups_access_truncated AFTER TRUNCATE ON groups FOR EACH STATEMENT EXECUTE FUNCTION stepgate_access_changed();
CREATE TRIGGER roles_access_truncated AFTER TRUNCATE ON roles FOR EACH STATEMENT EXECUTE FUNCTION stepgate_access_changed();
CREATE TRIGGER role_assignments_access_truncated AFTER TRUNCATE ON role_assignments FOR EACH STATEMENT EXECUTE FUNCTION stepgate_access_changed();
CREATE TRIGGER elevations_access_truncated AFTER TRUNCATE ON elevations FOR EACH STATEMENT EXECUTE FUNCTION stepgate_access_changed();
