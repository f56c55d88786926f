// Package scenario is "stepgate policy test": scenario test files kept
// beside the policies, each scenario a hypothetical request with the
// decision the team expects for it, run through the decision core
// exactly as the What-If tool and every enforcement point ask it, with a
// report of the policies and conditions no scenario exercised.
package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/yamlnode"
)

// Suffixes name scenario test files. The policy loader skips them when it
// reads a directory, and a file without one is never read as tests, so a
// test file beside the policies is never taken for a policy file, nor a
// policy file for tests.
var Suffixes = []string{".tests.yaml", ".tests.yml"}

// IsTestFile reports whether name is a scenario test file's name.
func IsTestFile(name string) bool {
	name = strings.ToLower(filepath.Base(name))
	return slices.ContainsFunc(Suffixes, func(s string) bool { return strings.HasSuffix(name, s) })
}

// MaxFileSize bounds a test file, as policy.MaxFileSize bounds a policy
// file.
const MaxFileSize = policy.MaxFileSize

// File is one scenario test file.
type File struct {
	// Name is the file's name as given to Parse, used in messages.
	Name string `yaml:"-"`
	// Now is the time every scenario is evaluated at unless it gives its
	// own, an RFC 3339 time. Scenarios never see the real clock, so a
	// test passes or fails the same on every day.
	Now       string     `yaml:"now"`
	Scenarios []Scenario `yaml:"scenarios"`
}

// Scenario is one hypothetical request and the answer expected for it.
type Scenario struct {
	Name string `yaml:"name"`
	Now  string `yaml:"now"`

	// Who: a user in the store by name, a service client, or a subject
	// written inline.
	User    string  `yaml:"user"`
	Client  string  `yaml:"client"`
	Subject Subject `yaml:"subject"`

	// What: an app with authentication contexts or a user action, or a
	// gateway route with a method and path that the route's rules
	// resolve to an app and a context.
	App      string   `yaml:"app"`
	Contexts []string `yaml:"contexts"`
	Action   string   `yaml:"action"`
	Route    Route    `yaml:"route"`

	IP        string `yaml:"ip"`
	Country   string `yaml:"country"`
	Platform  string `yaml:"platform"`
	ClientApp string `yaml:"client_app"`
	Device    Device `yaml:"device"`

	SignInRisk string `yaml:"sign_in_risk"`
	UserRisk   string `yaml:"user_risk"`

	// Proofs are the session's proofs, each with its age.
	Proofs []Proof   `yaml:"proofs"`
	Terms  []string  `yaml:"terms"`
	SQL    Statement `yaml:"statement"`
	// Methods are the user's registered methods, in place of those the
	// store holds.
	Methods []string `yaml:"methods"`

	Expect Expect `yaml:"expect"`

	// Line is where the scenario starts.
	Line int `yaml:"-"`
	// set holds the key paths (relative to the scenario) written.
	set map[string]int
}

// Subject is a user written inline: no store is needed for it.
type Subject struct {
	Username string   `yaml:"username"`
	Groups   []string `yaml:"groups"`
	Roles    []string `yaml:"roles"`
}

// Route is a request through a gateway route.
type Route struct {
	// Name is the route's name in gateway.routes.
	Name   string `yaml:"name"`
	Method string `yaml:"method"`
	Path   string `yaml:"path"`
}

// Device is what is known about the device.
type Device struct {
	ID         string            `yaml:"id"`
	Compliant  bool              `yaml:"compliant"`
	TrustType  string            `yaml:"trust_type"`
	Attributes map[string]string `yaml:"attributes"`
}

// Proof is one proof of the session: a method (with :uv or :phr
// qualifiers, as the What-If tool's --auth takes them) made Age ago.
type Proof struct {
	Method string `yaml:"method"`
	Age    string `yaml:"age"`
}

// Statement is the SQL statement of a request through the database
// gateway (see policy.Statement).
type Statement struct {
	Class   string   `yaml:"class"`
	Command string   `yaml:"command"`
	Tables  []string `yaml:"tables"`
	Labels  []string `yaml:"labels"`
}

// Expect is the answer the scenario expects.
type Expect struct {
	Decision string `yaml:"decision"`
	// Policy is a policy that decided: the one that blocked, one that
	// demands a missing proof, or, for an allow, one that applied.
	Policy string `yaml:"policy"`
	// Reason is the decision's reason code (see docs/policy.md).
	Reason string `yaml:"reason"`
	// Methods are the methods a challenge offers, in any order.
	Methods []string `yaml:"methods"`
}

// Has reports whether the scenario wrote the key path (like "methods" or
// "expect.methods"), even as an empty list.
func (s *Scenario) Has(path string) bool {
	_, ok := s.set[path]
	return ok
}

// LineOf returns the line key path was written on. A key that is
// missing (the usual subject of "needs") has no line of its own, so the
// nearest enclosing key written stands in for it, then the scenario.
func (s *Scenario) LineOf(path string) int {
	for path != "" {
		if l, ok := s.set[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return s.Line
}

// Decisions a scenario can expect.
var decisions = []string{policy.OutcomeAllow.String(), policy.OutcomeChallenge.String(), policy.OutcomeBlock.String()}

// statementClasses are the classes the database gateway's classifier
// gives a statement.
var statementClasses = []string{"session", "read", "utility", "write", "ddl", "privilege", "unknown"}

// maxValues bounds the values a file may expand to through aliases (see
// yamlnode.Budget).
const maxValues = 100_000

// Parse reads a scenario test file. It returns every problem at once,
// each with its line and key path, as policy files do.
func Parse(name string, data []byte) (*File, policy.Problems) {
	p := &parser{file: name, lines: map[string]int{},
		budget: yamlnode.Budget{MaxBytes: MaxFileSize, MaxValues: maxValues}}
	f := &File{Name: name}
	if msg := p.budget.TooLarge(data, "scenario test files"); msg != "" {
		p.add(0, "", msg+"; split it")
		return f, p.problems
	}
	root := p.parseYAML(data)
	if root == nil {
		if len(p.problems) == 0 {
			p.add(0, "", "the file is empty; write scenarios: with at least one scenario")
		}
		return f, p.problems
	}
	if root.Kind != yaml.MappingNode {
		p.add(root.Line, "", "the top level must be a mapping with keys now and scenarios, not "+yamlnode.Describe(root))
		return f, p.problems
	}
	p.mapping(root, reflect.ValueOf(f).Elem(), "")
	if p.budget.Exceeded() {
		// Checking what an alias bomb expanded to would only repeat the
		// one problem that matters, once per copy.
		return f, p.problems.Sorted()
	}
	for i := range f.Scenarios {
		s := &f.Scenarios[i]
		prefix := fmt.Sprintf("scenarios[%d]", i)
		s.Line = p.lines[prefix]
		s.set = map[string]int{}
		for path, line := range p.lines {
			if rest, ok := strings.CutPrefix(path, prefix+"."); ok {
				s.set[rest] = line
			}
		}
	}
	p.check(f)
	return f, p.problems.Sorted()
}

type parser struct {
	file     string
	lines    map[string]int
	problems policy.Problems
	budget   yamlnode.Budget
}

func (p *parser) add(line int, path, msg string) {
	p.problems = append(p.problems, policy.Problem{File: p.file, Line: line, Path: path, Message: msg})
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (p *parser) parseYAML(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			msg, line := strings.TrimPrefix(err.Error(), "yaml: "), 0
			if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
				line, _ = strconv.Atoi(m[1])
				msg = m[2]
			}
			p.add(line, "", "invalid YAML: "+msg)
		}
		return nil
	}
	if len(doc.Content) == 0 || yamlnode.IsNull(doc.Content[0]) {
		return nil
	}
	return doc.Content[0]
}

func (p *parser) value(n *yaml.Node, v reflect.Value, path string) {
	n = yamlnode.Deref(n)
	if n == nil || yamlnode.IsNull(n) {
		return
	}
	if ok, problem := p.budget.Visit(); !ok {
		if problem != "" {
			p.add(n.Line, path, problem+"; write lists out")
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		p.mapping(n, v, path)
	case reflect.Slice:
		p.sequence(n, v, path)
	case reflect.Map:
		p.stringMap(n, v, path)
	case reflect.Bool:
		if s, ok := p.scalar(n, path); ok {
			if n.ShortTag() != "!!bool" {
				p.add(n.Line, path, fmt.Sprintf("must be true or false, not %q", s))
				return
			}
			v.SetBool(s == "true" || s == "True" || s == "TRUE")
		}
	case reflect.String:
		if s, ok := p.scalar(n, path); ok {
			v.SetString(s)
		}
	default:
		p.add(n.Line, path, "cannot be set (unsupported type "+v.Type().String()+")")
	}
}

func (p *parser) mapping(n *yaml.Node, v reflect.Value, path string) {
	names := yamlnode.Names(v.Type())
	if n.Kind != yaml.MappingNode {
		p.add(n.Line, path, fmt.Sprintf("must be a mapping with keys %s, not %s", strings.Join(names, ", "), yamlnode.Describe(n)))
		return
	}
	fields := yamlnode.Fields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := yamlnode.Deref(n.Content[i])
		if k == nil || k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			p.add(n.Line, path, "has a key that is not a plain name (a list, a mapping or a << merge); write the keys out")
			continue
		}
		keyPath := yamlnode.Join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			p.add(k.Line, keyPath, fmt.Sprintf("duplicate key (first set on line %d); keep only one", first))
			continue
		}
		seen[k.Value] = k.Line
		f, known := fields[k.Value]
		if !known {
			p.add(k.Line, keyPath, "unknown key"+p.suggest(k.Value, names, path))
			continue
		}
		p.lines[keyPath] = k.Line
		p.value(n.Content[i+1], v.Field(f), keyPath)
	}
}

func (p *parser) suggest(key string, names []string, path string) string {
	if path == "" && slices.Contains([]string{"policies", "auth_contexts", "named_locations", "strengths", "terms_of_use"}, key) {
		return fmt.Sprintf("; this looks like a policy file: scenario test files hold scenarios and are named *%s", Suffixes[0])
	}
	if s := yamlnode.Closest(key, names); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return "; known keys here are " + strings.Join(names, ", ")
}

func (p *parser) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		p.add(n.Line, path, fmt.Sprintf("must be a list, not %s; write it like [a, b] or one \"- item\" per line", yamlnode.Describe(n)))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		itemPath := fmt.Sprintf("%s[%d]", path, i)
		p.lines[itemPath] = item.Line
		p.value(item, out.Index(i), itemPath)
	}
	v.Set(out)
}

func (p *parser) stringMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		p.add(n.Line, path, "must be a mapping of names to values, not "+yamlnode.Describe(n))
		return
	}
	m := reflect.MakeMap(v.Type())
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := yamlnode.Deref(n.Content[i]), yamlnode.Deref(n.Content[i+1])
		if k == nil || k.Kind != yaml.ScalarNode {
			p.add(n.Line, path, "has a key that is not a plain name")
			continue
		}
		if s, ok := p.scalar(val, yamlnode.Join(path, k.Value)); ok {
			m.SetMapIndex(reflect.ValueOf(k.Value), reflect.ValueOf(s))
		}
	}
	v.Set(m)
}

func (p *parser) scalar(n *yaml.Node, path string) (string, bool) {
	n = yamlnode.Deref(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		line := 0
		if n != nil {
			line = n.Line
		}
		p.add(line, path, "must be a single value, not "+yamlnode.Describe(n))
		return "", false
	}
	return n.Value, true
}

// check reports what is wrong with the scenarios' values, each at its
// line.
func (p *parser) check(f *File) {
	if f.Now != "" {
		if _, err := time.Parse(time.RFC3339, f.Now); err != nil {
			p.add(p.lines["now"], "now", fmt.Sprintf("%q is not an RFC 3339 time; write it like 2026-01-05T09:00:00Z", f.Now))
		}
	}
	if len(f.Scenarios) == 0 {
		p.add(p.lines["scenarios"], "scenarios", "no scenarios; write at least one, with a name, the facts and expect: {decision: allow}")
	}
	names := map[string]int{}
	for i := range f.Scenarios {
		s := &f.Scenarios[i]
		at := func(key, msg string) {
			p.add(s.LineOf(key), yamlnode.Join(fmt.Sprintf("scenarios[%d]", i), key), msg)
		}
		checkScenario(s, names, at)
	}
}

func checkScenario(s *Scenario, names map[string]int, at func(key, msg string)) {
	switch first, dup := names[s.Name]; {
	case s.Name == "":
		at("name", "a scenario needs a name, which failures are reported under")
	case dup:
		at("name", fmt.Sprintf("scenario %q is already on line %d; give each scenario its own name", s.Name, first))
	default:
		names[s.Name] = s.Line
	}
	if s.Now != "" {
		if _, err := time.Parse(time.RFC3339, s.Now); err != nil {
			at("now", fmt.Sprintf("%q is not an RFC 3339 time; write it like 2026-01-05T09:00:00Z", s.Now))
		}
	}
	who := 0
	for _, k := range []string{"user", "client", "subject"} {
		if s.Has(k) {
			who++
		}
	}
	if who != 1 {
		at("user", "give exactly one of user (a user in the store), client (a service client id) or subject (a user written inline: {username, groups, roles})")
	}
	if s.Has("subject") && s.Subject.Username == "" {
		at("subject.username", "an inline subject needs a username")
	}
	checkTarget(s, at)
	checkProofs(s, at)
	for i, m := range s.Methods {
		checkMethod(fmt.Sprintf("methods[%d]", i), m, at)
	}
	if s.SQL.Class != "" && !slices.Contains(statementClasses, s.SQL.Class) {
		at("statement.class", fmt.Sprintf("%q is not a statement class; use one of %s", s.SQL.Class, strings.Join(statementClasses, ", ")))
	}
	checkExpect(s, at)
}

func checkTarget(s *Scenario, at func(key, msg string)) {
	if s.Has("route") {
		if s.App != "" || len(s.Contexts) > 0 {
			at("route", "give a route or an app with contexts, not both: the route's rules decide the app and the context")
		}
		if s.Route.Name == "" || s.Route.Path == "" {
			at("route", "a route needs its name (as in gateway.routes) and a path, like {name: bank, method: POST, path: /transfers}")
		} else if !strings.HasPrefix(s.Route.Path, "/") {
			at("route.path", fmt.Sprintf("%q must start with /", s.Route.Path))
		}
		return
	}
	if s.App == "" && len(s.Contexts) == 0 && s.Action == "" {
		at("app", "give what is being accessed: app (with contexts), a route {name, method, path}, or action: "+policy.ActionRegisterSecurityInfo)
	}
}

func checkProofs(s *Scenario, at func(key, msg string)) {
	for i, pr := range s.Proofs {
		key := fmt.Sprintf("proofs[%d]", i)
		if pr.Method == "" {
			at(key+".method", "a proof needs a method, like password, totp or webauthn")
		} else {
			checkMethod(key+".method", pr.Method, at)
		}
		if pr.Age == "" {
			at(key+".age", "a proof needs an age, like 5m, 2h or 1d (0s for a proof made just now)")
			continue
		}
		if _, err := strength.ParseDuration(pr.Age); err != nil || strings.HasPrefix(pr.Age, "-") {
			at(key+".age", fmt.Sprintf("%q is not an age; write how long ago the proof was made, like 90s, 15m, 2h or 7d", pr.Age))
		}
	}
}

// checkMethod reports a method name the policy engine does not know,
// with the qualifiers What-If takes (webauthn:uv).
func checkMethod(key, m string, at func(key, msg string)) {
	if strings.ContainsAny(m, "@,") {
		at(key, fmt.Sprintf("%q: give the method alone, like totp; the age goes in age:", m))
		return
	}
	if _, err := strength.ParseEvents(m, time.Unix(0, 0)); err != nil {
		msg := strings.Replace(err.Error(), strength.ErrSyntax.Error()+": ", "", 1)
		msg = strings.TrimPrefix(msg, "event ")
		if s := yamlnode.Closest(m, strength.Methods()); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		at(key, msg)
	}
}

func checkExpect(s *Scenario, at func(key, msg string)) {
	e := s.Expect
	switch {
	case !s.Has("expect"):
		at("expect", "a scenario needs expect: with at least the decision, like expect: {decision: challenge}")
		return
	case e.Decision == "":
		at("expect.decision", "give the expected decision: "+strings.Join(decisions, ", "))
	case !slices.Contains(decisions, e.Decision):
		msg := fmt.Sprintf("%q is not a decision; use one of %s", e.Decision, strings.Join(decisions, ", "))
		if c := yamlnode.Closest(e.Decision, decisions); c != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", c)
		}
		at("expect.decision", msg)
	}
	if e.Reason != "" && !reason.Code(e.Reason).Known() {
		codes := make([]string, 0, 64)
		for _, c := range reason.All() {
			codes = append(codes, string(c))
		}
		msg := fmt.Sprintf("%q is not a reason code (see Reason codes in docs/policy.md)", e.Reason)
		if c := yamlnode.Closest(e.Reason, codes); c != "" {
			msg += fmt.Sprintf("; did you mean %q?", c)
		}
		at("expect.reason", msg)
	}
	for i, m := range e.Methods {
		checkMethod(fmt.Sprintf("expect.methods[%d]", i), m, at)
	}
	if s.Has("expect.methods") && e.Decision != "" && e.Decision != policy.OutcomeChallenge.String() {
		at("expect.methods", "only a challenge offers methods; remove expect.methods or expect decision: challenge")
	}
}
