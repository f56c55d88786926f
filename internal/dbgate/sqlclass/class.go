package sqlclass

import "fmt"

// Class is what kind of statement something is, ordered from the least to
// the most sensitive, so that the class of a string of statements is the
// greatest of its parts.
type Class uint8

// The classes, least sensitive first.
const (
	// ClassSession: transaction control and session settings (BEGIN,
	// COMMIT, SET, SHOW, DEALLOCATE). Dangerous settings (SET ROLE,
	// search_path) are flagged in Hazards.
	ClassSession Class = iota
	// ClassRead: returns data without changing it (SELECT, COPY ... TO
	// STDOUT, FETCH, EXPLAIN ANALYZE of a read).
	ClassRead
	// ClassUtility: maintenance and messaging that changes no rows
	// (VACUUM, ANALYZE, CLUSTER, REINDEX, CHECKPOINT, LISTEN, NOTIFY,
	// EXPLAIN without ANALYZE).
	ClassUtility
	// ClassWrite: changes rows or takes their locks (INSERT, UPDATE,
	// DELETE, MERGE, TRUNCATE, COPY FROM STDIN, SELECT ... FOR UPDATE,
	// LOCK, nextval).
	ClassWrite
	// ClassDDL: changes the schema (CREATE, ALTER, DROP, CREATE TABLE AS,
	// SELECT ... INTO, COMMENT, REFRESH MATERIALIZED VIEW).
	ClassDDL
	// ClassPrivilege: changes who may do what, or acts with a superuser's
	// powers (GRANT, REVOKE, CREATE/ALTER/DROP ROLE, ALTER ... OWNER TO,
	// row-level security, ALTER SYSTEM, COPY with a server file or
	// program, pg_terminate_backend, pg_read_file).
	ClassPrivilege
	// ClassUnknown: cannot be classified with certainty (it does not
	// parse, it runs code the classifier cannot see: DO, CALL, a function
	// not on the allow-list, EXECUTE of a statement not prepared in the
	// same string). The most sensitive class: treat it as anything.
	ClassUnknown
)

var classNames = [...]string{"session", "read", "utility", "write", "ddl", "privilege", "unknown"}

// String is the class's stable name, as policies and the sign-in log use it.
func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "unknown"
}

// MarshalText writes the class's name.
func (c Class) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads a class's name, as a policy condition spells it.
func (c *Class) UnmarshalText(b []byte) error {
	parsed, err := ParseClass(string(b))
	if err != nil {
		return err
	}
	*c = parsed
	return nil
}

// ParseClass returns the class named s.
func ParseClass(s string) (Class, error) {
	for i, name := range classNames {
		if name == s {
			return Class(i), nil
		}
	}
	return ClassUnknown, fmt.Errorf("unknown statement class %q: use one of session, read, utility, write, ddl, privilege, unknown", s)
}

// AtLeast reports whether c is as sensitive as other or more.
func (c Class) AtLeast(other Class) bool { return c >= other }

func maxClass(a, b Class) Class {
	if b > a {
		return b
	}
	return a
}
