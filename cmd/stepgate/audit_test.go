package main

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // to edit the raw database as an attacker with file access would
)

// TestAuditVerifyDetectsAnEditedRow: administrative changes land in the
// hash-chained audit trail, and "audit verify" finds a single row edited
// in the raw database file, naming it.
func TestAuditVerifyDetectsAnEditedRow(t *testing.T) {
	dir := t.TempDir()
	sg := func(stdin string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"--data-dir", dir}, args...), strings.NewReader(stdin), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, _, e := sg("correct horse battery", "user", "add", "erin", "--email", "e@example.com", "--password-stdin"); code != 0 {
		t.Fatal(e)
	}
	if code, _, e := sg("", "--reason", "left the company", "user", "disable", "erin"); code != 0 {
		t.Fatal(e)
	}
	if code, _, e := sg("", "user", "revoke", "erin"); code != 0 {
		t.Fatal(e)
	}
	code, out, _ := sg("", "audit", "list")
	if code != 0 || !strings.Contains(out, "user.disable") || !strings.Contains(out, "left the company") {
		t.Fatalf("audit list: %d\n%s", code, out)
	}
	if code, out, _ := sg("", "audit", "verify"); code != 0 || !strings.Contains(out, "3 entries, chain intact") {
		t.Fatalf("audit verify on an intact chain: %d %q", code, out)
	}

	// Someone with the database file rewrites who disabled the account.
	db, err := sql.Open("sqlite", filepath.Join(dir, "stepgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(`UPDATE kv SET value = CAST(replace(CAST(value AS TEXT), 'left the company', 'routine cleanup') AS BLOB) WHERE name LIKE 'audit/entry/%2'`)
	if n, _ := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("editing the row: %v (%d rows)", err, n)
	}
	code, _, errOut := sg("", "audit", "verify")
	if code == 0 || !strings.Contains(errOut, "entry 2") || !strings.Contains(errOut, "changed after it was written") {
		t.Fatalf("audit verify after an edit: exit %d, %q", code, errOut)
	}
}
