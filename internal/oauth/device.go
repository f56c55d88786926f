package oauth

import (
	"time"

	"github.com/stepgate/stepgate/internal/errkind"
)

// DeviceRequest is a device authorization (RFC 8628) waiting for its
// user, as the page that approves it shows it: which client asks, for
// which scopes, until when.
type DeviceRequest struct {
	// UserCode is the code as it is shown to people (XXXX-XXXX).
	UserCode   string
	ClientID   string
	ClientName string
	Scopes     []string
	Expires    time.Time
	// TokenFor is the database the device asks for a token for (RFC 8707
	// resource urn:stepgate:database:NAME); empty when it asks for the
	// client's own tokens.
	TokenFor string
	// Database is set for a statement the database gateway holds for
	// the user's approval, with what the statement does (never its
	// text) and the database client's address.
	Database       string
	Command, Class string
	Tables, Labels []string
	From           string
}

// DeviceStep is what comes of a user's answer to a device request.
type DeviceStep int

// The steps: the request was approved or denied (the device hears so
// at its next poll); the user must sign in, step up or change the
// password first and then answer again; or a policy blocks the client
// for this user, which denies the request.
const (
	DeviceApproved DeviceStep = iota + 1
	DeviceDenied
	DeviceSignIn
	DeviceStepUp
	DevicePasswordChange
	DeviceBlocked
)

// DeviceAnswer is the outcome of an answer: its step, the methods a
// step-up may use, and why, in words, for a step-up or a block.
type DeviceAnswer struct {
	Step    DeviceStep
	Methods []string
	Why     string
	// Database is set when the answer was to a held statement.
	Database string
}

// Why a user code leads to no request to answer. Each one is final for
// that code: the user starts again on the device.
var (
	// ErrDeviceUnknown: no request has this user code (mistyped, or long
	// gone).
	ErrDeviceUnknown = errkind.New(errkind.NotFound, "unknown user code")
	// ErrDeviceExpired: the request's time ran out.
	ErrDeviceExpired = errkind.New(errkind.Gone, "user code expired")
	// ErrDeviceAnswered: the request was approved or denied already.
	ErrDeviceAnswered = errkind.New(errkind.Gone, "user code already answered")
	// ErrDeviceMalformed: the text is not a user code at all.
	ErrDeviceMalformed = errkind.New(errkind.Invalid, "not a user code")
	// ErrDeviceThrottled: too many wrong user codes were entered; entries
	// are paused for a while.
	ErrDeviceThrottled = errkind.New(errkind.Throttled, "too many wrong user codes")
)
