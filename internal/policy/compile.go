package policy

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"

	"github.com/stepgate/stepgate/internal/authn/strength"
)

// compiler turns documents into a Snapshot, collecting every problem.
type compiler struct {
	dir      Directory
	problems Problems
	env      *cel.Env

	strengths *strength.Set
	contexts  []AuthContext
	ctxIndex  map[string]int
	terms     []TermsOfUse
	termIndex map[string]int
	locations *locationTable
	// descendants maps a group to itself and every group nested in it, at
	// any depth: naming a group in a policy covers them all.
	descendants map[string][]string
	ancestors   map[string][]string
	groupNames  []string

	// declared remembers where each name was first declared, to report
	// duplicates across files.
	declared map[string]position
	// brokenStrengths were declared with a problem already reported.
	brokenStrengths map[string]bool
}

type position struct {
	doc  *Document
	path string
}

func (p position) String() string {
	if l := p.doc.line(p.path); l > 0 {
		return fmt.Sprintf("%s:%d", p.doc.File, l)
	}
	return p.doc.File
}

// Compile validates documents as one policy set and builds the immutable
// Snapshot that Evaluate runs on: names resolved, CEL compiled, location
// tables and indexes built. dir resolves users, groups, roles and apps;
// nil skips those checks (offline lint). On any problem the snapshot is
// nil: a server keeps its last good snapshot rather than run half a set.
func Compile(dir Directory, docs ...*Document) (*Snapshot, Problems) {
	c := &compiler{dir: dir, declared: make(map[string]position), brokenStrengths: make(map[string]bool)}
	env, err := newCELEnv()
	if err != nil {
		return nil, Problems{{Message: err.Error()}}
	}
	c.env = env
	c.groupHierarchy()
	c.declarations(docs)
	snap := &Snapshot{
		strengths: c.strengths,
		contexts:  c.contexts,
		ctxIndex:  c.ctxIndex,
		terms:     c.terms,
		locations: c.locations,
		ancestors: c.ancestors,
	}
	for _, d := range docs {
		for i := range d.Policies {
			if p := c.policy(d, i, len(snap.policies)); p != nil {
				snap.policies = append(snap.policies, p)
			}
		}
	}
	if len(c.problems) > 0 {
		return nil, c.problems
	}
	snap.buildIndexes()
	return snap, nil
}

// addf records a problem at path in doc.
func (c *compiler) addf(doc *Document, path, format string, args ...any) {
	p := Problem{Path: path, Message: fmt.Sprintf(format, args...)}
	if doc != nil {
		p.File, p.Line = doc.File, doc.line(path)
	}
	c.problems = append(c.problems, p)
}

// declare records a named declaration, reporting a duplicate.
func (c *compiler) declare(kind, name string, doc *Document, path string) bool {
	key := kind + "\x00" + name
	if first, dup := c.declared[key]; dup {
		c.addf(doc, path, "%s %q is already declared at %s; names must be unique across all policy files", kind, name, first)
		return false
	}
	c.declared[key] = position{doc, path}
	return true
}

// required reports an empty value.
func (c *compiler) required(doc *Document, path, value, hint string) bool {
	if strings.TrimSpace(value) == "" {
		c.addf(doc, path, "is required; %s", hint)
		return false
	}
	return true
}

func (c *compiler) declarations(docs []*Document) {
	c.ctxIndex = make(map[string]int)
	c.termIndex = make(map[string]int)
	var defs []strength.Def
	var locs []locationInput
	for _, d := range docs {
		for i, a := range d.AuthContexts {
			c.authContext(d, fmt.Sprintf("auth_contexts[%d]", i), a)
		}
		for i, t := range d.TermsOfUse {
			c.termsOfUse(d, fmt.Sprintf("terms_of_use[%d]", i), t)
		}
		for i, s := range d.Strengths {
			if def, ok := c.strengthDef(d, fmt.Sprintf("strengths[%d]", i), s); ok {
				defs = append(defs, def)
			}
		}
		for i, l := range d.NamedLocations {
			if in, ok := c.namedLocation(d, fmt.Sprintf("named_locations[%d]", i), l); ok {
				locs = append(locs, in)
			}
		}
	}
	set, err := strength.NewSet(defs...)
	if err != nil {
		// Each def was checked above with its position; this is a backstop.
		c.addf(nil, "strengths", "%v", err)
	}
	c.strengths = set
	c.locations = buildLocations(locs)
}

var contextIDRE = regexp.MustCompile(`^c([1-9]|[1-9][0-9])$`)

func (c *compiler) authContext(d *Document, path string, a AuthContext) {
	if !c.required(d, path+".id", a.ID, "give the context an id from c1 to c99") {
		return
	}
	if !contextIDRE.MatchString(a.ID) {
		c.addf(d, path+".id", "%q is not a context id; use c1 to c99 (apps send it as acr_values)", a.ID)
		return
	}
	c.required(d, path+".name", a.Name, `give it a display name like "High-value transaction"`)
	if c.declare("auth context", a.ID, d, path+".id") {
		c.ctxIndex[a.ID] = len(c.contexts)
		c.contexts = append(c.contexts, a)
	}
}

func (c *compiler) termsOfUse(d *Document, path string, t TermsOfUse) {
	if !c.required(d, path+".id", t.ID, "give the terms an id like tou-2025") {
		return
	}
	c.required(d, path+".name", t.Name, "give the terms a display name")
	if c.declare("terms of use", t.ID, d, path+".id") {
		c.termIndex[t.ID] = len(c.terms)
		c.terms = append(c.terms, t)
	}
}

func (c *compiler) strengthDef(d *Document, path string, s StrengthDef) (strength.Def, bool) {
	ok := c.required(d, path+".name", s.Name, "name the strength; policies refer to it by name")
	if ok {
		if err := strength.CheckName(s.Name); err != nil {
			c.addf(d, path+".name", "%v", err)
			ok = false
		}
	}
	if len(s.Combinations) == 0 {
		c.addf(d, path+".combinations", "is required; list allowed combinations like [password+totp, webauthn:uv]")
		ok = false
	}
	for j, raw := range s.Combinations {
		if _, err := strength.ParseCombination(raw); err != nil {
			c.addf(d, fmt.Sprintf("%s.combinations[%d]", path, j), "%v", err)
			ok = false
		}
	}
	if s.Name != "" && !c.declare("strength", s.Name, d, path+".name") {
		return strength.Def{}, false
	}
	if !ok && s.Name != "" {
		c.brokenStrengths[s.Name] = true // reported above; references are not unknown
	}
	for j, a := range s.AAGUIDs {
		if !aaguidPattern.MatchString(strings.ToLower(a)) {
			c.addf(d, fmt.Sprintf("%s.aaguids[%d]", path, j), "%q is not an AAGUID; write it like cb69481e-8ff7-4039-93ec-0a2729a154a8", a)
			ok = false
		}
	}
	return strength.Def{Name: s.Name, Description: s.Description, Combinations: s.Combinations, AAGUIDs: s.AAGUIDs}, ok
}

// aaguidPattern is an authenticator model id (a UUID, lower case).
var aaguidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// reservedLocations are the shortcuts conditions may name.
var reservedLocations = []string{"all", "all-trusted"}

func (c *compiler) namedLocation(d *Document, path string, l NamedLocation) (locationInput, bool) {
	in := locationInput{name: l.Name, trusted: l.Trusted, includeUnknownCountries: l.IncludeUnknownCountries}
	named := c.required(d, path+".name", l.Name, "name the location; conditions refer to it by name")
	if named && slices.Contains(reservedLocations, l.Name) {
		c.addf(d, path+".name", "%q is a reserved shortcut; choose another name", l.Name)
		named = false
	}
	if len(l.IPRanges) == 0 && len(l.Countries) == 0 && !l.IncludeUnknownCountries {
		c.addf(d, path, "defines no addresses; set ip_ranges, countries or include_unknown_countries")
	}
	if l.Trusted && len(l.IPRanges) == 0 {
		c.addf(d, path+".trusted", "only a location with ip_ranges can be trusted; a country says nothing about whose network a request comes from")
	}
	for j, r := range l.IPRanges {
		p, err := parseRange(r)
		if err != nil {
			c.addf(d, fmt.Sprintf("%s.ip_ranges[%d]", path, j), "%v", err)
			continue
		}
		in.prefixes = append(in.prefixes, p)
	}
	for j, cc := range l.Countries {
		if !isCountryCode(cc) {
			c.addf(d, fmt.Sprintf("%s.countries[%d]", path, j), "%q is not an ISO 3166-1 alpha-2 country code; write two upper-case letters like DE", cc)
			continue
		}
		in.countries = append(in.countries, cc)
	}
	// A location with a bad range still joins the table under its name
	// (the snapshot is discarded anyway), so conditions naming it are not
	// also reported as unknown: one mistake, one problem.
	return in, named && c.declare("named location", l.Name, d, path+".name")
}

// parseRange reads a CIDR or a single address. A CIDR with host bits set
// ("10.0.0.1/8") is refused: it usually means a typo in the address or
// the length, and silently masking it would widen the range unnoticed.
func parseRange(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not a valid IP address or CIDR; write it like 10.0.0.0/8 or 2001:db8::/32", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		example := "10.0.0.0/8"
		if strings.Contains(s, ":") {
			example = "2001:db8::/32"
		}
		return netip.Prefix{}, fmt.Errorf("%q is not a valid CIDR; write it like %s", s, example)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has bits set after the /%d prefix; did you mean %s?", s, p.Bits(), m)
	}
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
	}
	return p, nil
}

// groupHierarchy computes, from the directory, each group's ancestors
// and descendants. Cycles (which the store refuses, but a directory is an
// interface) are cut rather than looped on.
func (c *compiler) groupHierarchy() {
	c.descendants = make(map[string][]string)
	c.ancestors = make(map[string][]string)
	if c.dir == nil {
		return
	}
	parents := c.dir.Groups()
	for g := range parents {
		c.groupNames = append(c.groupNames, g)
	}
	slices.Sort(c.groupNames)
	for _, g := range c.groupNames {
		seen := map[string]bool{g: true}
		queue := slices.Clone(parents[g])
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			if seen[p] {
				continue
			}
			seen[p] = true
			c.ancestors[g] = append(c.ancestors[g], p)
			queue = append(queue, parents[p]...)
		}
		slices.Sort(c.ancestors[g])
	}
	for _, g := range c.groupNames {
		c.descendants[g] = append(c.descendants[g], g)
		for _, a := range c.ancestors[g] {
			c.descendants[a] = append(c.descendants[a], g)
		}
	}
}
