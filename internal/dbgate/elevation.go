package dbgate

import (
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/dbgate/sqlclass"
	"github.com/stepgate/stepgate/internal/store"
)

// needsElevation returns why facts may not run for u without the
// database's destructive_needs_elevation role, or "". A DROP, a DROP
// COLUMN or a TRUNCATE needs the role through an active just-in-time
// elevation. So do two ways to run one out of the classifier's sight:
// a statement it cannot read (a DO block, CALL, a function off the
// allow-list, text that does not parse), which may EXECUTE 'DROP TABLE
// ...' through dynamic SQL; and a statement that defines code (a
// function, a trigger, an extension), which a later INSERT or SELECT
// can run without naming it (a trigger, a column default, a view).
func (s *Server) needsElevation(u store.User, f sqlclass.Facts, now time.Time) string {
	role := s.db.DestructiveNeedsElevation
	if role == "" || !f.Destructive && !f.DefinesCode && f.Class != sqlclass.ClassUnknown {
		return ""
	}
	if elevatedTo(u, role, now, s.db.Name) {
		return ""
	}
	what := "DROP and TRUNCATE need"
	switch {
	case f.Destructive:
	case f.Class == sqlclass.ClassUnknown:
		what = "the gateway cannot read what this statement runs (a DO block, a procedure, a function that may write, or text that does not parse), so it may DROP or TRUNCATE, which need"
	default:
		what = "this statement defines code the database runs later where the gateway cannot see it (a function, a trigger, an extension), which may DROP or TRUNCATE; defining it needs"
	}
	return what + " the role " + role + " activated just in time on this database (holding the role all the time does not count): " +
		"activate it on your roles page (/account/roles) or have an operator run `stepgate role activate " + role + " --user " + u.Username +
		"`, then run the statement again"
}

// elevatedTo reports whether u holds role at now for app through an
// active elevation. A standing role (User.Roles) or an active
// assignment (a Grant without an Elevation) does not count: an account
// that always holds the role, once stolen, could drop tables without
// anyone having asked, approved or been told.
func elevatedTo(u store.User, role string, now time.Time, app string) bool {
	for _, g := range u.Grants {
		if g.Elevation != "" && strings.EqualFold(g.Role, role) && g.At(now, app) {
			return true
		}
	}
	return false
}
