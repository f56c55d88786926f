package app_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/admin/console"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/store"
)

// Roles of the elevation tests: bank-admin needs one approval from the
// group approvers and a justification, ops-admin two approvals,
// bank-viewer none.
const (
	bankAdmin     = "bank-admin"
	opsAdmin      = "ops-admin"
	bankViewer    = "bank-viewer"
	approverGroup = "approvers"
	eveName       = "eve"
	evePassword   = "eve-password-for-the-tests"
)

func withElevation(cfg *config.Config) {
	cfg.Elevation.Roles = []config.ElevationRole{
		{Role: bankAdmin, Justification: "required", Approvers: &config.ElevationApprovers{Group: approverGroup}},
		{Role: opsAdmin, Approvers: &config.ElevationApprovers{Group: approverGroup, Count: 2}},
	}
}

// setupElevation makes the roles and the approver group, puts root in
// it, and makes bob eligible for every role and root for bank-admin. It
// may run more than once.
func (s *consoleRig) setupElevation(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, r := range []string{bankAdmin, opsAdmin, bankViewer} {
		if _, err := s.app.Users.AddRole(ctx, store.Role{Name: r}); err != nil && !strings.Contains(err.Error(), "exists") {
			t.Fatal(err)
		}
	}
	if _, err := s.app.Users.AddGroup(ctx, store.Group{Name: approverGroup}); err != nil && !strings.Contains(err.Error(), "exists") {
		t.Fatal(err)
	}
	if _, err := s.app.Users.SetMemberships(ctx, adminName, []string{approverGroup}, nil); err != nil {
		t.Fatal(err)
	}
	for _, a := range []admin.Assignment{{Role: bankAdmin, User: bobName}, {Role: opsAdmin, User: bobName}, {Role: bankViewer, User: bobName}, {Role: bankAdmin, User: adminName}} {
		var ae *admin.Error
		if _, err := s.app.Admin.Assign(ctx, "user:setup", "", a); err != nil && (!errors.As(err, &ae) || ae.Kind != admin.Conflict) {
			t.Fatal(err)
		}
	}
}

// ask stores a pending request of name's for role, proven as the roles
// page records it after the requester's step-up (proven false leaves it
// waiting for the proof).
func (s *consoleRig) ask(t *testing.T, name, role string, proven bool) store.Elevation {
	t.Helper()
	ctx := context.Background()
	u, err := s.app.Store.GetUserByName(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.app.Elevation.Request(ctx, u, elevate.Ask{Role: role, Duration: 30 * time.Minute, Justification: "payouts are stuck <script>alert(1)</script>", Ticket: "INC-7"})
	if err != nil {
		t.Fatal(err)
	}
	if !proven {
		return e
	}
	e, err = s.app.Store.UpdateElevation(ctx, e.ID, func(cur store.Elevation) (store.Elevation, error) {
		cur.ProvenAt = time.Now()
		return cur, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// activeElevation stores an active elevation of bob's for role, as a
// role without approvers turns active once proven.
func (s *consoleRig) activeElevation(t *testing.T, role string) store.Elevation {
	t.Helper()
	return s.activeElevationOf(t, bobName, role)
}

// activeElevationOf makes name's request for role active.
func (s *consoleRig) activeElevationOf(t *testing.T, name, role string) store.Elevation {
	t.Helper()
	e := s.ask(t, name, role, true)
	e, err := s.app.Store.UpdateElevation(context.Background(), e.ID, func(cur store.Elevation) (store.Elevation, error) {
		now := time.Now()
		cur.State, cur.ActivatedAt, cur.Until = store.ElevationActive, now, now.Add(cur.Duration)
		return cur, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (s *consoleRig) elevation(t *testing.T, id string) store.Elevation {
	t.Helper()
	e, err := s.app.Store.GetElevation(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// elevationChangeCases are the console's elevation forms for
// changeCases.
func (s *consoleRig) elevationChangeCases(t *testing.T) map[string]changeCase {
	t.Helper()
	ctx := context.Background()
	s.setupElevation(t)
	// The requests are erin's: the other change cases disable bob, an
	// approval of a disabled requester is refused, and the sweep ends a
	// disabled user's elevations by itself.
	addUser(t, s.app.Users, "erin", "erin-console-password")
	for _, role := range []string{bankAdmin, bankViewer} {
		if _, err := s.app.Admin.Assign(ctx, "user:setup", "", admin.Assignment{Role: role, User: "erin"}); err != nil {
			t.Fatal(err)
		}
	}
	pending := s.ask(t, "erin", bankAdmin, true)
	active := s.activeElevationOf(t, "erin", bankViewer)
	removable, err := s.app.Admin.Assign(ctx, "user:setup", "", admin.Assignment{Role: bankViewer, Group: approverGroup})
	if err != nil {
		t.Fatal(err)
	}
	hasAssignment := func(principal string) bool {
		all, _ := s.app.Store.ListRoleAssignments(ctx, opsAdmin)
		return slices.ContainsFunc(all, func(a store.RoleAssignment) bool { return a.Principal == principal })
	}
	return map[string]changeCase{
		"/admin/elevations/{id}/decide": {path: "/admin/elevations/" + pending.ID + "/decide",
			form: func() url.Values { return url.Values{"decision": {"approve"}, "comment": {"ok"}} },
			done: func() bool { return len(s.elevation(t, pending.ID).Decisions) > 0 }},
		"/admin/elevations/{id}/revoke": {path: "/admin/elevations/" + active.ID + "/revoke",
			form: func() url.Values { return url.Values{"reason": {"incident over"}} },
			done: func() bool { return s.elevation(t, active.ID).State == store.ElevationDeactivated }},
		"/admin/role-assignments": {path: "/admin/role-assignments",
			form: func() url.Values {
				return url.Values{"role": {opsAdmin}, "holder_type": {"group"}, "holder": {approverGroup}, "kind": {"eligible"}}
			},
			done: func() bool { return hasAssignment(store.GroupPrincipal(approverGroup)) }},
		"/admin/role-assignments/{id}/delete": {path: "/admin/role-assignments/" + removable.ID + "/delete",
			form: func() url.Values { return url.Values{"reason": {"not needed"}} },
			done: func() bool {
				all, _ := s.app.Store.ListRoleAssignments(ctx, bankViewer)
				return !slices.ContainsFunc(all, func(a store.RoleAssignment) bool { return a.ID == removable.ID })
			}},
	}
}

// elevationRow is the row of the elevation id on the elevation page.
func elevationRow(t *testing.T, body, id string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<tr data-elevation="` + regexp.QuoteMeta(id) + `">(.*?)</tr>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no row of %s on the page:\n%s", id, body)
	}
	return m[1]
}

// TestConsoleElevationApprove: an administrator in the approver group
// sees a pending request with everything needed to judge it (requester,
// role, scope, duration, justification, ticket, proof, deadline,
// approvals so far), approves it with a comment, and the role turns
// active for exactly the duration asked; the answer is in the audit
// trail with the administrator's name.
func TestConsoleElevationApprove(t *testing.T) {
	s := startConsole(t)
	s.setupElevation(t)
	c := s.login(t, adminName, adminPassword)
	s.passkeyProof(t, c, time.Minute)
	e := s.ask(t, bobName, bankAdmin, true)

	_, body := get(t, c, s.base+"/admin/elevations")
	if !strings.Contains(body, `href="/admin/elevations" aria-current="page"`) {
		t.Errorf("the navigation has no current Elevation entry")
	}
	row := elevationRow(t, body, e.ID)
	for _, want := range []string{bobName, bankAdmin, "everywhere", "30m0s", "payouts are stuck &lt;script&gt;", "ticket INC-7", "proven", "0 of 1", "group " + approverGroup, `id="approve-` + e.ID + `"`} {
		if !strings.Contains(row, want) {
			t.Errorf("the pending row lacks %q:\n%s", want, row)
		}
	}
	if strings.Contains(body, "<script>alert(1)") {
		t.Fatalf("the justification is not escaped")
	}

	resp, _ := s.postForm(t, c, "/admin/elevations/"+e.ID+"/decide", url.Values{"decision": {"approve"}, "comment": {"looks right"}, "back": {"/admin/elevations"}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/admin/elevations?notice=elevation-approved" {
		t.Fatalf("approve: %d to %q", resp.StatusCode, loc)
	}
	got := s.elevation(t, e.ID)
	if got.State != store.ElevationActive || got.Until.Sub(got.ActivatedAt) != 30*time.Minute ||
		len(got.Decisions) != 1 || got.Decisions[0].By != s.admin.ID || got.Decisions[0].Comment != "looks right" {
		t.Fatalf("after approval: %+v", got)
	}
	entries, err := s.app.Audit.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(entries, func(en audit.Entry) bool {
		return en.Action == "elevation.approve" && en.Actor == "user:"+adminName && en.Target == "elevation:"+e.ID
	}) {
		t.Errorf("no elevation.approve entry by user:%s in the audit trail", adminName)
	}
	_, body = get(t, c, s.base+"/admin/elevations?notice=elevation-approved")
	if row := elevationRow(t, body, e.ID); !strings.Contains(row, `id="revoke-`+e.ID+`"`) || !strings.Contains(body, "Your approval was recorded") {
		t.Errorf("the active elevation is not listed with its revoke form:\n%s", row)
	}
}

// TestConsoleElevationRefusals performs the attacks on the approval
// form: an administrator outside the approver group, the requester
// approving themself, an answer before the requester's proof, a
// replayed approval (after the request turned active, and a second
// answer of the same approver where two are needed), a post without the
// console's passkey rule, and a post without the CSRF token. Each is
// refused with a message that says why and that nothing changed, and
// the stored request is the same version as before.
func TestConsoleElevationRefusals(t *testing.T) {
	s := startConsole(t)
	s.setupElevation(t)
	addUser(t, s.app.Users, eveName, evePassword, admin.Role)
	root := s.login(t, adminName, adminPassword)
	s.passkeyProof(t, root, time.Minute)
	eve := s.login(t, eveName, evePassword)
	s.passkeyProof(t, eve, time.Minute)
	noPasskey := s.login(t, adminName, adminPassword)

	approve := url.Values{"decision": {"approve"}, "comment": {"fine"}}
	unchanged := func(t *testing.T, before store.Elevation) {
		t.Helper()
		if after := s.elevation(t, before.ID); after.Version != before.Version || after.State != before.State || len(after.Decisions) != len(before.Decisions) {
			t.Fatalf("the request changed: %+v\nwas %+v", after, before)
		}
	}
	refused := func(t *testing.T, c *http.Client, e store.Elevation, form url.Values, status int, want ...string) {
		t.Helper()
		resp, body := s.postForm(t, c, "/admin/elevations/"+e.ID+"/decide", form)
		if resp.StatusCode != status {
			t.Fatalf("status %d, want %d:\n%s", resp.StatusCode, status, body)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("the refusal does not say %q:\n%s", w, body)
			}
		}
		unchanged(t, e)
	}

	t.Run("fail/not-an-approver", func(t *testing.T) {
		e := s.ask(t, bobName, bankAdmin, true)
		_, body := get(t, eve, s.base+"/admin/elevations")
		if row := elevationRow(t, body, e.ID); strings.Contains(row, "approve-"+e.ID) || !strings.Contains(row, "only members of the group "+approverGroup+" decide") {
			t.Errorf("eve is offered the form, or not told who decides:\n%s", row)
		}
		refused(t, eve, e, approve, http.StatusForbidden, "Not an approver", "members of the group "+approverGroup, "Nothing was changed")
		refused(t, eve, e, url.Values{"decision": {"deny"}}, http.StatusForbidden, "Not an approver")
		s.cancel(t, e)
	})
	t.Run("fail/self-approval", func(t *testing.T) {
		e := s.ask(t, adminName, bankAdmin, true)
		_, body := get(t, root, s.base+"/admin/elevations")
		if row := elevationRow(t, body, e.ID); strings.Contains(row, "approve-"+e.ID) || !strings.Contains(row, "your own request") {
			t.Errorf("root is offered to approve their own request:\n%s", row)
		}
		refused(t, root, e, approve, http.StatusForbidden, "A requester cannot approve their own request", "Nothing was changed")
		if u, _ := s.app.Store.GetUser(context.Background(), s.admin.ID); slices.Contains(u.RolesAt(time.Now(), ""), bankAdmin) {
			t.Fatal("root holds bank-admin after approving themself")
		}
		s.cancel(t, e)
	})
	t.Run("fail/unproven", func(t *testing.T) {
		e := s.ask(t, bobName, bankAdmin, false)
		refused(t, root, e, approve, http.StatusConflict, "not given the proof", "/account/roles")
		s.cancel(t, e)
	})
	t.Run("fail/replayed-approval", func(t *testing.T) {
		e := s.ask(t, bobName, bankAdmin, true)
		if resp, body := s.postForm(t, root, "/admin/elevations/"+e.ID+"/decide", approve); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("first approval: %d\n%s", resp.StatusCode, body)
		}
		e = s.elevation(t, e.ID)
		refused(t, root, e, approve, http.StatusConflict, "The request is no longer pending (it is active)", "Nothing was changed")
		refused(t, root, e, url.Values{"decision": {"deny"}}, http.StatusConflict, "no longer pending")
		s.cancel(t, e)
	})
	t.Run("fail/second-answer-of-one-approver", func(t *testing.T) {
		e := s.ask(t, bobName, opsAdmin, true)
		if resp, body := s.postForm(t, root, "/admin/elevations/"+e.ID+"/decide", approve); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("first approval: %d\n%s", resp.StatusCode, body)
		}
		e = s.elevation(t, e.ID)
		if e.State != store.ElevationPending {
			t.Fatalf("one approval of two made it %s", e.State)
		}
		refused(t, root, e, approve, http.StatusConflict, "You already answered")
		s.cancel(t, e)
	})
	t.Run("fail/no-passkey", func(t *testing.T) {
		e := s.ask(t, bobName, bankAdmin, true)
		refused(t, noPasskey, e, approve, http.StatusForbidden, console.ChangeRuleName)
		s.cancel(t, e)
	})
	t.Run("fail/no-csrf-token", func(t *testing.T) {
		e := s.ask(t, bobName, bankAdmin, true)
		resp, body := post(t, root, s.base+"/admin/elevations/"+e.ID+"/decide", approve)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "nothing was changed") {
			t.Fatalf("status %d:\n%s", resp.StatusCode, body)
		}
		unchanged(t, e)
		s.cancel(t, e)
	})
	t.Run("fail/no-decision", func(t *testing.T) {
		e := s.ask(t, bobName, bankAdmin, true)
		refused(t, root, e, url.Values{"comment": {"hm"}}, http.StatusBadRequest, "Choose approve or deny")
		refused(t, root, e, url.Values{"decision": {"approve"}, "comment": {"two\nlines"}}, http.StatusBadRequest, "plain text on one line")
		s.cancel(t, e)
	})
	t.Run("fail/unknown-request", func(t *testing.T) {
		resp, body := s.postForm(t, root, "/admin/elevations/elv_NOPE/decide", approve)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "No such elevation request") {
			t.Fatalf("status %d:\n%s", resp.StatusCode, body)
		}
	})
	t.Run("ok/deny", func(t *testing.T) {
		e := s.ask(t, bobName, bankAdmin, true)
		resp, _ := s.postForm(t, root, "/admin/elevations/"+e.ID+"/decide", url.Values{"decision": {"deny"}, "comment": {"not during the freeze"}})
		if got := s.elevation(t, e.ID); resp.StatusCode != http.StatusSeeOther || got.State != store.ElevationDenied || got.EndReason != "not during the freeze" {
			t.Fatalf("deny: status %d, %+v", resp.StatusCode, got)
		}
	})
}

// cancel ends e so that the next case may ask for the role again.
func (s *consoleRig) cancel(t *testing.T, e store.Elevation) {
	t.Helper()
	cur := s.elevation(t, e.ID)
	if cur.State != store.ElevationPending && cur.State != store.ElevationActive {
		return
	}
	if _, err := s.app.Elevation.Deactivate(context.Background(), e.ID, store.User{ID: "test"}, true, "next case"); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleElevationRevoke: an administrator ends bob's active
// elevation with a reason; the role stops counting at once, the history
// says who ended it and why. Without a reason, or a second time, nothing
// changes.
func TestConsoleElevationRevoke(t *testing.T) {
	s := startConsole(t)
	s.setupElevation(t)
	c := s.login(t, adminName, adminPassword)
	s.passkeyProof(t, c, time.Minute)
	e := s.activeElevation(t, bankViewer)
	ctx := context.Background()
	if u, _ := s.app.Store.GetUser(ctx, s.bob.ID); !slices.Contains(u.RolesAt(time.Now(), "webapp"), bankViewer) {
		t.Fatalf("the fixture is wrong: bob does not hold %s", bankViewer)
	}
	path := "/admin/elevations/" + e.ID + "/revoke"
	if resp, body := s.postForm(t, c, path, url.Values{"reason": {"  "}}); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Say why") {
		t.Fatalf("revoke without a reason: %d\n%s", resp.StatusCode, body)
	}
	if s.elevation(t, e.ID).State != store.ElevationActive {
		t.Fatal("a revoke without a reason ended the elevation")
	}
	if resp, _ := s.postForm(t, c, path, url.Values{"reason": {"incident over"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	got := s.elevation(t, e.ID)
	if got.State != store.ElevationDeactivated || got.EndedBy != s.admin.ID || got.EndReason != "incident over" {
		t.Fatalf("after revoke: %+v", got)
	}
	if u, _ := s.app.Store.GetUser(ctx, s.bob.ID); slices.Contains(u.RolesAt(time.Now(), "webapp"), bankViewer) {
		t.Fatal("bob still holds the role after the revoke")
	}
	resp, body := s.postForm(t, c, path, url.Values{"reason": {"again"}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "no longer pending (it is deactivated)") || s.elevation(t, e.ID).Version != got.Version {
		t.Fatalf("a second revoke: %d\n%s", resp.StatusCode, body)
	}
	_, body = get(t, c, s.base+"/admin/elevations")
	row := elevationRow(t, body, e.ID)
	for _, want := range []string{"deactivated", adminName, "incident over"} {
		if !strings.Contains(row, want) {
			t.Errorf("the history row lacks %q:\n%s", want, row)
		}
	}
}

// TestConsoleElevationHistoryPages: history lists ended requests newest
// first, 25 to a page, with a link to older ones that shows the rest; a
// cursor the server did not give is refused plainly.
func TestConsoleElevationHistoryPages(t *testing.T) {
	s := startConsole(t)
	s.setupElevation(t)
	c := s.login(t, adminName, adminPassword)
	ctx := context.Background()
	start := time.Now().Add(-time.Hour)
	for i := range 30 {
		if _, err := s.app.Store.CreateElevation(ctx, store.Elevation{ID: fmt.Sprintf("elv_HIST%02d", i), UserID: s.bob.ID, Role: bankAdmin,
			Duration: time.Hour, State: store.ElevationExpired, RequestedAt: start.Add(time.Duration(i) * time.Minute),
			Deadline: start.Add(time.Hour), EndedAt: start.Add(time.Hour), EndedBy: "system", EndReason: elevate.ReasonNoDecision}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(body string) []string {
		m := regexp.MustCompile(`(?s)id="history-list">.*?</table>`).FindString(body)
		var out []string
		for _, x := range regexp.MustCompile(`data-elevation="(elv_HIST\d+)"`).FindAllStringSubmatch(m, -1) {
			out = append(out, x[1])
		}
		return out
	}
	_, body := get(t, c, s.base+"/admin/elevations")
	first := ids(body)
	if len(first) != 25 || first[0] != "elv_HIST29" || first[24] != "elv_HIST05" {
		t.Fatalf("first page %v", first)
	}
	m := regexp.MustCompile(`href="([^"]+)" id="next-page"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no link to older requests")
	}
	_, body = get(t, c, s.base+strings.ReplaceAll(m[1], "&amp;", "&"))
	if second := ids(body); len(second) != 5 || second[0] != "elv_HIST04" || second[4] != "elv_HIST00" || strings.Contains(body, `id="next-page"`) {
		t.Fatalf("second page %v", second)
	}
	resp, body := get(t, c, s.base+"/admin/elevations?before=nonsense")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "history page does not exist") {
		t.Fatalf("a forged cursor: %d\n%s", resp.StatusCode, body)
	}
}

// TestConsoleRoleAssignments: an assignment is added for a user or a
// group with a scope, listed, refused when its holder or role does not
// exist or it exists already, and removed.
func TestConsoleRoleAssignments(t *testing.T) {
	s := startConsole(t)
	s.setupElevation(t)
	c := s.login(t, adminName, adminPassword)
	s.passkeyProof(t, c, time.Minute)
	add := func(form url.Values) (*http.Response, string) {
		return s.postForm(t, c, "/admin/role-assignments", form)
	}
	for name, tc := range map[string]struct {
		form   url.Values
		status int
		want   string
	}{
		"fail/unknown-user":   {url.Values{"role": {opsAdmin}, "holder_type": {"user"}, "holder": {"mallory"}}, http.StatusNotFound, `No user &#34;mallory&#34;`},
		"fail/unknown-group":  {url.Values{"role": {opsAdmin}, "holder_type": {"group"}, "holder": {"nobody"}}, http.StatusNotFound, `No group &#34;nobody&#34;`},
		"fail/unknown-role":   {url.Values{"role": {"root-of-all"}, "holder_type": {"user"}, "holder": {bobName}}, http.StatusNotFound, "stepgate role add root-of-all"},
		"fail/no-holder-type": {url.Values{"role": {opsAdmin}, "holder": {bobName}}, http.StatusBadRequest, "user or a group"},
		"fail/bad-kind":       {url.Values{"role": {opsAdmin}, "holder_type": {"user"}, "holder": {bobName}, "kind": {"forever"}}, http.StatusBadRequest, "Kind must be"},
		"fail/bad-scope":      {url.Values{"role": {opsAdmin}, "holder_type": {"user"}, "holder": {adminName}, "scope": {"bank, <x>"}}, http.StatusBadRequest, "is not an app id"},
		"fail/duplicate":      {url.Values{"role": {bankAdmin}, "holder_type": {"user"}, "holder": {bobName}}, http.StatusConflict, "already has an eligible assignment"},
	} {
		t.Run(name, func(t *testing.T) {
			before, _ := s.app.Store.ListRoleAssignments(context.Background(), "")
			resp, body := add(tc.form)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) || !strings.Contains(body, "Nothing was changed") {
				t.Fatalf("status %d, want %d with %q:\n%s", resp.StatusCode, tc.status, tc.want, body)
			}
			if after, _ := s.app.Store.ListRoleAssignments(context.Background(), ""); len(after) != len(before) {
				t.Fatalf("%d assignments, was %d", len(after), len(before))
			}
		})
	}
	resp, _ := add(url.Values{"role": {opsAdmin}, "holder_type": {"group"}, "holder": {approverGroup}, "scope": {"bank, bank-api"}, "reason": {"on call"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add: %d", resp.StatusCode)
	}
	all, _ := s.app.Store.ListRoleAssignments(context.Background(), opsAdmin)
	i := slices.IndexFunc(all, func(a store.RoleAssignment) bool { return a.Principal == store.GroupPrincipal(approverGroup) })
	if i < 0 || !slices.Equal(all[i].Scope, []string{"bank", "bank-api"}) || all[i].Kind != store.AssignEligible || all[i].CreatedBy != "user:"+adminName {
		t.Fatalf("assignments %+v", all)
	}
	_, body := get(t, c, s.base+"/admin/elevations")
	if !regexp.MustCompile(`(?s)data-assignment="` + all[i].ID + `">.*?group ` + approverGroup + `.*?bank, bank-api`).MatchString(body) {
		t.Errorf("the assignment is not listed with its holder and scope:\n%s", body)
	}
	if resp, _ := s.postForm(t, c, "/admin/role-assignments/"+all[i].ID+"/delete", url.Values{"reason": {"rotation over"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: %d", resp.StatusCode)
	}
	if resp, body := s.postForm(t, c, "/admin/role-assignments/"+all[i].ID+"/delete", nil); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "No role assignment") {
		t.Fatalf("removing it again: %d\n%s", resp.StatusCode, body)
	}
}

// TestApprovalsPage: a member of the approver group who is not an
// administrator answers on /approvals, behind the console's own checks
// (CSRF token, a recent passkey), and sees only the requests of roles
// whose approver group they are in; the console itself stays closed to
// them. The attacks: a user outside the group posting an answer, the
// requester answering their own request, a replayed answer, an answer
// without the passkey or without the CSRF token, a disabled approver
// with a live session, and an anonymous browser. Each is refused and the request is unchanged.
func TestApprovalsPage(t *testing.T) {
	s := startConsole(t)
	s.setupElevation(t)
	ctx := context.Background()
	// carol approves without being an administrator; dave is neither.
	carol := addUser(t, s.app.Users, "carol", "carol-password-for-tests")
	addUser(t, s.app.Users, "dave", "dave-password-for-tests")
	if _, err := s.app.Users.SetMemberships(ctx, "carol", []string{approverGroup}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.app.Users.SetMemberships(ctx, bobName, []string{approverGroup}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.app.Admin.Assign(ctx, "user:setup", "", admin.Assignment{Role: bankAdmin, User: "carol"}); err != nil {
		t.Fatal(err)
	}
	c := s.login(t, "carol", "carol-password-for-tests")
	s.passkeyProof(t, c, time.Minute)
	d := s.login(t, "dave", "dave-password-for-tests")
	s.passkeyProof(t, d, time.Minute)
	noPasskey := s.login(t, "carol", "carol-password-for-tests")

	e := s.ask(t, bobName, bankAdmin, true)
	own := s.ask(t, "carol", bankAdmin, true)
	path := "/approvals/" + e.ID + "/decide"
	approve := url.Values{"decision": {"approve"}, "comment": {"fine"}}
	unchanged := func(t *testing.T, before store.Elevation) {
		t.Helper()
		if after := s.elevation(t, before.ID); after.Version != before.Version {
			t.Fatalf("the request changed: %+v", after)
		}
	}

	_, body := get(t, c, s.base+"/approvals")
	if row := elevationRow(t, body, e.ID); !strings.Contains(row, `id="approve-`+e.ID+`"`) || !strings.Contains(row, "payouts are stuck") {
		t.Fatalf("carol is not offered bob's request:\n%s", row)
	}
	if row := elevationRow(t, body, own.ID); strings.Contains(row, "approve-"+own.ID) || !strings.Contains(row, "your own request") {
		t.Errorf("carol is offered her own request:\n%s", row)
	}
	if strings.Contains(body, `href="/admin/policies"`) {
		t.Errorf("the approvals page shows the console's navigation")
	}
	if resp, _ := get(t, c, s.base+"/admin/elevations"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("carol reached the console: %d", resp.StatusCode)
	}

	t.Run("fail/not-in-the-group", func(t *testing.T) {
		_, body := get(t, d, s.base+"/approvals")
		if strings.Contains(body, e.ID) || strings.Contains(body, "payouts are stuck") || !strings.Contains(body, "No request waits for your answer") {
			t.Fatalf("dave sees requests of a group he is not in:\n%s", body)
		}
		resp, body := s.postForm(t, d, path, approve)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Not an approver") {
			t.Fatalf("dave's answer: %d\n%s", resp.StatusCode, body)
		}
		unchanged(t, e)
	})
	t.Run("fail/self-approval", func(t *testing.T) {
		resp, body := s.postForm(t, c, "/approvals/"+own.ID+"/decide", approve)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "cannot approve their own request") {
			t.Fatalf("carol approving herself: %d\n%s", resp.StatusCode, body)
		}
		unchanged(t, own)
	})
	t.Run("fail/no-passkey", func(t *testing.T) {
		resp, body := s.postForm(t, noPasskey, path, approve)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, console.ChangeRuleName) || !strings.Contains(body, "approvals included") {
			t.Fatalf("without a passkey: %d\n%s", resp.StatusCode, body)
		}
		unchanged(t, e)
	})
	t.Run("fail/no-csrf-token", func(t *testing.T) {
		resp, body := post(t, c, s.base+path, approve)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "nothing was changed") {
			t.Fatalf("without the token: %d\n%s", resp.StatusCode, body)
		}
		unchanged(t, e)
	})
	t.Run("fail/disabled-approver", func(t *testing.T) {
		// Disabled in the store directly: the session stays, the flag
		// must still close the door.
		erin := addUser(t, s.app.Users, "erin", "erin-password-for-tests")
		if _, err := s.app.Users.SetMemberships(ctx, "erin", []string{approverGroup}, nil); err != nil {
			t.Fatal(err)
		}
		b := s.login(t, "erin", "erin-password-for-tests")
		s.passkeyProof(t, b, time.Minute)
		if _, err := s.app.Store.UpdateUser(ctx, erin.ID, func(u store.User) (store.User, error) {
			u.Disabled = true
			return u, nil
		}); err != nil {
			t.Fatal(err)
		}
		if resp, body := get(t, b, s.base+"/approvals"); resp.StatusCode != http.StatusForbidden || strings.Contains(body, e.ID) {
			t.Fatalf("a disabled approver's page: %d\n%s", resp.StatusCode, body)
		}
		if resp, _ := s.postForm(t, b, path, approve); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a disabled approver's answer: %d", resp.StatusCode)
		}
		unchanged(t, e)
	})
	t.Run("fail/anonymous", func(t *testing.T) {
		resp, _ := s.consoleRequest(t, browser(t), http.MethodGet, "/approvals")
		if loc, _ := resp.Location(); resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Path != "/login" || loc.Query().Get("return_to") != "/approvals" {
			t.Fatalf("anonymous: %d to %v", resp.StatusCode, loc)
		}
	})

	resp, _ := s.postForm(t, c, path, url.Values{"decision": {"approve"}, "comment": {"fine"}, "back": {"/approvals"}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/approvals?notice=answered-approved" {
		t.Fatalf("carol's approval: %d to %q", resp.StatusCode, loc)
	}
	got := s.elevation(t, e.ID)
	if got.State != store.ElevationActive || got.Decisions[0].By != carol.ID {
		t.Fatalf("after carol's approval: %+v", got)
	}
	t.Run("fail/replayed-approval", func(t *testing.T) {
		resp, body := s.postForm(t, c, path, approve)
		if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "no longer pending (it is active)") || !strings.Contains(body, "Nothing was changed") {
			t.Fatalf("the replay: %d\n%s", resp.StatusCode, body)
		}
		unchanged(t, got)
	})
}
