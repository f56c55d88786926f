package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
)

// WebAuthn configures passkeys and security keys: the relying party that
// credentials are bound to.
type WebAuthn struct {
	// RPID is the relying party id: the host name credentials are scoped
	// to. Empty: the host of server.issuer.
	RPID string `yaml:"rp_id"`
	// RPName is the name an authenticator shows when it creates a
	// passkey.
	RPName string `yaml:"rp_name"`
	// Origins are the page origins allowed to use the credentials. Empty:
	// the origin of server.issuer.
	Origins []string `yaml:"origins,omitempty"`
	// AllowedAAGUIDs limits registration to these authenticator models.
	// Empty: any model.
	AllowedAAGUIDs []string `yaml:"allowed_aaguids,omitempty"`
	// MetadataFile is a FIDO Metadata Service file (the MDS3 BLOB, its
	// JSON payload, or metadata statements) whose model names are shown
	// beside passkeys, over the built-in names. Empty: the built-in
	// names only.
	MetadataFile string `yaml:"metadata_file,omitempty"`
}

// aaguidPattern is the text form of a UUID, as authenticator vendors and
// the FIDO metadata service publish AAGUIDs.
var aaguidPattern = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

// deriveWebAuthn fills the relying party from the issuer. An issuer whose
// host is an IP address leaves rp_id empty: WebAuthn scopes credentials to
// a domain, and browsers refuse an IP address as one, so passkeys are
// off. resolve warns about it.
func deriveWebAuthn(cfg *Config) {
	w := &cfg.WebAuthn
	u, err := url.Parse(cfg.Server.Issuer)
	if err != nil || u.Host == "" {
		return
	}
	if w.RPID == "" && net.ParseIP(u.Hostname()) == nil {
		w.RPID = strings.ToLower(u.Hostname())
	}
	if len(w.Origins) == 0 && w.RPID != "" {
		w.Origins = []string{u.Scheme + "://" + u.Host}
	}
}

// webauthnWarnings says that passkeys are off and how to turn them on.
func webauthnWarnings(cfg Config) []string {
	if cfg.WebAuthn.RPID != "" {
		return nil
	}
	return []string{fmt.Sprintf("passkeys and security keys are off: the host of server.issuer (%s) is an IP address, and WebAuthn needs a host name; use a host name in server.issuer, or set webauthn.rp_id and webauthn.origins", quote(cfg.Server.Issuer))}
}

func (w WebAuthn) validate(ps *problems) {
	if w.RPID != "" {
		if err := checkRPID(w.RPID); err != nil {
			ps.add("webauthn.rp_id", "%s", err)
		}
	} else if len(w.Origins) > 0 {
		ps.add("webauthn.origins", "is set but webauthn.rp_id is empty (the host of server.issuer is an IP address); set webauthn.rp_id to the host name the origins share")
	}
	if strings.TrimSpace(w.RPName) == "" {
		ps.add("webauthn.rp_name", "must not be empty; authenticators show it when they create a passkey (for example Stepgate or your organisation's name)")
	}
	for i, o := range w.Origins {
		if err := checkOrigin(o, w.RPID); err != nil {
			ps.add(fmt.Sprintf("webauthn.origins[%d]", i), "%s", err)
		}
	}
	for i, a := range w.AllowedAAGUIDs {
		if !aaguidPattern.MatchString(a) {
			ps.add(fmt.Sprintf("webauthn.allowed_aaguids[%d]", i), "%s is not an AAGUID; write it as a UUID like cb69481e-8ff7-4039-93ec-0a2729a154a8", quote(a))
		}
	}
}

// checkRPID accepts a DNS host name. Browsers refuse an IP address as a
// relying party id (WebAuthn scopes credentials to a registrable domain),
// so an IP here would make every ceremony fail in the browser with an
// error the user cannot act on.
func checkRPID(id string) error {
	switch {
	case net.ParseIP(strings.Trim(id, "[]")) != nil:
		return fmt.Errorf("%s is an IP address; WebAuthn binds credentials to a host name, and browsers refuse IP addresses: use a host name such as sso.example.com (or localhost on your own machine)", quote(id))
	case strings.Contains(id, "://") || strings.ContainsAny(id, "/:@?#"):
		return fmt.Errorf("%s is not a bare host name; write only the host, like sso.example.com, without scheme, port or path", quote(id))
	case !isHostName(id):
		return fmt.Errorf("%s is not a host name; use letters, digits, - and . like sso.example.com", quote(id))
	}
	return nil
}

// isHostName reports whether s is a DNS name of letter-digit-hyphen labels.
func isHostName(s string) bool {
	if s == "" || len(s) > 253 || strings.HasSuffix(s, ".") {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !isHostChar(r) {
				return false
			}
		}
	}
	return true
}

// checkOrigin accepts a page origin whose host is the relying party id or
// one of its subdomains: a browser refuses any other pairing, so the
// mistake is caught here rather than by users who cannot register.
func checkOrigin(o, rpID string) error {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%s is not an origin; write it like https://sso.example.com", quote(o))
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.Contains(o, "#") {
		return fmt.Errorf("%s must be scheme, host and optional port only, like https://sso.example.com", quote(o))
	}
	host := strings.ToLower(u.Hostname())
	// Browsers allow WebAuthn only in a secure context: https, or plain
	// http to localhost.
	if u.Scheme == "http" && host != "localhost" {
		return fmt.Errorf("%s must use https; browsers offer WebAuthn over plain http only on localhost", quote(o))
	}
	if rpID != "" && host != strings.ToLower(rpID) && !strings.HasSuffix(host, "."+strings.ToLower(rpID)) {
		return fmt.Errorf("the host of %s is not webauthn.rp_id (%s) or a subdomain of it; browsers refuse such an origin", quote(o), quote(rpID))
	}
	return nil
}

// isHostChar reports whether r may appear in a host name label.
func isHostChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-'
}
