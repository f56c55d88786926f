package admin

import (
	"context"
	"fmt"

	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/policy"
)

// Catalog is what policies refer to by name: the authentication
// contexts, strengths and named locations of the live set, each with
// where it is declared, so an administrator writing a policy sees the
// names they can use.
type Catalog struct {
	AuthContexts   []CatalogContext  `json:"auth_contexts"`
	Strengths      []CatalogStrength `json:"strengths"`
	NamedLocations []CatalogLocation `json:"named_locations"`
}

// Declared says where a catalog entry is written: a policy file with its
// line, or store:DOCUMENT. Built-in entries have neither.
type Declared struct {
	Source string `json:"source,omitempty"`
	Line   int    `json:"line,omitempty"`
}

// CatalogContext is an authentication context and the policies that
// say what it takes.
type CatalogContext struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Declared
	// UsedBy are the policies (any state) that target the context; none
	// means requesting it costs nothing beyond being signed in.
	UsedBy []string `json:"used_by"`
}

// CatalogStrength is a built-in or custom authentication strength.
type CatalogStrength struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	BuiltIn     bool   `json:"built_in"`
	// Combinations are the allowed method combinations, like
	// password+webauthn.
	Combinations []string `json:"combinations"`
	AAGUIDs      []string `json:"aaguids,omitempty"`
	Declared
}

// CatalogLocation is a named location.
type CatalogLocation struct {
	Name                    string   `json:"name"`
	Trusted                 bool     `json:"trusted"`
	IPRanges                []string `json:"ip_ranges,omitempty"`
	Countries               []string `json:"countries,omitempty"`
	IncludeUnknownCountries bool     `json:"include_unknown_countries,omitempty"`
	Declared
}

// Catalog lists the contexts, strengths and locations of the live set.
func (s *Service) Catalog(ctx context.Context) (Catalog, error) {
	set, err := s.current(ctx)
	if err != nil {
		return Catalog{}, err
	}
	out := Catalog{AuthContexts: []CatalogContext{}, NamedLocations: []CatalogLocation{}}
	customs := map[string]Declared{}
	for _, doc := range set.Documents {
		for i, c := range doc.AuthContexts {
			out.AuthContexts = append(out.AuthContexts, CatalogContext{
				ID: c.ID, Name: c.Name, Description: c.Description,
				Declared: declared(doc, "auth_contexts", i), UsedBy: orEmpty(set.Snapshot.ContextUsers(c.ID)),
			})
		}
		for i, l := range doc.NamedLocations {
			out.NamedLocations = append(out.NamedLocations, CatalogLocation{
				Name: l.Name, Trusted: l.Trusted, IPRanges: l.IPRanges, Countries: l.Countries,
				IncludeUnknownCountries: l.IncludeUnknownCountries, Declared: declared(doc, "named_locations", i),
			})
		}
		for i, st := range doc.Strengths {
			customs[st.Name] = declared(doc, "strengths", i)
		}
	}
	out.Strengths = strengths(set.Snapshot.Strengths(), customs)
	return out, nil
}

// strengths lists every strength of set, built-ins first.
func strengths(set *strength.Set, customs map[string]Declared) []CatalogStrength {
	var out []CatalogStrength
	for _, name := range set.Names() {
		st, _ := set.Lookup(name)
		cs := CatalogStrength{Name: st.Name, Description: st.Description, BuiltIn: strength.IsBuiltin(name),
			AAGUIDs: st.AAGUIDs, Declared: customs[name]}
		for _, c := range st.Combinations {
			cs.Combinations = append(cs.Combinations, c.String())
		}
		out = append(out, cs)
	}
	return out
}

func declared(doc *policy.Document, list string, i int) Declared {
	return Declared{Source: doc.File, Line: doc.Line(fmt.Sprintf("%s[%d]", list, i))}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
