package webauthn

import (
	"bytes"
	_ "embed" // the built-in table of authenticator names
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/google/uuid"
)

// Models names authenticator models by AAGUID, so that people see
// "YubiKey 5 Series" where a passkey is listed rather than a UUID. The
// names are for display only: a policy or webauthn.allowed_aaguids
// matches the AAGUID itself, never a name, so a wrong or missing name
// cannot widen what is allowed.
type Models struct {
	names map[string]string // lower-case AAGUID → name
}

// knownModels is the built-in table: the best-known names of common
// authenticators, as data.
//
//go:embed models.json
var knownModels []byte

// zeroAAGUID is what authenticators that do not disclose their model
// (and most synced passkeys without attestation) report.
const zeroAAGUID = "00000000-0000-0000-0000-000000000000"

// NewModels returns the built-in names, with the names in the FIDO
// metadata file at metadataFile (if not empty) added over them.
func NewModels(metadataFile string) (*Models, error) {
	var table struct {
		Models map[string]string `json:"models"`
	}
	if err := json.Unmarshal(knownModels, &table); err != nil {
		return nil, fmt.Errorf("built-in authenticator names: %w", err)
	}
	m := &Models{names: make(map[string]string, len(table.Models))}
	for id, name := range table.Models {
		m.names[strings.ToLower(id)] = name
	}
	if metadataFile == "" {
		return m, nil
	}
	raw, err := os.ReadFile(metadataFile) //nolint:gosec // the operator's own configured file
	if err != nil {
		return nil, fmt.Errorf("read the FIDO metadata file: %w", err)
	}
	names, err := ParseMetadata(raw)
	if err != nil {
		return nil, fmt.Errorf("FIDO metadata file %s: %w", metadataFile, err)
	}
	for id, name := range names {
		m.names[id] = name
	}
	return m, nil
}

// Name is the model's name, or "" when it is not known.
func (m *Models) Name(aaguid string) string {
	if m == nil {
		return ""
	}
	return m.names[strings.ToLower(aaguid)]
}

// Describe says which model a stored credential is: its name when known,
// with its AAGUID, which is what a policy's aaguids list names.
func (m *Models) Describe(aaguid string) string {
	switch {
	case aaguid == "" || aaguid == zeroAAGUID:
		return "" // the authenticator does not say
	case m.Name(aaguid) != "":
		return m.Name(aaguid) + " (AAGUID " + aaguid + ")"
	}
	return "unknown model, AAGUID " + aaguid
}

// ErrNoMetadata means a metadata file named no authenticator model.
var ErrNoMetadata = errors.New("it names no authenticator model: expected the FIDO Metadata Service BLOB (as downloaded from https://mds3.fidoalliance.org/), its JSON payload with \"entries\", or metadata statements with \"aaguid\" and \"description\"")

// ParseMetadata reads authenticator names from FIDO Metadata Service
// data: the MDS3 BLOB as downloaded (a signed JWT), its JSON payload
// ({"entries": [...]}), one metadata statement, or a list of them. It
// returns each FIDO2 model's description by lower-case AAGUID.
//
// The BLOB's signature is not checked: the file is the operator's own
// choice, and the names only label passkeys on pages (see Models).
func ParseMetadata(raw []byte) (map[string]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] != '{' && raw[0] != '[' {
		payload, err := blobPayload(raw)
		if err != nil {
			return nil, err
		}
		raw = payload
	}
	var statements []metadata.StatementJSON
	switch {
	case len(raw) > 0 && raw[0] == '[':
		if err := json.Unmarshal(raw, &statements); err != nil {
			return nil, fmt.Errorf("a list of metadata statements that does not decode: %w", err)
		}
	default:
		var payload metadata.PayloadJSON
		var statement metadata.StatementJSON
		if err := decodeDoc(raw, &payload, &statement); err != nil {
			return nil, err
		}
		statements = append(statements, statement)
		for _, e := range payload.Entries {
			st := e.MetadataStatement
			if st.AaGUID == "" {
				st.AaGUID = e.AaGUID
			}
			statements = append(statements, st)
		}
	}
	return namesOf(statements)
}

// decodeDoc decodes raw as an MDS3 payload and as a single statement:
// the document is one or the other.
func decodeDoc(raw []byte, payload *metadata.PayloadJSON, statement *metadata.StatementJSON) error {
	if err := json.Unmarshal(raw, payload); err != nil {
		return fmt.Errorf("not FIDO metadata JSON: %w", err)
	}
	if len(payload.Entries) > 0 {
		return nil
	}
	if err := json.Unmarshal(raw, statement); err != nil {
		return fmt.Errorf("a metadata statement that does not decode: %w", err)
	}
	return nil
}

// blobPayload returns the payload of a BLOB in JWS compact form.
func blobPayload(raw []byte) ([]byte, error) {
	parts := bytes.Split(raw, []byte("."))
	if len(parts) != 3 {
		return nil, fmt.Errorf("neither JSON nor a metadata BLOB (a JWT of three dot-separated parts): %w", ErrNoMetadata)
	}
	payload, err := base64.RawURLEncoding.DecodeString(string(bytes.TrimRight(parts[1], "=")))
	if err != nil {
		return nil, fmt.Errorf("the metadata BLOB's payload is not base64url: %w", err)
	}
	return payload, nil
}

// namesOf keeps each FIDO2 statement's description, or its English
// friendly name when it has no description. UAF and U2F statements have
// no AAGUID and are left out.
func namesOf(statements []metadata.StatementJSON) (map[string]string, error) {
	names := map[string]string{}
	for i, st := range statements {
		if st.AaGUID == "" {
			continue
		}
		id, err := uuid.Parse(st.AaGUID)
		if err != nil {
			return nil, fmt.Errorf("statement %d: aaguid %q is not a UUID", i, st.AaGUID)
		}
		name := strings.TrimSpace(st.Description)
		if name == "" {
			name = strings.TrimSpace(st.FriendlyNames["en-US"])
		}
		if name != "" {
			names[id.String()] = name
		}
	}
	if len(names) == 0 {
		return nil, ErrNoMetadata
	}
	return names, nil
}
