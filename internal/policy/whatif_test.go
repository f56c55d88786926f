package policy

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestWhatIfRequest(t *testing.T) {
	t.Parallel()
	var w WhatIf
	in := `{"user": "alice", "app": "crm", "contexts": ["c2"], "ip": "192.0.2.1", "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X)",
		"client_app": "browser", "device_compliant": true, "sign_in_risk": "medium", "auth": "pwd@-5m,totp@-2m", "password_changed": "-1m", "terms": ["tou"]}`
	if err := json.Unmarshal([]byte(in), &w); err != nil {
		t.Fatal(err)
	}
	r, err := w.Request(goldenNow, Subject{Username: "alice", Groups: []string{"finance"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Platform != PlatformIOS || r.IP.String() != "192.0.2.1" || len(r.Events) != 2 ||
		!r.Events[1].Time.Equal(goldenNow.Add(-2*time.Minute)) || !r.PasswordChangedAt.Equal(goldenNow.Add(-time.Minute)) ||
		!r.Device.IsCompliant || r.Subject.Groups[0] != "finance" || r.AcceptedTerms[0] != "tou" {
		t.Errorf("request = %+v", r)
	}
	client, err := (&WhatIf{Client: "ci-bot", App: "crm"}).Request(goldenNow, Subject{})
	if err != nil || !client.Subject.Client || client.Subject.ID != "ci-bot" {
		t.Errorf("client request = %+v, %v", client, err)
	}
	bad := WhatIf{User: "a", Client: "b", IP: "300.1.1.1", Auth: "fido@-1m", PasswordChanged: "yesterday", SignInRisk: "mediun"}
	_, err = bad.Request(goldenNow, Subject{Username: "a"})
	if err == nil {
		t.Fatal("bad input accepted")
	}
	bad.Client = ""
	_, err = bad.Request(goldenNow, Subject{Username: "a"})
	for _, want := range []string{"ip", "auth", "password_changed", "sign_in_risk"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}
