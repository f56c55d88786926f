package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/stepgate/stepgate/internal/yamlnode"
)

const envPrefix = "STEPGATE_"

// envAliases are short names for the variables people set most. The long
// name wins if both are set to the same value; different values are an
// error because either choice would surprise someone.
func envAliases() map[string]string {
	return map[string]string{
		"server.issuer":   "STEPGATE_ISSUER",
		"server.listen":   "STEPGATE_LISTEN",
		"server.data_dir": "STEPGATE_DATA_DIR",
		// log.format and log.level already have the short names
		// STEPGATE_LOG_FORMAT and STEPGATE_LOG_LEVEL.
	}
}

// ignoredEnv reports variables that share the prefix but belong to the
// test suite, so they are neither settings nor typos.
func ignoredEnv(name string) bool {
	return strings.HasPrefix(name, "STEPGATE_TEST_") || strings.HasPrefix(name, "STEPGATE_REQUIRE_")
}

// leaf is one settable value of the schema.
type leaf struct {
	path  string // "sessions.idle_timeout"
	env   string // "STEPGATE_SESSIONS_IDLE_TIMEOUT"
	index []int  // for reflect.Value.FieldByIndex
}

// leaves lists every scalar and list key of Config, in schema order. The
// environment mapping is derived from it, so a new field gets its
// variable without anyone remembering to add one.
func leaves() []leaf {
	return appendLeaves(nil, reflect.TypeFor[Config](), "", nil)
}

func appendLeaves(out []leaf, t reflect.Type, prefix string, index []int) []leaf {
	for i := range t.NumField() {
		name := yamlnode.Key(t.Field(i))
		if name == "" {
			continue
		}
		path := yamlnode.Join(prefix, name)
		idx := append(slices.Clone(index), i)
		ft := t.Field(i).Type
		if ft.Kind() == reflect.Struct {
			out = appendLeaves(out, ft, path, idx)
			continue
		}
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			continue // lists of records (oidc.clients) live in the file only
		}
		if ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct {
			continue // so do maps of records (policy.environments)
		}
		out = append(out, leaf{path: path, env: envName(path), index: idx})
	}
	return out
}

// envName is the variable for a key path: sessions.idle_timeout →
// STEPGATE_SESSIONS_IDLE_TIMEOUT.
func envName(path string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// applyEnv applies STEPGATE_* variables and returns warnings for the
// ones it does not know.
func (r *resolver) applyEnv(cfg *Config, environ []string) []string {
	env := parseEnviron(environ)
	aliases := envAliases()
	root := reflect.ValueOf(cfg).Elem()
	known := make([]string, 0, len(env))
	for _, l := range leaves() {
		known = append(known, l.env)
		if a := aliases[l.path]; a != "" {
			known = append(known, a)
		}
		name, value, ok := r.pickEnv(env, l.env, aliases[l.path])
		if !ok {
			continue
		}
		if err := setText(root.FieldByIndex(l.index), value); err != nil {
			r.add(Problem{Path: "env " + name, Message: err.Error()})
			continue
		}
		r.origins.set(l.path, origin{via: name})
	}
	return unknownEnv(env, known)
}

// pickEnv returns the variable that sets a key, if any.
func (r *resolver) pickEnv(env map[string]string, long, alias string) (string, string, bool) {
	lv, lok := env[long]
	av, aok := env[alias]
	switch {
	case lok && aok && lv != av:
		r.add(Problem{Path: "env " + alias, Message: fmt.Sprintf("conflicts with %s, which is set to a different value; set only one of them", long)})
		return "", "", false
	case lok:
		return long, lv, true
	case aok:
		return alias, av, true
	}
	return "", "", false
}

// unknownEnv warns about STEPGATE_* variables that set nothing: most
// likely a typo, which would otherwise silently leave a default in place.
func unknownEnv(env map[string]string, known []string) []string {
	var warnings []string
	trimmed := make([]string, len(known))
	for i, k := range known {
		trimmed[i] = strings.TrimPrefix(k, envPrefix)
	}
	for name := range env {
		if slices.Contains(known, name) || ignoredEnv(name) {
			continue
		}
		w := fmt.Sprintf("unknown environment variable %s ignored", name)
		// Compare without the shared prefix, which would otherwise make
		// every name look close to every other.
		if s := yamlnode.Closest(strings.TrimPrefix(name, envPrefix), trimmed); s != "" {
			w += fmt.Sprintf("; did you mean %s?", envPrefix+s)
		}
		warnings = append(warnings, w)
	}
	slices.Sort(warnings)
	return warnings
}

// parseEnviron keeps the STEPGATE_* entries of environ. The first entry
// for a name wins, as with os.Getenv.
func parseEnviron(environ []string) map[string]string {
	env := make(map[string]string)
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, envPrefix) {
			continue
		}
		if _, dup := env[name]; !dup {
			env[name] = value
		}
	}
	return env
}
