package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzResolve feeds arbitrary file content through everything Resolve does
// after reading the file (resolve is Resolve minus os.ReadFile, so the
// fuzzer does not spend its time in the file system).
func FuzzResolve(f *testing.F) {
	for _, seed := range []string{
		"",
		"server:\n  listen: 127.0.0.1:8080\n  trusted_proxies: [10.0.0.0/8]\n",
		"server:\n  listn: x\nsessions:\n  idle_timeout: soon\n",
		"a: &a [*a]\n",
		"log: &l {level: info}\nsessions: *l\n",
		"<<: {server: {}}\n",
		"storage:\n  dsn: postgres://u:p@h/db\n  max_open_conns: 0x7fffffffffffffff\n",
		"password:\n  argon2:\n    threads: -1\n    memory_kib: 1e9\n",
		"--- 1\n--- 2\n",
		"? [a]\n: b\n",
		"server: !!binary aGVsbG8=\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, content string) {
		cfg, _, err := resolve("fuzz.yaml", []byte(content), Flags{}, nil)
		if err != nil {
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want *Errors: %v", err, err)
			}
			if len(errs.Problems) == 0 || !strings.HasPrefix(err.Error(), "fuzz.yaml: ") {
				t.Fatalf("malformed error: %q", err)
			}
			return
		}
		if ps := cfg.Validate(); len(ps) != 0 {
			t.Fatalf("Resolve succeeded but Validate finds %v", ps)
		}
	})
}
