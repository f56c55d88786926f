// Package yamlnode holds what Stepgate's strict YAML readers — the
// configuration file, the policy files and the scenario test files —
// share: walking yaml.v3 node trees beside Go struct types, bounding what
// one file may cost, and suggesting the key or value that was probably
// meant.
//
// Both readers walk nodes instead of using the decoder's KnownFields,
// because the decoder stops at the first unknown key; walking reports
// every mistake, with its full key path and line, in one go.
package yamlnode

import (
	"fmt"
	"reflect"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// NullTag is the tag of an explicit null ("key:" or "key: ~").
const NullTag = "!!null"

// Budget bounds what a strict reader spends on one file. A file is
// written by people: one larger than MaxBytes is a mistake, and parsing
// cost grows with input that whoever may write the file chooses. Aliases
// let a small file name a big list many times, so the values a walk
// visits are bounded by MaxValues as well, keeping a hostile or mistaken
// file from costing more than a legitimate one ever would.
type Budget struct {
	MaxBytes  int
	MaxValues int
	visited   int
}

// TooLarge returns the problem with data when it is over MaxBytes, and ""
// when it is not; files names the kind of file, like "policy files".
func (b *Budget) TooLarge(data []byte, files string) string {
	if len(data) <= b.MaxBytes {
		return ""
	}
	return fmt.Sprintf("the file is %d bytes; %s are limited to %d", len(data), files, b.MaxBytes)
}

// Visit counts one value of the walk and reports whether the walk may go
// on, which it may not past MaxValues. The first value past it also gets
// the problem to report, and later ones "", so a file that expands a
// million times is told so once.
func (b *Budget) Visit() (ok bool, problem string) {
	b.visited++
	switch {
	case b.visited <= b.MaxValues:
		return true, ""
	case b.visited == b.MaxValues+1:
		return false, fmt.Sprintf("the file expands to more than %d values (through aliases?)", b.MaxValues)
	}
	return false, ""
}

// Exceeded reports whether the walk went past MaxValues.
func (b *Budget) Exceeded() bool { return b.visited > b.MaxValues }

// Deref follows aliases (*name) to the anchored node. The bound guards
// against a malformed tree; the parser itself never chains aliases.
func Deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	return n
}

// IsNull reports whether n is an explicit null.
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == NullTag
}

// Describe names a node's kind for messages without quoting its content,
// which might be a secret put in the wrong place.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return "a single value"
	}
}

// Fields maps each YAML key of struct type t to its field index.
func Fields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		if name := Key(t.Field(i)); name != "" {
			m[name] = i
		}
	}
	return m
}

// Names lists struct type t's YAML keys in declaration order.
func Names(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		if name := Key(t.Field(i)); name != "" {
			names = append(names, name)
		}
	}
	return names
}

// Key is the key a field is written as, as yaml.v3 decides it: the tag's
// name, or the lower-cased field name; "" for fields YAML skips.
func Key(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return strings.ToLower(f.Name)
	}
	return name
}

// Join appends key to a dotted key path.
func Join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Closest returns the candidate nearest to name, or "" when none is near
// enough to be a plausible typo. Comparison ignores case, so "Listen"
// finds "listen".
func Closest(name string, candidates []string) string {
	name = strings.ToLower(name)
	best, bestDist := "", -1
	for _, c := range candidates {
		d := distance(name, strings.ToLower(c))
		if d > maxTypos(c) {
			continue
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// maxTypos is how many edits still count as a typo of candidate: one for
// short names, a few for long ones, so "dns" finds "dsn" but "foo" does
// not find "dsn".
func maxTypos(candidate string) int {
	return min(len(candidate)/4+1, 3)
}

// distance is the optimal string alignment distance: insertions,
// deletions, substitutions and adjacent transpositions ("dns" → "dsn")
// each cost one.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// Three rolling rows: transpositions look two rows back.
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
