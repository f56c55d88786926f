// Package stepup is Stepgate's Go SDK for resource servers and their
// clients. It verifies Stepgate access tokens and demands step-up exactly
// where an API needs it, with the standard challenges (RFC 9470's
// insufficient_user_authentication, or Entra's insufficient_claims for
// clients that declared the cp1 capability), and it helps clients parse
// such a challenge into their next authorization request.
package stepup
