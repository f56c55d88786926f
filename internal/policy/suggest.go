package policy

import (
	"strings"

	"github.com/stepgate/stepgate/internal/yamlnode"
)

// didYouMean is " (did you mean X?)" or, when nothing is close, the list
// of valid values.
func didYouMean(name string, candidates []string) string {
	if s := yamlnode.Closest(name, candidates); s != "" {
		return "; did you mean " + quote(s) + "?"
	}
	if len(candidates) == 0 {
		return ""
	}
	if len(candidates) > 12 {
		return ""
	}
	return "; valid values are " + strings.Join(candidates, ", ")
}
