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
