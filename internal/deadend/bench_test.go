package deadend_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stepgate/stepgate/internal/deadend"
)

// BenchmarkAnalyze: the analysis of the test policies over 10,000 users
// with a mix of methods, the store's answers held in memory (a real
// store adds one credentials query per user).
func BenchmarkAnalyze(b *testing.B) {
	snap := compileB(b, policies)
	fs := &fakeStore{}
	kinds := [][]string{nil, {"totp"}, {"webauthn"}, {"totp", "recovery-code"}}
	for i := range 10_000 {
		groups := []string{"ops"}
		if i%3 == 0 {
			groups = []string{"contractors"}
		}
		fs.user(fmt.Sprintf("u%05d", i), groups, kinds[i%len(kinds)]...)
	}
	a := analyzer(fs, deadend.Rules{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Analyze(context.Background(), snap); err != nil {
			b.Fatal(err)
		}
	}
}
