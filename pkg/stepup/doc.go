// Package stepup is Stepgate's Go SDK for resource servers and their
// clients. It verifies Stepgate access tokens and demands step-up exactly
// where an API needs it, with the standard challenges (RFC 9470's
// insufficient_user_authentication, or Entra's insufficient_claims for
// clients that declared the cp1 capability), and it helps clients parse
// such a challenge into their next authorization request.
//
// On the API side, NewVerifier reads the issuer's discovery document and
// keys once; Verifier.Verify checks a token, and Verifier.Require wraps a
// handler with the requirements of its route:
//
//	v, err := stepup.NewVerifier(ctx, "https://id.example.com", stepup.WithAudience("webapp"))
//	...
//	mux.Handle("GET /customers/{id}", v.Require(stepup.Context("c1"))(showCustomer))
//
// On the client side, ChallengeFrom reads the challenge of a 401 and
// Challenge.AuthorizeParams gives the parameters (acr_values and max_age,
// or claims) of the next authorization request.
//
// Behind Stepgate's gateway, an application checks the signed
// X-Stepgate-Assertion with an AssertionVerifier: its own typ, the
// application's audience, a short life, and the one request (method and
// URL) it authorizes, so a request that goes around the gateway with an
// assertion seen earlier, or with any other token, is refused.
//
// Tokens are read from the Authorization header only. Verified tokens are
// cached until they expire, so a revocation at Stepgate takes effect here
// at the latest at the token's exp; WithoutCache turns that off.
package stepup
