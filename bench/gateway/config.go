package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
)

const (
	bankID       = "bank"
	bankSecret   = "bank-secret-bank-secret-bank-secret-0123"
	bankRedirect = "http://127.0.0.1:9/bank/callback" // nothing listens: the code is read from the redirect
	// apiID is a resource server: a confidential client that introspects
	// the access tokens it is sent (RFC 7662), authenticating with its
	// secret as client_secret_basic.
	apiID     = "api"
	apiSecret = "api-secret-api-secret-api-secret-0123456" //nolint:gosec // the throwaway Stepgate's client, on loopback
)

// stepgateConfig is the configuration file both Stepgates of a run are
// started from, the one in a process of its own (`stepgate serve
// --config`) and the one inside the harness: SQLite under the data
// directory, the cheapest valid argon2 cost (signing in is not
// measured), the OIDC clients bank and api, two policies that every
// gateway decision evaluates, and these routes:
//   - bank, whose default rule asks for a signed-in user and no step-up
//     (the session and bearer rows);
//   - public, which asks for nothing (what the proxying costs without a
//     decision);
//   - fa, a forward-auth route (the decision alone);
//   - nginx, the route of nginx's documented auth_request configuration;
//   - lean and signed, like bank but telling the upstream nothing of the
//     user, or only through the signed assertion.
const stepgateConfig = `server:
  listen: %[1]s
  issuer: http://%[1]s
  data_dir: %[2]s
log:
  level: warn
password:
  argon2: {time: 1, memory_kib: 7168, threads: 1}
policy:
  files: [%[3]s]
oidc:
  access_token_lifetime: 1h
  clients:
    - id: ` + bankID + `
      name: Bank
      secret: ` + bankSecret + `
      redirect_uris: [` + bankRedirect + `]
    - id: ` + apiID + `
      name: Bank API (resource server)
      secret: ` + apiSecret + `
      grant_types: [client_credentials]
gateway:
  routes:
    - {name: bank, from: "http://bank.localhost:%[4]s", to: "%[5]s"}
    - name: public
      from: "http://public.localhost:%[4]s"
      to: "%[5]s"
      rules: [{path: "/*", allow: anonymous}]
    - {name: fa, from: "http://fa.localhost:%[4]s"}
    - {name: nginx, from: "http://nginx.localhost:%[6]s"}
    - {name: lean, app: bank, from: "http://lean.localhost:%[4]s", to: "%[5]s", identity_headers: none}
    - {name: signed, app: bank, from: "http://signed.localhost:%[4]s", to: "%[5]s", identity_headers: assertion}
`

// benchPolicies are enforced on every app and evaluated on every
// decision; neither applies to the bench user (a browser client, no user
// risk), so every request is allowed after both were considered.
const benchPolicies = `policies:
  - name: block-legacy-clients
    state: enabled
    users:
      include: {users: [all]}
    target:
      apps: {include: [all]}
    conditions:
      client_apps: [legacy]
    grant: block
  - name: risky-users-mfa
    state: enabled
    users:
      include: {users: [all]}
    target:
      apps: {include: [all]}
    conditions:
      user_risk: [high]
    grant:
      controls: [mfa]
`

// writeStepgateConfig writes, under dir, the configuration of a Stepgate
// listening on listen in front of upstream, with the nginx route's
// public port nginxPort, and returns its path.
func writeStepgateConfig(dir, listen, upstream, nginxPort string) (string, error) {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", err
	}
	policies := filepath.Join(dir, "policies.yaml")
	if err := os.WriteFile(policies, []byte(benchPolicies), 0o600); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "stepgate.yaml")
	conf := fmt.Sprintf(stepgateConfig, listen, filepath.Join(dir, "data"), policies, port, upstream, nginxPort)
	return path, os.WriteFile(path, []byte(conf), 0o600)
}
