// Package demo is "stepgate demo": a complete Stepgate with seeded users,
// policies and a protected sample bank, running with nothing else
// installed. It builds the configuration, seeds the store and serves the
// bank, and with PostgreSQL puts the bank's database behind the database
// gateway (a private cluster it starts, or a given server); the command
// line wires them to a running Stepgate.
package demo

import (
	_ "embed"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/config"
)

// DefaultDataDir is where the demo keeps its data unless --data-dir says
// otherwise. It is kept between runs, so a second run finds alice's
// authenticator app where the first left it, and "stepgate user
// totp-code alice --demo" finds the demo without being told where.
const DefaultDataDir = "./stepgate-demo-data"

// PolicyFile is the name of the policy file the demo writes into its data
// directory.
const PolicyFile = "demo-policies.yaml"

// Route and client of the bank: the gateway route's app and the OIDC
// client share the id, so a token issued to the client is a token for
// the bank's API.
const (
	BankApp = "bank"
	// BankClientSecret is fixed so the walk-through can print the curl
	// lines; the demo only listens on loopback.
	BankClientSecret = "bank-demo-client-secret-for-local-use-only"
)

// User is a demo account.
type User struct {
	Username, Password, Email, DisplayName string
	Groups, Roles                          []string
	// About says what the account shows off.
	About string
}

// Users are the demo accounts. The passwords are fixed so they can be
// printed and written in the README; they pass the password policy.
var Users = []User{
	{Username: "alice", Password: "alice-demo-password", Email: "alice@bank.example", DisplayName: "Alice Adams",
		About: "password + authenticator app (TOTP); eligible for " + BankAdminRole + " for an hour, with admin's approval"},
	{Username: "bob", Password: "bob-demo-password", Email: "bob@bank.example", DisplayName: "Bob Brown",
		About: "password only; cannot add a method without a temporary access pass"},
	{Username: "admin", Password: "admin-demo-password", Email: "admin@bank.example", DisplayName: "Ada Admin",
		Groups: []string{AdminGroup}, Roles: []string{admin.Role, BankAdminRole},
		About: "password, group admins, Stepgate administrator (/admin); adds a passkey with the temporary access pass below"},
}

// AdminGroup is the group of the bank's administrators, who approve
// activations of BankAdminRole.
const AdminGroup = "admins"

// BankAdminRole opens the bank's admin pages (policy
// admin-pages-need-bank-admin). admin holds it all the time; alice is
// eligible for it: she activates it for at most an hour, with a
// justification, a fresh second factor and the approval of a member of
// AdminGroup.
const BankAdminRole = "bank-admin"

// ElevationRoles are the demo's activation settings.
func ElevationRoles() []config.ElevationRole {
	return []config.ElevationRole{{
		Role: BankAdminRole, MaxDuration: config.Duration(time.Hour), Justification: "required",
		Approvers: &config.ElevationApprovers{Group: AdminGroup},
	}}
}

// TestFile is the name of the scenario test file the demo writes beside
// its policies ("stepgate policy test" runs it).
const TestFile = "demo-policies.tests.yaml"

// policyTests are the scenario tests of policies, written beside them.
//
//go:embed policies.tests.yaml
var policyTests []byte

// policies is the demo's policy set, written to the data directory so a
// reader can open it, change it and reload with SIGHUP.
//
//go:embed policies.yaml
var policies []byte

// Params are what the demo's configuration depends on.
type Params struct {
	// Listen is the address Stepgate's listener is bound to
	// (127.0.0.1:PORT); the issuer and the bank's public address use
	// its port.
	Listen  string
	DataDir string
	// BankUpstream is where the bank app listens, http://127.0.0.1:PORT.
	BankUpstream string
	LogFormat    string
	// BankDatabase, when set, puts the bank's PostgreSQL database
	// behind the database gateway (stepgate demo --with-postgres).
	BankDatabase *BankDatabase
}

// Config returns the demo's configuration: the built-in defaults, the
// issuer http://localhost:PORT, the bank behind the gateway at
// http://bank.localhost:PORT (browsers resolve *.localhost to this
// machine), the bank's API client, and the policy file in the data
// directory. No file or environment variable is read: the demo runs the
// same everywhere.
func Config(p Params) (config.Config, error) {
	_, port, err := net.SplitHostPort(p.Listen)
	if err != nil {
		return config.Config{}, fmt.Errorf("demo listen address %q: %w", p.Listen, err)
	}
	cfg, _, err := config.Resolve("", config.Flags{
		Listen: p.Listen, DataDir: p.DataDir, Issuer: "http://localhost:" + port, LogFormat: p.LogFormat,
	}, nil)
	if err != nil {
		return config.Config{}, err
	}
	cfg.Policy.Files = []string{PolicyPath(p.DataDir)}
	// The demo's passwords are printed for all to see: no account may
	// register a first method with its password alone. Registration
	// takes a temporary access pass (admin gets one at every start).
	cfg.Registration.Window = 0
	// The registration campaign shows users a policy strands what to
	// register: alice, who has an authenticator app, is offered a passkey
	// for the admin pages.
	cfg.Registration.Campaign.Enabled = true
	cfg.Elevation.Roles = ElevationRoles()
	cfg.OIDC.Clients = []config.OIDCClient{{
		ID: BankApp, Name: "Demo bank API", Secret: BankClientSecret, GrantTypes: []string{"client_credentials"},
	}, {
		// stepgate login's default client: the device flow, for tools
		// without a browser.
		ID: "stepgate-cli", Name: "Stepgate command line", Public: true,
		GrantTypes: []string{config.DeviceCodeGrant, "refresh_token"},
	}}
	cfg.Gateway.Routes = []config.GatewayRoute{{
		Name: BankApp, From: BankURL(port), To: p.BankUpstream,
		Rules: []config.GatewayRule{
			{Path: "/transfers", Methods: []string{"POST"}, Context: "c2"},
			{Path: "/admin/*", Context: "c3", Elevation: "single-use"},
			{Path: "/customers/*", Context: "c1"},
			{Path: "/public/*", Allow: "anonymous"},
		},
	}}
	if p.BankDatabase != nil {
		cfg.Databases = append(cfg.Databases, p.BankDatabase.DatabaseConfig())
	}
	if probs := cfg.Validate(); len(probs) > 0 {
		return config.Config{}, &config.Errors{Problems: probs}
	}
	return cfg, nil
}

// BankURL is the bank's public address for Stepgate's port.
func BankURL(port string) string { return "http://bank.localhost:" + port }

// PolicyPath is the demo policy file in dataDir.
func PolicyPath(dataDir string) string { return filepath.Join(dataDir, PolicyFile) }
