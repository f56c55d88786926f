package strength

import (
	"fmt"
	"strings"
	"time"
)

// aliases are the short names the What-If tool accepts besides method
// names; "pwd" and "hwk" are the RFC 8176 amr values people know.
var aliases = map[string]string{
	"pwd":      Password,
	"hwk":      WebAuthn,
	"passkey":  WebAuthn,
	"sms":      OTPSMS,
	"email":    OTPEmail,
	"recovery": RecoveryCode,
}

// ParseEvents reads a compact list of events such as
// "pwd@-5m,totp@-2m,webauthn:uv@2025-01-02T15:04:05Z": a method name (or
// alias) with optional :uv and :phr qualifiers, then "@" and either an
// offset from now ("-90s", "-2h", "-1d") or an RFC 3339 time. A missing
// "@..." means now. WebAuthn events are always phishing-resistant. The
// events carry no AMR values: strengths never read them.
//
// It exists for the What-If tool and tests, which describe a session's
// history on one line.
func ParseEvents(spec string, now time.Time) ([]Event, error) {
	var out []Event
	if strings.TrimSpace(spec) == "" {
		return nil, nil
	}
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		e, err := parseEvent(item, now)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func parseEvent(item string, now time.Time) (Event, error) {
	what, when, hasTime := strings.Cut(item, "@")
	name, quals, _ := strings.Cut(what, ":")
	if a, ok := aliases[name]; ok {
		name = a
	}
	if quals != "" {
		name += ":" + quals
	}
	t, err := parseTerm(name)
	if err != nil {
		return Event{}, fmt.Errorf("event %q: %w", item, err)
	}
	e := Event{
		Method:            t.Method,
		Time:              now,
		UserVerified:      t.UserVerified,
		PhishingResistant: t.PhishingResistant || t.Method == WebAuthn,
	}
	if hasTime {
		if e.Time, err = parseWhen(when, now); err != nil {
			return Event{}, fmt.Errorf("event %q: %w", item, err)
		}
	}
	return e, nil
}

func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "now" {
		return now, nil
	}
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		d, err := ParseDuration(s[1:])
		if err != nil {
			return time.Time{}, err
		}
		if s[0] == '-' {
			d = -d
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q is neither an offset like -5m nor an RFC 3339 time like 2025-01-02T15:04:05Z", s)
	}
	return t, nil
}

// ParseDuration is time.ParseDuration plus a "d" (24h) unit, since
// sign-in frequencies are naturally written in days.
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok && days != "" && !strings.ContainsAny(days, "hmsuµn") {
		var n int64
		if _, err := fmt.Sscanf(days, "%d", &n); err != nil || fmt.Sprint(n) != days || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("duration %q: write whole days like 7d, or hours like 12h", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: write it like 90s, 15m, 12h or 7d", s)
	}
	return d, nil
}
