package web

import (
	"context"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// rolesRig is the pages with elevation: bank-admin needs a justification
// and an approval from the group admins (at most 1h); quick-look needs
// neither (at most 30m).
type rolesRig struct {
	*rig
	svc *elevate.Service
}

func newRolesRig(t *testing.T) *rolesRig {
	t.Helper()
	rr := &rolesRig{}
	rr.rig = newRig(t, func(d *Deps) {
		snap, probs := policy.Compile(nil)
		if len(probs) > 0 {
			t.Fatal(probs)
		}
		checker, err := elevate.NewChecker(func() *policy.Snapshot { return snap })
		if err != nil {
			t.Fatal(err)
		}
		rr.svc = &elevate.Service{Store: d.Store.(elevate.Store), Proofs: checker, MaxPending: 3, Now: d.Now, Roles: rolesOf}
		d.Elevation, d.Access = rr.svc, sessionRequest
	})
	// The source needs the pages it belongs to.
	rr.p.StepUps = []StepUpSource{rr.p.ElevationStepUps()}
	ctx := context.Background()
	for _, role := range []string{"bank-admin", "quick-look"} {
		if _, err := rr.users.AddRole(ctx, store.Role{Name: role}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rr.users.AddGroup(ctx, store.Group{Name: "admins"}); err != nil {
		t.Fatal(err)
	}
	return rr
}

// sessionRequest is the access request of a browser request as the
// decision core sees it: who, when, and the session's proofs.
func sessionRequest(_ *http.Request, u store.User, s *store.Session, now time.Time) *policy.Request {
	req := &policy.Request{Subject: policy.Subject{ID: u.ID, Username: u.Username, Groups: u.Groups, Roles: u.Roles},
		ClientApp: policy.ClientBrowser, Now: now}
	if s != nil {
		req.Events = access.Events(s.Events)
	}
	return req
}

func rolesOf(name string) elevate.Role {
	switch name {
	case "bank-admin":
		return elevate.Role{Name: name, MaxDuration: time.Hour, NeedJustification: true,
			Approvers: &elevate.Approvers{Group: "admins", Count: 1, Expire: 24 * time.Hour}}
	}
	return elevate.Role{Name: name, MaxDuration: 30 * time.Minute}
}

// eligible makes u eligible for role.
func (rr *rolesRig) eligible(u store.User, role string) {
	rr.t.Helper()
	_, err := rr.st.CreateRoleAssignment(context.Background(), store.RoleAssignment{
		ID: "ra-" + u.Username + "-" + role, Role: role, Kind: store.AssignEligible, Principal: store.UserPrincipal(u.ID)})
	if err != nil {
		rr.t.Fatal(err)
	}
}

func (rr *rolesRig) elevations(u store.User) []store.Elevation {
	rr.t.Helper()
	es, err := rr.st.ListElevations(context.Background(), store.ElevationQuery{UserID: u.ID})
	if err != nil {
		rr.t.Fatal(err)
	}
	return es
}

func (rr *rolesRig) elevation(id string) store.Elevation {
	rr.t.Helper()
	e, err := rr.st.GetElevation(context.Background(), id)
	if err != nil {
		rr.t.Fatal(err)
	}
	return e
}

// stepUpTOTPFor steps up with the app on the step-up page that returnTo
// continues, and moves the clock on a time step.
func (b *browser) stepUpTOTPFor(secret, returnTo string) {
	b.rg.t.Helper()
	_, body := b.do("GET", "/stepup?"+url.Values{"method": {"totp"}, "return_to": {returnTo}}.Encode(), nil)
	cer := rigCeremonyRe.FindStringSubmatch(body)
	if cer == nil {
		b.rg.t.Fatalf("the step-up page has no ceremony:\n%s", body)
	}
	code, err := pqtotp.GenerateCodeCustom(secret, b.rg.clock.Now(), pqtotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		b.rg.t.Fatal(err)
	}
	resp, body := b.do("POST", "/stepup", url.Values{"ceremony": {cer[1]}, "code": {code}, "return_to": {returnTo}})
	if loc, _ := resp.Location(); resp.StatusCode != http.StatusSeeOther || loc == nil || loc.RequestURI() != returnTo {
		b.rg.t.Fatalf("TOTP step-up: %d to %v, want back to %s\n%s", resp.StatusCode, loc, returnTo, body)
	}
	b.rg.clock.Add(30 * time.Second)
}

// TestRolesActivationNeedsStepUpAndApproval walks a request for a role
// with approvers: asked with a password session, it waits for the
// step-up; the step-up page says what for and offers only the methods
// that meet it; the page it returns to shows the request and changes
// nothing until its button is pressed; then it waits for approval.
func TestRolesActivationNeedsStepUpAndApproval(t *testing.T) {
	t.Parallel()
	rr := newRolesRig(t)
	alice := rr.addUser("alice")
	secret := rr.enrollTOTP(alice)
	rr.eligible(alice, "bank-admin")
	b := rr.browser()
	b.signIn("alice")

	resp, body := b.do("GET", "/account/roles", nil)
	for _, want := range []string{"bank-admin", "1 hour", "One member of the group admins (never you) must approve", "A second factor from the last 10 minutes", `value="1h0m0s" selected`, `action="/account/roles"`} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("the roles page (%d) does not show %q:\n%s", resp.StatusCode, want, body)
		}
	}
	if _, acct := b.do("GET", "/account", nil); !strings.Contains(acct, `href="/account/roles"`) {
		t.Error("the account page does not link to the roles page")
	}

	// A password session has no second factor: the request is stored,
	// unproven, and the browser goes to the step-up page.
	resp, body = b.do("POST", "/account/roles", url.Values{"role": {"bank-admin"}, "duration": {"1h0m0s"}, "justification": {"INC-42: payments stuck"}})
	loc, _ := resp.Location()
	if resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Path != "/stepup" {
		t.Fatalf("request with a password session: %d to %v, want the step-up page\n%s", resp.StatusCode, loc, body)
	}
	es := rr.elevations(alice)
	if len(es) != 1 || es[0].State != store.ElevationPending || !es[0].ProvenAt.IsZero() || es[0].Duration != time.Hour || es[0].Justification != "INC-42: payments stuck" {
		t.Fatalf("stored requests: %+v, want one pending unproven 1h request", es)
	}
	returnTo := loc.Query().Get("return_to")
	if returnTo != "/account/roles/confirm?id="+es[0].ID {
		t.Fatalf("the step-up returns to %q, want the request's confirm page", returnTo)
	}

	// attack/edited-hint: the step-up page describes the activation from
	// the stored request; a methods= hint asking for the password does
	// not put it on the page.
	_, body = b.do("GET", "/stepup?"+url.Values{"return_to": {returnTo}, "methods": {"password"}}.Encode(), nil)
	for _, want := range []string{"Role activation", "Activate bank-admin", "a second factor from the last 10 minutes", `id="code"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the step-up page does not say %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "method=password") {
		t.Errorf("attack/edited-hint: the activation's step-up offers the password:\n%s", body)
	}

	// attack/confirm-without-step-up: pressing the button before the
	// step-up sends the browser back to it; nothing is proven.
	resp, _ = b.do("POST", "/account/roles/confirm", url.Values{"id": {es[0].ID}})
	if loc, _ := resp.Location(); resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Path != "/stepup" || !rr.elevation(es[0].ID).ProvenAt.IsZero() {
		t.Fatalf("attack/confirm-without-step-up: %d to %v, proven at %v", resp.StatusCode, loc, rr.elevation(es[0].ID).ProvenAt)
	}

	b.stepUpTOTPFor(secret, returnTo)

	// attack/get-changes-nothing: the page the step-up returns to shows
	// the request and a button; loading it proves nothing.
	resp, body = b.do("GET", returnTo, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "INC-42: payments stuck") || !strings.Contains(body, `action="/account/roles/confirm"`) {
		t.Fatalf("the confirm page: %d\n%s", resp.StatusCode, body)
	}
	if e := rr.elevation(es[0].ID); !e.ProvenAt.IsZero() {
		t.Fatal("attack/get-changes-nothing: loading the confirm page proved the request")
	}
	// attack/cross-site-confirm: the button without the form's token.
	resp, _ = b.postRaw("/account/roles/confirm", url.Values{"id": {es[0].ID}})
	if resp.StatusCode != http.StatusForbidden || !rr.elevation(es[0].ID).ProvenAt.IsZero() {
		t.Fatalf("attack/cross-site-confirm: %d, proven at %v", resp.StatusCode, rr.elevation(es[0].ID).ProvenAt)
	}

	resp, _ = b.do("POST", "/account/roles/confirm", url.Values{"id": {es[0].ID}})
	loc, _ = resp.Location()
	if resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Path != "/account/roles" {
		t.Fatalf("confirm after the step-up: %d to %v", resp.StatusCode, loc)
	}
	e := rr.elevation(es[0].ID)
	if e.ProvenAt.IsZero() || e.State != store.ElevationPending {
		t.Fatalf("after the confirmation: %+v, want proven and waiting for approval", e)
	}
	_, body = b.do("GET", loc.RequestURI(), nil)
	for _, want := range []string{"Your request for bank-admin now waits for approval.", "Waiting for approval by the group admins", `id="cancel-bank-admin"`, "A request for it is waiting"} {
		if !strings.Contains(body, want) {
			t.Errorf("the roles page after the confirmation does not say %q:\n%s", want, body)
		}
	}

	// Approved, it is active until its time, and alice can end it.
	admin := rr.addUser("ada")
	if _, err := rr.users.SetMemberships(context.Background(), "ada", []string{"admins"}, nil); err != nil {
		t.Fatal(err)
	}
	admin, _ = rr.st.GetUser(context.Background(), admin.ID)
	if _, err := rr.svc.Decide(context.Background(), e.ID, admin, true, "go ahead"); err != nil {
		t.Fatal(err)
	}
	_, body = b.do("GET", "/account", nil)
	if !strings.Contains(body, `<td id="activated">bank-admin until`) {
		t.Errorf("the account page does not show the activated role:\n%s", body)
	}
	_, body = b.do("GET", "/account/roles", nil)
	for _, want := range []string{`id="roles-active"`, `id="end-bank-admin"`, "Active until"} {
		if !strings.Contains(body, want) {
			t.Errorf("the roles page with the role active does not show %q:\n%s", want, body)
		}
	}
	resp, _ = b.do("POST", "/account/roles/end", url.Values{"id": {e.ID}})
	if e := rr.elevation(e.ID); resp.StatusCode != http.StatusSeeOther || e.State != store.ElevationDeactivated {
		t.Fatalf("ending the active role: %d, state %s", resp.StatusCode, e.State)
	}
	loc, _ = resp.Location()
	if _, body := b.do("GET", loc.RequestURI(), nil); !strings.Contains(body, "Your role bank-admin has ended.") {
		t.Errorf("the roles page after ending the role:\n%s", body)
	}
	if _, body := b.do("GET", "/account", nil); strings.Contains(body, `id="activated"`) {
		t.Errorf("the account page still shows the ended role:\n%s", body)
	}
	_, body = b.do("GET", "/account/roles", nil)
	if !strings.Contains(body, "Ended by you") || !strings.Contains(body, "Approved at") || !strings.Contains(body, "go ahead") {
		t.Errorf("the history does not show the ended elevation with its approval:\n%s", body)
	}
}

// postRaw posts form without a CSRF token, as another site's page
// would make the browser do.
func (b *browser) postRaw(path string, form url.Values) (*http.Response, string) {
	b.rg.t.Helper()
	resp, err := b.c.PostForm(b.rg.base+path, form)
	if err != nil {
		b.rg.t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp, ""
}

// TestRolesActiveAtOnceWithFreshProof: a role without approvers, asked
// within ten minutes of a second factor, turns active with the request.
func TestRolesActiveAtOnceWithFreshProof(t *testing.T) {
	t.Parallel()
	rr := newRolesRig(t)
	alice := rr.addUser("alice")
	secret := rr.enrollTOTP(alice)
	rr.eligible(alice, "quick-look")
	b := rr.browser()
	b.signIn("alice")
	b.stepUpTOTP(secret)

	resp, _ := b.do("POST", "/account/roles", url.Values{"role": {"quick-look"}, "duration": {"15m0s"}})
	loc, _ := resp.Location()
	es := rr.elevations(alice)
	if resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Path != "/account/roles" || len(es) != 1 || es[0].State != store.ElevationActive {
		t.Fatalf("request with a fresh proof: %d to %v, %+v; want active at once", resp.StatusCode, loc, es)
	}
	if want := rr.clock.Now().Add(15 * time.Minute); !es[0].Until.Equal(want) {
		t.Errorf("until %v, want %v", es[0].Until, want)
	}
	_, body := b.do("GET", loc.RequestURI(), nil)
	if !strings.Contains(body, "quick-look is active until") {
		t.Errorf("the roles page does not say the role is active:\n%s", body)
	}
	// fail/stale-proof: after ten minutes the same request needs a new
	// step-up.
	if _, err := rr.svc.Deactivate(context.Background(), es[0].ID, alice, false, ""); err != nil {
		t.Fatal(err)
	}
	rr.clock.Add(11 * time.Minute)
	resp, _ = b.do("POST", "/account/roles", url.Values{"role": {"quick-look"}, "duration": {"15m0s"}})
	if loc, _ := resp.Location(); resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Path != "/stepup" {
		t.Fatalf("fail/stale-proof: %d to %v, want the step-up page", resp.StatusCode, loc)
	}
}

// TestRolesRefusalsInWords: a request the service refuses comes back as
// the roles page with the refusal in words and the form as it was
// typed; nothing is stored, and nothing of the error's internals shows.
func TestRolesRefusalsInWords(t *testing.T) {
	t.Parallel()
	rr := newRolesRig(t)
	alice := rr.addUser("alice")
	rr.enrollTOTP(alice)
	rr.eligible(alice, "bank-admin")
	b := rr.browser()
	b.signIn("alice")
	tests := []struct {
		name   string
		form   url.Values
		status int
		want   string
	}{
		{"fail/no-justification", url.Values{"role": {"bank-admin"}, "duration": {"1h0m0s"}, "ticket": {"CHG-7 <kept>"}}, http.StatusBadRequest, "bank-admin needs a justification: say why you need it."},
		{"fail/over-the-maximum", url.Values{"role": {"bank-admin"}, "duration": {"2h0m0s"}, "justification": {"why <kept>"}}, http.StatusBadRequest, "The duration 2h0m0s is longer than bank-admin allows; ask for 1h0m0s or less."},
		{"fail/not-a-duration", url.Values{"role": {"bank-admin"}, "duration": {"forever"}, "justification": {"why <kept>"}}, http.StatusBadRequest, "Choose how long you need the role from the list."},
		{"attack/not-eligible", url.Values{"role": {"quick-look"}, "duration": {"15m0s"}, "justification": {"why"}}, http.StatusForbidden, "You are not eligible for that role."},
		{"attack/control-characters", url.Values{"role": {"bank-admin"}, "duration": {"1h0m0s"}, "justification": {"line\r\nX-Injected: 1"}}, http.StatusBadRequest, "The justification and ticket must be plain text on one line."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := b.do("POST", "/account/roles", tc.form)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("%d, want %d saying %q:\n%s", resp.StatusCode, tc.status, tc.want, body)
			}
			if strings.Contains(body, "invalid elevation request") || strings.Contains(body, "stepgate role") || strings.Contains(body, "goroutine") {
				t.Errorf("the page shows the error's internals:\n%s", body)
			}
			for _, field := range []string{"justification", "ticket"} {
				if v := tc.form.Get(field); v != "" && strings.Contains(v, "kept") && !strings.Contains(body, `value="`+html.EscapeString(v)+`"`) {
					t.Errorf("the form lost the %s %q:\n%s", field, v, body)
				}
			}
			if es := rr.elevations(alice); len(es) != 0 {
				t.Fatalf("a refused request was stored: %+v", es)
			}
		})
	}
}

// TestRolesOtherUsersRequests: a user cannot see, confirm, cancel or
// have the step-up page describe another user's request; its id is
// answered as one that does not exist.
func TestRolesOtherUsersRequests(t *testing.T) {
	t.Parallel()
	rr := newRolesRig(t)
	alice := rr.addUser("alice")
	rr.enrollTOTP(alice)
	rr.eligible(alice, "bank-admin")
	mallory := rr.addUser("mallory")
	msecret := rr.enrollTOTP(mallory)
	e, err := rr.svc.Request(context.Background(), alice, elevate.Ask{Role: "bank-admin", Justification: "real work"})
	if err != nil {
		t.Fatal(err)
	}
	m := rr.browser()
	m.signIn("mallory")
	m.stepUpTOTP(msecret)

	resp, body := m.do("GET", "/account/roles/confirm?id="+url.QueryEscape(e.ID), nil)
	if resp.StatusCode != http.StatusNotFound || strings.Contains(body, "real work") || !strings.Contains(body, "There is no such request among yours") || !strings.Contains(body, `href="/account/roles"`) {
		t.Errorf("attack/read-other: %d\n%s", resp.StatusCode, body)
	}
	resp, _ = m.do("POST", "/account/roles/confirm", url.Values{"id": {e.ID}})
	if resp.StatusCode != http.StatusNotFound || !rr.elevation(e.ID).ProvenAt.IsZero() {
		t.Errorf("attack/confirm-other with a fresh proof of one's own: %d, proven at %v", resp.StatusCode, rr.elevation(e.ID).ProvenAt)
	}
	resp, body = m.do("POST", "/account/roles/end", url.Values{"id": {e.ID}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "There is no such request among yours") || rr.elevation(e.ID).State != store.ElevationPending {
		t.Errorf("attack/cancel-other: %d, state %s\n%s", resp.StatusCode, rr.elevation(e.ID).State, body)
	}
	r := httptest.NewRequest(http.MethodGet, "/stepup", nil)
	if _, ok := rr.p.ElevationStepUps().StepUpFor(r, mallory, store.Session{}, "/account/roles/confirm?id="+e.ID); ok {
		t.Error("attack/describe-other: the step-up page describes another user's request")
	}
	resp, body = m.do("GET", "/account/roles/confirm?id=elv_none", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "There is no such request among yours") {
		t.Errorf("fail/unknown-id: %d\n%s", resp.StatusCode, body)
	}
	// A user eligible for nothing sees a page that says so.
	_, body = m.do("GET", "/account/roles", nil)
	if !strings.Contains(body, "You are not eligible for any role") {
		t.Errorf("mallory's roles page:\n%s", body)
	}
}

// TestRolesCSRF: every change on the roles pages needs the form's token.
func TestRolesCSRF(t *testing.T) {
	t.Parallel()
	rr := newRolesRig(t)
	alice := rr.addUser("alice")
	secret := rr.enrollTOTP(alice)
	rr.eligible(alice, "quick-look")
	b := rr.browser()
	b.signIn("alice")
	b.stepUpTOTP(secret)
	resp, _ := b.postRaw("/account/roles", url.Values{"role": {"quick-look"}})
	if resp.StatusCode != http.StatusForbidden || len(rr.elevations(alice)) != 0 {
		t.Fatalf("attack/cross-site-request: %d, %d stored", resp.StatusCode, len(rr.elevations(alice)))
	}
	e, err := rr.svc.Request(context.Background(), alice, elevate.Ask{Role: "quick-look"})
	if err != nil {
		t.Fatal(err)
	}
	resp, _ = b.postRaw("/account/roles/end", url.Values{"id": {e.ID}})
	if resp.StatusCode != http.StatusForbidden || rr.elevation(e.ID).State != store.ElevationPending {
		t.Fatalf("attack/cross-site-end: %d, state %s", resp.StatusCode, rr.elevation(e.ID).State)
	}
	// ok/cancel: with the form's token, alice cancels her own request.
	resp, _ = b.do("POST", "/account/roles/end", url.Values{"id": {e.ID}})
	loc, _ := resp.Location()
	if resp.StatusCode != http.StatusSeeOther || loc == nil || rr.elevation(e.ID).State != store.ElevationDeactivated {
		t.Fatalf("ok/cancel: %d, state %s", resp.StatusCode, rr.elevation(e.ID).State)
	}
	if _, body := b.do("GET", loc.RequestURI(), nil); !strings.Contains(body, "Your request for quick-look is cancelled.") || !strings.Contains(body, "Ended by you") {
		t.Errorf("the roles page after cancelling:\n%s", body)
	}
}

// TestRolesPagesNeedSignIn: without a session every roles page sends the
// browser to sign in, and back.
func TestRolesPagesNeedSignIn(t *testing.T) {
	t.Parallel()
	rr := newRolesRig(t)
	b := rr.browser()
	for _, path := range []string{"/account/roles", "/account/roles/confirm?id=x"} {
		resp, _ := b.do("GET", path, nil)
		if loc, _ := resp.Location(); resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Path != "/login" || loc.Query().Get("return_to") != path {
			t.Errorf("%s without a session: %d to %v", path, resp.StatusCode, loc)
		}
	}
}

// TestRolesJustificationIsText: what a requester types is shown as text
// on their pages (approvers see it too), never as markup.
func TestRolesJustificationIsText(t *testing.T) {
	t.Parallel()
	rr := newRolesRig(t)
	alice := rr.addUser("alice")
	rr.enrollTOTP(alice)
	rr.eligible(alice, "bank-admin")
	b := rr.browser()
	b.signIn("alice")
	const evil = `<script>alert(1)</script><img src=x onerror=alert(2)>`
	resp, _ := b.do("POST", "/account/roles", url.Values{"role": {"bank-admin"}, "justification": {evil}, "ticket": {`"><b>t</b>`}})
	loc, _ := resp.Location()
	if resp.StatusCode != http.StatusSeeOther || loc == nil {
		t.Fatalf("request: %d", resp.StatusCode)
	}
	for _, page := range []string{"/account/roles", loc.Query().Get("return_to")} {
		_, body := b.do("GET", page, nil)
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") || strings.Contains(body, "<b>t</b>") {
			t.Errorf("attack/markup-in-justification: %s renders the justification as markup:\n%s", page, body)
		}
		if !strings.Contains(body, html.EscapeString(evil)) {
			t.Errorf("%s does not show the justification as text:\n%s", page, body)
		}
	}
}

// TestRolesWithoutAUsableMethod: a user whose methods cannot give the
// activation's proof is sent to the step-up page, which says what would
// and how to get it, and nothing turns active.
func TestRolesWithoutAUsableMethod(t *testing.T) {
	t.Parallel()
	rr := newRolesRig(t)
	bob := rr.addUser("bob")
	rr.eligible(bob, "quick-look")
	b := rr.browser()
	b.signIn("bob")
	resp, _ := b.do("POST", "/account/roles", url.Values{"role": {"quick-look"}})
	loc, _ := resp.Location()
	if resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Path != "/stepup" {
		t.Fatalf("request with a password only: %d to %v, want the step-up page", resp.StatusCode, loc)
	}
	_, body := b.do("GET", loc.RequestURI(), nil)
	for _, want := range []string{"Activate quick-look", "None of your sign-in methods can give this proof", "Add an authenticator app"} {
		if !strings.Contains(body, want) {
			t.Errorf("the step-up page does not say %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, `name="password"`) {
		t.Errorf("the step-up page offers the password for a second factor:\n%s", body)
	}
	if es := rr.elevations(bob); len(es) != 1 || es[0].State != store.ElevationPending || !es[0].ProvenAt.IsZero() {
		t.Fatalf("bob's requests: %+v, want one pending and unproven", es)
	}
}

// TestRolesStepUpSource: the step-up page's description of an activation
// comes from the stored request of the signed-in user, and only for a
// request that still waits.
func TestRolesStepUpSource(t *testing.T) {
	t.Parallel()
	rr := newRolesRig(t)
	alice := rr.addUser("alice")
	rr.eligible(alice, "bank-admin")
	rr.eligible(alice, "quick-look")
	ctx := context.Background()
	waiting, err := rr.svc.Request(ctx, alice, elevate.Ask{Role: "bank-admin", Justification: "why"})
	if err != nil {
		t.Fatal(err)
	}
	ended, err := rr.svc.Request(ctx, alice, elevate.Ask{Role: "quick-look"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rr.svc.Deactivate(ctx, ended.ID, alice, false, ""); err != nil {
		t.Fatal(err)
	}
	src := rr.p.ElevationStepUps()
	r := httptest.NewRequest(http.MethodGet, "/stepup", nil)
	password := store.Session{Events: []store.AuthEvent{{Method: "password", Time: rr.clock.Now(), AMR: []string{"pwd"}}}}
	tests := []struct {
		name, returnTo string
		u              store.User
		ok, missing    bool
	}{
		{"ok/waiting-for-proof", confirmURL(waiting.ID), alice, true, true},
		{"fail/ended", confirmURL(ended.ID), alice, false, false},
		{"fail/unknown", confirmURL("elv_none"), alice, false, false},
		{"fail/other-page", "/account/roles?id=" + waiting.ID, alice, false, false},
		{"attack/other-user", confirmURL(waiting.ID), store.User{ID: "someone-else", Username: "mallory"}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ask, ok := src.StepUpFor(r, tc.u, password, tc.returnTo)
			if ok != tc.ok || (len(ask.Missing) > 0) != tc.missing {
				t.Fatalf("ok %v, missing %v; want ok %v, missing %v", ok, ask.Missing, tc.ok, tc.missing)
			}
			if ok && (ask.App != "Role activation" || len(ask.Contexts) != 1 || ask.Contexts[0].Name != "Activate bank-admin") {
				t.Errorf("described as %+v", ask)
			}
		})
	}
}
