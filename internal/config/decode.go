package config

import (
	"encoding"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ratemon/ratemon/internal/fielderr"
)

// checker walks a YAML tree against the Go type it is decoded into and
// records, with its exact position, every key the type does not have and
// every value the type cannot hold. yaml.v3 finds most of these too, but
// reports only a line and a Go type name; it also accepts some values that
// ratemon refuses (1.5 for an integer, "yes" for a boolean).
type checker struct {
	file     string
	problems []Problem
	failed   []string          // paths whose value could not be decoded
	seen     map[lineKind]bool // what was reported on which line, to skip the decoder's duplicates
	steps    int               // nodes visited, bounded by maxCheckSteps
	aborted  bool              // the decoder stopped half way
}

// lineKind is a line and whether a problem on it is about a key (true) or a
// value (false).
type lineKind struct {
	line int
	key  bool
}

// maxCheckSteps bounds the nodes the checker visits, as aliases can make a
// small document a large tree; the decoder's own alias limit takes over.
const maxCheckSteps = 1 << 16

// isDuration reports whether t is time.Duration, written like "10s".
func isDuration(t reflect.Type) bool { return t == reflect.TypeFor[time.Duration]() }

// decodesItself reports whether t has its own YAML or text decoding.
func decodesItself(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(reflect.TypeFor[yaml.Unmarshaler]()) || p.Implements(reflect.TypeFor[encoding.TextUnmarshaler]())
}

// durationHint ends every message about a value that is not a duration.
const durationHint = `(write it like "10s")`

func (c *checker) add(n *yaml.Node, path, format string, args ...any) {
	c.addKind(n, false, path, format, args...)
}

// addKey records a problem with a key, as opposed to its value.
func (c *checker) addKey(n *yaml.Node, path, format string, args ...any) {
	c.addKind(n, true, path, format, args...)
}

func (c *checker) addKind(n *yaml.Node, key bool, path, format string, args ...any) {
	if c.seen == nil {
		c.seen = map[lineKind]bool{}
	}
	c.seen[lineKind{n.Line, key}] = true
	c.problems = append(c.problems, Problem{
		File: c.file, Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf(format, args...),
	})
	if path != "" {
		c.failed = append(c.failed, path)
	}
	if strings.HasSuffix(path, "]") {
		c.aborted = true // yaml.v3 drops a list element it cannot decode, which shifts the indexes after it
	}
}

// check walks n, the YAML for a value of type t at path.
func (c *checker) check(n *yaml.Node, t reflect.Type, path string) {
	if n == nil || c.steps >= maxCheckSteps {
		return
	}
	c.steps++
	switch {
	case n.Kind == yaml.DocumentNode:
		if len(n.Content) > 0 {
			c.check(n.Content[0], t, path)
		}
		return
	case n.Kind == yaml.AliasNode:
		c.check(n.Alias, t, path) // problems point at the anchored value
		return
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
		return // the zero value, as if the key were absent
	case decodesItself(t):
		return // the type decodes itself
	}
	switch {
	case isDuration(t):
		c.checkDuration(n, path)
	case t.Kind() == reflect.Struct:
		c.checkStruct(n, t, path)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.add(n, path, "must be a list, got %s", describe(n))
			return
		}
		for i, e := range n.Content {
			c.check(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.add(n, path, "must be a mapping, got %s", describe(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			c.check(n.Content[i+1], t.Elem(), fielderr.Join(path, n.Content[i].Value))
		}
	default:
		c.checkScalar(n, t, path)
	}
}

func (c *checker) checkDuration(n *yaml.Node, path string) {
	if n.Kind != yaml.ScalarNode {
		c.add(n, path, "must be a duration, got %s %s", describe(n), durationHint)
		return
	}
	if _, err := time.ParseDuration(n.Value); err != nil || n.ShortTag() != "!!str" {
		c.add(n, path, "cannot parse %q as a duration %s", n.Value, durationHint)
	}
}

func (c *checker) checkStruct(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		c.add(n, path, "must be a mapping, got %s", describe(n))
		return
	}
	fields := yamlFields(t)
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			c.addKey(k, path, "keys must be names, got %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			continue // left to the decoder
		}
		kp := fielderr.Join(path, k.Value)
		f, ok := fields[k.Value]
		if !ok {
			c.addKey(k, kp, "unknown field%s", suggest(k.Value, slices.Sorted(maps.Keys(fields))))
			continue
		}
		if line, dup := first[k.Value]; dup {
			c.addKey(k, kp, "set twice, first on line %d", line)
			continue
		}
		first[k.Value] = k.Line
		c.check(v, f.Type, kp)
	}
}

func (c *checker) checkScalar(n *yaml.Node, t reflect.Type, path string) {
	var what, want string
	switch t.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			c.add(n, path, "must be a string, got %s", describe(n))
		}
		return
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		what, want = "an integer", "!!int"
	case reflect.Bool:
		what, want = "a boolean (write true or false)", "!!bool"
	case reflect.Float32, reflect.Float64:
		what, want = "a number", "!!float"
	default:
		return // maps and interfaces hold anything; none is used today
	}
	if n.Kind != yaml.ScalarNode {
		c.add(n, path, "must be %s, got %s", what, describe(n))
		return
	}
	tag := n.ShortTag()
	ok := tag == want || (want == "!!float" && tag == "!!int")
	if ok {
		ok = n.Decode(reflect.New(t).Interface()) == nil // range, as the decoder sees it
	}
	if !ok {
		c.add(n, path, "cannot parse %q as %s", n.Value, what)
	}
}

// yamlFields maps the yaml names of t's fields to the fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	m := map[string]reflect.StructField{}
	for f := range t.Fields() {
		if name, ok := yamlName(f); ok {
			m[name] = f
		}
	}
	return m
}

// yamlName is the key a field is written with; ok is false for fields yaml
// does not decode.
func yamlName(f reflect.StructField) (name string, ok bool) {
	if !f.IsExported() {
		return "", false
	}
	tag := f.Tag.Get("yaml")
	if tag == "-" {
		return "", false
	}
	name, _, _ = strings.Cut(tag, ",")
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, true
}

// describe names the kind of a node for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	return strconv.Quote(v)
}

// suggest returns ` (did you mean "x"?)` for the known name closest to
// name, or the list of known names when none is close.
func suggest(name string, names []string) string {
	if best, ok := closest(name, names); ok {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ", want one of " + strings.Join(names, ", ")
}

// closest returns the name in names nearest to name, if it is near enough
// to be a typo of it.
func closest(name string, names []string) (string, bool) {
	best, bestD := "", -1
	for _, k := range names {
		if d := distance(name, k); bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	return best, bestD >= 0 && bestD <= max(1, min(3, len(name)/3))
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// cutLine splits "line 12: msg", the shape of yaml.v3 messages, into 12 and
// msg; line is 0 when msg has no line.
func cutLine(s string) (line int, msg string) {
	rest, ok := strings.CutPrefix(s, "line ")
	if !ok {
		return 0, s
	}
	num, msg, ok := strings.Cut(rest, ": ")
	n, err := strconv.Atoi(num)
	if !ok || err != nil {
		return 0, s
	}
	return n, msg
}

// fromTypeError turns the messages of a *yaml.TypeError that the checker did
// not already report (on the same line) into problems, locating each by the
// key or value found on its line under root. base is the path of root.
func (c *checker) fromTypeError(te *yaml.TypeError, root *yaml.Node, base string) {
	for _, msg := range te.Errors {
		line, msg := cutLine(msg)
		dup := strings.HasPrefix(msg, "mapping key ") && strings.Contains(msg, " already defined at line ")
		if dup {
			c.aborted = true // yaml.v3 drops the whole mapping
		}
		key := dup || isFieldError(msg, " not found in type ") || isFieldError(msg, " already set in type ")
		if c.seen[lineKind{line, key}] {
			continue
		}
		n, path, ok := findLine(root, base, line, 0)
		if !ok {
			n = &yaml.Node{Line: max(line, 1)}
		}
		c.addKind(n, key, path, "%s", rewriteTypeError(msg))
	}
}

// isFieldError reports whether msg is yaml.v3's "field <name><what><type>".
func isFieldError(msg, what string) bool {
	return strings.HasPrefix(msg, "field ") && strings.Contains(msg, what)
}

// rewriteTypeError says in ratemon's words what a yaml.v3 message says in Go's.
func rewriteTypeError(msg string) string {
	switch {
	case isFieldError(msg, " not found in type "):
		return "unknown field"
	case isFieldError(msg, " already set in type "):
		return "set twice"
	}
	if rest, ok := strings.CutSuffix(msg, "` into time.Duration"); ok && strings.HasPrefix(rest, "cannot unmarshal ") {
		if _, value, ok := strings.Cut(rest, " `"); ok {
			return fmt.Sprintf("cannot parse %q as a duration %s", value, durationHint)
		}
	}
	return strings.TrimPrefix(msg, "yaml: ")
}

// findLine finds the first key (or else value) written on line below n and
// its path. It does not follow aliases.
func findLine(n *yaml.Node, path string, line, depth int) (*yaml.Node, string, bool) {
	if n == nil || depth > 64 {
		return nil, "", false
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, e := range n.Content {
			if f, p, ok := findLine(e, path, line, depth+1); ok {
				return f, p, ok
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			kp := fielderr.Join(path, k.Value)
			if k.Line == line {
				return k, kp, true
			}
			if f, p, ok := findLine(v, kp, line, depth+1); ok {
				return f, p, ok
			}
		}
	case yaml.SequenceNode:
		for i, e := range n.Content {
			if f, p, ok := findLine(e, fmt.Sprintf("%s[%d]", path, i), line, depth+1); ok {
				return f, p, ok
			}
		}
	}
	if n.Line == line {
		return n, path, true
	}
	return nil, "", false
}
