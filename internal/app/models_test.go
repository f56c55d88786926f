package app_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gowebauthn "github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store"
)

// passkeyOf gives u a stored passkey of the authenticator model aaguid.
func passkeyOf(t *testing.T, st store.Store, u store.User, name, aaguid string) {
	t.Helper()
	id := uuid.MustParse(aaguid)
	data, err := json.Marshal(gowebauthn.Credential{ID: []byte(rand.Text()), Authenticator: gowebauthn.Authenticator{AAGUID: id[:]}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateCredential(context.Background(), store.Credential{ID: rand.Text(), UserID: u.ID, Type: "webauthn", Name: name, Data: data}); err != nil {
		t.Fatal(err)
	}
}

// TestPasskeyModelNames: wherever a passkey is listed (the user's
// security page, the console's user page) its authenticator model is
// named: from the built-in table, and from the operator's FIDO metadata
// file (webauthn.metadata_file), which also names models the table does
// not know.
func TestPasskeyModelNames(t *testing.T) {
	const yubikey, example = "cb69481e-8ff7-4039-93ec-0a2729a154a8", "12345678-9abc-4def-8123-456789abcdef"
	mds := filepath.Join(t.TempDir(), "mds.json")
	if err := os.WriteFile(mds, []byte(`{"no": 1, "nextUpdate": "2026-12-01", "entries": [{"aaguid": "`+example+`", "metadataStatement": {"aaguid": "`+example+`", "description": "Example Corp Key 3", "protocolFamily": "fido2"}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startConsole(t, func(cfg *config.Config) { cfg.WebAuthn.MetadataFile = mds })
	passkeyOf(t, s.app.Store, s.user, "Desk key", yubikey)
	passkeyOf(t, s.app.Store, s.user, "Work key", example)
	wants := []string{"YubiKey 5 Series (AAGUID " + yubikey + ")", "Example Corp Key 3 (AAGUID " + example + ")"}

	alice := s.login(t, testUser, testPassword)
	_, page := get(t, alice, s.base+"/account/security")
	for _, w := range wants {
		if !strings.Contains(page, w) {
			t.Errorf("alice's security page does not name the model %q:\n%s", w, page)
		}
	}
	admin := s.login(t, adminName, adminPassword)
	_, page = get(t, admin, s.base+"/admin/users/"+testUser)
	for _, w := range wants {
		if !strings.Contains(page, w) {
			t.Errorf("the console's user page does not name the model %q:\n%s", w, page)
		}
	}
}

// TestMalformedMetadataFileStopsTheStart: a metadata file that is not
// FIDO metadata is refused at start with the key, the file and what was
// expected, not left to show every passkey unnamed.
func TestMalformedMetadataFileStopsTheStart(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "mds.jwt")
	if err := os.WriteFile(bad, []byte("<html>404 Not Found</html>"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, cfg := testConfig(t)
	ln.Close()
	_, port, _ := net.SplitHostPort(cfg.Server.Listen)
	cfg.Server.Issuer = "http://localhost:" + port
	cfg.WebAuthn.RPID, cfg.WebAuthn.Origins = "localhost", []string{cfg.Server.Issuer}
	cfg.WebAuthn.MetadataFile = bad
	a, err := app.New(context.Background(), cfg, nil)
	if err == nil {
		a.Close()
		t.Fatal("the server started with a malformed metadata file")
	}
	for _, w := range []string{"webauthn.metadata_file", bad, "metadata BLOB", "mds3.fidoalliance.org"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the error does not say %q: %v", w, err)
		}
	}
}
