package gateway

import (
	"crypto/rand"
	"encoding/base64"
	"net/url"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// Hand-off records in the key/value space. Bearer values (tickets,
// cookies, kept-request ids) are stored under their SHA-256 only.
var (
	tickets    = kvspace.JSON[ticket](kvspace.GatewayTicket)
	gwSessions = kvspace.JSON[gwSession](kvspace.GatewaySession)
)

const (
	// ticketLifetime bounds the hop from Stepgate back to the app.
	ticketLifetime = time.Minute
	// keptLifetime bounds how long a kept request waits for its step-up.
	keptLifetime = 10 * time.Minute
	// spentTicketLifetime is how long a redeemed ticket is remembered,
	// so that reloading its callback leads on rather than to an error.
	// One record per hand-off a signed-in user completed, as the gateway
	// session that hand-off made is.
	spentTicketLifetime = 12 * time.Hour
)

func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64URL(b)
}

// localTarget accepts only a path on the route's own host, so the
// gateway's return address can never send a browser to another site
// ("//evil.example", "/\\evil.example", "https://evil.example").
func localTarget(s string) (string, bool) {
	if s == "" || len(s) > 4096 || s[0] != '/' || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\\r\n\t") {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "", false
	}
	return s, true
}

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
