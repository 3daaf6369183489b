package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ratemon/ratemon/internal/fielderr"
	"github.com/ratemon/ratemon/limiter"
)

// Limits on what Load reads, so that a bad include cannot make it read a
// device or the whole disk.
const (
	MaxFileSize     = 4 << 20 // bytes per file, the config and each rule file
	MaxIncludeFiles = 256     // rule files in all
)

// Load reads the configuration file at path and the rule files it includes,
// applies defaults and validates the result. Every error is a *LoadError.
func Load(path string) (*Config, error) {
	return LoadWith(path, nil)
}

// LoadWith is Load with settings that override the file, keyed by
// Setting.Path (the command's flags and RATEMON_* variables), set before
// the whole is validated: a file may leave a value, such as the password
// of its nats.user, to the environment. Problems at an overridden path are
// reported by path alone, as ApplyOverrides does.
func LoadWith(path string, set map[string]string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return parse(path, data, set)
}

// Parse is Load for a file already read: name is used in messages and its
// directory anchors the include globs.
func Parse(name string, data []byte) (*Config, error) {
	return parse(name, data, nil)
}

func parse(name string, data []byte, set map[string]string) (*Config, error) {
	if name == "" {
		name = "<config>"
	}
	if len(data) > MaxFileSize {
		return nil, single(Problem{File: name, Msg: fmt.Sprintf("larger than %d bytes", MaxFileSize)}, nil)
	}
	l := &loader{src: &sources{file: name, order: []string{name}}, set: set}
	return l.load(name, data)
}

// loader holds the state of one Load.
type loader struct {
	src      *sources
	set      map[string]string // overrides of LoadWith
	problems []Problem
	failed   []string // paths whose value could not be decoded
	aborted  bool     // a decoder stopped half way: the Config is incomplete
}

func (l *loader) load(name string, data []byte) (*Config, error) {
	root, err := parseNode(name, data)
	if err != nil {
		return nil, err
	}
	l.src.root = root
	var cfg Config
	ck := &checker{file: name}
	ck.check(root, reflect.TypeFor[Config](), "")
	if err := strictDecode(data, &cfg); err != nil {
		ck.decodeError(err, root)
	}
	l.collect(ck)
	list := child(root, segment{name: "rules", index: -1})
	for i := range cfg.Rules {
		l.src.rules = append(l.src.rules, origin{file: name, node: child(list, segment{index: i})})
	}
	if err := l.includes(&cfg, name); err != nil {
		return nil, err
	}
	cfg.resolveFiles(filepath.Dir(name))
	overridden := l.override(&cfg)
	cfg.SetDefaults()
	if !l.aborted {
		l.validate(&cfg, overridden)
	}
	if len(l.problems) > 0 {
		sortProblems(l.problems, l.src.order)
		return nil, &LoadError{Problems: l.problems}
	}
	cfg.src = l.src
	return &cfg, nil
}

// includes reads the rule files named by cfg.Include, relative to the
// directory of name, and appends their rules.
func (l *loader) includes(cfg *Config, name string) error {
	dir := filepath.Dir(name)
	seen := map[string]bool{}
	for i, pattern := range cfg.Include {
		path := fmt.Sprintf("include[%d]", i)
		p := l.at(path)
		if pattern == "" {
			p.Msg = "must not be empty"
			l.problems = append(l.problems, p)
			continue
		}
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(dir, pattern)
		}
		matches, err := filepath.Glob(pattern)
		if err != nil {
			p.Msg = fmt.Sprintf("bad pattern %q: %v", cfg.Include[i], err)
			l.problems = append(l.problems, p)
			continue
		}
		if len(matches) == 0 {
			p.Msg = fmt.Sprintf("%q matches no file", cfg.Include[i])
			l.problems = append(l.problems, p)
			continue
		}
		for _, m := range matches {
			if seen[m] {
				continue
			}
			seen[m] = true
			if len(seen) > MaxIncludeFiles {
				p.Msg = fmt.Sprintf("includes more than %d files", MaxIncludeFiles)
				l.problems = append(l.problems, p)
				return nil
			}
			if err := l.include(cfg, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// include appends the rules of one rule file. An unreadable file or a
// syntax error stops the load, as for the main file.
func (l *loader) include(cfg *Config, file string) error {
	data, err := readFile(file)
	if err != nil {
		return err
	}
	root, err := parseNode(file, data)
	if err != nil {
		return err
	}
	l.src.order = append(l.src.order, file)
	base := len(cfg.Rules)
	ck := &checker{file: file}
	seq := content(root)
	if seq != nil && seq.Kind != yaml.SequenceNode && seq.ShortTag() != "!!null" {
		ck.add(seq, "", "must be a list of rules, got %s", describe(seq))
		l.collect(ck)
		return nil
	}
	var rules []limiter.Rule
	if seq != nil && seq.Kind == yaml.SequenceNode {
		for j, e := range seq.Content {
			ck.check(e, reflect.TypeFor[limiter.Rule](), fmt.Sprintf("rules[%d]", base+j))
		}
	}
	if err := strictDecode(data, &rules); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) && seq != nil && seq.Kind == yaml.SequenceNode {
			for j, e := range seq.Content {
				ck.fromTypeError(onLines(te, e), e, fmt.Sprintf("rules[%d]", base+j))
			}
		} else {
			ck.decodeError(err, root)
		}
	}
	l.collect(ck)
	for j := range rules {
		var n *yaml.Node
		if seq != nil && j < len(seq.Content) {
			n = seq.Content[j]
		}
		l.src.rules = append(l.src.rules, origin{file: file, node: n})
	}
	cfg.Rules = append(cfg.Rules, rules...)
	return nil
}

// override sets the overrides of LoadWith on cfg and returns the paths it
// set; a value that does not parse is a problem at its path.
func (l *loader) override(cfg *Config) map[string]bool {
	overridden := map[string]bool{}
	for _, path := range slices.Sorted(maps.Keys(l.set)) {
		if err := cfg.Set(path, l.set[path]); err != nil {
			for _, fe := range fielderr.Flatten(err) {
				l.problems = append(l.problems, Problem{Path: fe.Path, Msg: fe.Msg})
			}
			l.failed = append(l.failed, path)
			continue
		}
		overridden[path] = true
	}
	return overridden
}

// onLines keeps the messages of te that fall on the lines of n.
func onLines(te *yaml.TypeError, n *yaml.Node) *yaml.TypeError {
	first, last := n.Line, lastLine(n, 0)
	out := &yaml.TypeError{}
	for _, msg := range te.Errors {
		if line, _ := cutLine(msg); line >= first && line <= last {
			out.Errors = append(out.Errors, msg)
		}
	}
	return out
}

func lastLine(n *yaml.Node, depth int) int {
	if len(n.Content) == 0 || depth > 64 {
		return n.Line
	}
	return max(n.Line, lastLine(n.Content[len(n.Content)-1], depth+1))
}

// decodeError records an error of the strict decoder of the file whose
// tree is root. Any error but a *yaml.TypeError stopped the decoder half way
// and sets c.aborted.
func (c *checker) decodeError(err error, root *yaml.Node) {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		c.fromTypeError(te, root, "")
		return
	}
	c.aborted = true
	line, msg := splitYAMLError(err)
	if c.seen[lineKind{line, true}] || c.seen[lineKind{line, false}] {
		return // such as a key set twice, already reported by the checker
	}
	c.problems = append(c.problems, Problem{File: c.file, Line: line, Msg: msg})
}

func (l *loader) collect(ck *checker) {
	l.problems = append(l.problems, ck.problems...)
	l.failed = append(l.failed, ck.failed...)
	l.aborted = l.aborted || ck.aborted
}

// validate runs Config.Validate and places each problem: those at an
// overridden path (or when there is no file) are reported by path alone, the
// others where the file set them.
func (l *loader) validate(cfg *Config, overridden map[string]bool) {
	for _, fe := range fielderr.Flatten(cfg.Validate()) {
		if l.decodeFailed(fe.Path) {
			continue // already reported as a value that could not be read
		}
		p := Problem{Path: fe.Path, Msg: fe.Msg}
		if l.src != nil && !overridden[fe.Path] {
			p.File, p.Line, p.Column = l.src.locate(fe.Path)
		}
		l.problems = append(l.problems, p)
	}
}

// at is a problem at path, positioned where the file set it.
func (l *loader) at(path string) Problem {
	file, line, col := l.src.locate(path)
	return Problem{File: file, Line: line, Column: col, Path: path}
}

// decodeFailed reports whether path is, or is under, a path whose value could
// not be decoded.
func (l *loader) decodeFailed(path string) bool {
	for _, f := range l.failed {
		if path == f || strings.HasPrefix(path, f+".") || strings.HasPrefix(path, f+"[") {
			return true
		}
	}
	return false
}

// strictDecode decodes the first document of data into v, refusing unknown
// fields. An empty document leaves v untouched.
func strictDecode(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// parseNode parses data into a node tree. It refuses a syntax error and a
// second document, each as a *LoadError with a single problem; an empty
// document gives a nil node.
func parseNode(name string, data []byte) (*yaml.Node, error) {
	root, next, err := parseDocs(data)
	switch {
	case err != nil:
		line, msg := splitYAMLError(err)
		p := Problem{File: name, Line: syntaxLine(data, line), Msg: "invalid yaml: " + msg}
		return nil, single(p, nil)
	case next != nil:
		return nil, single(Problem{File: name, Line: next.Line, Msg: "holds more than one yaml document"}, nil)
	}
	return root, nil
}

// parseDocs parses the first document of data and the start of a second.
func parseDocs(data []byte) (first, second *yaml.Node, err error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs [2]yaml.Node
	for i := range docs {
		switch err := dec.Decode(&docs[i]); {
		case errors.Is(err, io.EOF):
			return first, nil, nil
		case err != nil:
			return nil, nil, err
		}
		if i == 0 {
			first = &docs[0]
		}
	}
	return first, &docs[1], nil
}

// maxSyntaxScan bounds the bytes syntaxLine parses in all.
const maxSyntaxScan = 8 << 20

// syntaxLine finds the line of a syntax error. yaml.v3 reports the line
// before the block that holds the error rather than the error itself, so
// this returns the first line whose prefix of the document (from reported
// on) fails to parse: the bad line, or where an unclosed bracket or quote
// opened. It keeps reported when the scan would be too long.
func syntaxLine(data []byte, reported int) int {
	line, budget := max(reported, 1), maxSyntaxScan
	end := 0
	for range line {
		end = lineEnd(data, end)
	}
	for ; end <= len(data) && budget >= end; line++ {
		budget -= end
		if _, _, err := parseDocs(data[:end]); err != nil {
			return line
		}
		if end == len(data) {
			break
		}
		end = lineEnd(data, end)
	}
	return max(reported, 1)
}

// lineEnd returns the offset just after the line starting at off.
func lineEnd(data []byte, off int) int {
	if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
		return off + i + 1
	}
	return len(data)
}

// splitYAMLError takes the line number out of a yaml.v3 error message.
func splitYAMLError(err error) (line int, msg string) {
	return cutLine(strings.TrimPrefix(err.Error(), "yaml: "))
}

// readFile reads a regular file of at most MaxFileSize bytes.
func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, single(Problem{File: name, Msg: "cannot read: " + ioReason(err)}, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, single(Problem{File: name, Msg: "cannot read: " + ioReason(err)}, err)
	}
	if !st.Mode().IsRegular() {
		return nil, single(Problem{File: name, Msg: "cannot read: not a regular file"}, nil)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, single(Problem{File: name, Msg: "cannot read: " + ioReason(err)}, err)
	}
	if len(data) > MaxFileSize {
		return nil, single(Problem{File: name, Msg: fmt.Sprintf("larger than %d bytes", MaxFileSize)}, nil)
	}
	return data, nil
}

// ioReason is the message of an I/O error without the file name, which the
// problem already carries.
func ioReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func single(p Problem, cause error) *LoadError {
	return &LoadError{Problems: []Problem{p}, cause: cause}
}
