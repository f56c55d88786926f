// Package authn holds Stepgate's authentication methods, one subpackage
// per method (password, and later TOTP, passkeys, one-time codes, push and
// recovery codes).
package authn
