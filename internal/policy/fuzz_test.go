package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParsePolicy feeds arbitrary files through Parse and Compile: they
// must never panic, every problem must name the file, and whatever
// compiles must evaluate.
func FuzzParsePolicy(f *testing.F) {
	files, _ := filepath.Glob("testdata/golden/*.txt")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		policies, _, _ := strings.Cut(string(data), goldenSep)
		f.Add(policies)
	}
	for _, seed := range []string{
		"", "policies: [\n", "a: &a [*a]\n", "policies: [{grant: block}]\n",
		"policies:\n  - grant: {controls: [{strength: }]}\n",
		"named_locations: [{name: x, ip_ranges: ['::/0', '0.0.0.0/0']}]\n",
	} {
		f.Add(seed)
	}
	dir := goldenDirectory()
	f.Fuzz(func(t *testing.T, content string) {
		doc, probs := Parse("fuzz.yaml", []byte(content))
		if doc == nil {
			t.Fatal("nil document")
		}
		for _, d := range []Directory{nil, dir} {
			snap, cprobs := Compile(d, doc)
			for _, p := range append(probs, cprobs...) {
				if p.Message == "" || (p.File != "fuzz.yaml" && p.File != "") {
					t.Fatalf("malformed problem %+v", p)
				}
			}
			if (snap == nil) == (len(cprobs) == 0) {
				t.Fatalf("snapshot %v with %d problems", snap != nil, len(cprobs))
			}
			if snap != nil {
				req := &Request{Subject: Subject{Username: "alice", Groups: []string{"finance"}}, App: "crm", AuthContexts: []string{"c1"}, Now: goldenNow}
				d := snap.Evaluate(req, EvaluateOptions{Explain: true})
				if d.Outcome < OutcomeAllow || d.Outcome > OutcomeChallenge {
					t.Fatalf("invalid outcome %v", d.Outcome)
				}
				Explain(&d)
			}
		}
	})
}

// FuzzEvaluateCEL runs CEL conditions over arbitrary device, user and
// request values: evaluation must never panic, must finish within the
// cost limit, and a failure must count as matching (fail closed).
func FuzzEvaluateCEL(f *testing.F) {
	for _, e := range []string{
		`device.trust_type != "managed"`,
		`has(device.attributes.owner) && device.attributes.owner == "corp"`,
		`device.attributes[request.country] == user.username`,
		`user.groups.exists(g, g.startsWith(device.trust_type))`,
		`device.attributes.all(k, device.attributes.all(j, k + j != ""))`,
		`request.ip.matches(device.attributes.pattern)`,
		`user.username.split(device.trust_type).size() > 2`,
		`request.time.getHours(device.trust_type) > 3`,
	} {
		f.Add(e, "owner", "corp", "managed", "finance", "DE")
	}
	env, err := newCELEnv()
	if err != nil {
		f.Fatal(err)
	}
	snap := Empty()
	f.Fuzz(func(t *testing.T, expr, key, val, trust, group, country string) {
		prg, issues := compileCEL(env, expr)
		if prg == nil {
			if len(issues) == 0 {
				t.Fatal("no program and no issues")
			}
			return
		}
		attrs := map[string]string{key: val, "pattern": val}
		for i := range 30 {
			attrs[key+string(rune('a'+i))] = val
		}
		req := &Request{
			Subject: Subject{ID: val, Username: key, Groups: []string{group, trust}},
			Country: country, Device: Device{TrustType: trust, Attributes: attrs},
			AuthContexts: []string{group}, Now: goldenNow,
		}
		act := &activation{req: *req, groups: snap.effectiveGroups(req.Subject.Groups)}
		_, det, err := prg.prg.Eval(act)
		if err == nil && det != nil && det.ActualCost() != nil && *det.ActualCost() > CELCostLimit {
			t.Fatalf("cost %d over the limit without an error", *det.ActualCost())
		}
		// Through the policy path a failure must read as "applies".
		p := &compiledPolicy{expr: prg}
		reason, detail := p.matchCEL(&evalCtx{snap: snap}, req)
		if err != nil && (reason != "" || detail == "") {
			t.Fatalf("failed expression gave reason %q, detail %q; want it to apply with a detail", reason, detail)
		}
	})
}
