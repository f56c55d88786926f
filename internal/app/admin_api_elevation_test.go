package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/users"
)

// apiElevationRig is the admin API server with the elevation roles, the
// requester alice (eligible for bank-admin and ops-admin), the approver
// carol (in the approver group) and dave (not in it).
type apiElevationRig struct {
	*oidcServer
	alice, carol, dave store.User
}

func startElevationAPI(t *testing.T) *apiElevationRig {
	t.Helper()
	s := startAdminAPI(t)
	ctx := context.Background()
	for _, r := range []string{bankAdmin, opsAdmin} {
		if _, err := s.app.Users.AddRole(ctx, store.Role{Name: r}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.app.Users.AddGroup(ctx, store.Group{Name: approverGroup}); err != nil {
		t.Fatal(err)
	}
	r := &apiElevationRig{oidcServer: s}
	r.alice, _ = s.app.Store.GetUserByName(ctx, testUser)
	for name, groups := range map[string][]string{"carol": {approverGroup}, "dave": nil} {
		u, err := s.app.Users.Add(ctx, users.NewUser{Username: name, Password: name + "-password-for-tests", Email: name + "@example.com", Groups: groups})
		if err != nil {
			t.Fatal(err)
		}
		if name == "carol" {
			r.carol = u
		} else {
			r.dave = u
		}
	}
	return r
}

// call sends a JSON request with the API token and decodes the answer
// into out (when not nil); it returns the status and the error code.
func (r *apiElevationRig) call(t *testing.T, method, path string, in, out any) (int, string) {
	t.Helper()
	body := ""
	if in != nil {
		b, _ := json.Marshal(in)
		body = string(b)
	}
	status, raw := apiCall(t, r.base, apiToken, method, path, body)
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if status >= 400 {
		_ = json.Unmarshal([]byte(raw), &e)
		return status, e.Error + ": " + e.Description
	}
	if out != nil {
		if err := json.Unmarshal([]byte(raw), out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
	return status, ""
}

// proven asks for role as alice and marks the request proven, as her
// roles page does after her step-up.
func (r *apiElevationRig) proven(t *testing.T, role string) store.Elevation {
	t.Helper()
	ctx := context.Background()
	e, err := r.app.Elevation.Request(ctx, r.alice, elevate.Ask{Role: role, Duration: 20 * time.Minute, Justification: "rotate the keys"})
	if err != nil {
		t.Fatal(err)
	}
	e, err = r.app.Store.UpdateElevation(ctx, e.ID, func(cur store.Elevation) (store.Elevation, error) {
		cur.ProvenAt = time.Now()
		return cur, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestAdminAPIRoleAssignments: assignments are made for a user or a
// group, listed, refused with a clear error when they name nothing that
// exists, name both holders or repeat one, and removed. The
// administrators' role cannot be assigned (in any letter case): an
// assignment would look like console access without being it, and an
// elevated administrator could approve further elevations.
func TestAdminAPIRoleAssignments(t *testing.T) {
	r := startElevationAPI(t)
	for name, tc := range map[string]struct {
		body   string
		status int
		want   string
	}{
		"fail/unknown-user":      {`{"role":"bank-admin","user":"mallory"}`, http.StatusNotFound, `"error":"not_found","error_description":"no user \"mallory\""`},
		"fail/unknown-group":     {`{"role":"bank-admin","group":"nobody"}`, http.StatusNotFound, `no group \"nobody\"`},
		"fail/unknown-role":      {`{"role":"root","user":"alice"}`, http.StatusNotFound, "stepgate role add root"},
		"fail/two-holders":       {`{"role":"bank-admin","user":"alice","group":"approvers"}`, http.StatusBadRequest, "exactly one holder"},
		"fail/no-holder":         {`{"role":"bank-admin"}`, http.StatusBadRequest, "exactly one holder"},
		"fail/bad-kind":          {`{"role":"bank-admin","user":"alice","kind":"permanent"}`, http.StatusBadRequest, "kind must be"},
		"fail/bad-scope":         {`{"role":"bank-admin","user":"alice","scope":["../x"]}`, http.StatusBadRequest, "is not an app id"},
		"fail/unknown-field":     {`{"role":"bank-admin","user":"alice","until":"never"}`, http.StatusBadRequest, "until"},
		"fail/admin-role":        {`{"role":"stepgate-admin","user":"alice"}`, http.StatusBadRequest, "only as a standing role"},
		"fail/admin-role-active": {`{"role":"STEPGATE-ADMIN","user":"alice","kind":"active"}`, http.StatusBadRequest, "only as a standing role"},
	} {
		t.Run(name, func(t *testing.T) {
			status, body := apiCall(t, r.base, apiToken, "POST", "/api/v1/role-assignments", tc.body)
			if status != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("%d %s, want %d with %q", status, body, tc.status, tc.want)
			}
		})
	}
	var made admin.AssignmentInfo
	if status, msg := r.call(t, "POST", "/api/v1/role-assignments", map[string]any{"role": bankAdmin, "user": testUser, "scope": []string{"bank"}, "reason": "on call"}, &made); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, msg)
	}
	if made.User != testUser || made.Kind != store.AssignEligible || !slices.Equal(made.Scope, []string{"bank"}) || made.CreatedBy != "api-token" {
		t.Fatalf("made %+v", made)
	}
	if status, msg := r.call(t, "POST", "/api/v1/role-assignments", map[string]any{"role": bankAdmin, "user": testUser}, nil); status != http.StatusConflict || !strings.HasPrefix(msg, "conflict: ") {
		t.Fatalf("duplicate: %d %s", status, msg)
	}
	var list struct {
		Assignments []admin.AssignmentInfo `json:"assignments"`
	}
	r.call(t, "GET", "/api/v1/role-assignments?role="+bankAdmin, nil, &list)
	if len(list.Assignments) != 1 || list.Assignments[0].ID != made.ID {
		t.Fatalf("list %+v", list)
	}
	if status, msg := r.call(t, "DELETE", "/api/v1/role-assignments/"+made.ID+"?reason=rotation", nil, nil); status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", status, msg)
	}
	if status, msg := r.call(t, "DELETE", "/api/v1/role-assignments/"+made.ID, nil, nil); status != http.StatusNotFound || !strings.Contains(msg, "no role assignment") {
		t.Fatalf("delete again: %d %s", status, msg)
	}
	entries, _ := r.app.Audit.List(context.Background())
	for _, action := range []string{"role.assign", "role.unassign"} {
		if !slices.ContainsFunc(entries, func(e audit.Entry) bool { return e.Action == action && e.Actor == "api-token" }) {
			t.Errorf("no %s by api-token in the audit trail", action)
		}
	}
}

// TestAdminAPIElevationDecisions performs the attacks on approvals
// through the API, which acts for the approver the body names: the
// requester approving themself, someone outside the approver group, an
// answer before the requester's proof, no approver at all, and a
// replayed approval. Each is refused with its error and leaves the
// request as it was; the approver's answer then goes through, is in the
// audit trail with both the API caller and the approver, and the
// administrator's revoke ends the elevation once.
func TestAdminAPIElevationDecisions(t *testing.T) {
	r := startElevationAPI(t)
	ctx := context.Background()
	for _, role := range []string{bankAdmin, opsAdmin} {
		if _, err := r.app.Admin.Assign(ctx, "user:setup", "", admin.Assignment{Role: role, User: testUser}); err != nil {
			t.Fatal(err)
		}
	}
	unproven, err := r.app.Elevation.Request(ctx, r.alice, elevate.Ask{Role: opsAdmin})
	if err != nil {
		t.Fatal(err)
	}
	e := r.proven(t, bankAdmin)
	approve := func(id, approver string) (int, string) {
		return r.call(t, "POST", "/api/v1/elevations/"+id+"/approve", map[string]string{"approver": approver, "comment": "ok"}, nil)
	}
	same := func(t *testing.T, before store.Elevation) {
		t.Helper()
		after, err := r.app.Store.GetElevation(ctx, before.ID)
		if err != nil || after.Version != before.Version {
			t.Fatalf("the request changed: %+v (%v)", after, err)
		}
	}
	for _, tc := range []struct {
		name     string
		target   store.Elevation
		approver string
		status   int
		want     string
	}{
		{"fail/self-approval", e, testUser, http.StatusForbidden, "access_denied: a requester cannot approve their own request"},
		{"fail/not-an-approver", e, "dave", http.StatusForbidden, "access_denied: not an approver of this role: approvers of bank-admin are the members of the group approvers"},
		{"fail/unknown-approver", e, "mallory", http.StatusNotFound, `no user "mallory"`},
		{"fail/no-approver", e, " ", http.StatusBadRequest, "approver is required"},
		{"fail/unproven", unproven, "carol", http.StatusConflict, "conflict: the requester has not given the proof"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, msg := approve(tc.target.ID, tc.approver)
			if status != tc.status || !strings.Contains(msg, tc.want) {
				t.Fatalf("%d %q, want %d %q", status, msg, tc.status, tc.want)
			}
			same(t, tc.target)
		})
	}

	var got admin.ElevationInfo
	if status, msg := r.call(t, "GET", "/api/v1/elevations/"+e.ID, nil, &got); status != http.StatusOK || !got.Proven || got.Needed != 1 || got.ApproverGroup != approverGroup || got.User != testUser {
		t.Fatalf("get: %d %s %+v", status, msg, got)
	}
	if status, msg := r.call(t, "POST", "/api/v1/elevations/"+e.ID+"/approve", map[string]string{"approver": "carol", "comment": "fine"}, &got); status != http.StatusOK {
		t.Fatalf("approve: %d %s", status, msg)
	}
	if got.State != store.ElevationActive || got.Approvals != 1 || got.Decisions[0].By != "carol" || got.Until.Sub(got.ActivatedAt) != 20*time.Minute {
		t.Fatalf("after approval %+v", got)
	}
	if u, _ := r.app.Store.GetUser(ctx, r.alice.ID); !slices.Contains(u.RolesAt(time.Now(), "webapp"), bankAdmin) {
		t.Fatal("alice does not hold bank-admin after the approval")
	}
	active, _ := r.app.Store.GetElevation(ctx, e.ID)
	t.Run("fail/replayed-approval", func(t *testing.T) {
		for _, verb := range []string{"approve", "deny"} {
			status, msg := r.call(t, "POST", "/api/v1/elevations/"+e.ID+"/"+verb, map[string]string{"approver": "carol"}, nil)
			if status != http.StatusConflict || !strings.Contains(msg, "no longer pending (it is active)") {
				t.Fatalf("%s again: %d %s", verb, status, msg)
			}
			same(t, active)
		}
	})
	entries, _ := r.app.Audit.List(ctx)
	if !slices.ContainsFunc(entries, func(en audit.Entry) bool {
		return en.Action == "elevation.approve" && en.Actor == "api-token" && strings.Contains(string(en.After), `"approver":"carol"`)
	}) {
		t.Errorf("the audit trail does not name both the API token and the approver")
	}

	var page admin.ElevationPage
	if status, msg := r.call(t, "GET", "/api/v1/elevations?state=active&user="+testUser, nil, &page); status != http.StatusOK || len(page.Elevations) != 1 || page.Elevations[0].ID != e.ID {
		t.Fatalf("list active: %d %s %+v", status, msg, page)
	}
	if status, msg := r.call(t, "POST", "/api/v1/elevations/"+e.ID+"/revoke", map[string]string{"reason": "done early"}, &got); status != http.StatusOK || got.State != store.ElevationDeactivated || got.EndedBy != "api-token" || got.EndReason != "done early" {
		t.Fatalf("revoke: %d %s %+v", status, msg, got)
	}
	if u, _ := r.app.Store.GetUser(ctx, r.alice.ID); slices.Contains(u.RolesAt(time.Now(), "webapp"), bankAdmin) {
		t.Fatal("alice holds bank-admin after the revoke")
	}
	if status, msg := r.call(t, "POST", "/api/v1/elevations/"+e.ID+"/revoke", map[string]string{"reason": "again"}, nil); status != http.StatusConflict || !strings.Contains(msg, "it is deactivated") {
		t.Fatalf("revoke again: %d %s", status, msg)
	}
	if status, msg := r.call(t, "POST", "/api/v1/elevations/"+unproven.ID+"/deny", map[string]string{"approver": "carol", "comment": "no"}, nil); status != http.StatusConflict {
		t.Fatalf("deny before the proof: %d %s", status, msg)
	}
}

// TestAdminAPIElevationList: the list filters by user, role and state,
// pages with its cursor, and refuses filters it does not know.
func TestAdminAPIElevationList(t *testing.T) {
	r := startElevationAPI(t)
	ctx := context.Background()
	start := time.Now().Add(-time.Hour)
	for i := range 7 {
		user, role := r.alice.ID, bankAdmin
		if i%2 == 1 {
			user, role = r.dave.ID, opsAdmin
		}
		if _, err := r.app.Store.CreateElevation(ctx, store.Elevation{ID: fmt.Sprintf("elv_LIST%d", i), UserID: user, Role: role, Duration: time.Hour,
			State: store.ElevationDenied, RequestedAt: start.Add(time.Duration(i) * time.Minute), Deadline: start.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	cursor := ""
	for range 10 {
		var page admin.ElevationPage
		q := url.Values{"limit": {"3"}, "state": {"denied,expired"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		if status, msg := r.call(t, "GET", "/api/v1/elevations?"+q.Encode(), nil, &page); status != http.StatusOK {
			t.Fatalf("page: %d %s", status, msg)
		}
		for _, e := range page.Elevations {
			seen = append(seen, e.ID)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if want := []string{"elv_LIST6", "elv_LIST5", "elv_LIST4", "elv_LIST3", "elv_LIST2", "elv_LIST1", "elv_LIST0"}; !slices.Equal(seen, want) {
		t.Fatalf("paged %v, want %v", seen, want)
	}
	var page admin.ElevationPage
	r.call(t, "GET", "/api/v1/elevations?user=dave&role="+opsAdmin, nil, &page)
	if len(page.Elevations) != 3 || page.Elevations[0].User != "dave" {
		t.Fatalf("dave's: %+v", page)
	}
	for _, q := range []string{"state=approved", "limit=0", "limit=501", "cursor=xyz", "user=mallory"} {
		if status, msg := r.call(t, "GET", "/api/v1/elevations?"+q, nil, nil); status != http.StatusBadRequest && status != http.StatusNotFound {
			t.Errorf("%s: %d %s, want a refusal", q, status, msg)
		}
	}
	if status, msg := r.call(t, "GET", "/api/v1/elevations/elv_NOPE", nil, nil); status != http.StatusNotFound || !strings.Contains(msg, "no elevation request") {
		t.Errorf("unknown id: %d %s", status, msg)
	}
}

// TestAdminAPIElevationRaces performs the races and late answers: two
// approvers answering one request at once, many times over, end in
// exactly one recorded answer; an answer after the request's deadline is
// refused and records the lapse; an answer that tries to change the
// request's terms (a longer duration) is refused as a field the API does
// not take, and the request keeps the duration that was asked for.
func TestAdminAPIElevationRaces(t *testing.T) {
	r := startElevationAPI(t)
	ctx := context.Background()
	erin, err := r.app.Users.Add(ctx, users.NewUser{Username: "erin", Password: "erin-password-for-tests", Email: "erin@example.com", Groups: []string{approverGroup}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.app.Admin.Assign(ctx, "user:setup", "", admin.Assignment{Role: bankAdmin, User: testUser}); err != nil {
		t.Fatal(err)
	}

	t.Run("fail/raise-duration", func(t *testing.T) {
		e := r.proven(t, bankAdmin)
		status, body := apiCall(t, r.base, apiToken, "POST", "/api/v1/elevations/"+e.ID+"/approve", `{"approver":"carol","duration":"24h"}`)
		if status != http.StatusBadRequest || !strings.Contains(body, "duration") {
			t.Fatalf("%d %s, want 400 naming the field", status, body)
		}
		if got, _ := r.app.Store.GetElevation(ctx, e.ID); got.Version != e.Version || got.Duration != 20*time.Minute {
			t.Fatalf("the request changed: %+v", got)
		}
		r.end(t, e.ID)
	})

	t.Run("fail/racing-approvers", func(t *testing.T) {
		for round := range 5 {
			e := r.proven(t, bankAdmin)
			type answer struct {
				status int
				msg    string
			}
			out := make(chan answer, 2)
			for _, approver := range []string{r.carol.Username, erin.Username} {
				go func() {
					// No t here: this is not the test's goroutine.
					body, _ := json.Marshal(map[string]string{"approver": approver})
					req, _ := http.NewRequest("POST", r.base+"/api/v1/elevations/"+e.ID+"/approve", strings.NewReader(string(body)))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Authorization", "Bearer "+apiToken)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						out <- answer{0, err.Error()}
						return
					}
					raw, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					out <- answer{resp.StatusCode, string(raw)}
				}()
			}
			ok := 0
			for range 2 {
				a := <-out
				switch {
				case a.status == http.StatusOK:
					ok++
				case a.status != http.StatusConflict || !strings.Contains(a.msg, "no longer pending"):
					t.Fatalf("round %d: %d %s", round, a.status, a.msg)
				}
			}
			got, _ := r.app.Store.GetElevation(ctx, e.ID)
			if ok != 1 || len(got.Decisions) != 1 || got.State != store.ElevationActive {
				t.Fatalf("round %d: %d answers went through, %d recorded, state %s", round, ok, len(got.Decisions), got.State)
			}
			r.end(t, e.ID)
		}
	})

	t.Run("fail/after-the-deadline", func(t *testing.T) {
		e := r.proven(t, bankAdmin)
		e, err := r.app.Store.UpdateElevation(ctx, e.ID, func(cur store.Elevation) (store.Elevation, error) {
			cur.Deadline = time.Now().Add(-time.Second)
			return cur, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		status, msg := r.call(t, "POST", "/api/v1/elevations/"+e.ID+"/approve", map[string]string{"approver": "carol"}, nil)
		if status != http.StatusConflict || !strings.Contains(msg, "no longer pending") {
			t.Fatalf("%d %s", status, msg)
		}
		got, _ := r.app.Store.GetElevation(ctx, e.ID)
		if got.State != store.ElevationExpired || len(got.Decisions) != 0 {
			t.Fatalf("after a late approval: %+v", got)
		}
		if u, _ := r.app.Store.GetUser(ctx, r.alice.ID); slices.Contains(u.RolesAt(time.Now(), "webapp"), bankAdmin) {
			t.Fatal("a late approval gave alice the role")
		}
	})

	t.Run("fail/control-characters-in-reason", func(t *testing.T) {
		e := r.proven(t, bankAdmin)
		if status, msg := r.call(t, "POST", "/api/v1/elevations/"+e.ID+"/revoke", map[string]string{"reason": "done\n*approved by the CEO*"}, nil); status != http.StatusBadRequest || !strings.Contains(msg, "one line") {
			t.Fatalf("%d %s", status, msg)
		}
		if got, _ := r.app.Store.GetElevation(ctx, e.ID); got.Version != e.Version {
			t.Fatalf("the request changed: %+v", got)
		}
		r.end(t, e.ID)
	})
}

// end revokes id if it is still open, so alice may ask again.
func (r *apiElevationRig) end(t *testing.T, id string) {
	t.Helper()
	e, err := r.app.Store.GetElevation(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if e.State != store.ElevationPending && e.State != store.ElevationActive {
		return
	}
	if _, err := r.app.Elevation.Deactivate(context.Background(), id, store.User{ID: "test"}, true, "next case"); err != nil {
		t.Fatal(err)
	}
}
