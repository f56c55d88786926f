package policy

import (
	"fmt"
	"slices"
)

// subjects is the compiled form of an include or exclude list.
type subjects struct {
	allUsers, allClients bool
	users                nameSet // usernames or ids
	groups               nameSet // named groups and every group nested in them
	roles                nameSet
	clients              nameSet
}

func (s *subjects) empty() bool {
	return !s.allUsers && !s.allClients && s.users.len() == 0 && s.groups.len() == 0 &&
		s.roles.len() == 0 && s.clients.len() == 0
}

// matches reports whether sub is in the list. A service client is only
// ever matched by clients: it has no groups or roles, and "all users"
// means people.
func (s *subjects) matches(sub *Subject) bool {
	if sub.Client {
		return s.allClients || s.clients.has(sub.ID)
	}
	if s.allUsers {
		return true
	}
	if s.users.len() > 0 && (s.users.has(sub.Username) || s.users.has(sub.ID)) {
		return true
	}
	return s.groups.hasAny(sub.Groups) || s.roles.hasAny(sub.Roles)
}

// assignment is who a policy is about; exclusion wins.
type assignment struct {
	include, exclude subjects
}

func (a *assignment) match(sub *Subject) Reason {
	if !a.include.matches(sub) {
		return ReasonUserNotIncluded
	}
	if a.exclude.matches(sub) {
		return ReasonUserExcluded
	}
	return ""
}

func (c *compiler) assignment(d *Document, path string, in Assignments) assignment {
	a := assignment{
		include: c.subjects(d, path+".include", in.Include, false),
		exclude: c.subjects(d, path+".exclude", in.Exclude, true),
	}
	if a.include.empty() && !hasEntries(in.Include) {
		c.addf(d, path+".include", "is required; name users, groups, roles or clients, or use users: [all]")
	}
	return a
}

func hasEntries(s Subjects) bool {
	return len(s.Users)+len(s.Groups)+len(s.Roles)+len(s.Clients) > 0
}

func (c *compiler) subjects(d *Document, path string, in Subjects, exclude bool) subjects {
	var s subjects
	var users, groups, roles, clients []string
	for i, u := range in.Users {
		p := fmt.Sprintf("%s.users[%d]", path, i)
		switch {
		case u == "all" && exclude:
			c.addf(d, p, "excluding all users leaves the policy for no one; set state: disabled instead")
		case u == "all":
			s.allUsers = true
		case c.required(d, p, u, "name a user"):
			if c.dir != nil && !c.dir.HasUser(u) {
				c.addf(d, p, "unknown user %q", u)
			}
			users = append(users, u)
		}
	}
	for i, g := range in.Groups {
		p := fmt.Sprintf("%s.groups[%d]", path, i)
		if c.required(d, p, g, "name a group") {
			groups = append(groups, c.expandGroup(d, p, g)...)
		}
	}
	for i, r := range in.Roles {
		p := fmt.Sprintf("%s.roles[%d]", path, i)
		if c.required(d, p, r, "name a role") {
			if c.dir != nil && !c.dir.HasRole(r) {
				c.addf(d, p, "unknown role %q", r)
			}
			roles = append(roles, r)
		}
	}
	for i, cl := range in.Clients {
		p := fmt.Sprintf("%s.clients[%d]", path, i)
		switch {
		case cl == "all":
			s.allClients = true
		case c.required(d, p, cl, "name a service client by client id"):
			if c.dir != nil && !c.dir.HasApp(cl) {
				c.addf(d, p, "unknown client %q", cl)
			}
			clients = append(clients, cl)
		}
	}
	s.users, s.groups, s.roles, s.clients = newNameSet(users), newNameSet(groups), newNameSet(roles), newNameSet(clients)
	return s
}

// expandGroup returns g and every group nested in it.
func (c *compiler) expandGroup(d *Document, path, g string) []string {
	if c.dir == nil {
		return []string{g}
	}
	if _, known := slices.BinarySearch(c.groupNames, g); !known {
		c.addf(d, path, "unknown group %q%s", g, didYouMean(g, c.groupNames))
		return []string{g}
	}
	return c.descendants[g]
}
