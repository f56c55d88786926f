package password

import (
	"crypto/sha1" //nolint:gosec // the list format
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBreached(t *testing.T) {
	sum := sha1.Sum([]byte("Tr0ub4dor&3")) //nolint:gosec // the list format
	list := strings.Join([]string{
		"#!comment: a test list",
		"password",
		"123456789",
		"",
		strings.ToUpper(hex.EncodeToString(sum[:])) + ":42",
		"correct horse battery staple\r",
	}, "\n")
	path := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(path, []byte(list), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := LoadBreached(path)
	if err != nil {
		t.Fatal(err)
	}
	if b.Len() != 4 {
		t.Fatalf("Len = %d, want 4", b.Len())
	}
	for _, pw := range []string{"password", "123456789", "Tr0ub4dor&3", "correct horse battery staple"} {
		if !b.Contains(pw) {
			t.Errorf("fail/%q is on the list but was not found", pw)
		}
	}
	for _, pw := range []string{"Password", "#!comment: a test list", "", "a perfectly fine passphrase"} {
		if b.Contains(pw) {
			t.Errorf("ok/%q is not on the list but was found", pw)
		}
	}
	if _, err := LoadBreached(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("a missing list was accepted")
	}
}
