package config

import (
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration, located where it was
// written.
type Problem struct {
	File   string // the file it is in; empty when it came from a flag or the environment
	Line   int    // 1-based line; 0 when unknown
	Column int    // 1-based column; 0 when unknown
	Path   string // field path such as "rules[1].limit"; empty for the whole file
	Msg    string // lower-case, no final period
}

// String formats p as "file:line:col: path: msg", leaving out the parts that
// are unknown.
func (p Problem) String() string {
	var sb strings.Builder
	if p.File != "" {
		sb.WriteString(p.File)
		if p.Line > 0 {
			sb.WriteString(":" + strconv.Itoa(p.Line))
			if p.Column > 0 {
				sb.WriteString(":" + strconv.Itoa(p.Column))
			}
		}
		sb.WriteString(": ")
	}
	if p.Path != "" {
		sb.WriteString(p.Path + ": ")
	}
	sb.WriteString(p.Msg)
	return sb.String()
}

// LoadError holds every problem found while loading a configuration. It is
// the only error type Load, Parse and ApplyOverrides return.
type LoadError struct {
	Problems []Problem // sorted by file, line and column
	cause    error     // the I/O error behind a file that could not be read
}

// Error prints one problem per line.
func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the I/O error behind an unreadable file, so that
// errors.Is(err, fs.ErrNotExist) works; nil otherwise.
func (e *LoadError) Unwrap() error { return e.cause }

// sortProblems orders problems by the rank of their file in files (problems
// without a file first), then by line and column; ties keep their order.
func sortProblems(ps []Problem, files []string) {
	rank := func(f string) int {
		if f == "" {
			return -1
		}
		if i := slices.Index(files, f); i >= 0 {
			return i
		}
		return len(files)
	}
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if d := rank(a.File) - rank(b.File); d != 0 {
			return d
		}
		if a.File != b.File {
			return strings.Compare(a.File, b.File)
		}
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
}
