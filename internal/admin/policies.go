package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// PolicyInfo is one policy of the live set, with where it is defined.
type PolicyInfo struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	State       string `json:"state"`
	// Source is the policy file (with its line) or store:DOCUMENT.
	Source string `json:"source"`
	Line   int    `json:"line,omitempty"`
	// Document is the stored document that defines the policy; empty for
	// a policy from a file, which the console shows read-only.
	Document string `json:"document,omitempty"`
	Editable bool   `json:"editable"`
	// YAML is the policy as written (file policies: as parsed).
	YAML string `json:"yaml"`
}

// Policies lists the live policies in evaluation order.
func (s *Service) Policies(ctx context.Context) ([]PolicyInfo, error) {
	set, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	var out []PolicyInfo
	for _, doc := range set.Documents {
		stored := strings.HasPrefix(doc.File, StoreSource)
		for i, p := range doc.Policies {
			info := PolicyInfo{Name: p.Name, Description: p.Description, State: p.State, Source: doc.File,
				Line: doc.Line(fmt.Sprintf("policies[%d]", i)), Editable: stored}
			if info.State == "" {
				info.State = string(policy.StateEnabled)
			}
			if stored {
				info.Document = strings.TrimPrefix(doc.File, StoreSource)
			}
			b, _ := yaml.Marshal(p)
			info.YAML = string(b)
			out = append(out, info)
		}
	}
	return out, nil
}

// Policy returns one live policy.
func (s *Service) Policy(ctx context.Context, name string) (PolicyInfo, error) {
	all, err := s.Policies(ctx)
	if err != nil {
		return PolicyInfo{}, err
	}
	for _, p := range all {
		if p.Name == name {
			return p, nil
		}
	}
	return PolicyInfo{}, &Error{Kind: NotFound, Message: fmt.Sprintf("no policy named %q", name)}
}

// current compiles the live set as it is stored now, for listing with
// sources and lines.
func (s *Service) current(ctx context.Context) (Compiled, error) {
	docs, err := s.Documents.List(ctx)
	if err != nil {
		return Compiled{}, err
	}
	return s.Compile(ctx, s.Environment(), docs)
}

// Candidate is a change to the stored documents: Doc replaces the
// document of its name (Version is the version read; 0 creates it), or
// with Delete set, removes it.
type Candidate struct {
	Doc    Document
	Delete bool
}

// apply returns the stored documents with c applied.
func (c Candidate) apply(stored []Document) []Document {
	out := slices.DeleteFunc(slices.Clone(stored), func(d Document) bool { return d.Name == c.Doc.Name })
	if !c.Delete {
		out = append(out, c.Doc)
	}
	slices.SortFunc(out, func(a, b Document) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// check compiles the live set with c applied; problems come back as an
// *Error listing every one. It returns the release it applied c to.
func (s *Service) check(ctx context.Context, c Candidate) (Compiled, Release, error) {
	if err := CheckName(c.Doc.Name); err != nil {
		return Compiled{}, Release{}, &Error{Kind: Invalid, Message: err.Error()}
	}
	head, err := s.Documents.Head(ctx)
	if err != nil {
		return Compiled{}, Release{}, err
	}
	set, err := s.Compile(ctx, s.Environment(), c.apply(head.Documents))
	if probs := policyProblems(err); probs != nil {
		return Compiled{}, Release{}, &Error{Kind: Invalid, Message: "the policies do not compile", Problems: probs}
	}
	return set, head, err
}

// maxRechecks bounds how often one change is checked again because other
// changes kept landing between its check and its commit.
const maxRechecks = 8

// checkedCommit checks the environment's documents with c applied (the
// set compiles, its scenario tests pass or overrideTests overrides
// them) and has commit store c over exactly the release it checked.
//
// Attack: a change checked against one release and committed over a
// newer one (a promotion or another administrator's save landing in
// between) stored a set nobody compiled or tested, such as one policy
// declared twice, which no node can load. So commit must refuse any
// other release (SaveOver, RemoveOver), and a change that lost the race
// is checked again over the new release, up to maxRechecks times, then
// refused as a conflict. It returns the failed scenario tests that
// overrideTests overrode, and with them an error that Stored reports a
// stored change: the caller audits it all the same.
func (s *Service) checkedCommit(ctx context.Context, c Candidate, overrideTests string, commit func(head Release) error) ([]string, error) {
	for attempt := 1; ; attempt++ {
		set, head, err := s.check(ctx, c)
		if err != nil {
			return nil, err
		}
		failed, err := s.runTests(ctx, set, overrideTests)
		if err != nil {
			return nil, err
		}
		err = commit(head)
		if errors.Is(err, ErrReleaseVersion) && attempt < maxRechecks {
			continue
		}
		if err != nil && !Stored(err) {
			return nil, s.storeErr(err, c.Doc.Name)
		}
		return failed, err
	}
}

// policyProblems returns the problems err lists, if it is a set that
// does not compile.
func policyProblems(err error) policy.Problems {
	var probs policy.Problems
	if errors.As(err, &probs) && len(probs) > 0 {
		return probs
	}
	return nil
}

// Validate compiles the live set with c applied and returns its problems
// (none: the change can be saved).
func (s *Service) Validate(ctx context.Context, c Candidate) error {
	_, _, err := s.check(ctx, c)
	return err
}

// Save stores a document after checking that the whole set still
// compiles with it and passes its scenario tests, records the change in
// the audit trail, and makes every node enforce it (this one at once,
// the others within seconds). A change that makes scenario tests fail
// is refused unless overrideTests gives the reason to save it anyway;
// the override and the failures it overrode are audited.
func (s *Service) Save(ctx context.Context, actor Actor, reason string, doc Document, overrideTests string) (Document, error) {
	if err := plainReasons(reason, overrideTests); err != nil {
		return Document{}, err
	}
	action := "policy.update"
	if doc.Version == 0 {
		action = "policy.create"
	}
	var (
		before any
		saved  Document
	)
	failed, err := s.checkedCommit(ctx, Candidate{Doc: doc}, overrideTests, func(head Release) (err error) {
		if old := head.document(doc.Name); doc.Version > 0 && old.Name != "" {
			before = old.YAML
		}
		saved, err = s.Documents.SaveOver(ctx, doc, doc.Version, head.Version, s.change(actor, action, doc.Name, reason))
		return err
	})
	if err != nil && !Stored(err) {
		return Document{}, err
	}
	target := s.auditTarget(saved.Source())
	overrideErr := s.recordOverride(ctx, actor, target, overrideTests, failed)
	return saved, errors.Join(err, overrideErr, s.afterChange(ctx, actor, action, target, reason, before, saved.YAML))
}

// auditTarget is target as the audit trail names it: in an environment
// other than production, with the environment. Attack: the same
// document or policy name in staging and production made a change to
// production read, in the audit trail, exactly like a staging edit.
// Production's targets stay as they were before environments.
func (s *Service) auditTarget(target string) string {
	if s.Environment() == ProductionEnvironment {
		return target
	}
	return target + "@" + s.Environment()
}

// recordOverride audits a change made although scenario tests failed:
// who, the reason given for overriding them, and the failures.
func (s *Service) recordOverride(ctx context.Context, actor Actor, target, override string, failed []string) error {
	if len(failed) == 0 {
		return nil
	}
	return s.record(ctx, actor, "policy.tests-overridden", target, strings.TrimSpace(override), nil, map[string]any{"failed": failed})
}

// runTests runs the scenario tests against set: nothing when they pass;
// the failures, when they fail and override gives a reason; a
// TestsFailed error listing them otherwise.
func (s *Service) runTests(ctx context.Context, set Compiled, override string) ([]string, error) {
	if s.Test == nil {
		return nil, nil
	}
	failed, err := s.Test(ctx, s.Environment(), set)
	if err != nil {
		return nil, fmt.Errorf("run the scenario tests: %w", err)
	}
	if len(failed) == 0 {
		return nil, nil
	}
	if strings.TrimSpace(override) == "" {
		count := fmt.Sprintf("%d scenario tests fail", len(failed))
		if len(failed) == 1 {
			count = "1 scenario test fails"
		}
		return nil, &Error{Kind: TestsFailed, Scenarios: failed, Message: count +
			" with this change, so it was not saved; fix the policy or the test file, or save anyway with a reason for overriding the tests"}
	}
	return failed, nil
}

// Delete removes a stored document, after the same checks as Save: the
// set must compile and pass its scenario tests without it (or the
// failures be overridden with a reason).
func (s *Service) Delete(ctx context.Context, actor Actor, reason, name string, version int64, overrideTests string) error {
	if err := plainReasons(reason, overrideTests); err != nil {
		return err
	}
	old, err := s.Documents.Get(ctx, name)
	if err != nil {
		return s.notFound(err, name)
	}
	failed, err := s.checkedCommit(ctx, Candidate{Doc: Document{Name: name}, Delete: true}, overrideTests, func(head Release) error {
		old = head.document(name)
		return s.Documents.RemoveOver(ctx, name, version, head.Version, s.change(actor, "policy.delete", name, reason))
	})
	if err != nil && !Stored(err) {
		return err
	}
	target := s.auditTarget(old.Source())
	overrideErr := s.recordOverride(ctx, actor, target, overrideTests, failed)
	return errors.Join(err, overrideErr, s.afterChange(ctx, actor, "policy.delete", target, reason, old.YAML, nil))
}

// SetState enables, disables or switches to report-only the policy
// named name, which must be defined in a stored document. The switch
// passes the same checks as Save, scenario tests included: enabling a
// policy is the change that most often breaks one.
func (s *Service) SetState(ctx context.Context, actor Actor, reason, name, state, overrideTests string) (Document, error) {
	if err := plainReasons(reason, overrideTests); err != nil {
		return Document{}, err
	}
	switch policy.State(state) {
	case policy.StateEnabled, policy.StateDisabled, policy.StateReportOnly:
	default:
		return Document{}, invalid("state %q: use enabled, disabled or report-only", state)
	}
	info, err := s.Policy(ctx, name)
	if err != nil {
		return Document{}, err
	}
	if !info.Editable {
		return Document{}, &Error{Kind: ReadOnly, Message: fmt.Sprintf("policy %s is defined in %s:%d; change it there (files are read-only here)", name, info.Source, info.Line)}
	}
	doc, err := s.Documents.Get(ctx, info.Document)
	if err != nil {
		return Document{}, s.notFound(err, info.Document)
	}
	edited, err := setPolicyState(doc.YAML, name, state)
	if err != nil {
		return Document{}, err
	}
	doc.YAML = edited
	var saved Document
	failed, err := s.checkedCommit(ctx, Candidate{Doc: doc}, overrideTests, func(head Release) (err error) {
		saved, err = s.Documents.SaveOver(ctx, doc, doc.Version, head.Version, s.change(actor, "policy.state", doc.Name, reason))
		return err
	})
	if err != nil && !Stored(err) {
		return Document{}, err
	}
	target := s.auditTarget("policy:" + name)
	overrideErr := s.recordOverride(ctx, actor, target, overrideTests, failed)
	return saved, errors.Join(err, overrideErr, s.afterChange(ctx, actor, "policy.state", target, reason, map[string]string{"state": info.State}, map[string]string{"state": state}))
}

func (s *Service) afterChange(ctx context.Context, actor Actor, action, target, reason string, before, after any) error {
	auditErr := s.record(ctx, actor, action, target, reason, before, after)
	if err := s.Reload(ctx); err != nil {
		return errors.Join(fmt.Errorf("the change is saved but this node could not reload the policies: %w", err), auditErr)
	}
	return auditErr
}

// plainReasons refuses a reason for a policy change that is not plain
// text on one line. Attack: a reason is kept in the release and shown by
// stepgate policy history, one line per version; a newline in it forged
// whole history lines (a promotion that never happened, a rollback
// passed off as a staging edit), and terminal escapes rewrote what the
// operator's terminal showed. Attack: characters that show nothing (a
// zero-width space, a Braille blank) made an override of failing
// scenario tests whose audited reason reads as empty, and a
// right-to-left override or a line separator made the console and the
// history show a reason other than the one stored. So a reason holds
// none of them, and one that is not blank shows at least one letter,
// digit, punctuation mark or symbol.
func plainReasons(reasons ...string) error {
	for _, r := range reasons {
		if strings.ContainsFunc(r, unseen) || (strings.TrimSpace(r) != "" && !strings.ContainsFunc(r, shown)) {
			return invalid("the reason must be plain text on one line that shows what it says (no line breaks, tabs, control, format or blank characters)")
		}
	}
	return nil
}

// blanks are characters that are letters or symbols to Unicode yet draw
// nothing: Hangul fillers and the Braille blank.
var blanks = []rune{'\u115f', '\u1160', '\u2800', '\u3164', '\uffa0'}

// unseen reports whether r changes how the text around it shows (a
// control, a format character such as a bidirectional override or a
// zero-width space, a line or paragraph separator) or draws nothing.
func unseen(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Co) || slices.Contains(blanks, r)
}

// shown reports whether r is something a reader sees on its own.
func shown(r rune) bool {
	return !unseen(r) && (unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsPunct(r) || unicode.IsSymbol(r))
}

// change describes a change to the stored documents for their release.
func (s *Service) change(actor Actor, action, target, reason string) Change {
	return Change{Action: action, Target: target, Actor: string(actor), Reason: strings.TrimSpace(reason)}
}

// storeErr turns the store's refusals of a change into the service's:
// a stale version or release is a conflict, a bound exceeded is
// invalid, a missing document is not found.
func (s *Service) storeErr(err error, name string) error {
	switch {
	case errors.Is(err, ErrVersion), errors.Is(err, ErrReleaseVersion):
		return &Error{Kind: Conflict, Message: err.Error()}
	case errors.Is(err, errReleaseBounds):
		return &Error{Kind: Invalid, Message: err.Error()}
	}
	return s.notFound(err, name)
}

func (s *Service) notFound(err error, name string) error {
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Kind: NotFound, Message: fmt.Sprintf("no stored policy document named %q", name)}
	}
	return err
}

// setPolicyState rewrites the state of the policy named name in a YAML
// document, keeping the rest of the text (comments included) as it was.
func setPolicyState(doc, name, state string) (string, error) {
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil || len(root.Content) == 0 {
		return "", invalid("the stored document is not readable YAML: %v", err)
	}
	pols := mapValue(root.Content[0], "policies")
	if pols == nil || pols.Kind != yaml.SequenceNode {
		return "", invalid("the document has no policies list")
	}
	for _, p := range pols.Content {
		if n := mapValue(p, "name"); n == nil || n.Value != name {
			continue
		}
		if st := mapValue(p, "state"); st != nil {
			st.Value, st.Tag, st.Style = state, "!!str", 0
		} else {
			p.Content = append(p.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "state"},
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: state})
		}
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(&root); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	return "", &Error{Kind: NotFound, Message: fmt.Sprintf("the document has no policy named %q", name)}
}

// mapValue returns the value node of key in mapping node m.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// Export writes the live set as one YAML document: every policy file's
// and stored document's contexts, locations, strengths, terms and
// policies, in evaluation order, for keeping in git.
func (s *Service) Export(ctx context.Context) ([]byte, error) {
	set, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	return ExportDocuments(set.Documents)
}

// ExportDocuments merges documents into one YAML document.
func ExportDocuments(docs []*policy.Document) ([]byte, error) {
	var all policy.Document
	var sources []string
	for _, d := range docs {
		all.AuthContexts = append(all.AuthContexts, d.AuthContexts...)
		all.NamedLocations = append(all.NamedLocations, d.NamedLocations...)
		all.Strengths = append(all.Strengths, d.Strengths...)
		all.TermsOfUse = append(all.TermsOfUse, d.TermsOfUse...)
		all.Policies = append(all.Policies, d.Policies...)
		sources = append(sources, d.File)
	}
	var buf bytes.Buffer
	buf.WriteString("# The live Stepgate policy set, exported from: " + strings.Join(sources, ", ") + "\n")
	buf.WriteString("# " + strconv.Itoa(len(all.Policies)) + " policies. Load it with policy.files.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&all); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
