package config

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
// library stops at the first unknown key and names it by line only. Walking
// the node tree beside the Go type reports every mistake with its full key
// path, suggests the key that was meant, and keeps going.

const (
	nullTag  = "!!null"
	intTag   = "!!int"
	boolTag  = "!!bool"
	mergeTag = "!!merge"
)

var (
	durationType = reflect.TypeFor[Duration]()
	stringsType  = reflect.TypeFor[[]string]()
)

// decodeFile stores every key of data that it understands into cfg and
// records a problem for everything else.
func (r *resolver) decodeFile(data []byte, cfg *Config) {
	root := r.parse(data)
	if root == nil {
		return
	}
	if root.Kind != yaml.MappingNode && !yamlnode.IsNull(root) {
		r.add(Problem{Line: root.Line, Message: fmt.Sprintf(
			"the top level must be a mapping of sections (%s), not %s",
			strings.Join(yamlnode.Names(reflect.TypeFor[Config]()), ":, ")+":", yamlnode.Describe(root))})
		return
	}
	r.value(root, root.Line, reflect.ValueOf(cfg).Elem(), "")
}

// parse returns the content of the file's only document, or nil for an
// empty file or a syntax error.
func (r *resolver) parse(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			r.syntaxError(err)
		}
		return nil
	}
	r.refuseMoreDocuments(dec)
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

// refuseMoreDocuments reports a second document: which one would win is
// not obvious to a reader, so rather than pick one we ask for a single
// document. A trailing "---" with nothing after it is harmless and allowed.
func (r *resolver) refuseMoreDocuments(dec *yaml.Decoder) {
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		switch {
		case errors.Is(err, io.EOF):
			return
		case err != nil:
			r.syntaxError(err)
			return
		case len(doc.Content) > 0 && !yamlnode.IsNull(doc.Content[0]):
			r.add(Problem{Line: doc.Line, Message: "a second YAML document starts here; keep the whole configuration in one document (remove the ---)"})
			return
		}
	}
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns the YAML library's error into a Problem with a line.
func (r *resolver) syntaxError(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := Problem{Message: "invalid YAML: " + msg}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Message = "invalid YAML: " + m[2]
	}
	r.add(p)
}

// value stores node n into v. line is where n is used in the file, which
// for an alias differs from where its anchor was defined.
func (r *resolver) value(n *yaml.Node, line int, v reflect.Value, path string) {
	n = yamlnode.Deref(n)
	if n == nil || yamlnode.IsNull(n) {
		// "key:" with nothing after it keeps the default, as
		// yaml.Unmarshal would; it is how users blank out a section.
		return
	}
	switch {
	case v.Type() == durationType:
		r.duration(n, line, v, path)
	case v.Type() == stringsType:
		r.list(n, line, v, path)
	case v.Kind() == reflect.Struct:
		r.mapping(n, v, path)
	case v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Struct:
		// An optional section (elevation.roles[].approvers): present
		// when written.
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		r.mapping(n, v.Elem(), path)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		r.records(n, line, v, path)
	case v.Kind() == reflect.Map && v.Type().Key().Kind() == reflect.String:
		r.named(n, line, v, path)
	default:
		r.scalar(n, line, v, path)
	}
}

// mapping walks a YAML mapping beside struct v.
func (r *resolver) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		r.add(Problem{Path: path, Line: n.Line, Message: fmt.Sprintf(
			"must be a mapping of keys (%s), not %s; indent its keys under %s:",
			strings.Join(yamlnode.Names(v.Type()), ", "), yamlnode.Describe(n), lastKey(path))})
		return
	}
	fields := yamlnode.Fields(v.Type())
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		keyNode, val := yamlnode.Deref(n.Content[i]), n.Content[i+1]
		key, ok := r.key(keyNode, path)
		if !ok {
			continue
		}
		keyPath := yamlnode.Join(path, key)
		if first, dup := seen[key]; dup {
			r.add(Problem{Path: keyPath, Line: keyNode.Line, Message: fmt.Sprintf(
				"duplicate key (first set on line %d); keep only one", first)})
			continue
		}
		seen[key] = keyNode.Line
		f, known := fields[key]
		if !known {
			r.unknownKey(keyNode, v.Type(), path)
			continue
		}
		r.value(val, val.Line, v.Field(f), keyPath)
	}
}

// key returns a mapping key's name, reporting keys that cannot be one.
func (r *resolver) key(k *yaml.Node, path string) (string, bool) {
	switch {
	case k == nil || k.Kind != yaml.ScalarNode:
		line := 0
		if k != nil {
			line = k.Line
		}
		r.add(Problem{Path: path, Line: line, Message: "has a key that is a list or mapping; keys must be plain names"})
		return "", false
	case k.ShortTag() == mergeTag:
		r.add(Problem{Path: yamlnode.Join(path, "<<"), Line: k.Line, Message: "merge keys are not supported; write the keys out in full"})
		return "", false
	}
	return k.Value, true
}

// unknownKey reports a key the schema does not have, with the key that
// was probably meant or, failing that, the keys that are allowed here.
func (r *resolver) unknownKey(k *yaml.Node, t reflect.Type, path string) {
	names := yamlnode.Names(t)
	msg := "unknown key; "
	if s := yamlnode.Closest(k.Value, names); s != "" {
		msg += fmt.Sprintf("did you mean %q?", s)
	} else {
		msg += "known keys here are " + strings.Join(names, ", ")
	}
	display := strings.Trim(quote(k.Value), `"`)
	r.add(Problem{Path: yamlnode.Join(path, display), Line: k.Line, Message: msg})
}

// list stores a sequence of single values into a []string.
func (r *resolver) list(n *yaml.Node, line int, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		r.add(Problem{Path: path, Line: line, Message: fmt.Sprintf(
			"must be a list, not %s; write it like [10.0.0.0/8, 192.0.2.1] or one \"- item\" per line", yamlnode.Describe(n))})
		return
	}
	items := make([]string, 0, len(n.Content))
	itemLines := make([]int, 0, len(n.Content))
	ok := true
	for i, item := range n.Content {
		itemLine := item.Line
		if item = yamlnode.Deref(item); item == nil || item.Kind != yaml.ScalarNode || yamlnode.IsNull(item) {
			r.add(Problem{Path: fmt.Sprintf("%s[%d]", path, i), Line: itemLine, Message: "list items must be single values"})
			ok = false
			continue
		}
		items = append(items, item.Value)
		itemLines = append(itemLines, itemLine)
	}
	if !ok {
		return
	}
	v.Set(reflect.ValueOf(items))
	r.origins.set(path, origin{line: line})
	for i, l := range itemLines {
		r.origins[fmt.Sprintf("%s[%d]", path, i)] = origin{line: l}
	}
}

// records stores a sequence of mappings into a slice of structs, such as
// the list of OIDC clients. Each item is checked as strictly as a section.
func (r *resolver) records(n *yaml.Node, line int, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		r.add(Problem{Path: path, Line: line, Message: fmt.Sprintf(
			"must be a list of mappings, not %s; start each item with \"- \" and indent its keys", yamlnode.Describe(n))})
		return
	}
	if len(n.Content) == 0 {
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		r.value(item, item.Line, out.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(out)
	r.origins.set(path, origin{line: line})
}

// named stores a mapping of names the user chooses (databases[].labels)
// into a map, each value decoded as strictly as a key of a section.
func (r *resolver) named(n *yaml.Node, line int, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		r.add(Problem{Path: path, Line: line, Message: fmt.Sprintf("must be a mapping of names to values, not %s", yamlnode.Describe(n))})
		return
	}
	out := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		keyNode, val := yamlnode.Deref(n.Content[i]), n.Content[i+1]
		key, ok := r.key(keyNode, path)
		if !ok {
			continue
		}
		keyPath := yamlnode.Join(path, key)
		if out.MapIndex(reflect.ValueOf(key)).IsValid() {
			r.add(Problem{Path: keyPath, Line: keyNode.Line, Message: "duplicate key; keep only one"})
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		r.value(val, val.Line, elem, keyPath)
		out.SetMapIndex(reflect.ValueOf(key), elem)
	}
	v.Set(out)
	r.origins.set(path, origin{line: line})
}

// duration stores a "90s"-style scalar into a Duration.
func (r *resolver) duration(n *yaml.Node, line int, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		r.add(Problem{Path: path, Line: line, Message: fmt.Sprintf("must be a duration like 30s, 15m or 8h, not %s", yamlnode.Describe(n))})
		return
	}
	d, err := parseDuration(n.Value)
	if err != nil {
		r.add(Problem{Path: path, Line: line, Message: err.Error()})
		return
	}
	v.Set(reflect.ValueOf(d))
	r.origins.set(path, origin{line: line})
}

// scalar stores a single value into a string or integer field.
func (r *resolver) scalar(n *yaml.Node, line int, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		r.add(Problem{Path: path, Line: line, Message: fmt.Sprintf("must be a single value, not %s", yamlnode.Describe(n))})
		return
	}
	var err error
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		err = decodeBool(n, v)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		err = decodeInt(n, v)
	default:
		err = fmt.Errorf("cannot be set (unsupported type %s)", v.Type())
	}
	if err != nil {
		r.add(Problem{Path: path, Line: line, Message: err.Error()})
		return
	}
	r.origins.set(path, origin{line: line})
}

// decodeBool accepts YAML booleans only (true/false), so a quoted "no"
// or a misspelt "ture" is pointed out instead of read as false.
func decodeBool(n *yaml.Node, v reflect.Value) error {
	var b bool
	if n.ShortTag() != boolTag || n.Decode(&b) != nil {
		return fmt.Errorf("%q is not true or false", n.Value)
	}
	v.SetBool(b)
	return nil
}

// decodeInt accepts YAML integers only: a quoted "20" or 20.5 is a
// mistake worth pointing out, not something to guess about.
func decodeInt(n *yaml.Node, v reflect.Value) error {
	var i int64
	if n.ShortTag() != intTag || n.Decode(&i) != nil {
		return notWholeNumber(n.Value)
	}
	return setInt(v, i)
}

func lastKey(path string) string {
	return path[strings.LastIndex(path, ".")+1:]
}
