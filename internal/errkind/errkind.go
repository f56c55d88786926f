// Package errkind says what kind of failure an error is, so that the one
// place that turns errors into HTTP statuses (package httpx) can answer
// every feature's errors alike without importing the features.
//
// A feature marks its sentinel errors when it declares them:
//
//	var ErrNotFound = errkind.New(errkind.NotFound, "not found")
//
// and wraps them as usual; errors.Is still compares them, and Of finds the
// kind through any chain of wrapping. The package imports nothing but the
// standard errors package, so every package may use it, the pure ones too.
package errkind

import "errors"

// Kind is what went wrong, as the client of a request would put it.
type Kind uint8

// Kinds of error. An error that carries no Kind is Internal: the server's
// own failure, never explained to the client.
const (
	// Internal is the server's own failure.
	Internal Kind = iota
	// Invalid is a request that is malformed, incomplete or names what
	// cannot be used: bad input, which the client must change.
	Invalid
	// Unauthenticated is a proof that was not accepted: a wrong code, a
	// replayed answer, a credential that does not verify.
	Unauthenticated
	// Forbidden is a request the caller may not make.
	Forbidden
	// NotFound is a request for something that does not exist.
	NotFound
	// Conflict is a request that collides with the current state: a
	// stale version, a duplicate, an answer still awaited.
	Conflict
	// Gone is something that existed and can no longer be used: a link
	// already followed or expired.
	Gone
	// Throttled is a request refused by a rate limit or a quota.
	Throttled
	// Unavailable is a request the server cannot take now for a reason
	// that passes (storage unreachable, the sign-in log full): retry.
	Unavailable
	// Upstream is the failure of the application behind the gateway.
	Upstream
)

var names = [...]string{"internal", "invalid", "unauthenticated", "forbidden", "not-found", "conflict", "gone", "throttled", "unavailable", "upstream"}

// String is the kind's stable name, for logs.
func (k Kind) String() string {
	if int(k) < len(names) {
		return names[k]
	}
	return "unknown"
}

// Marked is an error that says its own kind.
type Marked interface {
	error
	Kind() Kind
}

// New returns a sentinel error of kind k with the text msg.
func New(k Kind, msg string) error {
	return &sentinel{kind: k, msg: msg}
}

type sentinel struct {
	kind Kind
	msg  string
}

func (e *sentinel) Error() string { return e.msg }
func (e *sentinel) Kind() Kind    { return e.kind }

// Mark returns err with kind k, for an error whose kind only its caller
// knows (a decoding error of a request body is the client's; the same
// error reading a stored record is the server's). errors.Is and errors.As
// see err through it; Mark(nil, k) is nil.
func Mark(err error, k Kind) error {
	if err == nil {
		return nil
	}
	return &marked{kind: k, err: err}
}

type marked struct {
	kind Kind
	err  error
}

func (e *marked) Error() string { return e.err.Error() }
func (e *marked) Kind() Kind    { return e.kind }
func (e *marked) Unwrap() error { return e.err }

// Of is the kind of the outermost error in err's chain that says one, or
// Internal when none does.
func Of(err error) Kind {
	var m Marked
	if errors.As(err, &m) {
		return m.Kind()
	}
	return Internal
}
