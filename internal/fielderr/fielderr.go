// Package fielderr carries validation problems located by their path in the
// configuration, such as `rules[2].window`, so that the config loader can
// point at the file, line and column of each one and report them together.
package fielderr

import (
	"errors"
	"fmt"
)

// Error is one problem with one configuration field.
type Error struct {
	Path string // dotted path with indexes, e.g. "rules[2].window"; empty for the whole document
	Msg  string // lower-case, no final period, names the value, e.g. "must be > 0, got 0s"
}

// Error implements error as "path: msg".
func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// List collects problems; the zero value is ready to use.
type List struct {
	errs []*Error
}

// Add records a problem at path.
func (l *List) Add(path, format string, args ...any) {
	l.errs = append(l.errs, &Error{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Merge records every problem of err, a result of another Validate, under the
// path prefix; a plain error becomes one problem at prefix.
func (l *List) Merge(prefix string, err error) {
	for _, e := range Flatten(err) {
		l.errs = append(l.errs, &Error{Path: Join(prefix, e.Path), Msg: e.Msg})
	}
}

// Len reports how many problems were recorded.
func (l *List) Len() int { return len(l.errs) }

// Err returns nil when nothing was recorded, else all problems joined.
func (l *List) Err() error {
	if len(l.errs) == 0 {
		return nil
	}
	errs := make([]error, len(l.errs))
	for i, e := range l.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// Join joins two path parts: Join("rules[1]", "window") is "rules[1].window".
func Join(prefix, path string) string {
	switch {
	case prefix == "":
		return path
	case path == "":
		return prefix
	case path[0] == '[':
		return prefix + path
	}
	return prefix + "." + path
}

// Flatten returns every *Error inside err (through errors.Join trees); other
// errors become an *Error without a path.
func Flatten(err error) []*Error {
	if err == nil {
		return nil
	}
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		var out []*Error
		for _, e := range joined.Unwrap() {
			out = append(out, Flatten(e)...)
		}
		return out
	}
	var fe *Error
	if errors.As(err, &fe) {
		return []*Error{fe}
	}
	return []*Error{{Msg: err.Error()}}
}
