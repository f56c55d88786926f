// Package authn holds Stepgate's authentication methods behind one
// interface, Method, with one subpackage per method: password, totp,
// webauthn (passkeys), otp (codes by email or SMS), push (approval with
// number matching) and recovery codes. Adding a method touches nothing
// else: the step-up page, the enrollment pages and the OIDC provider find
// methods through a Registry.
//
// A ceremony (enrolling or verifying) may take two round trips: Begin
// returns what the page shows and a state the server keeps; the browser's
// answer comes back with the ceremony id, and Finish or Verify checks it
// against that state. Ceremonies are single use, short-lived and bound to
// the user who started them, so an answer cannot be replayed or carried
// over to another account.
package authn
