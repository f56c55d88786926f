package admin

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDocumentsCompareAndSwapPerEnvironment: each policy environment
// keeps its own stored documents, each changed by compare and swap: a
// change saved to staging never reaches production's set, nor the other
// way round, a stale version is refused in each, and a delete in one
// leaves the other. (The key/value namespace itself is checked on both
// backends by the store's conformance suite.)
func TestDocumentsCompareAndSwapPerEnvironment(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	prod := &Documents{KV: st, Now: time.Now}
	staging := prod.InEnvironment("staging")
	const yaml = "policies: []\n"
	for _, d := range []*Documents{prod, staging} {
		if _, err := d.Put(ctx, Document{Name: "mfa", YAML: yaml}, 0, "user:root"); err != nil {
			t.Fatalf("%s: create: %v", d.Environment(), err)
		}
	}
	if _, err := staging.Put(ctx, Document{Name: "mfa", YAML: yaml + "# staged\n"}, 1, "user:root"); err != nil {
		t.Fatalf("staging: update: %v", err)
	}
	if _, err := staging.Put(ctx, Document{Name: "mfa", YAML: yaml}, 1, "user:eve"); !errors.Is(err, ErrVersion) {
		t.Fatalf("staging: update from a stale version: %v, want ErrVersion", err)
	}
	got, err := prod.Get(ctx, "mfa")
	if err != nil || got.Version != 1 || got.YAML != yaml {
		t.Fatalf("production's document after staging's change: %+v %v", got, err)
	}
	for _, d := range []*Documents{prod, staging, prod.InEnvironment("preview")} {
		docs, err := d.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		if d.Environment() == "preview" {
			want = 0
		}
		if len(docs) != want {
			t.Errorf("%s lists %d documents, want %d", d.Environment(), len(docs), want)
		}
	}
	if err := staging.Delete(ctx, "mfa", 2); err != nil {
		t.Fatal(err)
	}
	if _, err := prod.Get(ctx, "mfa"); err != nil {
		t.Fatalf("deleting staging's document removed production's: %v", err)
	}
}
