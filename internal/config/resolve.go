package config

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
)

// maxFileSize bounds the configuration file. Real ones are a few KiB; the
// limit turns "--config /dev/zero" or a log file passed by mistake into a
// clear error instead of a hang.
const maxFileSize = 1 << 20

// Flags holds the command-line flags that override configuration keys.
// An empty string means the flag was not given.
type Flags struct {
	Listen    string // --listen: server.listen
	DataDir   string // --data-dir: server.data_dir
	Issuer    string // --issuer: server.issuer
	LogFormat string // --log-format: log.format
}

// ResolveFromOS is the entry point for the CLI: Resolve with the process
// environment.
func ResolveFromOS(path string, flags Flags) (Config, []string, error) {
	return Resolve(path, flags, os.Environ())
}

// Resolve builds the configuration: defaults, then the YAML file at path
// ("" means no file), then flags, then the STEPGATE_* variables in environ
// ("KEY=value" entries, as os.Environ returns), then derived values, then
// Validate.
//
// environ is a list rather than a lookup function because Resolve must
// enumerate it to warn about misspelt STEPGATE_* variables, and because a
// test passes a fake one instead of touching the process environment.
//
// Warnings are worth logging but do not stop start-up. If the file cannot
// be read the error wraps the os error (errors.Is(err, fs.ErrNotExist)
// works); every other failure is an *Errors listing all problems found, so
// that a user fixes everything in one go.
func Resolve(path string, flags Flags, environ []string) (Config, []string, error) {
	var data []byte
	if path != "" {
		var err error
		if data, err = readFile(path); err != nil {
			return Config{}, nil, err
		}
	}
	return resolve(path, data, flags, environ)
}

// resolve is Resolve after the file has been read.
func resolve(path string, data []byte, flags Flags, environ []string) (Config, []string, error) {
	cfg := Default()
	r := &resolver{origins: make(origins)}
	r.decodeFile(data, &cfg)
	r.applyFlags(&cfg, flags)
	warnings := r.applyEnv(&cfg, environ)
	derive(&cfg)
	warnings = append(warnings, webauthnWarnings(cfg)...)
	for _, p := range cfg.Validate() {
		r.add(r.annotate(p))
	}
	if len(r.problems) > 0 {
		return Config{}, warnings, &Errors{File: path, Problems: r.problems}
	}
	return cfg, warnings, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path) //nolint:gosec // the operator names their own config file
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("read config: %s is larger than 1 MiB; is it the right file?", path)
	}
	return data, nil
}

// resolver accumulates problems and remembers where each value came from,
// so a validation problem can point at the file line, flag or variable
// that set the bad value.
type resolver struct {
	problems []Problem
	origins  origins
}

func (r *resolver) add(p Problem) { r.problems = append(r.problems, p) }

// annotate adds the source of the offending value to a validation problem.
func (r *resolver) annotate(p Problem) Problem {
	o, ok := r.origins.lookup(p.Path)
	switch {
	case !ok:
	case o.via != "":
		p.Message += " (set by " + o.via + ")"
	case p.Line == 0:
		p.Line = o.line
	}
	return p
}

// origin is where a value came from: a file line or an override.
type origin struct {
	line int
	via  string // "flag --listen", "STEPGATE_SERVER_LISTEN"
}

// origins maps key paths, and list items like "server.trusted_proxies[1]",
// to where their value came from. Defaults have no entry.
type origins map[string]origin

// set records path's origin and forgets its list items' file lines: an
// override replaces the whole list.
func (o origins) set(path string, from origin) {
	for k := range o {
		if strings.HasPrefix(k, path+"[") {
			delete(o, k)
		}
	}
	o[path] = from
}

// lookup finds path's origin, falling back from a list item to its list.
func (o origins) lookup(path string) (origin, bool) {
	if from, ok := o[path]; ok {
		return from, true
	}
	if base, _, ok := strings.Cut(path, "["); ok {
		from, ok := o[base]
		return from, ok
	}
	return origin{}, false
}

// applyFlags copies the flags that were given over the file's values.
func (r *resolver) applyFlags(cfg *Config, flags Flags) {
	for _, f := range []struct {
		value, name, path string
		dst               *string
	}{
		{flags.Listen, "--listen", "server.listen", &cfg.Server.Listen},
		{flags.DataDir, "--data-dir", "server.data_dir", &cfg.Server.DataDir},
		{flags.Issuer, "--issuer", "server.issuer", &cfg.Server.Issuer},
		{flags.LogFormat, "--log-format", "log.format", &cfg.Log.Format},
	} {
		if f.value != "" {
			*f.dst = f.value
			r.origins.set(f.path, origin{via: "flag " + f.name})
		}
	}
}

// derive fills values computed from others once every override is in.
func derive(cfg *Config) {
	withDatabaseDefaults(cfg.Databases)
	s := &cfg.Server
	if s.Issuer == "" {
		// Zero-config local use: the issuer is where the server listens.
		// localhost rather than the bind address, because browsers treat
		// http://localhost as a secure context and 0.0.0.0 is not
		// reachable.
		if port := s.Port(); port != "" {
			s.Issuer = "http://localhost:" + port
		}
	}
	// Issuers are compared as strings (OIDC "iss"); one canonical form
	// avoids "https://a/" vs "https://a" mismatches. Only trim well-formed
	// URLs so a bad value is reported as the user wrote it.
	if u, err := url.Parse(s.Issuer); err == nil && u.Host != "" && !strings.ContainsAny(s.Issuer, "?#") {
		s.Issuer = strings.TrimRight(s.Issuer, "/")
	}
	deriveWebAuthn(cfg)
}
