package admin

import "testing"

// TestKVShapes: the types this package stores in the key/value space are
// the shapes the catalogue (internal/store/kvspace) shows and the store
// conformance suite stores on every backend.
func TestKVShapes(t *testing.T) {
	t.Parallel()
	for _, ns := range []struct {
		name  string
		check func() error
	}{
		{"releases", releases.CheckSample},
		{"history", history.CheckSample},
		{"history index", historyIndex.CheckSample},
		{"legacy documents", legacyDocuments.CheckSample},
	} {
		if err := ns.check(); err != nil {
			t.Errorf("%s: %v", ns.name, err)
		}
	}
}
