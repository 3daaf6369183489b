package config

import (
	"strconv"

	"go.yaml.in/yaml/v3"
)

// sources remembers the YAML trees a Config was decoded from, so that a
// problem found by Validate, which knows only a field path, can be placed at
// a file, line and column.
type sources struct {
	file  string     // the main config file
	root  *yaml.Node // its document, nil when empty
	rules []origin   // where each rule of Config.Rules was written
	order []string   // every file read, main file first, for sorting problems
}

// origin is where one rule was written: its file and its mapping node.
type origin struct {
	file string
	node *yaml.Node
}

// segment is one step of a field path: a mapping key, or a list index when
// name is empty.
type segment struct {
	name  string
	index int
}

// splitPath splits "rules[0].key[2]" into rules, [0], key, [2]. It stops at
// the first malformed part, so a lookup falls back to the last good parent.
func splitPath(p string) []segment {
	var segs []segment
	for i := 0; i < len(p); {
		switch p[i] {
		case '.':
			i++
		case '[':
			end := i + 1
			for end < len(p) && p[end] >= '0' && p[end] <= '9' {
				end++
			}
			n, err := strconv.Atoi(p[i+1 : end])
			if err != nil || end >= len(p) || p[end] != ']' {
				return segs
			}
			segs = append(segs, segment{index: n})
			i = end + 1
		default:
			end := i
			for end < len(p) && p[end] != '.' && p[end] != '[' {
				end++
			}
			segs = append(segs, segment{name: p[i:end], index: -1})
			i = end
		}
	}
	return segs
}

// locate finds the file, line and column of the value at path. Missing parts
// fall back to the nearest parent that exists, and finally to line 1.
func (s *sources) locate(path string) (file string, line, col int) {
	segs := splitPath(path)
	file, start := s.file, s.root
	if len(segs) >= 2 && segs[0].name == "rules" && segs[1].name == "" &&
		segs[1].index < len(s.rules) && s.rules[segs[1].index].node != nil {
		o := s.rules[segs[1].index]
		file, start, segs = o.file, o.node, segs[2:]
	}
	line, col = 1, 0
	n := content(start)
	if n != nil && n.Line > 0 {
		line, col = n.Line, n.Column
	}
	for _, sg := range segs {
		n = child(n, sg)
		if n == nil {
			break
		}
		line, col = n.Line, n.Column
	}
	return file, line, col
}

// content skips the document node and follows aliases.
func content(n *yaml.Node) *yaml.Node {
	for hops := 0; n != nil && hops < 16; hops++ {
		switch {
		case n.Kind == yaml.DocumentNode && len(n.Content) > 0:
			n = n.Content[0]
		case n.Kind == yaml.AliasNode && n.Alias != nil:
			n = n.Alias
		default:
			return n
		}
	}
	return n
}

// child returns the value at one path segment below n, or nil.
func child(n *yaml.Node, sg segment) *yaml.Node {
	n = content(n)
	if n == nil {
		return nil
	}
	if sg.name == "" {
		if n.Kind != yaml.SequenceNode || sg.index < 0 || sg.index >= len(n.Content) {
			return nil
		}
		return n.Content[sg.index]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == sg.name {
			return n.Content[i+1]
		}
	}
	return nil
}
