// Package oidc is Stepgate's OpenID Provider: discovery, signing keys and
// their rotation, the authorization code flow with PKCE, the token,
// userinfo, introspection, revocation and end-session endpoints, and
// client registrations.
//
// Its heart is step-up: acr_values, max_age, prompt and the claims
// parameter (OIDC and Entra styles) say what a client needs; the
// provider asks the conditional access engine (package policy) and the
// strength rules (package strength) whether the browser's session
// already satisfies it, sends the user to the step-up page for exactly
// what is missing, and issues tokens whose acr, amr, auth_time and acrs
// say what was proven. Requested values live in server-side flow state,
// never in the URL the browser can edit, so a step-up cannot be skipped.
//
// authorize.go runs the authorization request and decide.go its step-up
// decision; token_endpoint.go is the token endpoint (client
// authentication and the grants), token_claims.go what the tokens say:
// minting them and verifying access tokens and ID token hints.
// endpoints.go holds userinfo, introspection, revocation and end-session.
package oidc
