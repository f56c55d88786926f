package webauthn

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// mdsPayload is an MDS3 BLOB payload in the shape the FIDO Metadata
// Service publishes: a FIDO2 entry, a second one naming a built-in model
// differently, and a UAF entry without an AAGUID.
const mdsPayload = `{"legalHeader": "Retrieval and use of this BLOB indicates acceptance of the appropriate agreement.",
 "no": 71, "nextUpdate": "2026-12-01",
 "entries": [
  {"aaguid": "12345678-9abc-4def-8123-456789abcdef", "metadataStatement": {"aaguid": "12345678-9ABC-4DEF-8123-456789ABCDEF", "description": "Example Corp Key 3", "schema": 3, "protocolFamily": "fido2"}, "statusReports": [{"status": "FIDO_CERTIFIED_L1", "effectiveDate": "2024-01-01"}], "timeOfLastStatusChange": "2024-01-01"},
  {"aaguid": "cb69481e-8ff7-4039-93ec-0a2729a154a8", "metadataStatement": {"aaguid": "cb69481e-8ff7-4039-93ec-0a2729a154a8", "description": "YubiKey 5 Series (from the metadata service)", "schema": 3, "protocolFamily": "fido2"}},
  {"aaid": "4e4e#4005", "metadataStatement": {"aaid": "4e4e#4005", "description": "A UAF authenticator", "protocolFamily": "uaf"}}
 ]}`

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "metadata")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func blob(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"ES256","typ":"JWT"}`)) + "." + enc([]byte(payload)) + "." + enc([]byte("signature"))
}

// TestBuiltInModels: the table is well formed (every key an AAGUID in
// lower case, every name set) and names the common authenticators.
func TestBuiltInModels(t *testing.T) {
	var table struct {
		About  string            `json:"about"`
		Models map[string]string `json:"models"`
	}
	if err := json.Unmarshal(knownModels, &table); err != nil {
		t.Fatal(err)
	}
	lower := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	for id, name := range table.Models {
		if !lower.MatchString(id) || strings.TrimSpace(name) == "" || id == zeroAAGUID {
			t.Errorf("entry %q: %q", id, name)
		}
	}
	if !strings.Contains(table.About, "Best-known") {
		t.Errorf("the table does not say its names are best known: %q", table.About)
	}
	m, err := NewModels("")
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{
		"cb69481e-8ff7-4039-93ec-0a2729a154a8": "YubiKey 5 Series",
		"EA9B8D66-4D01-1D21-3CE4-B6B48CB575D4": "Google Password Manager",
		"fbfc3007-154e-4ecc-8c0b-6e020557d7bd": "iCloud Keychain",
		"08987058-cadc-4b81-b6e1-30de50dcbe96": "Windows Hello",
		"bada5566-a7aa-401f-bd96-45619a55120d": "1Password",
		"d548826e-79b4-db40-a3d8-11116f7e8349": "Bitwarden",
		"adce0002-35bc-c60a-648b-0b25f1f05503": "Chrome on Mac",
	} {
		if got := m.Name(id); got != want {
			t.Errorf("Name(%s) = %q, want %q", id, got, want)
		}
	}
	for id, want := range map[string]string{
		"cb69481e-8ff7-4039-93ec-0a2729a154a8": "YubiKey 5 Series (AAGUID cb69481e-8ff7-4039-93ec-0a2729a154a8)",
		"0badc0de-0000-4000-8000-000000000000": "unknown model, AAGUID 0badc0de-0000-4000-8000-000000000000",
		zeroAAGUID:                             "",
		"":                                     "",
	} {
		if got := m.Describe(id); got != want {
			t.Errorf("Describe(%q) = %q, want %q", id, got, want)
		}
	}
}

// TestModelsFromMetadataFile: an operator's FIDO metadata file adds
// names, and overrides the built-in ones, in every form it comes in.
func TestModelsFromMetadataFile(t *testing.T) {
	const ex, yk = "12345678-9abc-4def-8123-456789abcdef", "cb69481e-8ff7-4039-93ec-0a2729a154a8"
	tests := []struct{ name, content string }{
		{"ok/blob-payload", mdsPayload},
		{"ok/blob-as-downloaded", blob(mdsPayload)},
		{"ok/statements", `[{"aaguid": "` + ex + `", "description": "Example Corp Key 3"}, {"aaguid": "` + yk + `", "description": "YubiKey 5 Series (from the metadata service)"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewModels(writeFile(t, tt.content))
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Name(ex); got != "Example Corp Key 3" {
				t.Errorf("Name(%s) = %q", ex, got)
			}
			if got := m.Name(yk); got != "YubiKey 5 Series (from the metadata service)" {
				t.Errorf("the file's name does not override the built-in one: %q", got)
			}
			if got := m.Name("bada5566-a7aa-401f-bd96-45619a55120d"); got != "1Password" {
				t.Errorf("built-in names are lost: %q", got)
			}
		})
	}
	t.Run("ok/one-statement", func(t *testing.T) {
		m, err := NewModels(writeFile(t, `{"aaguid": "`+ex+`", "friendlyNames": {"en-US": "Example Key"}, "schema": 3}`))
		if err != nil || m.Name(ex) != "Example Key" {
			t.Fatalf("Name = %q, %v", m.Name(ex), err)
		}
	})
}

// TestModelsRejectMalformedMetadata: a file that is not FIDO metadata
// stops the start with an error naming the file and what was expected,
// rather than leaving every passkey unnamed without a word.
func TestModelsRejectMalformedMetadata(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{"fail/truncated-json", mdsPayload[:200], "not FIDO metadata JSON"},
		{"fail/html", "<html>Not found</html>", "neither JSON nor a metadata BLOB"},
		{"fail/blob-bad-base64", "aaa.!!!.bbb", "not base64url"},
		{"fail/no-models", `{"entries": []}`, "names no authenticator model"},
		{"fail/bad-aaguid", `[{"aaguid": "yubikey", "description": "x"}]`, `aaguid "yubikey" is not a UUID`},
		{"fail/wrong-types", `{"entries": [{"aaguid": 5}]}`, "not FIDO metadata JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.content)
			_, err := NewModels(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v, want one naming %s and saying %q", err, path, tt.want)
			}
		})
	}
	_, err := NewModels(filepath.Join(t.TempDir(), "missing.jwt"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a missing file: %v", err)
	}
}
