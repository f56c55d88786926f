package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"

	"github.com/stepgate/stepgate/internal/errkind"
)

// StatusClientClosedRequest is the status of a request whose client went
// away before the answer (nginx's 499): no one reads it, but the access
// log and the metrics then tell a client that left from a server fault.
const StatusClientClosedRequest = 499

// statusOfKind is the one table from an error's kind to its status.
var statusOfKind = map[errkind.Kind]int{
	errkind.Internal:        http.StatusInternalServerError,
	errkind.Invalid:         http.StatusBadRequest,
	errkind.Unauthenticated: http.StatusUnauthorized,
	errkind.Forbidden:       http.StatusForbidden,
	errkind.NotFound:        http.StatusNotFound,
	errkind.Conflict:        http.StatusConflict,
	errkind.Gone:            http.StatusGone,
	errkind.Throttled:       http.StatusTooManyRequests,
	errkind.Unavailable:     http.StatusServiceUnavailable,
	errkind.Upstream:        http.StatusBadGateway,
}

// StatusOf is the HTTP status that answers err, and the only place in
// Stepgate that decides it; features mark their sentinel errors with an
// errkind.Kind instead of choosing statuses. A client that went away
// (context.Canceled) is 499 whatever else the error says; a request body
// over its limit is 413; an error of no kind, including a deadline the
// server ran out of, is 500 or 503. nil is 200.
func StatusOf(err error) int {
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, context.Canceled):
		return StatusClientClosedRequest
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge
	}
	k := errkind.Of(err)
	if k == errkind.Internal && errors.Is(err, context.DeadlineExceeded) {
		// The server's own time for the request ran out (a slow store):
		// it passes, so the client may retry.
		return http.StatusServiceUnavailable
	}
	if status, ok := statusOfKind[k]; ok {
		return status
	}
	return http.StatusInternalServerError
}

// publicMessage is, per status, what a response may say about an error
// whose feature has nothing more precise to say. None of them quotes the
// error: its text may name records, paths or addresses.
var publicMessage = map[int]string{
	http.StatusBadRequest:            "The request is not valid.",
	http.StatusUnauthorized:          "That was not accepted. Try again.",
	http.StatusForbidden:             "This is not allowed.",
	http.StatusNotFound:              "There is nothing here.",
	http.StatusConflict:              "Something changed meanwhile. Reload and try again.",
	http.StatusGone:                  "This is no longer available.",
	http.StatusRequestEntityTooLarge: "The request is too large.",
	http.StatusTooManyRequests:       "Too many requests or attempts. Wait a few minutes, then try again.",
	StatusClientClosedRequest:        "The request was canceled.",
	http.StatusBadGateway:            "The application behind this address is not answering. Try again in a moment.",
	http.StatusServiceUnavailable:    "The service is busy. Try again in a moment.",
	http.StatusInternalServerError:   "Something went wrong on our side. Please try again.",
}

// MessageOf is a message about err that is safe to show anyone: chosen by
// its status alone, so it never leaks what the error says.
func MessageOf(err error) string {
	if msg, ok := publicMessage[StatusOf(err)]; ok {
		return msg
	}
	return publicMessage[http.StatusInternalServerError]
}

// Failure is what a response says about an error.
type Failure struct {
	// Status is StatusOf the error.
	Status int
	// Message is safe to show: MessageOf the error, and, for a server
	// fault, the incident id.
	Message string
	// Incident is set for a server fault (a 500): a random id that the
	// log line carries too, so a user's report leads to the cause.
	Incident string
}

// Fail maps err to its Failure and logs it as its status deserves: a
// server fault (500) at error level with its incident id, a passing
// unavailability (503, 502) at warning level, and a client that went away
// or a refusal of the client's request (4xx) at debug level, since a
// client can cause as many of those as it likes. what says what failed
// ("oidc request failed"); attrs follow it.
func Fail(ctx context.Context, log *slog.Logger, what string, err error, attrs ...any) Failure {
	f := Failure{Status: StatusOf(err), Message: MessageOf(err)}
	switch {
	case f.Status == http.StatusInternalServerError:
		f.Incident = incidentID()
		f.Message += " (Incident " + f.Incident + ".)"
		log.ErrorContext(ctx, what, append(attrs, "err", err, "incident", f.Incident)...)
	case f.Status >= 500:
		log.WarnContext(ctx, what, append(attrs, "err", err, "status", f.Status)...)
	default:
		log.DebugContext(ctx, what, append(attrs, "err", err, "status", f.Status)...)
	}
	return f
}

// incidentID is 8 random bytes in hex: enough that two incidents in one
// log never share an id, short enough to read out over the phone.
func incidentID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
