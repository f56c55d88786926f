package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/session"
	"github.com/stepgate/stepgate/internal/store"
)

// caller is the administrator behind a console request.
type caller struct {
	user    store.User
	session store.Session
	// methods are the sign-in methods the user has, in prompt order.
	methods []string
	// request is the request as the policies see it (app: the console).
	request *policy.Request
	change  changeState
	// approver: let in through the approvals door (/approvals), which
	// shows only the requests the user may answer, not the console.
	approver bool
}

// actor names the caller in the audit trail.
func (who *caller) actor() admin.Actor { return admin.Actor("user:" + who.user.Username) }

// admit lets in a signed-in administrator. Anyone else is sent to sign
// in (no session) or refused with the same 403 on every route, before
// anything about the route is looked at.
func (c *Console) admit(r *http.Request) (*caller, error) {
	who, err := c.signedIn(r, "/admin")
	if err != nil {
		return nil, err
	}
	if !admin.IsAdmin(who.user) {
		return nil, errDenied
	}
	return who, nil
}

// admitApprover lets in any signed-in user who is not disabled, through
// the approvals door: its page shows only the requests of roles whose
// approver group the user is in, and every answer is decided again by
// the elevation service.
func (c *Console) admitApprover(r *http.Request) (*caller, error) {
	who, err := c.signedIn(r, approvalsPath)
	if err != nil {
		return nil, err
	}
	if who.user.Disabled {
		return nil, &pageError{status: http.StatusForbidden, msg: "Your account is disabled."}
	}
	who.approver = true
	return who, nil
}

// signedIn finds the browser's user, and the request as the policies
// see it (app: the console); anyone not signed in is sent to sign in and
// come back (to home after a form post).
func (c *Console) signedIn(r *http.Request, home string) (*caller, error) {
	ctx := r.Context()
	s, err := c.Sessions.Load(ctx, r)
	if errors.Is(err, session.ErrNoSession) {
		return nil, signIn(r, home)
	}
	if err != nil {
		return nil, err
	}
	u, err := c.Users.GetUser(ctx, s.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, signIn(r, home)
	}
	if err != nil {
		return nil, err
	}
	methods, err := c.Methods(r, u)
	if err != nil {
		return nil, err
	}
	req := c.Access(r, u, &s, admin.ConsoleApp, c.Now())
	return &caller{user: u, session: s, methods: methods, request: req}, nil
}

// signIn sends the browser to sign in and come back: to the page itself
// for a GET, to home after a form post (the post cannot be replayed, and
// its form page is not known here).
func signIn(r *http.Request, home string) error {
	back := home
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		back = r.URL.RequestURI()
	}
	return redirect("/login?return_to=" + url.QueryEscape(back))
}

// maxFormBytes bounds console form bodies: a policy document may be
// policy.MaxFileSize, and URL-encoding can triple it.
const maxFormBytes = 3*policy.MaxFileSize + 64<<10

// checkForm reads a bounded form body and checks its CSRF token. Without
// the token a form is refused: another site can make the browser post to
// the console, but cannot read the token.
func (c *Console) checkForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return &pageError{status: http.StatusBadRequest, msg: "The form could not be read (is it larger than a policy document may be?). Go back and try again."}
	}
	if !c.Forms.CheckCSRF(r) {
		return &pageError{status: http.StatusForbidden,
			msg: "This form has expired or was sent from another site, so nothing was changed. Reload the console page and submit it again."}
	}
	return nil
}

// enforceLive applies the live policies for the console app: a block is
// refused, a challenge sends the browser to prove more and come back.
func (c *Console) enforceLive(r *http.Request, who *caller) error {
	v, _ := access.Decide(access.Ask{Snapshot: c.Policies.Load(), Request: who.request},
		func() ([]string, error) { return who.methods, nil })
	switch {
	case v.Outcome == policy.OutcomeAllow:
		return nil
	case v.Reason == reason.NoUsableMethod:
		return &pageError{status: http.StatusForbidden,
			msg: "The console's policies ask for a proof your account cannot give yet. Add a sign-in method on your security page (/account/security)."}
	case v.Outcome == policy.OutcomeBlock:
		return &pageError{status: http.StatusForbidden,
			msg: fmt.Sprintf("Your organisation's policy %s blocks access to the console from here.", v.BlockedBy)}
	case v.PasswordChange:
		return redirect("/account/password?return_to=" + url.QueryEscape(backTo(r)))
	}
	return redirect(stepUpURL(backTo(r), v.Methods))
}

// backTo is the console page to come back to: the page itself for a GET,
// and for a form post the page the form was on (its back field), which
// must be a console page.
func backTo(r *http.Request) string {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return r.URL.RequestURI()
	}
	back := r.PostFormValue("back")
	if httpx.SafeReturnTo(back) != back || !consolePath(back) {
		return "/admin"
	}
	return back
}

func consolePath(p string) bool {
	return p == "/admin" || strings.HasPrefix(p, "/admin/") || strings.HasPrefix(p, "/admin?") ||
		p == approvalsPath || strings.HasPrefix(p, approvalsPath+"?")
}

func stepUpURL(back string, methods []string) string {
	q := url.Values{"return_to": {back}}
	if len(methods) > 0 {
		q.Set("methods", strings.Join(methods, ","))
	}
	return "/stepup?" + q.Encode()
}
