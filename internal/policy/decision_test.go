package policy

import (
	"encoding/json"
	"testing"
	"time"
)

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{90 * time.Second, "1m30s"},
		{30 * time.Second, "30s"},
		{10 * time.Minute, "10m"},
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{10 * time.Hour, "10h"},
		{24 * time.Hour, "1d"},
		{7 * 24 * time.Hour, "7d"},
		{25 * time.Hour, "25h"},
		{1500 * time.Millisecond, "1.5s"},
	}
	for _, tt := range tests {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
		var back Duration
		if err := back.UnmarshalText([]byte(tt.want)); err != nil || time.Duration(back) != tt.d {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", tt.want, time.Duration(back), err, tt.d)
		}
	}
}

func TestZeroDecisionIsNotAllow(t *testing.T) {
	t.Parallel()
	var d Decision
	if d.Outcome == OutcomeAllow || d.Outcome.String() != "invalid" {
		t.Errorf("zero outcome = %v; it must never read as allow", d.Outcome)
	}
	var o Outcome
	if o.UnmarshalText([]byte("permit")) == nil {
		t.Error("unknown outcome parsed")
	}
}

// TestDecisionJSON pins the JSON shape the What-If endpoint returns and
// the sign-in log stores: renaming a field breaks clients, so it must
// break this test first.
func TestDecisionJSON(t *testing.T) {
	t.Parallel()
	snap := mustCompile(t, `auth_contexts: [{id: c1, name: a}, {id: c2, name: b}]
policies:
  - name: c2-phr
    state: enabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c2]}
    grant: {operator: one-of, controls: [{strength: phishing-resistant}, compliant-device]}
    session: {sign_in_frequency: 10m, persistent_browser: never}
  - name: trial
    state: report-only
    users: {include: {users: [all]}}
    target: {apps: {include: [crm]}}
    grant: block
`)
	req := &Request{Subject: Subject{Username: "alice"}, App: "crm", AuthContexts: []string{"c1", "c2"}, Now: goldenNow}
	d := snap.Evaluate(req, EvaluateOptions{Explain: true})
	got, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	const want = `{
  "outcome": "challenge",
  "reason": "controls-not-satisfied",
  "missing": [
    {
      "any_of": [
        {
          "kind": "strength",
          "strength": "single-factor",
          "max_age": "10m",
          "options": [
            [
              "password"
            ],
            [
              "webauthn"
            ],
            [
              "push:uv"
            ]
          ]
        }
      ],
      "policies": [
        "c2-phr"
      ]
    },
    {
      "any_of": [
        {
          "kind": "strength",
          "strength": "phishing-resistant",
          "max_age": "10m",
          "options": [
            [
              "webauthn:uv"
            ],
            [
              "password",
              "webauthn"
            ]
          ]
        },
        {
          "kind": "compliant-device"
        }
      ],
      "policies": [
        "c2-phr"
      ]
    }
  ],
  "acrs": [
    "c1"
  ],
  "session": {
    "sign_in_frequency": "10m",
    "persistent_browser": "never"
  },
  "policies": [
    {
      "policy": "c2-phr",
      "state": "enabled",
      "result": "applied",
      "satisfied": false,
      "reason": "controls-not-satisfied",
      "grant": "one-of",
      "controls": [
        {
          "control": "strength:phishing-resistant",
          "max_age": "10m",
          "satisfied": false
        },
        {
          "control": "compliant-device",
          "satisfied": false
        },
        {
          "control": "sign-in",
          "max_age": "10m",
          "satisfied": false
        }
      ],
      "session": "sign-in every 10m, persistent browser never"
    },
    {
      "policy": "trial",
      "state": "report-only",
      "result": "report-only-failure",
      "satisfied": false,
      "reason": "blocked-by-policy",
      "grant": "block"
    }
  ]
}`
	if string(got) != want {
		t.Errorf("JSON shape changed:\n%s", got)
	}
	var back Decision
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("decision JSON does not read back: %v", err)
	}
	if back.Outcome != d.Outcome || back.Missing[0].AnyOf[0].MaxAge != d.Missing[0].AnyOf[0].MaxAge {
		t.Errorf("round trip lost data: %+v", back)
	}
}
