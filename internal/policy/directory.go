package policy

// Directory resolves the names policies refer to, at compile time, so a
// policy naming a group that does not exist is reported before it is
// enforced (a typo in an exclusion would otherwise silently widen who is
// blocked). Compile calls it; Evaluate never does, so the hot path never
// touches storage.
//
// The server passes a directory backed by the store (see NewDirectory
// for a ready-made in-memory one); "policy lint" may pass nil to check
// files offline, which skips these checks and group nesting.
type Directory interface {
	// HasUser reports whether a user with this username or id exists.
	HasUser(name string) bool
	// HasRole reports whether the role exists.
	HasRole(name string) bool
	// HasApp reports whether an app (OIDC client or gateway app) or
	// service client with this id exists.
	HasApp(id string) bool
	// Groups returns every group with the groups it is directly nested
	// in. The snapshot expands nesting from it, so a policy naming a
	// parent group covers members of its child groups.
	Groups() map[string][]string
}

// NewDirectory returns a Directory over fixed lists; groups maps each
// group to its direct parents. The server fills it from the store when it
// compiles policies.
func NewDirectory(users, roles, apps []string, groups map[string][]string) Directory {
	return &staticDirectory{users: toSet(users), roles: toSet(roles), apps: toSet(apps), groups: groups}
}

type staticDirectory struct {
	users, roles, apps map[string]struct{}
	groups             map[string][]string
}

var _ Directory = (*staticDirectory)(nil)

func (d *staticDirectory) HasUser(name string) bool    { _, ok := d.users[name]; return ok }
func (d *staticDirectory) HasRole(name string) bool    { _, ok := d.roles[name]; return ok }
func (d *staticDirectory) HasApp(id string) bool       { _, ok := d.apps[id]; return ok }
func (d *staticDirectory) Groups() map[string][]string { return d.groups }

func toSet(names []string) map[string]struct{} {
	m := make(map[string]struct{}, len(names))
	for _, n := range names {
		m[n] = struct{}{}
	}
	return m
}
