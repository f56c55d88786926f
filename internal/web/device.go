package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/reason"
)

// DeviceApprovals is the device authorization grant (RFC 8628) as the
// device page uses it: find the request behind a typed user code, and
// answer it for the signed-in user. Both count wrong codes against the
// user's and everyone's guessing limits.
type DeviceApprovals interface {
	LookupDevice(ctx context.Context, userID, typed string) (oauth.DeviceRequest, error)
	AnswerDevice(r *http.Request, typed string, approve bool) (oauth.DeviceAnswer, error)
}

// deviceView is what the device page shows.
type deviceView struct {
	// State is enter (a form for the code), confirm (the request, to
	// approve or deny), approved, denied or blocked (by a policy).
	State    string
	UserCode string
	Client   string
	ClientID string
	Scopes   []string
	// TokenFor is the database a device asks for a token for.
	TokenFor string
	Expires  time.Time
	// Database is set for a statement the database gateway holds: what
	// it does, and where it comes from.
	Database       string
	Command, Class string
	Tables, Labels []string
	From           string
}

// scopeWords say what each scope lets the device do, for the user who
// approves it.
var scopeWords = map[string]string{
	"openid":         "Sign you in: learn your user id",
	"profile":        "See your name and user name",
	"email":          "See your email address",
	"groups":         "See your groups and roles",
	"offline_access": "Stay signed in after this session (until you sign out everywhere or an administrator revokes it)",
}

// deviceQuery is the device page's address for a user code.
func deviceQuery(code string) string {
	if code == "" {
		return "/device"
	}
	return "/device?user_code=" + url.QueryEscape(code)
}

// deviceForm shows the device page: the form to enter a user code, or,
// with user_code in the address (the verification_uri_complete a device
// shows), the request to approve or deny. Behind the normal sign-in.
func (p *Pages) deviceForm(w http.ResponseWriter, r *http.Request) error {
	typed := strings.TrimSpace(r.URL.Query().Get("user_code"))
	s, u, ok, err := p.requireSignIn(w, r, deviceQuery(typed))
	if !ok || err != nil {
		return err
	}
	v := view{Title: "Sign in on a device", User: &u, Session: &s, Device: &deviceView{State: "enter"}}
	if typed == "" {
		p.render(w, r, http.StatusOK, "device", v)
		return nil
	}
	req, err := p.Devices.LookupDevice(r.Context(), u.ID, typed)
	if err != nil {
		return p.deviceError(w, r, v, typed, err)
	}
	v.Device = &deviceView{State: "confirm", UserCode: req.UserCode, Client: req.ClientName, ClientID: req.ClientID, Expires: req.Expires,
		TokenFor: req.TokenFor, Database: req.Database, Command: req.Command, Class: req.Class, Tables: req.Tables, Labels: req.Labels, From: req.From}
	if req.Database != "" {
		v.Title = "Run a statement on " + req.Database
	}
	for _, sc := range req.Scopes {
		if words, ok := scopeWords[sc]; ok {
			v.Device.Scopes = append(v.Device.Scopes, words)
		}
	}
	p.render(w, r, http.StatusOK, "device", v)
	return nil
}

// device takes the user's answer (a CSRF-protected POST). The answer is
// decided again from the session and the stored request, never from the
// form: a replayed form finds the request answered.
func (p *Pages) deviceAnswer(w http.ResponseWriter, r *http.Request) error {
	if err := p.parseForm(w, r); err != nil {
		return err
	}
	typed := strings.TrimSpace(r.PostFormValue("user_code"))
	s, u, ok, err := p.requireSignIn(w, r, deviceQuery(typed))
	if !ok || err != nil {
		return err
	}
	var approve bool
	switch r.PostFormValue("decision") {
	case "approve":
		approve = true
	case "deny":
	default:
		return &pageError{http.StatusBadRequest, "Choose Approve or Deny."}
	}
	v := view{Title: "Sign in on a device", User: &u, Session: &s, Device: &deviceView{State: "enter"}}
	ans, err := p.Devices.AnswerDevice(r, typed, approve)
	if err != nil {
		return p.deviceError(w, r, v, typed, err)
	}
	back := deviceQuery(typed)
	switch ans.Step {
	case oauth.DeviceApproved, oauth.DeviceDenied:
		v.Device.State = "approved"
		if ans.Step == oauth.DeviceDenied {
			v.Device.State = "denied"
		}
		v.Device.Database = ans.Database
		p.render(w, r, http.StatusOK, "device", v)
	case oauth.DeviceSignIn:
		http.Redirect(w, r, "/login?return_to="+url.QueryEscape(back), http.StatusSeeOther)
	case oauth.DeviceStepUp:
		q := url.Values{"return_to": {back}}
		if len(ans.Methods) > 0 {
			q.Set("methods", strings.Join(ans.Methods, ","))
		}
		http.Redirect(w, r, "/stepup?"+q.Encode(), http.StatusSeeOther)
	case oauth.DevicePasswordChange:
		http.Redirect(w, r, "/account/password?return_to="+url.QueryEscape(back), http.StatusSeeOther)
	case oauth.DeviceBlocked:
		v.Device.State = "blocked"
		v.Device.Database = ans.Database
		v.Error = "Your organisation's policy does not allow this: " + ans.Why + ". The device was told that access is denied."
		if ans.Database != "" {
			v.Error = "Your organisation's policy does not allow this: " + ans.Why + ". The statement was refused; nothing ran."
		}
		p.render(w, r, http.StatusForbidden, "device", v)
	default:
		return errors.New("device answer: unknown step")
	}
	return nil
}

// deviceError shows why a user code leads nowhere, with the form to
// enter another.
func (p *Pages) deviceError(w http.ResponseWriter, r *http.Request, v view, typed string, err error) error {
	var msg string
	switch {
	case errors.Is(err, oauth.ErrDeviceMalformed):
		msg = "That is not a code from a device: a code has 8 letters, like BCDF-GHJK. Check what the device shows."
	case errors.Is(err, oauth.ErrDeviceUnknown):
		msg = "No device is waiting for this code. Check it against the device, or start again there."
	case errors.Is(err, oauth.ErrDeviceExpired):
		msg = "This code has expired. Start again on the device to get a new one."
	case errors.Is(err, oauth.ErrDeviceAnswered):
		msg = "This code was already approved or denied. If that was not you, start again on the device; nothing else is needed here."
	case errors.Is(err, oauth.ErrDeviceThrottled):
		msg = "Too many wrong codes were entered. Wait a few minutes and try again."
	default:
		return err
	}
	// The sentinels carry their kinds: malformed 400, unknown 404,
	// expired or answered 410, throttled 429.
	status := httpx.StatusOf(err)
	p.Log.InfoContext(r.Context(), "device code refused", "reason", err.Error())
	// Wrong and throttled codes go to the sign-in log, so guessing shows
	// there before and after the throttle stops it.
	var why reason.Code
	decision := "failure"
	switch {
	case errors.Is(err, oauth.ErrDeviceUnknown):
		why = reason.InvalidProof
	case errors.Is(err, oauth.ErrDeviceThrottled):
		why, decision = reason.TooManyFailures, "throttled"
	}
	if why != "" && v.User != nil {
		if err := p.logAttempt(r, "oidc", audit.SignIn{UserID: v.User.ID, Username: v.User.Username, Decision: decision, Reason: why,
			MethodsPrompted: []string{"device-code"}}); err != nil {
			return err
		}
	}
	v.Error = msg
	v.Device = &deviceView{State: "enter", UserCode: typed}
	p.render(w, r, status, "device", v)
	return nil
}
