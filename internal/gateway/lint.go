package gateway

import (
	"fmt"
	"slices"
	"strings"
)

// Warning is a rule that is valid but probably does not guard what its
// author meant, with the key path of the rule and what to write instead.
type Warning struct {
	Key, Message string
}

func (w Warning) String() string { return w.Key + ": " + w.Message }

// Lint reads the routes' rules as an attacker would, against the ways
// application frameworks extend a path, and warns about rules that leave
// a way around them. It assumes o is valid (as the configuration checks it);
// the keys of its warnings are the configuration's.
func Lint(o Options) []Warning {
	var out []Warning
	for i, rc := range o.Routes {
		compiled := make([]rule, len(rc.Rules))
		for j, cr := range rc.Rules {
			key := fmt.Sprintf("gateway.routes[%d].rules[%d]", i, j)
			ru, err := compileRule(cr)
			if err != nil {
				out = append(out, Warning{key + ".path", err.Error()})
				continue
			}
			compiled[j] = ru
			out = append(out, lintRule(key, cr, rc.Rules)...)
			for k := range j {
				if compiled[k].shadows(&ru) {
					out = append(out, Warning{key, fmt.Sprintf("never applies: rules[%d] (%s) comes first and matches every request this rule does (the first match wins); put the narrower rule first", k, rc.Rules[k].Path)})
					break
				}
			}
		}
	}
	return out
}

// lintRule warns about one rule, with the route's rules around it.
func lintRule(key string, cr Rule, all []Rule) []Warning {
	var out []Warning
	base := strings.TrimSuffix(cr.Path, "/*")
	last := base[strings.LastIndexByte(base, '/')+1:]
	if dot := strings.LastIndexByte(last, '.'); dot > 0 && !cr.Anonymous {
		stem := base[:len(base)-len(last)+dot]
		out = append(out, Warning{key + ".path", fmt.Sprintf(
			"%q names one format of a resource: Rails and Spring serve %s, %s.json and every %s.<ext> with the same handler; write the rule for %s, which covers them all",
			cr.Path, stem, stem, stem, stem)})
	}
	if len(cr.Methods) > 0 && !cr.Anonymous && !postRuled(cr, all) {
		if w, ok := lintOverride(cr.Methods); ok {
			out = append(out, Warning{key + ".methods", w})
		}
	}
	if cr.Anonymous && anonymousPost(cr.Methods) {
		out = append(out, Warning{key + ".methods", fmt.Sprintf(
			"lets an anonymous POST to %s in, and Rails, Spring, Laravel and Express's method-override run a POST whose form has _method=DELETE (or PUT, PATCH, and GET in Rails and Express) as that method, so any handler on this path runs without a sign-in; the gateway cannot see into a form; list every method the path may take anonymously, or make sure the application has no other handler there",
			cr.Path)})
	}
	return out
}

// anonymousPost reports whether an anonymous rule's methods let a POST
// in while leaving other methods to sign-in: a _method form field then
// reaches those anonymously. No methods list opens every method anyway.
func anonymousPost(methods []string) bool {
	post, others := false, map[string]bool{}
	for _, m := range methods {
		m = strings.ToUpper(m)
		post = post || m == "POST"
		others[m] = true
	}
	if !post {
		return false
	}
	for _, m := range []string{"PUT", "PATCH", "DELETE", "GET"} {
		if !others[m] {
			return true
		}
	}
	return false
}

// postRuled reports whether another rule of the route covers POST on
// cr's path: the POST a _method field turns into cr's method then meets
// a rule its author wrote for it, not the default.
func postRuled(cr Rule, all []Rule) bool {
	own, err := compileRule(cr)
	if err != nil {
		return false
	}
	for _, o := range all {
		other, err := compileRule(o)
		if err != nil || o.Anonymous || other.path != own.path || other.wildcard != own.wildcard {
			continue
		}
		if len(other.methods) == 0 || slices.Contains(other.methods, "POST") {
			return true
		}
	}
	return false
}

// lintOverride warns about a methods list without POST that a POST
// with a _method form field reaches, and the gateway cannot see into
// a form. Spring, Laravel and Rails turn such a POST into PUT, PATCH or
// DELETE; Rails (Rack's MethodOverride) and Express's method-override
// turn it into any method, GET and HEAD included, so a rule for GET
// alone lets POST /statements with _method=GET run the GET handler.
func lintOverride(methods []string) (string, bool) {
	var writes, others []string
	for _, m := range methods {
		switch m = strings.ToUpper(m); m {
		case "POST":
			return "", false
		case "PUT", "PATCH", "DELETE":
			writes = append(writes, m)
		default:
			others = append(others, m)
		}
	}
	const fix = "and the gateway cannot see into a form; add POST to methods, or leave methods out"
	switch {
	case len(writes) > 0:
		return fmt.Sprintf("Rails, Spring, Laravel and Express's method-override run a POST whose form has _method=%s as %s, %s", writes[0], writes[0], fix), true
	case len(others) > 0:
		return fmt.Sprintf("Rails and Express's method-override run a POST whose form has _method=%s as %s, %s", others[0], others[0], fix), true
	}
	return "", false
}

// shadows reports whether ru matches every request that later does, so
// that later never applies.
func (ru *rule) shadows(later *rule) bool {
	if len(ru.methods) > 0 && (len(later.methods) == 0 || slices.ContainsFunc(later.methods, func(m string) bool { return !slices.Contains(ru.methods, m) })) {
		return false
	}
	format := !ru.anonymous && isFormatOf(later.path, ru.path)
	switch {
	case ru.wildcard:
		return later.path == ru.path || isBelow(later.path, ru.path) || format
	case later.wildcard:
		return false
	}
	return later.path == ru.path || format
}
