package risk

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// t0 is a fixed clock for every test.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// newEngine builds an engine from c or fails the test.
func newEngine(t testing.TB, c Config) *Engine {
	t.Helper()
	e, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// home is a familiar sign-in of alice's from London on her laptop.
func home(at time.Time) SignIn {
	return SignIn{
		UserID: "alice", Time: at, IP: netip.MustParseAddr("192.0.2.10"),
		Country: "GB", Latitude: 51.5, Longitude: -0.13, HasCoordinates: true,
		ASN: 64496, Browser: "firefox", Platform: "linux", DeviceID: "laptop", Success: true,
	}
}

// homeHistory is n successful sign-ins from home, an hour apart, the
// newest at last; returned newest first, as Recent returns them.
func homeHistory(n int, last time.Time) []SignIn {
	out := make([]SignIn, n)
	for i := range out {
		out[i] = home(last.Add(-time.Duration(i) * time.Hour))
	}
	return out
}

func TestLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want Level
	}{
		{"ok/empty-is-none", "", None},
		{"ok/none", "none", None},
		{"ok/low", "low", Low},
		{"ok/medium", "medium", Medium},
		{"ok/high", "high", High},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseLevel(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("ParseLevel(%q) = %v, %v", tt.in, got, err)
			}
			if tt.in != "" && got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
	for _, bad := range []string{"High", "mediun", "critical"} {
		t.Run("fail/"+bad, func(t *testing.T) {
			t.Parallel()
			if _, err := ParseLevel(bad); err == nil {
				t.Errorf("ParseLevel(%q) succeeded", bad)
			}
		})
	}
	t.Run("ok/json-round-trip", func(t *testing.T) {
		t.Parallel()
		b, err := json.Marshal(Detection{Type: TypeTravel, Level: Medium, Reason: ReasonAtypicalTravel})
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"type":"travel","level":"medium","reason":"atypical-travel"}`; string(b) != want {
			t.Errorf("JSON %s, want %s", b, want)
		}
		var d Detection
		if err := json.Unmarshal(b, &d); err != nil || d.Level != Medium {
			t.Errorf("unmarshal: %+v, %v", d, err)
		}
	})
	t.Run("fail/out-of-range", func(t *testing.T) {
		t.Parallel()
		if _, err := Level(7).MarshalText(); err == nil {
			t.Error("MarshalText(7) succeeded")
		}
		if Level(7).String() != "level(7)" {
			t.Errorf("String() = %q", Level(7).String())
		}
	})
	t.Run("ok/max", func(t *testing.T) {
		t.Parallel()
		if Max() != None || Max(Low, High, Medium) != High || Max(Low, None) != Low {
			t.Error("Max ordering wrong")
		}
	})
}

func TestNew(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{LearningSignIns: 80})
	c := e.Config()
	if c.MaxSpeedKmh != 1000 || c.SprayThreshold != 20 || c.BruteForceThreshold != 10 || c.SprayWindow != time.Hour {
		t.Errorf("defaults not applied: %+v", c)
	}
	if c.FamiliarWindow != 80 {
		t.Errorf("FamiliarWindow = %d, want it raised to the learning period 80", c.FamiliarWindow)
	}
	_, err := New(Config{MaxSpeedKmh: -1, SprayThreshold: -2, IPLists: []IPList{{}}})
	if err == nil {
		t.Fatal("New accepted negative values")
	}
	for _, want := range []string{"max_speed_kmh", "spray_threshold", "ip_lists[0] has no name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
