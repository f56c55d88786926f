package yamlnode

import "testing"

func TestClosest(t *testing.T) {
	t.Parallel()
	keys := []string{"listen", "issuer", "data_dir", "shutdown_timeout", "read_header_timeout", "trusted_proxies"}
	for in, want := range map[string]string{
		"listn":             "listen",
		"Listen":            "listen",
		"datadir":           "data_dir",
		"data-dir":          "data_dir",
		"trusted_proxy":     "trusted_proxies",
		"readheadertimeout": "read_header_timeout",
		"port":              "",
		"x":                 "",
	} {
		if got := Closest(in, keys); got != want {
			t.Errorf("Closest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBudget(t *testing.T) {
	t.Parallel()
	t.Run("size", func(t *testing.T) {
		t.Parallel()
		b := Budget{MaxBytes: 4}
		if msg := b.TooLarge([]byte("abcd"), "test files"); msg != "" {
			t.Errorf("fail/at-limit: TooLarge = %q, want none", msg)
		}
		if msg, want := b.TooLarge([]byte("abcde"), "test files"), "the file is 5 bytes; test files are limited to 4"; msg != want {
			t.Errorf("fail/over-limit: TooLarge = %q, want %q", msg, want)
		}
	})
	t.Run("values", func(t *testing.T) {
		t.Parallel()
		b := Budget{MaxValues: 2}
		for i := range 2 {
			if ok, problem := b.Visit(); !ok || problem != "" {
				t.Fatalf("value %d within the budget: Visit = %v, %q", i+1, ok, problem)
			}
		}
		if b.Exceeded() {
			t.Error("exceeded at the limit")
		}
		if ok, problem := b.Visit(); ok || problem != "the file expands to more than 2 values (through aliases?)" {
			t.Errorf("first value past the budget: Visit = %v, %q", ok, problem)
		}
		if ok, problem := b.Visit(); ok || problem != "" {
			t.Errorf("later values are refused without a second problem: Visit = %v, %q", ok, problem)
		}
		if !b.Exceeded() {
			t.Error("not exceeded past the limit")
		}
	})
}
