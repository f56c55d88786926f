package policy

import (
	"fmt"
	"slices"
)

// targetKind is what a policy protects. A policy protects one kind, as in
// Entra: signing in to apps, stepping up to an authentication context, or
// a user action such as registering security info.
type targetKind uint8

const (
	targetApps targetKind = iota + 1
	targetContexts
	targetActions
)

type target struct {
	kind     targetKind
	allApps  bool
	apps     nameSet
	appsExcl nameSet
	contexts []string
	actions  []string
}

func (t *target) match(r *Request) Reason {
	switch t.kind {
	case targetApps:
		if r.App == "" || (!t.allApps && !t.apps.has(r.App)) {
			return ReasonAppNotTargeted
		}
		if t.appsExcl.has(r.App) {
			return ReasonAppExcluded
		}
	case targetContexts:
		if !t.anyContext(r.AuthContexts) {
			return ReasonContextNotTargeted
		}
	case targetActions:
		if r.Action == "" || !slices.Contains(t.actions, r.Action) {
			return ReasonActionNotTargeted
		}
	}
	return ""
}

func (t *target) anyContext(requested []string) bool {
	for _, c := range requested {
		if slices.Contains(t.contexts, c) {
			return true
		}
	}
	return false
}

func (c *compiler) target(d *Document, path string, in Target) target {
	var t target
	kinds := 0
	if len(in.Apps.Include)+len(in.Apps.Exclude) > 0 {
		kinds++
		t.kind = targetApps
	}
	if len(in.AuthContexts) > 0 {
		kinds++
		t.kind = targetContexts
	}
	if len(in.UserActions) > 0 {
		kinds++
		t.kind = targetActions
	}
	switch {
	case kinds == 0:
		c.addf(d, path, "is required; set apps, auth_contexts or user_actions")
		return t
	case kinds > 1:
		c.addf(d, path, "sets more than one of apps, auth_contexts and user_actions; a policy protects one kind of resource, so write one policy for each")
		return t
	}
	switch t.kind {
	case targetApps:
		c.targetApps(d, path+".apps", in.Apps, &t)
	case targetContexts:
		for i, id := range in.AuthContexts {
			if _, ok := c.ctxIndex[id]; !ok {
				c.addf(d, fmt.Sprintf("%s.auth_contexts[%d]", path, i), "unknown auth context %q%s", id, didYouMean(id, c.contextIDs()))
			}
		}
		t.contexts = slices.Compact(slices.Sorted(slices.Values(in.AuthContexts)))
	case targetActions:
		for i, a := range in.UserActions {
			if !slices.Contains(userActions, a) {
				c.addf(d, fmt.Sprintf("%s.user_actions[%d]", path, i), "unknown user action %q%s", a, didYouMean(a, userActions))
			}
		}
		t.actions = slices.Compact(slices.Sorted(slices.Values(in.UserActions)))
	}
	return t
}

func (c *compiler) targetApps(d *Document, path string, in IncludeExclude, t *target) {
	if len(in.Include) == 0 {
		c.addf(d, path+".include", "is required; name apps by client id, or use [all]")
	}
	var incl []string
	for i, a := range in.Include {
		p := fmt.Sprintf("%s.include[%d]", path, i)
		switch {
		case a == "all":
			t.allApps = true
		case c.required(d, p, a, "name an app by client id"):
			c.checkApp(d, p, a)
			incl = append(incl, a)
		}
	}
	for i, a := range in.Exclude {
		p := fmt.Sprintf("%s.exclude[%d]", path, i)
		if a == "all" {
			c.addf(d, p, "excluding all apps leaves the policy nothing to protect; set state: disabled instead")
			continue
		}
		if c.required(d, p, a, "name an app by client id") {
			c.checkApp(d, p, a)
		}
	}
	if t.allApps {
		incl = nil // "all" covers them; keeping both would index the policy twice
	}
	t.apps, t.appsExcl = newNameSet(incl), newNameSet(in.Exclude)
}

func (c *compiler) checkApp(d *Document, path, id string) {
	if c.dir != nil && !c.dir.HasApp(id) {
		c.addf(d, path, "unknown app %q", id)
	}
}

func (c *compiler) contextIDs() []string {
	ids := make([]string, len(c.contexts))
	for i, a := range c.contexts {
		ids[i] = a.ID
	}
	return ids
}
