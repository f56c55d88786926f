package secrets

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSealOpen(t *testing.T) {
	key := make([]byte, KeySize)
	key[0] = 1
	b, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	ct := b.Seal([]byte("JBSWY3DPEHPK3PXP"), []byte("cred-1|user-1"))
	if bytes.Contains(ct, []byte("JBSWY3DPEHPK3PXP")) {
		t.Fatal("ciphertext contains the plaintext")
	}
	pt, err := b.Open(ct, []byte("cred-1|user-1"))
	if err != nil || string(pt) != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	t.Run("fail/moved-to-another-record", func(t *testing.T) {
		if _, err := b.Open(ct, []byte("cred-1|user-2")); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("opened under other associated data: %v", err)
		}
	})
	t.Run("fail/tampered", func(t *testing.T) {
		bad := bytes.Clone(ct)
		bad[len(bad)-1] ^= 1
		if _, err := b.Open(bad, []byte("cred-1|user-1")); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("opened a tampered ciphertext: %v", err)
		}
	})
	t.Run("fail/other-key", func(t *testing.T) {
		other, _ := New(make([]byte, KeySize))
		if _, err := other.Open(ct, []byte("cred-1|user-1")); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("opened under another key: %v", err)
		}
	})
	t.Run("fail/short", func(t *testing.T) {
		if _, err := b.Open([]byte{1, 2}, nil); !errors.Is(err, ErrDecrypt) {
			t.Fatal("opened garbage")
		}
	})
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadKey("", dir)
	if err != nil || len(k1) != KeySize {
		t.Fatalf("first LoadKey = %v, %v", k1, err)
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	k2, _ := LoadKey("", dir)
	if !bytes.Equal(k1, k2) {
		t.Fatal("the key changed between loads")
	}
	k3, err := LoadKey(EncodeKey(bytes.Repeat([]byte{7}, KeySize)), dir)
	if err != nil || k3[0] != 7 {
		t.Fatalf("configured key = %v, %v", k3, err)
	}
	if _, err := LoadKey("c2hvcnQ=", dir); err == nil {
		t.Fatal("a short key was accepted")
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey("", dir); err == nil {
		t.Fatal("a corrupt key file was accepted (and would have been replaced)")
	}
}
