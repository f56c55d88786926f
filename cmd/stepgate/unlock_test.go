package main

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/authn/otp"
	"github.com/stepgate/stepgate/internal/authn/push"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// TestUserUnlock: after the hard lock of 100 wrong answers, `user
// unlock` clears every count of the user's, including the ones one-time
// codes and push numbers keep for themselves; otherwise the user could
// never receive a code again.
func TestUserUnlock(t *testing.T) {
	dir := t.TempDir()
	dd := "--data-dir=" + dir
	stepgate(t, "correct horse battery\n", "user", "add", "bob", "--email", "bob@example.com", "--password-stdin", dd).mustSucceed(t)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "stepgate.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	u, err := st.GetUserByName(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"login:bob", "user:" + u.ID, otp.ThrottleKey(u.ID), push.ThrottleKey(u.ID)}
	th := authn.NewThrottle(st, nil)
	for _, key := range keys {
		for range th.HardLimit {
			if err := th.Fail(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
		if err := th.Check(ctx, key); !errors.Is(err, authn.ErrThrottled) {
			t.Fatalf("%s after %d failures: %v, want locked", key, th.HardLimit, err)
		}
	}
	st.Close()

	stepgate(t, "", "user", "unlock", "bob", dd).mustSucceed(t)
	st, err = sqlite.Open(ctx, filepath.Join(dir, "stepgate.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	th = authn.NewThrottle(st, nil)
	for _, key := range keys {
		if err := th.Check(ctx, key); err != nil {
			t.Errorf("fail/still-locked: %s after unlock: %v", key, err)
		}
	}
}
