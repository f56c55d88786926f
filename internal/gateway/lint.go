package gateway

import (
	"fmt"
	"slices"
	"strings"

	"github.com/stepgate/stepgate/internal/config"
)

// Warning is a rule that is valid but probably does not guard what its
// author meant, with the key path of the rule and what to write instead.
type Warning struct {
	Key, Message string
}

func (w Warning) String() string { return w.Key + ": " + w.Message }

// Lint reads the routes' rules as an attacker would, against the ways
// application frameworks extend a path, and warns about rules that leave
// a way around them. It assumes cfg is valid (config.Validate).
func Lint(cfg config.Gateway) []Warning {
	var out []Warning
	for i, rc := range cfg.Routes {
		compiled := make([]rule, len(rc.Rules))
		for j, cr := range rc.Rules {
			key := fmt.Sprintf("gateway.routes[%d].rules[%d]", i, j)
			ru, err := compileRule(cr)
			if err != nil {
				out = append(out, Warning{key + ".path", err.Error()})
				continue
			}
			compiled[j] = ru
			out = append(out, lintRule(key, cr)...)
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

// lintRule warns about one rule on its own.
func lintRule(key string, cr config.GatewayRule) []Warning {
	var out []Warning
	base := strings.TrimSuffix(cr.Path, "/*")
	last := base[strings.LastIndexByte(base, '/')+1:]
	if dot := strings.LastIndexByte(last, '.'); dot > 0 && cr.Allow == "" {
		stem := base[:len(base)-len(last)+dot]
		out = append(out, Warning{key + ".path", fmt.Sprintf(
			"%q names one format of a resource: Rails and Spring serve %s, %s.json and every %s.<ext> with the same handler; write the rule for %s, which covers them all",
			cr.Path, stem, stem, stem, stem)})
	}
	if len(cr.Methods) > 0 && cr.Allow == "" {
		var overridable []string
		hasPost := false
		for _, m := range cr.Methods {
			switch m = strings.ToUpper(m); m {
			case "POST":
				hasPost = true
			case "PUT", "PATCH", "DELETE":
				overridable = append(overridable, m)
			}
		}
		if len(overridable) > 0 && !hasPost {
			out = append(out, Warning{key + ".methods", fmt.Sprintf(
				"Rails, Spring, Laravel and Express's method-override run a POST whose form has _method=%s as %s, and the gateway cannot see into a form; add POST to methods, or leave methods out",
				overridable[0], overridable[0])})
		}
	}
	return out
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
