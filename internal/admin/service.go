// Package admin is what administrators use to tune step-up: the policy
// documents kept in the store, the impact of a change replayed against
// the sign-in log, the overview of what the policies do, and the user
// operations (revoke sessions, reset MFA, confirm or dismiss risk). The
// console (server-rendered pages at /admin) and the admin API
// (/api/v1/...) both call this one Service, so they cannot disagree.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/authn/tap"
	"github.com/stepgate/stepgate/internal/deadend"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/riskservice"
	"github.com/stepgate/stepgate/internal/store"
)

// Role is the role that makes a user an administrator.
const Role = "stepgate-admin"

// ConsoleApp is the app id the console's own access decisions are made
// for, so policies can target the console like any other app.
const ConsoleApp = "stepgate-console"

// Compiled is a policy set compiled from the policy files and a list of
// stored documents.
type Compiled struct {
	Snapshot *policy.Snapshot
	// Documents are the parsed files, then the stored documents.
	Documents []*policy.Document
}

// Deps is what the service works with. The functions are the server's
// own operations, so the console does exactly what the CLI does.
type Deps struct {
	Store     store.Store
	Documents *Documents
	Engine    *policy.Engine
	// Compile compiles the policy files of the policy environment env
	// with stored in place of its stored documents; an error lists every
	// problem (policy.Problems).
	Compile func(ctx context.Context, env string, stored []Document) (Compiled, error)
	// Environments returns the live engine of a policy environment other
	// than production (whose engine is Engine); nil: production only.
	Environments func(env string) (*policy.Engine, bool)
	// EnvironmentNames are every policy environment, production first.
	EnvironmentNames []string
	// AppEnvironment names the policy environment an app (client,
	// gateway route or database) is decided in, so an impact replay
	// replays only the environment's own decisions; nil: production.
	AppEnvironment func(app string) string
	// Reload recompiles and swaps in the live set after a change.
	Reload func(ctx context.Context) error
	// Test runs the scenario tests kept beside the policy files of the
	// environment env against a candidate set and returns one entry per
	// failed scenario (none: they pass, or there are none); nil runs no
	// tests.
	Test  func(ctx context.Context, env string, set Compiled) ([]string, error)
	Audit *audit.Log
	// Revoke ends a user's sessions and tokens.
	Revoke func(ctx context.Context, userID, reason string) error
	// SetUserRisk confirms a user compromised (true) or dismisses their
	// risk (false).
	SetUserRisk func(ctx context.Context, userID string, compromised bool) error
	// UserRisk is a user's current risk level.
	UserRisk func(ctx context.Context, userID string) (string, error)
	// RiskDetail is the detections behind a user's risk, reported ones
	// with their source; nil shows the level only.
	RiskDetail func(ctx context.Context, userID string) (riskservice.RiskDetail, error)
	// CredentialDetail describes a registered method (a passkey's model,
	// the recovery codes left); nil adds nothing.
	CredentialDetail func(store.Credential) string
	// Passes are the temporary access passes; nil turns them off.
	Passes *tap.Store
	// Elevation runs just-in-time elevation; nil turns it off.
	Elevation *elevate.Service
	// DeadEnds finds the users a policy set strands (package deadend);
	// nil leaves the dead-end page and the impact's count out.
	DeadEnds func(ctx context.Context, snap *policy.Snapshot) (deadend.Report, error)
	Log      *slog.Logger
	Now      func() time.Time
}

// Service is the administrators' operations, on the policies of one
// policy environment (production unless In chose another).
type Service struct {
	Deps
	env string
	// productionEngine is production's live engine, kept apart from
	// Deps.Engine (which In replaces) so that In(production) on the
	// service of another environment never keeps that environment's
	// engine: the impact replay of a production change replayed against
	// staging's set would show the wrong "before".
	productionEngine *policy.Engine
}

// New returns the service.
func New(d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if len(d.EnvironmentNames) == 0 {
		d.EnvironmentNames = []string{ProductionEnvironment}
	}
	return &Service{Deps: d, env: ProductionEnvironment, productionEngine: d.Engine}
}

// In returns the service working on the policies of the policy
// environment env: its stored documents, its live engine, its files and
// its scenario tests. Everything else is shared.
func (s *Service) In(env string) (*Service, error) {
	if env == "" {
		env = ProductionEnvironment
	}
	c := *s
	c.env = env
	if c.Documents != nil {
		c.Documents = c.Documents.InEnvironment(env)
	}
	if env == ProductionEnvironment {
		if s.productionEngine != nil {
			c.Engine = s.productionEngine
		}
		return &c, nil
	}
	if s.Environments != nil {
		if e, ok := s.Environments(env); ok {
			c.Engine = e
			return &c, nil
		}
	}
	return nil, &Error{Kind: NotFound, Message: fmt.Sprintf("policy environment %q is not configured; the environments are %s (add others under policy.environments)",
		env, strings.Join(s.EnvironmentNames, ", "))}
}

// Environment names the policy environment the service works on.
func (s *Service) Environment() string {
	if s.env == "" {
		return ProductionEnvironment
	}
	return s.env
}

// Error is a refusal the caller can fix: bad input, a conflict, or a
// missing thing. Kind maps to a status in the console and the API.
type Error struct {
	Kind     ErrorKind
	Message  string
	Problems policy.Problems // for a policy document that does not compile
	// Scenarios are the failed scenario tests that refused a change.
	Scenarios []string
}

// ErrorKind classifies an Error.
type ErrorKind int

// Kinds of Error.
const (
	Invalid ErrorKind = iota + 1
	NotFound
	Conflict
	ReadOnly
	Forbidden
	Throttled
	// TestsFailed: the change makes scenario tests fail.
	TestsFailed
)

// kindErrors are what an Error unwraps to, one per ErrorKind, so that
// httpx.StatusOf answers an Error alike in the console and the API: a
// read-only document conflicts with the change as a stale one does.
var kindErrors = map[ErrorKind]error{
	Invalid:  errkind.New(errkind.Invalid, "invalid"),
	NotFound: errkind.New(errkind.NotFound, "not found"),
	Conflict: errkind.New(errkind.Conflict, "conflict"),
	ReadOnly: errkind.New(errkind.Conflict, "read-only"),
	// Forbidden: the caller may not do it (an approver outside the
	// role's approver group, a requester approving themself).
	Forbidden: errkind.New(errkind.Forbidden, "forbidden"),
	Throttled: errkind.New(errkind.Throttled, "throttled"),
	// TestsFailed: the change conflicts with what the scenario tests
	// say the policies must decide.
	TestsFailed: errkind.New(errkind.Conflict, "scenario tests fail"),
}

// Unwrap gives the kind of e to errkind.Of; an Error of no kind is
// invalid.
func (e *Error) Unwrap() error {
	if k, ok := kindErrors[e.Kind]; ok {
		return k
	}
	return kindErrors[Invalid]
}

func (e *Error) Error() string {
	switch {
	case len(e.Problems) > 0:
		return e.Message + ": " + e.Problems.Error()
	case len(e.Scenarios) > 0:
		return e.Message + ":\n" + strings.Join(e.Scenarios, "\n")
	}
	return e.Message
}

func invalid(format string, args ...any) error {
	return &Error{Kind: Invalid, Message: fmt.Sprintf(format, args...)}
}

// Actor names who made a change, for the audit trail: user:alice,
// client:ops-bot, api-token.
type Actor string

// record appends a change to the audit trail; a change that cannot be
// audited is reported as failed (it has happened: the error says so).
func (s *Service) record(ctx context.Context, actor Actor, action, target, reason string, before, after any) error {
	if s.Audit == nil {
		return nil
	}
	if _, err := s.Audit.Record(ctx, string(actor), action, target, reason, before, after); err != nil {
		return fmt.Errorf("%s on %s was made but could not be written to the audit trail: %w", action, target, err)
	}
	return nil
}

// userByName finds a user by username or id.
func (s *Service) userByName(ctx context.Context, name string) (store.User, error) {
	u, err := s.Store.GetUserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		u, err = s.Store.GetUser(ctx, name)
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, &Error{Kind: NotFound, Message: fmt.Sprintf("no user %q", name)}
	}
	return u, err
}

// IsAdmin reports whether u may use the console and the admin API. Only
// the standing role counts (u.Roles, never RolesAt): an administrator
// approves and revokes elevations, so a role that elevation can grant
// would let an elevated user approve further elevations, their own
// included, and an administrator's power would rest on a grant that
// the console itself can end.
func IsAdmin(u store.User) bool { return !u.Disabled && slices.Contains(u.Roles, Role) }
