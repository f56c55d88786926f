package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/admin/console"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/web"
)

// policyCheckInterval is how often a node checks whether another node
// changed the stored policy documents; this node reloads at once.
const policyCheckInterval = 2 * time.Second

// buildAdmin builds the administrators' service over the live policy
// engine.
func (a *App) buildAdmin() {
	a.Admin = admin.New(admin.Deps{
		Store: a.Store, Documents: a.Documents, Engine: a.Policies,
		Compile: func(ctx context.Context, env string, stored []admin.Document) (admin.Compiled, error) {
			set, err := CompileEnvironment(ctx, a.Config, env, a.Store, a.sources(), stored)
			return admin.Compiled{Snapshot: set.Snapshot, Documents: set.Documents}, err
		},
		Environments:     a.PoliciesFor,
		EnvironmentNames: a.Config.Policy.EnvironmentNames(),
		AppEnvironment:   AppEnvironments(a.Config),
		Test:             a.testCandidate,
		Reload:           a.ReloadPolicies, Audit: a.Audit, Revoke: a.Revoker.RevokeUser,
		SetUserRisk: a.Risk.SetUserRisk, Passes: a.Methods.Passes, Elevation: a.Elevation, CredentialDetail: a.Methods.CredentialDetail,
		UserRisk: func(ctx context.Context, userID string) (string, error) {
			return a.Risk.UserRisk(ctx, userID), nil
		},
		RiskDetail: a.Risk.Detail,
		DeadEnds:   a.deadEnds().Analyze,
		Log:        a.Log,
	})
}

// buildConsole builds the admin console over the service. It uses the
// sign-in pages' CSRF tokens, so one cookie protects every form.
func (a *App) buildConsole(pages *web.Pages) (*console.Console, error) {
	return console.New(console.Deps{
		Service: a.Admin, Sessions: a.Sessions, Users: a.Store, Access: a.Access.Request,
		WhatIf: func(ctx context.Context, w *policy.WhatIf, now time.Time) (*policy.Request, *access.WhatIfRoles, error) {
			return a.Access.WhatIf(ctx, a.Store, w, now)
		},
		Policies: a.Policies, Methods: a.availableMethods, Passkeys: a.Methods.WebAuthn != nil, Forms: pages, Log: a.Log,
	})
}

// ensureAdminRole creates the built-in administrator role when it does
// not exist yet, before the first compile: a policy may name it (say, to
// ask administrators for more), and "stepgate user add --role
// stepgate-admin" works once the server has started once.
func ensureAdminRole(ctx context.Context, st store.Roles) error {
	_, err := st.CreateRole(ctx, store.Role{Name: admin.Role,
		Description: "Administrators: may use the admin console (/admin) and the admin API"})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("create the %s role: %w", admin.Role, err)
	}
	return nil
}

// watchPolicies reloads the policies when another node changed the
// stored documents.
func (a *App) watchPolicies(ctx context.Context) error {
	gen, err := a.Documents.Generation(ctx)
	if err != nil {
		return err
	}
	a.reloadMu.Lock()
	seen := a.policyGeneration
	a.reloadMu.Unlock()
	if gen == seen {
		return nil
	}
	return a.ReloadPolicies(ctx)
}

// Bounds of the sign-in log entries of clients not signed in, per minute
// and node: an address (an IPv6 /64) and all together. An address's are
// far above what the people behind one NAT make signing in (one or two
// entries a sign-in) and above what a password spray shows before its
// address is throttled, so an attack is logged in full for its first
// minutes; they are far below what a loop makes (thousands a second).
const (
	anonymousLogPerAddress = 600
	anonymousLogTotal      = 6000
)

// writeSignIn writes e to the sign-in log, then counts what each policy
// did in it (stepgate_policy_triggers_total): every component that
// decides writes through here.
//
// Entries of clients not signed in pass a.anonymousLog first: each is
// anonymous input stored for the retention period (see
// audit.AnonymousLimit).
func (a *App) writeSignIn(ctx context.Context, e audit.SignIn) error {
	ok, first := true, false
	if e.UserID == "" {
		ok, first = a.anonymousLog.Allow(e.IP)
	}
	if first {
		a.Log.WarnContext(ctx, "sign-in log: too many entries of clients not signed in; the rest of this minute's are not stored",
			"ip", e.IP, "per_address", anonymousLogPerAddress, "total", anonymousLogTotal)
	}
	if ok {
		if err := a.SignIns.Write(ctx, e); err != nil {
			return err
		}
	}
	for _, tr := range e.Triggers() {
		mode, effect := "enforced", "challenge"
		if tr.ReportOnly {
			mode = "report-only"
		}
		if tr.Block {
			effect = "block"
		}
		a.Metrics.Trigger(tr.Policy, mode, effect)
	}
	return nil
}

// recordAudit writes a change to the audit trail; a failure is logged,
// since the change itself is already made.
func (a *App) recordAudit(ctx context.Context, actor, action, target string) {
	if _, err := a.Audit.Record(ctx, actor, action, target, "", nil, nil); err != nil {
		a.Log.ErrorContext(ctx, "write the audit trail", "action", action, "err", err)
	}
}

// CommandLinePolicies builds, for a command that changes the stored
// policies (promote, rollback), the administrators' service over st:
// the same checks the console makes (the set compiles, its scenario
// tests pass or are overridden), recorded in the audit trail. It
// compiles every environment's live set once; the running servers
// reload within seconds of the change, as they do for one made on
// another node.
func CommandLinePolicies(ctx context.Context, cfg config.Config, st store.Store) (*admin.Service, error) {
	sources := AppSources(cfg, st)
	sets, err := loadEnvironments(ctx, cfg, st, sources)
	if err != nil {
		return nil, err
	}
	engines := make(map[string]*policy.Engine, len(sets))
	for env, set := range sets {
		engines[env] = policy.NewEngine(set.Snapshot)
	}
	return admin.New(admin.Deps{
		Store: st, Documents: &admin.Documents{KV: st, Now: time.Now}, Engine: engines[config.ProductionEnvironment],
		Compile: func(ctx context.Context, env string, stored []admin.Document) (admin.Compiled, error) {
			set, err := CompileEnvironment(ctx, cfg, env, st, sources, stored)
			return admin.Compiled{Snapshot: set.Snapshot, Documents: set.Documents}, err
		},
		Environments: func(env string) (*policy.Engine, bool) {
			e, ok := engines[env]
			return e, ok
		},
		EnvironmentNames: cfg.Policy.EnvironmentNames(),
		AppEnvironment:   AppEnvironments(cfg),
		Test: func(ctx context.Context, env string, set admin.Compiled) ([]string, error) {
			return TestCandidate(ctx, cfg, st, env, set)
		},
		Reload: func(context.Context) error { return nil },
		Audit:  audit.New(st, nil),
	}), nil
}
