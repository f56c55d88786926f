package risk

import (
	"net/netip"
	"testing"
	"time"
)

func TestUnfamiliar(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	hist := homeHistory(10, t0)
	next := func(f func(*SignIn)) SignIn {
		s := home(t0.Add(time.Hour))
		f(&s)
		return s
	}
	noDevices := make([]SignIn, len(hist))
	for i, s := range hist {
		s.DeviceID = ""
		noDevices[i] = s
	}
	noASN := make([]SignIn, len(hist))
	for i, s := range hist {
		s.ASN = 0
		noASN[i] = s
	}
	tests := []struct {
		name   string
		in     SignIn
		recent []SignIn
		want   Level
		props  string
	}{
		{"ok/familiar", next(func(*SignIn) {}), hist, None, ""},
		{"ok/same-asn-other-block", next(func(s *SignIn) { s.IP = netip.MustParseAddr("198.51.100.4") }), hist, None, ""},
		{"ok/same-block-asn-now-known", next(func(s *SignIn) { s.ASN = 65001; s.IP = netip.MustParseAddr("192.0.2.200") }), noASN, None, ""},
		{"ok/no-device-ids-anywhere", next(func(s *SignIn) { s.DeviceID = "" }), noDevices, None, ""},
		{"ok/first-device-id-after-none", next(func(s *SignIn) { s.DeviceID = "new-cookie" }), noDevices, None, ""},
		{"ok/unknown-browser-not-compared", next(func(s *SignIn) { s.Browser = "" }), hist, None, ""},
		{"ok/learning-period", next(func(s *SignIn) { s.DeviceID = "x"; s.Country = "RU" }), hist[:4], None, ""},
		{"fail/new-device", next(func(s *SignIn) { s.DeviceID = "phone" }), hist, Low, "device"},
		{"fail/missing-device-cookie", next(func(s *SignIn) { s.DeviceID = "" }), hist, Low, "device"},
		{"fail/new-asn", next(func(s *SignIn) { s.ASN = 64500; s.IP = netip.MustParseAddr("203.0.113.9") }), hist, Low, "network"},
		{"fail/new-block-without-asn", next(func(s *SignIn) { s.ASN = 0; s.IP = netip.MustParseAddr("203.0.113.9") }), noASN, Low, "network"},
		{"fail/new-browser", next(func(s *SignIn) { s.Browser = "chrome" }), hist, Low, "browser"},
		{"fail/new-platform", next(func(s *SignIn) { s.Platform = "windows" }), hist, Low, "platform"},
		{"fail/new-country-alone-is-medium", next(func(s *SignIn) { s.Country = "FR" }), hist, Medium, "country"},
		{"fail/two-properties-medium", next(func(s *SignIn) { s.Browser = "chrome"; s.Platform = "windows" }), hist, Medium, "browser,platform"},
		{"fail/attacker-everything-new", next(func(s *SignIn) {
			*s = SignIn{UserID: "alice", Time: s.Time, IP: netip.MustParseAddr("203.0.113.9"), ASN: 64999, Country: "RU", Browser: "chrome", Platform: "windows", Success: true}
		}), hist, Medium, "device,network,country,browser,platform"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, ok := e.unfamiliar(tt.in, tt.recent)
			if ok != (tt.want != None) || d.Level != tt.want || d.Evidence["properties"] != tt.props {
				t.Fatalf("unfamiliar = %v %+v, want level %v properties %q", ok, d, tt.want, tt.props)
			}
			if ok && (d.Type != TypeUnfamiliar || d.Reason != ReasonUnfamiliarProperties) {
				t.Errorf("type/reason %q/%q", d.Type, d.Reason)
			}
		})
	}
	t.Run("ok/network-evidence-names-asn", func(t *testing.T) {
		t.Parallel()
		d, _ := e.unfamiliar(next(func(s *SignIn) { s.ASN = 64500; s.IP = netip.MustParseAddr("203.0.113.9") }), hist)
		if d.Evidence["network"] != "AS64500" {
			t.Errorf("network evidence %q", d.Evidence["network"])
		}
		d, _ = e.unfamiliar(next(func(s *SignIn) { s.ASN = 0; s.IP = netip.MustParseAddr("2001:db8:1:2::1") }), noASN)
		if d.Evidence["network"] != "2001:db8:1::/48" {
			t.Errorf("network evidence %q", d.Evidence["network"])
		}
	})
}
