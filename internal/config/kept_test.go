package config

import (
	"slices"
	"testing"
)

// TestKeptRequestsValidate: every bad bound is named by its key path,
// all at once, and the anonymous budget may not exceed the total.
func TestKeptRequestsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mutate func(*KeptRequests, *Gateway)
		want   []string
	}{
		{"ok/defaults", func(*KeptRequests, *Gateway) {}, nil},
		{"ok/no-anonymous-keeps", func(k *KeptRequests, _ *Gateway) { k.AnonymousMaxCount, k.AnonymousPerAddress = 0, 0 }, nil},
		{"fail/negative", func(k *KeptRequests, _ *Gateway) { k.MaxBytes, k.PerAddress = -1, -1 }, []string{
			"gateway.kept_requests.max_bytes", "gateway.kept_requests.per_address",
			"gateway.kept_requests.anonymous_max_bytes", "gateway.kept_requests.anonymous_per_address"}},
		{"fail/zero-window", func(k *KeptRequests, _ *Gateway) { k.Window = 0 }, []string{"gateway.kept_requests.window"}},
		{"fail/anonymous-over-total", func(k *KeptRequests, _ *Gateway) { k.AnonymousMaxCount = k.MaxCount + 1 }, []string{"gateway.kept_requests.anonymous_max_count"}},
		{"fail/anonymous-body-over-replay-limit", func(_ *KeptRequests, g *Gateway) { g.ReplayBodyLimit = 1024 }, []string{"gateway.kept_requests.anonymous_body_limit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := defaultGateway()
			tc.mutate(&g.KeptRequests, &g)
			var ps problems
			g.validate(&ps, "http://127.0.0.1:8080")
			var got []string
			for _, p := range ps {
				got = append(got, p.Path)
			}
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("problems at %q, want %q (%v)", got, want, ps)
			}
		})
	}
}
