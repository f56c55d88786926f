package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/geoip"
	"github.com/stepgate/stepgate/internal/oidc"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/scenario"
	"github.com/stepgate/stepgate/internal/store"
)

// AppSource lists the ids of apps (OIDC clients, gateway apps, service
// clients) that policies may target. A policy naming an app no source
// lists is a load error: a typo in a target would otherwise leave the
// real app unprotected.
type AppSource func(ctx context.Context) ([]string, error)

// AppSources returns the sources of app ids for a deployment configured
// by cfg over st. Components whose apps live in the configuration or the
// store add their source here, so that the server, "stepgate whatif" and
// "stepgate policy lint --strict" all accept exactly the same app ids.
// The apps are the OIDC clients (file and store), the gateway routes and
// the admin console.
func AppSources(cfg config.Config, st store.Store) []AppSource {
	return []AppSource{func(ctx context.Context) ([]string, error) {
		clients, err := oidc.NewClients(st, ClientsOptions(cfg.OIDC.Clients))
		if err != nil {
			return nil, err
		}
		return clients.IDs(ctx)
	}, func(context.Context) ([]string, error) {
		ids := make([]string, len(cfg.Gateway.Routes))
		for i, r := range cfg.Gateway.Routes {
			ids[i] = r.AppID()
		}
		return ids, nil
	}, func(context.Context) ([]string, error) {
		// The admin console and role activation are apps too, so
		// policies can target them.
		return []string{admin.ConsoleApp, elevate.App}, nil
	}}
}

// DirectoryStore is what a policy directory reads from storage.
type DirectoryStore interface {
	ListUsers(ctx context.Context) ([]store.User, error)
	ListGroups(ctx context.Context) ([]store.Group, error)
	ListRoles(ctx context.Context) ([]store.Role, error)
}

// NewDirectory reads the names policies may refer to: users (by
// username and by id), roles, groups with their parents, and the ids
// every source lists. The result is a fixed copy; policies compiled
// against it are checked against the store as it was when it was read.
func NewDirectory(ctx context.Context, st DirectoryStore, sources []AppSource) (policy.Directory, error) {
	users, err := st.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy directory: list users: %w", err)
	}
	names := make([]string, 0, 2*len(users))
	for _, u := range users {
		names = append(names, u.Username, u.ID)
	}
	roles, err := st.ListRoles(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy directory: list roles: %w", err)
	}
	roleNames := make([]string, len(roles))
	for i, r := range roles {
		roleNames[i] = r.Name
	}
	groups, err := st.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy directory: list groups: %w", err)
	}
	parents := make(map[string][]string, len(groups))
	for _, g := range groups {
		parents[g.Name] = g.Parents
	}
	var apps []string
	for _, src := range sources {
		ids, err := src(ctx)
		if err != nil {
			return nil, fmt.Errorf("policy directory: list apps: %w", err)
		}
		apps = append(apps, ids...)
	}
	return policy.NewDirectory(names, roleNames, apps, parents), nil
}

// policyExts are the file name extensions read from a policy directory.
var policyExts = []string{".yaml", ".yml"}

// PolicyFiles expands policy.files entries: a file stands for itself, a
// directory for every *.yaml and *.yml file directly in it, in name
// order. Subdirectories and other files are skipped, so a README or an
// editor's backup file beside the policies does no harm; so are scenario
// test files (*.tests.yaml), which hold scenarios, not policies.
func PolicyFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("policy file %s: %w", p, fs.ErrNotExist)
		}
		if err != nil {
			return nil, fmt.Errorf("policy file: %w", err)
		}
		if !fi.IsDir() {
			if scenario.IsTestFile(p) {
				return nil, fmt.Errorf("policy file %s is a scenario test file; run it with stepgate policy test and list only policy files (or their directory) in policy.files", p)
			}
			out = append(out, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("policy directory %s: %w", p, err)
		}
		for _, e := range entries { // ReadDir sorts by name
			if !e.IsDir() && slices.Contains(policyExts, strings.ToLower(filepath.Ext(e.Name()))) && !scenario.IsTestFile(e.Name()) {
				out = append(out, filepath.Join(p, e.Name()))
			}
		}
	}
	return out, nil
}

// ReadPolicies parses every file paths names (see PolicyFiles). An
// unreadable file is an error; problems in the files' content are
// returned as problems, every one of them, for Compile to add to.
func ReadPolicies(paths []string) ([]*policy.Document, policy.Problems, error) {
	files, err := PolicyFiles(paths)
	if err != nil {
		return nil, nil, err
	}
	docs := make([]*policy.Document, 0, len(files))
	var probs policy.Problems
	for _, f := range files {
		data, err := readPolicyFile(f)
		if err != nil {
			return nil, nil, err
		}
		doc, ps := policy.Parse(f, data)
		docs = append(docs, doc)
		probs = append(probs, ps...)
	}
	return docs, probs, nil
}

func readPolicyFile(path string) ([]byte, error) {
	f, err := os.Open(path) //nolint:gosec // the operator names their own policy files
	if err != nil {
		return nil, fmt.Errorf("read policy file: %w", err)
	}
	defer f.Close()
	// One byte over the limit is enough for Parse to report the size.
	data, err := io.ReadAll(io.LimitReader(f, policy.MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read policy file %s: %w", path, err)
	}
	return data, nil
}

// PolicySet is a compiled policy set and where it came from.
type PolicySet struct {
	Snapshot *policy.Snapshot
	// Files are the files read, after expanding directories, then the
	// sources of the stored documents (store:NAME).
	Files []string
	// Documents are the parsed documents, in Files order.
	Documents []*policy.Document
}

// CompilePolicies reads the files paths names and compiles them as one
// set against dir (nil: offline, names are not checked). Structural
// problems do not stop the compile, so every problem in every file is
// reported at once. On any problem the error is a policy.Problems
// (errors.As works), sorted by file and line.
func CompilePolicies(paths []string, dir policy.Directory) (PolicySet, error) {
	docs, probs, err := ReadPolicies(paths)
	if err != nil {
		return PolicySet{}, err
	}
	snap, cprobs := policy.Compile(dir, docs...)
	probs = append(probs, cprobs...)
	if len(probs) > 0 {
		return PolicySet{}, probs.Sorted()
	}
	files := make([]string, len(docs))
	for i, d := range docs {
		files[i] = d.File
	}
	return PolicySet{Snapshot: snap, Files: files, Documents: docs}, nil
}

// PolicyStore is what loading the live policy set reads: the directory
// policies are checked against, and the documents kept in the store.
type PolicyStore interface {
	DirectoryStore
	store.KV
}

// LoadPolicies compiles cfg's policy.files and the policy documents kept
// in the store (created in the console or the admin API) as one set,
// against the directory read from st and sources: what the server does
// at start and on reload, and what "stepgate whatif" does to answer as
// the server would. The set is production's; LoadEnvironment compiles
// another environment's.
func LoadPolicies(ctx context.Context, cfg config.Config, st PolicyStore, sources []AppSource) (PolicySet, error) {
	return LoadEnvironment(ctx, cfg, config.ProductionEnvironment, st, sources)
}

// LoadEnvironment compiles the policy set of the environment env: its
// files and its stored documents.
func LoadEnvironment(ctx context.Context, cfg config.Config, env string, st PolicyStore, sources []AppSource) (PolicySet, error) {
	if !cfg.Policy.HasEnvironment(env) {
		return PolicySet{}, unknownEnvironment(cfg, env)
	}
	stored, err := (&admin.Documents{KV: st}).InEnvironment(env).List(ctx)
	if err != nil {
		return PolicySet{}, err
	}
	return CompileEnvironment(ctx, cfg, env, st, sources, stored)
}

func unknownEnvironment(cfg config.Config, env string) error {
	return fmt.Errorf("policy environment %q is not configured; the environments are %s (add others under policy.environments)",
		env, strings.Join(cfg.Policy.EnvironmentNames(), ", "))
}

// CompileWith compiles policy.files with the given stored documents in
// place of those in the store: how a change from the console is checked
// (and its impact measured) before it is saved.
func CompileWith(ctx context.Context, cfg config.Config, st DirectoryStore, sources []AppSource, stored []admin.Document) (PolicySet, error) {
	return CompileEnvironment(ctx, cfg, config.ProductionEnvironment, st, sources, stored)
}

// CompileEnvironment compiles the files of the environment env with the
// given stored documents.
func CompileEnvironment(ctx context.Context, cfg config.Config, env string, st DirectoryStore, sources []AppSource, stored []admin.Document) (PolicySet, error) {
	files, key := cfg.Policy.FilesOf(env), "policy.files"
	if env != "" && env != config.ProductionEnvironment {
		key = "policy.environments." + env + ".files"
	}
	if len(files) == 0 && len(stored) == 0 {
		return PolicySet{Snapshot: policy.Empty()}, nil
	}
	dir, err := NewDirectory(ctx, st, sources)
	if err != nil {
		return PolicySet{}, err
	}
	docs, probs, err := ReadPolicies(files)
	if err != nil {
		return PolicySet{}, fmt.Errorf("load policies: %w; fix the path in %s", err, key)
	}
	sdocs, sprobs := admin.Parse(stored)
	docs, probs = append(docs, sdocs...), append(probs, sprobs...)
	snap, cprobs := policy.Compile(dir, docs...)
	if probs = append(probs, cprobs...); len(probs) > 0 {
		return PolicySet{}, fmt.Errorf("load policies of environment %s (%s and stored documents): %w", orProduction(env), key, probs.Sorted())
	}
	names := make([]string, len(docs))
	for i, d := range docs {
		names[i] = d.File
	}
	return PolicySet{Snapshot: snap, Files: names, Documents: docs}, nil
}

func orProduction(env string) string {
	if env == "" {
		return config.ProductionEnvironment
	}
	return env
}

// loadEnvironments compiles every environment's set, production first.
// One failure fails them all, so a reload never leaves one environment
// on a new set and another on an old one.
func loadEnvironments(ctx context.Context, cfg config.Config, st PolicyStore, sources []AppSource) (map[string]PolicySet, error) {
	sets := make(map[string]PolicySet, len(cfg.Policy.Environments)+1)
	for _, env := range cfg.Policy.EnvironmentNames() {
		set, err := LoadEnvironment(ctx, cfg, env, st, sources)
		if err != nil {
			return nil, err
		}
		sets[env] = set
	}
	return sets, nil
}

// environmentPolicies returns the engine of env for a client or
// database named key. An environment with no engine is an error, never
// a fall-back: the app would be decided by another environment's set.
func (a *App) environmentPolicies(key, env string) (*policy.Engine, error) {
	if e, ok := a.PoliciesFor(env); ok {
		return e, nil
	}
	return nil, fmt.Errorf("%s: policy environment %q is not configured; define it under policy.environments", key, env)
}

// environmentSet returns the engine of env as the gateway takes it.
func (a *App) environmentSet(env string) (interface{ Load() *policy.Snapshot }, bool) {
	e, ok := a.PoliciesFor(env)
	if !ok {
		return nil, false
	}
	return e, true
}

// appPolicies are the engines of the OIDC clients and databases in an
// environment other than production, by app id.
func (a *App) appPolicies() (map[string]interface{ Load() *policy.Snapshot }, error) {
	out := map[string]interface{ Load() *policy.Snapshot }{}
	add := func(key, app, env string) error {
		if env == "" || env == config.ProductionEnvironment {
			return nil
		}
		e, err := a.environmentPolicies(key, env)
		out[app] = e
		return err
	}
	for i, c := range a.Config.OIDC.Clients {
		if err := add(fmt.Sprintf("oidc.clients[%d].environment", i), c.ID, c.Environment); err != nil {
			return nil, err
		}
	}
	for i, d := range a.Config.Databases {
		if err := add(fmt.Sprintf("databases[%d].environment", i), d.Name, d.Environment); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PoliciesFor returns the engine of the policy environment env (empty:
// production), or false when no such environment is configured.
func (a *App) PoliciesFor(env string) (*policy.Engine, bool) {
	if env == "" {
		env = config.ProductionEnvironment
	}
	e, ok := a.environments[env]
	return e, ok
}

// OpenGeoIP opens geoip.database, or returns nil when none is
// configured.
func OpenGeoIP(cfg config.Config) (*geoip.DB, error) {
	if cfg.GeoIP.Database == "" {
		return nil, nil //nolint:nilnil // no database configured is not an error
	}
	db, err := geoip.Open(cfg.GeoIP.Database)
	if err != nil {
		return nil, fmt.Errorf("geoip.database: %w; fix the path or remove the key to run without countries", err)
	}
	return db, nil
}

// RegisterAppSource adds a source of app ids. Components built by New
// register theirs before the first compile; a source added later counts
// from the next ReloadPolicies.
func (a *App) RegisterAppSource(src AppSource) {
	a.appMu.Lock()
	defer a.appMu.Unlock()
	a.appSources = append(a.appSources, src)
}

func (a *App) sources() []AppSource {
	a.appMu.Lock()
	defer a.appMu.Unlock()
	return slices.Clone(a.appSources)
}

// ReloadPolicies recompiles policy.files against the store as it is now
// and swaps the result in. On any problem the server keeps enforcing the
// last good set: it logs every problem and returns an error listing
// them. stepgate serve calls it on SIGHUP.
func (a *App) ReloadPolicies(ctx context.Context) error {
	// Serialised so that a slow reload can never swap in a set older
	// than one a faster, later reload already installed.
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	// The generation is read first: a change saved while this compile
	// runs moves it again, and the next check reloads once more.
	gen, err := a.Documents.Generation(ctx)
	if err != nil {
		return fmt.Errorf("reload policies: %w", err)
	}
	sets, err := loadEnvironments(ctx, a.Config, a.Store, a.sources())
	if err != nil {
		var probs policy.Problems
		if errors.As(err, &probs) {
			for _, p := range probs {
				a.Log.ErrorContext(ctx, "policy problem", "problem", p.String())
			}
		}
		a.Log.ErrorContext(ctx, "policy reload failed; still enforcing the previous policies", "err", err)
		return fmt.Errorf("reload policies: %w", err)
	}
	for env, set := range sets {
		a.environments[env].Swap(set.Snapshot)
		a.Log.InfoContext(ctx, "policies reloaded", "environment", env, "policies", len(set.Snapshot.Policies()), "files", len(set.Files))
	}
	a.policyGeneration = gen
	return nil
}

// AppEnvironments returns the policy environment each app of cfg (an
// OIDC client, a gateway route by its app id, a database) is decided
// in; an app cfg does not name is production's. The impact replay of a
// change replays only its environment's decisions.
func AppEnvironments(cfg config.Config) func(app string) string {
	envs := map[string]string{}
	for _, c := range cfg.OIDC.Clients {
		envs[c.ID] = c.Environment
	}
	for _, r := range cfg.Gateway.Routes {
		envs[r.AppID()] = r.Environment
	}
	for _, d := range cfg.Databases {
		envs[d.Name] = d.Environment
	}
	return func(app string) string {
		if env := envs[app]; env != "" {
			return env
		}
		return config.ProductionEnvironment
	}
}
