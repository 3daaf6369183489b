package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ratemon/ratemon/internal/fielderr"
)

// EnvPrefix starts the name of every environment variable that sets a
// configuration field.
const EnvPrefix = "RATEMON_"

// Setting is one scalar field of Config, reachable from the command line as
// a flag and from the environment as a variable. The command builds one
// string flag per Setting, e.g. for urfave/cli:
//
//	&cli.StringFlag{Name: s.Flag, EnvVars: []string{s.Env}, Usage: s.Usage, DefaultText: s.Default}
//
// and passes the ones that are set, keyed by Path, to Config.ApplyOverrides.
type Setting struct {
	Path    string // field path in the file, e.g. "nats.subject_prefix"
	Flag    string // flag name without dashes, e.g. "nats-subject-prefix"
	Env     string // environment variable, e.g. "RATEMON_NATS_SUBJECT_PREFIX"
	Usage   string // one-line help, from the field's usage tag
	Default string // the default, written as in the file, e.g. "30s"
}

// Settings returns one Setting for every scalar field of Config (strings,
// named string types, integers, booleans, floats and durations), in the order
// of the struct. The lists, include and rules, are only set by the file.
func Settings() []Setting {
	var def Config
	def.SetDefaults()
	var out []Setting
	walkLeaves(reflect.ValueOf(&def).Elem(), "", func(path string, f reflect.StructField, v reflect.Value) {
		out = append(out, Setting{
			Path:    path,
			Flag:    flagName(path),
			Env:     envName(path),
			Usage:   f.Tag.Get("usage"),
			Default: formatValue(v),
		})
	})
	return out
}

// walkLeaves calls fn for every scalar field below v, a struct, with its path.
func walkLeaves(v reflect.Value, prefix string, fn func(path string, f reflect.StructField, v reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, ok := yamlName(f)
		if !ok {
			continue
		}
		path := fielderr.Join(prefix, name)
		switch {
		case isScalar(f.Type):
			fn(path, f, v.Field(i))
		case f.Type.Kind() == reflect.Struct:
			walkLeaves(v.Field(i), path, fn)
		}
	}
}

func isScalar(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// flagName is path with dots and underscores turned into dashes.
func flagName(path string) string {
	return strings.NewReplacer(".", "-", "_", "-").Replace(path)
}

// envName is EnvPrefix and path in upper case, dots turned into underscores.
func envName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(path))
}

// formatValue writes a scalar as it would appear in the file.
func formatValue(v reflect.Value) string {
	if isDuration(v.Type()) {
		return formatDuration(time.Duration(v.Int()))
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	}
	return ""
}

// Set parses value into the scalar field at path, e.g. Set("nats.ack_wait",
// "45s"). Durations are written like "10s", booleans as strconv.ParseBool
// reads them. The error is a *fielderr.Error at path that names the value.
// Set does not validate; ApplyOverrides does.
func (c *Config) Set(path, value string) error {
	v, ok := fieldByPath(reflect.ValueOf(c).Elem(), path)
	switch {
	case !ok:
		msg := "unknown setting"
		var paths []string
		for _, s := range Settings() {
			paths = append(paths, s.Path)
		}
		if best, ok := closest(path, paths); ok {
			msg += fmt.Sprintf(" (did you mean %q?)", best)
		}
		return &fielderr.Error{Path: path, Msg: msg}
	case v.Kind() == reflect.Struct:
		return &fielderr.Error{Path: path, Msg: "is a section, not a setting; name one of its fields"}
	case !isScalar(v.Type()):
		return &fielderr.Error{Path: path, Msg: "can only be set in the config file"}
	}
	fail := func(what string) error {
		return &fielderr.Error{Path: path, Msg: fmt.Sprintf("cannot parse %q as %s", value, what)}
	}
	if isDuration(v.Type()) {
		d, err := time.ParseDuration(value)
		if err != nil {
			return fail("a duration " + durationHint)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(value)
	case reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fail("a boolean (write true or false)")
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(value, 10, v.Type().Bits())
		if err != nil {
			return fail("an integer")
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(value, 10, v.Type().Bits())
		if err != nil {
			return fail("an unsigned integer")
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(value, v.Type().Bits())
		if err != nil {
			return fail("a number")
		}
		v.SetFloat(f)
	}
	return nil
}

// fieldByPath finds the field at a dotted path below v, a struct.
func fieldByPath(v reflect.Value, path string) (reflect.Value, bool) {
	for part := range strings.SplitSeq(path, ".") {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		t, found := v.Type(), false
		for j := range t.NumField() {
			if name, ok := yamlName(t.Field(j)); ok && name == part {
				v, found = v.Field(j), true
				break
			}
		}
		if !found {
			return reflect.Value{}, false
		}
	}
	return v, true
}

// ApplyOverrides sets every field in set, keyed by Setting.Path, then
// validates the whole configuration again. Problems at an overridden path
// are reported by path alone (they come from a flag or the environment, not
// from a line); the others keep the position they have in the file. On
// error c is left unchanged and the error is a *LoadError.
func (c *Config) ApplyOverrides(set map[string]string) error {
	next := *c
	l := &loader{src: c.src}
	overridden := map[string]bool{}
	for _, path := range slices.Sorted(maps.Keys(set)) {
		if err := next.Set(path, set[path]); err != nil {
			for _, fe := range fielderr.Flatten(err) {
				l.problems = append(l.problems, Problem{Path: fe.Path, Msg: fe.Msg})
			}
			l.failed = append(l.failed, path)
			continue
		}
		overridden[path] = true
	}
	l.validate(&next, overridden)
	if len(l.problems) > 0 {
		var order []string
		if l.src != nil {
			order = l.src.order
		}
		sortProblems(l.problems, order)
		return &LoadError{Problems: l.problems}
	}
	*c = next
	return nil
}

// SecretEnv returns NAME=value for every Secret setting of c that is set:
// the environment variables that hand them to a child ratemon process. A
// Secret marshals as "<secret>", so a config file written from c cannot
// carry them.
func (c *Config) SecretEnv() []string {
	var out []string
	root := reflect.ValueOf(c).Elem()
	for _, s := range Settings() {
		v, ok := fieldByPath(root, s.Path)
		if ok && v.Type() == reflect.TypeFor[Secret]() && v.String() != "" {
			out = append(out, s.Env+"="+v.String())
		}
	}
	return out
}
