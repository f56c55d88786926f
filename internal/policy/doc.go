// Package policy is Stepgate's conditional access engine: the policy
// file format, its compiler, and the one pure function that decides
// whether a request may go ahead and, if not, exactly what the user must
// still prove.
//
// The flow is Parse (YAML to Document, structural problems with file,
// line and key path) → Compile (documents plus a Directory to an
// immutable Snapshot, or every problem at once) → Snapshot.Evaluate
// (Request to Decision). An Engine holds the current Snapshot in an
// atomic pointer so reloads never disturb requests in flight.
//
// The package is pure: no network, no storage. The caller resolves the
// country (package geoip), the platform (PlatformFromUserAgent) and the
// session's authentication events before evaluating, so the OIDC
// provider, the gateway, the What-If tool and the admin UI all get the
// same answer from the same inputs.
//
// docs/policy.md is the user-facing reference of the file format and of
// the evaluation semantics implemented here.
package policy
