package riskservice

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/risk"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/postgres"
	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// backends opens a fresh store of each backend on a clock; PostgreSQL's
// is skipped when no server is configured (scripts/with-postgres.sh).
var backends = []struct {
	name string
	open func(t *testing.T, now func() time.Time) store.Store
}{
	{"sqlite", func(t *testing.T, now func() time.Time) store.Store {
		t.Helper()
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), sqlite.Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}},
	{"postgres", func(t *testing.T, now func() time.Time) store.Store {
		t.Helper()
		st, err := postgres.Open(context.Background(), pgtest.DSN(t), postgres.Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}},
}

// reportRig is a service over a store holding alice (with a live
// session) and bob (with one), on a clock that starts at the real time,
// so nothing a store compares with its own clock is pinned.
type reportRig struct {
	*rig
	alice, bob         store.User
	aliceSess, bobSess string
}

func newReportRig(t *testing.T, open func(t *testing.T, now func() time.Time) store.Store) *reportRig {
	t.Helper()
	ctx := context.Background()
	c := &clock{now: time.Now().UTC().Truncate(time.Microsecond)}
	st := open(t, c.Now)
	t.Cleanup(func() { _ = st.Close() })
	rg := &rig{st: st, clock: c, revoked: &revocations{}, metrics: &detections{}}
	var err error
	if rg.svc, err = New(Options{Store: st, Revoker: rg.revoked, Metrics: rg.metrics, Now: c.Now, LowAgeOut: 7 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	out := &reportRig{rig: rg}
	for _, u := range []struct {
		name string
		user *store.User
		sess *string
	}{{"alice", &out.alice, &out.aliceSess}, {"bob", &out.bob, &out.bobSess}} {
		if *u.user, err = st.CreateUser(ctx, store.User{ID: "id-" + u.name, Username: u.name}); err != nil {
			t.Fatal(err)
		}
		s, err := st.CreateSession(ctx, store.Session{ID: strings.Repeat("a", 63) + u.name[:1], UserID: u.user.ID,
			CreatedAt: c.Now(), LastSeenAt: c.Now(), ExpiresAt: c.Now().Add(8 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		*u.sess = s.ID
	}
	return out
}

// valid is a report that is accepted; each bad case changes one thing.
func (rg *reportRig) valid() Report {
	return Report{User: "alice", Type: "edr-malware", Level: "high", Reason: "malware on the user's laptop",
		Evidence: map[string]string{"host": "lt-042"}, ExpiresAt: rg.clock.Now().Add(24 * time.Hour)}
}

// stored is what the store holds for alice: her risk state and the
// idempotency keys.
func (rg *reportRig) stored(t *testing.T) (risk.UserRiskState, int) {
	t.Helper()
	st, err := load(context.Background(), rg.st, userRisks.At(rg.alice.ID))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := detectionKeys.List(context.Background(), rg.st)
	if err != nil {
		t.Fatal(err)
	}
	return st, len(keys)
}

// TestReportRefusesBadInput sends each kind of bad report and checks the
// answer names the problem and that nothing at all was stored.
func TestReportRefusesBadInput(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			rg := newReportRig(t, b.open)
			now := rg.clock.Now()
			for _, tc := range []struct {
				name string
				key  string
				edit func(*Report)
				kind errkind.Kind
				says string
			}{
				{"fail/no-key", "", func(*Report) {}, errkind.Invalid, "Idempotency-Key"},
				{"fail/key-with-space", "a b", func(*Report) {}, errkind.Invalid, "Idempotency-Key"},
				{"fail/key-with-slash", "evt/1", func(*Report) {}, errkind.Invalid, "Idempotency-Key"},
				{"fail/key-too-long", strings.Repeat("k", 201), func(*Report) {}, errkind.Invalid, "Idempotency-Key"},
				{"fail/unknown-user", "k", func(r *Report) { r.User = "mallory" }, errkind.NotFound, `"mallory"`},
				{"fail/no-user", "k", func(r *Report) { r.User = "" }, errkind.Invalid, "user is required"},
				{"fail/bad-level", "k", func(r *Report) { r.Level = "critical" }, errkind.Invalid, "level must be"},
				{"fail/none-level", "k", func(r *Report) { r.Level = "none" }, errkind.Invalid, "level must be"},
				{"fail/bad-type", "k", func(r *Report) { r.Type = "EDR Malware" }, errkind.Invalid, "type must be"},
				{"fail/built-in-type", "k", func(r *Report) { r.Type = risk.TypeLeaked }, errkind.Invalid, "built-in"},
				{"fail/no-reason", "k", func(r *Report) { r.Reason = "" }, errkind.Invalid, "reason is required"},
				{"fail/control-in-reason", "k", func(r *Report) { r.Reason = "ok\x1b[2Jspoof" }, errkind.Invalid, "without control"},
				{"fail/bidi-override-in-reason", "k", func(r *Report) { r.Reason = "benign \u202egnp.exe" }, errkind.Invalid, "format characters"},
				{"fail/control-in-evidence", "k", func(r *Report) { r.Evidence = map[string]string{"host": "a\nb"} }, errkind.Invalid, "evidence.host"},
				// A body claiming another source in its evidence.
				{"fail/evidence-claims-source", "k", func(r *Report) { r.Evidence = map[string]string{"source": "client:edr"} }, errkind.Invalid, "Stepgate's own"},
				{"fail/reason-too-long", "k", func(r *Report) { r.Reason = strings.Repeat("x", 513) }, errkind.Invalid, "longer than 512"},
				{"fail/too-much-evidence", "k", func(r *Report) {
					r.Evidence = map[string]string{}
					for i := range 17 {
						r.Evidence[string(rune('a'+i))] = "v"
					}
				}, errkind.Invalid, "at most 16"},
				{"fail/bad-evidence-key", "k", func(r *Report) { r.Evidence = map[string]string{"Host Name": "x"} }, errkind.Invalid, "evidence key"},
				{"fail/no-expiry", "k", func(r *Report) { r.ExpiresAt = time.Time{} }, errkind.Invalid, "expires_at is required"},
				{"fail/expiry-past", "k", func(r *Report) { r.ExpiresAt = now.Add(-time.Minute) }, errkind.Invalid, "not in the future"},
				{"fail/expiry-now", "k", func(r *Report) { r.ExpiresAt = now }, errkind.Invalid, "not in the future"},
				{"fail/expiry-too-far", "k", func(r *Report) { r.ExpiresAt = now.Add(MaxDetectionLifetime + time.Second) }, errkind.Invalid, "90 days"},
				{"fail/bad-applies-to", "k", func(r *Report) { r.AppliesTo = "device" }, errkind.Invalid, "applies_to"},
				{"fail/sign-in-without-target", "k", func(r *Report) { r.AppliesTo = "sign-in" }, errkind.Invalid, "session_id"},
				{"fail/user-with-session", "k", func(r *Report) { r.SessionID = rg.aliceSess }, errkind.Invalid, "applies_to"},
				{"fail/unknown-session", "k", func(r *Report) { r.AppliesTo, r.SessionID = "sign-in", "nope" }, errkind.NotFound, "no live session"},
				// Raising the risk of someone else's session through a
				// report about alice.
				{"fail/another-users-session", "k", func(r *Report) { r.AppliesTo, r.SessionID = "sign-in", rg.bobSess }, errkind.NotFound, "no live session"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					in := rg.valid()
					tc.edit(&in)
					_, err := rg.svc.Report(context.Background(), "api-token", tc.key, in)
					if err == nil || errkind.Of(err) != tc.kind || !strings.Contains(err.Error(), tc.says) {
						t.Fatalf("Report: %v (kind %v), want a %v error saying %q", err, errkind.Of(err), tc.kind, tc.says)
					}
					if st, keys := rg.stored(t); len(st.Outside) != 0 || st.Level != risk.None || keys != 0 {
						t.Fatalf("a refused report stored %+v and %d keys", st, keys)
					}
				})
			}
			if got := rg.revoked.all(); len(got) != 0 {
				t.Fatalf("refused reports revoked %v", got)
			}
		})
	}
}

// TestReportIdempotency: a repeated key and body stores one detection
// and gets the first answer; another body under the key is refused;
// racing requests with one key store one detection.
func TestReportIdempotency(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			rg := newReportRig(t, b.open)
			in := rg.valid()
			first, err := rg.svc.Report(ctx, "client:siem", "evt-1", in)
			if err != nil || first.Replayed {
				t.Fatalf("first report: %+v, %v", first, err)
			}
			rg.clock.Add(time.Second)
			again, err := rg.svc.Report(ctx, "client:siem", "evt-1", in)
			if err != nil || !again.Replayed || again.ID != first.ID || !again.ReceivedAt.Equal(first.ReceivedAt) {
				t.Fatalf("repeat: %+v, %v; want the first answer %+v", again, err, first)
			}
			other := in
			other.Level = "low"
			if _, err := rg.svc.Report(ctx, "client:siem", "evt-1", other); errkind.Of(err) != errkind.Conflict {
				t.Fatalf("another body under the key: %v, want a conflict", err)
			}
			// The same key from another source is its own.
			if r, err := rg.svc.Report(ctx, "client:edr", "evt-1", other); err != nil || r.ID == first.ID {
				t.Fatalf("another source's key: %+v, %v", r, err)
			}
			if st, keys := rg.stored(t); len(st.Outside) != 2 || keys != 2 {
				t.Fatalf("stored %d detections and %d keys, want 2 and 2", len(st.Outside), keys)
			}
			if got := rg.revoked.all(); len(got) != 1 {
				t.Fatalf("revoked %v, want once: a replay does not act again", got)
			}
		})
		t.Run(b.name+"/race", func(t *testing.T) {
			rg := newReportRig(t, b.open)
			in := rg.valid()
			const n = 8
			var wg sync.WaitGroup
			ids := make([]string, n)
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() {
					var r Reported
					r, errs[i] = rg.svc.Report(ctx, "client:siem", "evt-race", in)
					ids[i] = r.ID
				})
			}
			wg.Wait()
			for i := range n {
				if errs[i] != nil || ids[i] != ids[0] {
					t.Fatalf("racer %d: %q, %v; want %q", i, ids[i], errs[i], ids[0])
				}
			}
			// A high user detection ends the sessions once, whichever
			// racer stored it and whichever recorded the key.
			if got := rg.revoked.all(); len(got) != 1 {
				t.Fatalf("revoked %v, want once", got)
			}
			if st, keys := rg.stored(t); len(st.Outside) != 1 || keys != 1 {
				t.Fatalf("stored %d detections and %d keys, want one of each", len(st.Outside), keys)
			}
		})
		t.Run(b.name+"/race-different-bodies", func(t *testing.T) {
			rg := newReportRig(t, b.open)
			in := rg.valid()
			const n = 8
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() {
					r := in
					r.Reason = "racer " + string(rune('a'+i))
					_, errs[i] = rg.svc.Report(ctx, "client:siem", "evt-race", r)
				})
			}
			wg.Wait()
			ok := 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case errkind.Of(err) != errkind.Conflict:
					t.Fatalf("racer: %v, want success or a conflict", err)
				}
			}
			st, keys := rg.stored(t)
			if ok != 1 || len(st.Outside) != 1 || keys != 1 {
				t.Fatalf("%d racers won, %d detections and %d keys stored; want one of each", ok, len(st.Outside), keys)
			}
			// The winner's answer is what it sent, and what is stored.
			again := in
			again.Reason = st.Outside[0].Reason
			if r, err := rg.svc.Report(ctx, "client:siem", "evt-race", again); err != nil || !r.Replayed || r.Reason != again.Reason {
				t.Fatalf("replaying the stored detection's body: %+v, %v", r, err)
			}
		})
		// Racing one key with reports about different users: one user's
		// detection is stored, none is left on the other.
		t.Run(b.name+"/race-different-users", func(t *testing.T) {
			rg := newReportRig(t, b.open)
			const n = 8
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() {
					r := rg.valid()
					if i%2 == 1 {
						r.User = "bob"
					}
					r.Level = "medium"
					_, errs[i] = rg.svc.Report(ctx, "client:siem", "evt-users", r)
				})
			}
			wg.Wait()
			stored := 0
			for _, id := range []string{rg.alice.ID, rg.bob.ID} {
				st, err := load(ctx, rg.st, userRisks.At(id))
				if err != nil {
					t.Fatal(err)
				}
				stored += len(st.Outside)
			}
			ok := 0
			for _, err := range errs {
				if err == nil {
					ok++
				} else if errkind.Of(err) != errkind.Conflict {
					t.Fatalf("racer: %v", err)
				}
			}
			if stored != 1 || ok == 0 || ok > n/2 {
				t.Fatalf("%d detections stored across the users, %d racers answered 201; want one detection, and only its user's racers", stored, ok)
			}
		})
	}
}

// TestReportedRisk: a user detection raises the user's risk until it
// expires, a high one or revoke ends the user's sessions, a sign-in one
// raises only its session's risk, and dismissal clears them all.
func TestReportedRisk(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			rg := newReportRig(t, b.open)
			medium := rg.valid()
			medium.Level, medium.ExpiresAt = "medium", rg.clock.Now().Add(time.Hour)
			r, err := rg.svc.Report(ctx, "api-token", "m", medium)
			if err != nil || r.UserRisk != "medium" || r.SessionsRevoked {
				t.Fatalf("medium: %+v, %v", r, err)
			}
			if got := rg.svc.UserRisk(ctx, rg.alice.ID); got != "medium" {
				t.Fatalf("user risk %q, want medium", got)
			}
			signIn := rg.valid()
			signIn.AppliesTo, signIn.SessionID, signIn.Revoke = "sign-in", rg.aliceSess, false
			signIn.ExpiresAt = rg.clock.Now().Add(2 * time.Hour)
			if _, err := rg.svc.Report(ctx, "api-token", "s", signIn); err != nil {
				t.Fatal(err)
			}
			if got := rg.svc.SessionRisks(ctx, rg.alice.ID, rg.aliceSess, ""); len(got) != 1 || got[0].Level != risk.High {
				t.Fatalf("session risks %+v, want one high", got)
			}
			if got := rg.svc.SessionRisks(ctx, rg.alice.ID, "another", ""); len(got) != 0 {
				t.Fatalf("another session's risks %+v, want none", got)
			}
			if got := rg.svc.UserRisk(ctx, rg.alice.ID); got != "medium" {
				t.Fatalf("a sign-in detection changed the user risk to %q", got)
			}
			if got := rg.revoked.all(); len(got) != 0 {
				t.Fatalf("revoked %v without revoke or a high user risk", got)
			}
			// Expiry: the medium one stops counting at its expires_at
			// although the cache read it a moment ago.
			rg.clock.Add(time.Hour)
			if got := rg.svc.UserRisk(ctx, rg.alice.ID); got != "" {
				t.Fatalf("after expiry: user risk %q, want none", got)
			}
			rg.clock.Add(time.Hour)
			if got := rg.svc.SessionRisks(ctx, rg.alice.ID, rg.aliceSess, ""); len(got) != 0 {
				t.Fatalf("after expiry: session risks %+v", got)
			}
			// revoke: true ends the sessions whatever the level.
			low := rg.valid()
			low.Level, low.Revoke, low.ExpiresAt = "low", true, rg.clock.Now().Add(time.Hour)
			if r, err := rg.svc.Report(ctx, "api-token", "l", low); err != nil || !r.SessionsRevoked {
				t.Fatalf("revoke: %+v, %v", r, err)
			}
			high := rg.valid()
			high.ExpiresAt = rg.clock.Now().Add(time.Hour)
			if _, err := rg.svc.Report(ctx, "api-token", "h", high); err != nil {
				t.Fatal(err)
			}
			want := []string{rg.alice.ID + ":risk-detection", rg.alice.ID + ":risk-high"}
			if got := rg.revoked.all(); !slices.Equal(got, want) {
				t.Fatalf("revoked %v, want %v", got, want)
			}
			d, err := rg.svc.Detail(ctx, rg.alice.ID)
			if err != nil || d.Level != "high" || len(d.Reported) != 2 || d.Reported[1].Source != "api-token" {
				t.Fatalf("detail %+v, %v", d, err)
			}
			if err := rg.svc.SetUserRisk(ctx, rg.alice.ID, false); err != nil {
				t.Fatal(err)
			}
			if d, err := rg.svc.Detail(ctx, rg.alice.ID); err != nil || d.Level != "none" || len(d.Reported) != 0 {
				t.Fatalf("after dismissal: %+v, %v", d, err)
			}
			if got := rg.svc.UserRisk(ctx, rg.alice.ID); got != "" {
				t.Fatalf("after dismissal: user risk %q", got)
			}
			// A replayed key after dismissal answers, but does not bring
			// the dismissed detection back.
			if r, err := rg.svc.Report(ctx, "api-token", "h", high); err != nil || !r.Replayed {
				t.Fatalf("replay after dismissal: %+v, %v", r, err)
			}
			if got := rg.svc.UserRisk(ctx, rg.alice.ID); got != "" {
				t.Fatalf("a replay after dismissal raised the risk to %q", got)
			}
		})
	}
}

// TestReportCompletesAfterAFailure: a detection stored without its key
// (the server stopped between the two writes) is completed by the
// retry, which sets it off: the sessions end.
func TestReportCompletesAfterAFailure(t *testing.T) {
	rg := newReportRig(t, backends[0].open)
	ctx := context.Background()
	in := rg.valid()
	d, u, err := rg.svc.checkReport(ctx, "api-token", "evt-crash", in, rg.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, added, err := rg.svc.apply(ctx, u, d); err != nil || !added {
		t.Fatalf("apply: %v, %v", added, err)
	}
	r, err := rg.svc.Report(ctx, "api-token", "evt-crash", in)
	if err != nil || r.Replayed || r.ID != d.ID {
		t.Fatalf("retry: %+v, %v", r, err)
	}
	if st, keys := rg.stored(t); len(st.Outside) != 1 || keys != 1 {
		t.Fatalf("stored %d detections and %d keys, want one of each", len(st.Outside), keys)
	}
	if got := rg.revoked.all(); len(got) != 1 {
		t.Fatalf("revoked %v, want once", got)
	}
}

// TestReportKeyQuota: past the keys' quota a report is refused as
// throttled and its detection, already applied, is withdrawn.
func TestReportKeyQuota(t *testing.T) {
	rg := newReportRig(t, backends[0].open)
	ctx := context.Background()
	in := rg.valid()
	rg.svc.keyQuota = detectionKeys.Quota(1, maxKeyBytes)
	if _, err := rg.svc.Report(ctx, "api-token", "first", in); err != nil {
		t.Fatal(err)
	}
	in.Level = "low"
	_, err := rg.svc.Report(ctx, "api-token", "over", in)
	if errkind.Of(err) != errkind.Throttled || !errors.Is(err, errTooManyKeys) {
		t.Fatalf("over the quota: %v, want throttled", err)
	}
	if st, keys := rg.stored(t); len(st.Outside) != 1 || st.Outside[0].Level != risk.High || keys != 1 {
		t.Fatalf("a refused report left %+v and %d keys; want the first detection only", st.Outside, keys)
	}
}
