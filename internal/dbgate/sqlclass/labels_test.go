package sqlclass

import (
	"slices"
	"strings"
	"testing"
)

var testLabels = map[string][]string{
	"pii":     {"customers.ssn", "customers.email"},
	"secret":  {"vault"},
	"billing": {"billing.invoices.amount"},
}

func facts(statements ...Statement) Facts {
	f := Facts{Statements: statements}
	f.summarize()
	return f
}

func TestLabelRules(t *testing.T) {
	customers := Table{Name: "customers", Unqualified: true}
	tests := []struct {
		name  string
		facts Facts
		want  []string
	}{
		{"ok/no-labelled-column", facts(Statement{Class: ClassRead, Tables: []Table{customers}, Columns: []Column{{Table: "customers", Name: "name"}}}), nil},
		{"ok/column", facts(Statement{Class: ClassRead, Tables: []Table{customers}, Columns: []Column{{Table: "customers", Name: "ssn"}}}), []string{"pii"}},
		{"ok/star", facts(Statement{Class: ClassRead, Tables: []Table{customers}, Columns: []Column{{Table: "customers", Name: "*"}}}), []string{"pii"}},
		{"ok/unresolved-column-any-table", facts(Statement{Class: ClassRead, Tables: []Table{{Name: "orders", Unqualified: true}, customers}, Columns: []Column{{Name: "ssn"}}}), []string{"pii"}},
		{"ok/unresolved-column-other-tables", facts(Statement{Class: ClassRead, Tables: []Table{{Name: "orders", Unqualified: true}}, Columns: []Column{{Name: "ssn"}}}), nil},
		{"ok/whole-table-label", facts(Statement{Class: ClassRead, Tables: []Table{{Name: "vault", Schema: "ops"}}}), []string{"secret"}},
		{"ok/schema-given-matches", facts(Statement{Class: ClassRead, Tables: []Table{{Schema: "public", Name: "customers"}}, Columns: []Column{{Table: "public.customers", Name: "email"}}}), []string{"pii"}},
		{"ok/schema-label-other-schema", facts(Statement{Class: ClassRead, Tables: []Table{{Schema: "public", Name: "invoices"}}, Columns: []Column{{Table: "public.invoices", Name: "amount"}}}), nil},
		{"ok/schema-label-unqualified-may-be-it", facts(Statement{Class: ClassRead, Tables: []Table{{Name: "invoices", Unqualified: true}}, Columns: []Column{{Table: "invoices", Name: "amount"}}}), []string{"billing"}},
		{"ok/schema-label-exact", facts(Statement{Class: ClassRead, Tables: []Table{{Schema: "billing", Name: "invoices"}}, Columns: []Column{{Table: "billing.invoices", Name: "*"}}}), []string{"billing"}},
		{"ok/drop-schema-wildcard", facts(Statement{Class: ClassDDL, Tables: []Table{{Schema: "billing", Name: "*"}}, Columns: []Column{{Table: "billing.*", Name: "*"}}}), []string{"billing", "pii", "secret"}},
		{"fail/unknown-statement-hits-all", facts(Statement{Class: ClassUnknown, Hazards: Hazards{DoBlock: true}}), []string{"billing", "pii", "secret"}},
		{"fail/server-file-hits-all", facts(Statement{Class: ClassPrivilege, Hazards: Hazards{ServerFile: true}}), []string{"billing", "pii", "secret"}},
		{"fail/unparsed-hits-all", unknownFacts(), []string{"billing", "pii", "secret"}},
		{"ok/column-of-other-statement", facts(
			Statement{Class: ClassRead, Tables: []Table{{Name: "orders"}}, Columns: []Column{{Name: "ssn"}}},
			Statement{Class: ClassRead, Tables: []Table{customers}, Columns: []Column{{Table: "customers", Name: "name"}}},
		), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Label(tt.facts, testLabels); !slices.Equal(got, tt.want) {
				t.Errorf("Label = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValidateLabels(t *testing.T) {
	if err := ValidateLabels(testLabels); err != nil {
		t.Fatalf("valid labels refused: %v", err)
	}
	err := ValidateLabels(map[string][]string{
		"pii": {"customers..ssn", "a.b.c.d", "ok.col"},
		"x":   {" spaced"},
		"all": {"*"},
	})
	if err == nil {
		t.Fatal("malformed labels accepted")
	}
	for _, want := range []string{"pii[0]", "pii[1]", "x[0]", "all[0]", "schema.table.column"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "pii[2]") {
		t.Errorf("error %q names a valid entry", err)
	}
}

// TestLabelIgnoresCase: a label written "Customers.PHONE" covers the
// column PostgreSQL stores as customers.phone, rather than missing it.
func TestLabelIgnoresCase(t *testing.T) {
	f := facts(Statement{Class: ClassRead, Tables: []Table{{Schema: "Public", Name: "customers"}}, Columns: []Column{{Table: "Public.customers", Name: "phone"}}})
	for _, entry := range []string{"Customers.PHONE", "public.CUSTOMERS.phone", "CUSTOMERS"} {
		if got := Label(f, map[string][]string{"pii": {entry}}); !slices.Equal(got, []string{"pii"}) {
			t.Errorf("label %q: hits %v, want pii", entry, got)
		}
	}
}
