package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/stepgate/stepgate/internal/yamlnode"

	yaml "go.yaml.in/yaml/v3"
)

// Why a hand-written walker instead of yaml.Decoder.KnownFields: the
// library stops at the first unknown key and names it by line only. The
// walker reports every mistake with file, line and key path, suggests the
// key that was meant, and records where each value was written so Compile
// can point at it too.

// MaxFileSize bounds what Parse accepts. A policy file is written by
// people; anything larger is a mistake, and YAML parsing cost grows with
// input an attacker with write access to the admin API could choose.
const MaxFileSize = 4 << 20

const (
	nullTag  = "!!null"
	boolTag  = "!!bool"
	mergeTag = "!!merge"
)

// nodeDecoder is implemented by model types that accept more than one
// YAML shape.
type nodeDecoder interface {
	decodeNode(p *parser, n *yaml.Node, path string)
}

// maxValues bounds how many values one file may expand to through
// aliases (see yamlnode.Budget).
const maxValues = 200_000

type parser struct {
	file     string
	lines    map[string]int
	problems Problems
	budget   yamlnode.Budget
}

// Parse reads one policy file. It returns the document with every key it
// understood, and every structural problem (syntax, unknown keys, wrong
// shapes). Meaning (unknown groups, bad CIDRs, CEL errors) is Compile's
// job, so a lint runs Parse and then Compile and shows both.
func Parse(filename string, data []byte) (*Document, Problems) {
	p := &parser{file: filename, lines: make(map[string]int),
		budget: yamlnode.Budget{MaxBytes: MaxFileSize, MaxValues: maxValues}}
	doc := &Document{File: filename, lines: p.lines}
	if msg := p.budget.TooLarge(data, "policy files"); msg != "" {
		p.add(0, "", msg)
		return doc, p.problems
	}
	root := p.parseYAML(data)
	if root == nil {
		return doc, p.problems
	}
	if root.Kind != yaml.MappingNode {
		p.add(root.Line, "", fmt.Sprintf("the top level must be a mapping with keys %s, not %s",
			strings.Join(yamlnode.Names(reflect.TypeFor[Document]()), ", "), yamlnode.Describe(root)))
		return doc, p.problems
	}
	p.mapping(root, reflect.ValueOf(doc).Elem(), "")
	return doc, p.problems
}

func (p *parser) add(line int, path, msg string) {
	p.problems = append(p.problems, Problem{File: p.file, Line: line, Path: path, Message: msg})
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML returns the only document's root, or nil for an empty file
// or a syntax error.
func (p *parser) parseYAML(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			p.syntaxError(err)
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil && len(extra.Content) > 0 && !yamlnode.IsNull(extra.Content[0]) {
		p.add(extra.Line, "", "a second YAML document starts here; keep each policy file one document (remove the ---)")
	} else if err != nil && !errors.Is(err, io.EOF) {
		p.syntaxError(err)
	}
	if len(doc.Content) == 0 || yamlnode.IsNull(doc.Content[0]) {
		return nil
	}
	return doc.Content[0]
}

func (p *parser) syntaxError(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	p.add(line, "", "invalid YAML: "+msg)
}

// value stores node n into v.
func (p *parser) value(n *yaml.Node, v reflect.Value, path string) {
	n = yamlnode.Deref(n)
	if n == nil || yamlnode.IsNull(n) {
		return
	}
	if ok, problem := p.budget.Visit(); !ok {
		if problem != "" {
			p.add(n.Line, path, problem+"; split it or write lists out")
		}
		return
	}
	if d, ok := v.Addr().Interface().(nodeDecoder); ok {
		d.decodeNode(p, n, path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		p.mapping(n, v, path)
	case reflect.Slice:
		p.sequence(n, v, path)
	case reflect.Bool:
		p.boolean(n, v, path)
	case reflect.String:
		if s, ok := p.scalar(n, path); ok {
			v.SetString(s)
		}
	default:
		p.add(n.Line, path, fmt.Sprintf("cannot be set (unsupported type %s)", v.Type()))
	}
}

// mapping walks a YAML mapping beside struct v.
func (p *parser) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		p.add(n.Line, path, fmt.Sprintf("must be a mapping with keys %s, not %s",
			strings.Join(yamlnode.Names(v.Type()), ", "), yamlnode.Describe(n)))
		return
	}
	fields := yamlnode.Fields(v.Type())
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := yamlnode.Deref(n.Content[i]), n.Content[i+1]
		key, ok := p.key(k, path)
		if !ok {
			continue
		}
		keyPath := yamlnode.Join(path, key)
		if first, dup := seen[key]; dup {
			p.add(k.Line, keyPath, fmt.Sprintf("duplicate key (first set on line %d); keep only one", first))
			continue
		}
		seen[key] = k.Line
		f, known := fields[key]
		if !known {
			p.add(k.Line, keyPath, "unknown key"+suggestKey(key, yamlnode.Names(v.Type())))
			continue
		}
		p.lines[keyPath] = k.Line
		p.value(val, v.Field(f), keyPath)
	}
}

func suggestKey(key string, names []string) string {
	if s := yamlnode.Closest(key, names); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return "; known keys here are " + strings.Join(names, ", ")
}

func (p *parser) key(k *yaml.Node, path string) (string, bool) {
	switch {
	case k == nil || k.Kind != yaml.ScalarNode:
		line := 0
		if k != nil {
			line = k.Line
		}
		p.add(line, path, "has a key that is a list or mapping; keys must be plain names")
		return "", false
	case k.ShortTag() == mergeTag:
		p.add(k.Line, yamlnode.Join(path, "<<"), "merge keys are not supported; write the keys out in full")
		return "", false
	}
	return k.Value, true
}

// sequence walks a YAML sequence into slice v.
func (p *parser) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		hint := `one "- item" per line`
		if v.Type().Elem().Kind() == reflect.String {
			hint = "[a, b] or " + hint
		}
		p.add(n.Line, path, fmt.Sprintf("must be a list, not %s; write it like %s", yamlnode.Describe(n), hint))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		itemPath := fmt.Sprintf("%s[%d]", path, i)
		p.lines[itemPath] = item.Line
		if d := yamlnode.Deref(item); d != nil && yamlnode.IsNull(d) {
			p.add(item.Line, itemPath, "is empty; remove the \"-\" or give it a value")
			continue
		}
		p.value(item, out.Index(i), itemPath)
	}
	v.Set(out)
}

// scalar returns n's text, reporting a list or mapping in its place.
func (p *parser) scalar(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		p.add(n.Line, path, fmt.Sprintf("must be a single value, not %s", yamlnode.Describe(n)))
		return "", false
	}
	return n.Value, true
}

func (p *parser) boolean(n *yaml.Node, v reflect.Value, path string) {
	s, ok := p.scalar(n, path)
	if !ok {
		return
	}
	if n.ShortTag() != boolTag {
		p.add(n.Line, path, fmt.Sprintf("must be true or false, not %q", s))
		return
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		p.add(n.Line, path, fmt.Sprintf("must be true or false, not %q", s))
		return
	}
	v.SetBool(b)
}

// decodeNode accepts "grant: block" as well as the mapping form.
func (g *Grant) decodeNode(p *parser, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode {
		if n.Value != "block" {
			p.add(n.Line, path, fmt.Sprintf("%q is not a grant; write \"grant: block\", or a mapping with operator and controls", n.Value))
			return
		}
		g.Block = true
		return
	}
	p.mapping(n, reflect.ValueOf(g).Elem(), path)
}

// controlArgKeys are the controls written as one-key mappings.
var controlArgKeys = []string{"strength", "terms_of_use"}

// decodeNode accepts "mfa" or "{strength: name}".
func (c *Control) decodeNode(p *parser, n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		c.Name = n.Value
		return
	case yaml.MappingNode:
		if len(n.Content) == 2 {
			k, v := yamlnode.Deref(n.Content[0]), yamlnode.Deref(n.Content[1])
			key, ok := p.key(k, path)
			if !ok {
				return
			}
			if key != "strength" && key != "terms_of_use" {
				p.add(k.Line, yamlnode.Join(path, key), "unknown control"+suggestKey(key, controlArgKeys))
				return
			}
			if s, ok := p.scalar(v, yamlnode.Join(path, key)); ok {
				c.Name, c.Arg = key, s
			}
			return
		}
	}
	p.add(n.Line, path, `must be a control name like mfa or compliant-device, or a one-key mapping like {strength: phishing-resistant} or {terms_of_use: tou-2025}`)
}

func quote(s string) string { return strconv.Quote(s) }
