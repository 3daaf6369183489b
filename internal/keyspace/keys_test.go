package keyspace_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/keyspace"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestLayout_golden pins every key and subject name: a change of layout is a
// change of this file, reviewed on purpose.
func TestLayout_golden(t *testing.T) {
	r, err := keyspace.NewRedis("ratemon")
	require.NoError(t, err)
	s, err := keyspace.NewSubjects("ratemon")
	require.NoError(t, err)
	lk := "client=" + keyspace.Escape("ac{me}|x=1%") + "|route=" + keyspace.Escape("POST /login")
	lines := []string{
		"deny      " + r.Deny(lk),
		"deny-app  " + string(r.AppendDeny(nil, lk)),
		"shadow    " + r.Shadow(lk),
		"state     " + r.State(lk),
		"seen      " + r.Seen(lk),
		"ids       " + r.IDs(lk),
		"log       " + r.Log(lk, "login-burst"),
		"late      " + r.Late(lk, "login-burst"),
		"work      " + r.Work(7),
		"block     " + r.Block(lk),
		"allow     " + r.Allow(lk),
		"overrides " + r.Overrides(lk),
		"top       " + r.Top("login-burst", 3),
		"blockpat  " + r.BlockPattern(),
		"marker    " + r.Marker(),
		"denypat   " + r.DenyPattern(),
		"events    " + s.Events("stocks"),
		"eventsall " + s.EventsAll(),
		"decisions " + s.Decisions(),
		"alerts    " + s.Alerts(),
		"dead      " + s.DeadLetter(),
	}
	got := strings.Join(lines, "\n") + "\n"
	path := filepath.Join("testdata", "layout.golden")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), got)
}

func TestEscape(t *testing.T) {
	cases := map[string]string{
		"acme":          "acme",
		"a{b}c":         "a%7Bb%7Dc",
		"a|b=c":         "a%7Cb%3Dc",
		"100%":          "100%25",
		"new\nline\x00": "new%0Aline%00",
		"del\x7f":       "del%7F",
		"ünïcode ok":    "ünïcode ok",
		"":              "",
	}
	for in, want := range cases {
		require.Equal(t, want, keyspace.Escape(in), "%q", in)
		require.Equal(t, want, string(keyspace.AppendEscape(nil, in)), "%q", in)
		require.Equal(t, in, keyspace.Unescape(want), "%q", in)
	}
}

func TestNewRedis_refusesBadPrefixes(t *testing.T) {
	for _, p := range []string{"", "a{b", "a}b", "a b", "a\nb"} {
		_, err := keyspace.NewRedis(p)
		require.Error(t, err, "%q", p)
	}
	for _, p := range []string{"", ".a", "a.", "a..b", "a.*", "a.>", "a b"} {
		_, err := keyspace.NewSubjects(p)
		require.Error(t, err, "%q", p)
	}
}

func TestLimitKeyOf(t *testing.T) {
	r, _ := keyspace.NewRedis("rm")
	lk, ok := r.LimitKeyOf(r.Deny("client=a%7Bb"))
	require.True(t, ok)
	require.Equal(t, "client=a%7Bb", lk)
	_, ok = r.LimitKeyOf("other:deny:{x}")
	require.False(t, ok)
}

// FuzzEscape checks that no value can forge a hash tag or another value's
// separators: the escaped value has no `{ } | =` and no control character,
// its deny key's hash tag is exactly the limit key, and Unescape inverts it.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"acme", "{", "}", "a}{b", "x|client=victim", "%7B", "\x00\n", strings.Repeat("{", 100)} {
		f.Add(s)
	}
	r, _ := keyspace.NewRedis("ratemon")
	f.Fuzz(func(t *testing.T, v string) {
		e := keyspace.Escape(v)
		if strings.ContainsAny(e, "{}|=") {
			t.Fatalf("escaped %q still holds a separator: %q", v, e)
		}
		for i := 0; i < len(e); i++ {
			if e[i] < 0x20 || e[i] == 0x7f {
				t.Fatalf("escaped %q holds a control byte: %q", v, e)
			}
		}
		if got := keyspace.Unescape(e); got != v {
			t.Fatalf("unescape(escape(%q)) = %q", v, got)
		}
		lk := "client=" + e
		if tag := keyspace.HashTag(r.Deny(lk)); tag != lk {
			t.Fatalf("hash tag of deny key for %q is %q, want %q", v, tag, lk)
		}
	})
}

// WindowKeys are the keys State, Seen, ... Overrides, then Log and Late of
// each rule would give one by one.
func TestWindowKeys_areTheKeysOneByOne(t *testing.T) {
	r, err := keyspace.NewRedis("rm")
	require.NoError(t, err)
	lk := "client=a%7Bb|route=/x"
	for _, rules := range [][]string{nil, {"r"}, {"per-client", "burst"}} {
		want := []string{r.State(lk), r.Seen(lk), r.IDs(lk), r.Deny(lk), r.Shadow(lk), r.Block(lk), r.Allow(lk), r.Overrides(lk)}
		for _, rule := range rules {
			want = append(want, r.Log(lk, rule), r.Late(lk, rule))
		}
		require.Equal(t, want, r.WindowKeys(lk, rules), "rules %v", rules)
	}
}

// BenchmarkWindowKeys builds the KEYS of one script call of a limit key
// with one rule, as ingestion does for every call.
func BenchmarkWindowKeys(b *testing.B) {
	r, err := keyspace.NewRedis("ratemon")
	require.NoError(b, err)
	rules := []string{"per-client"}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n += len(r.WindowKeys("client=k004217", rules))
	}
	if n == 0 {
		b.Fatal("no keys")
	}
}

// BenchmarkWindowKeys_oneByOne builds the same keys one by one, as before
// WindowKeys, for comparison.
func BenchmarkWindowKeys_oneByOne(b *testing.B) {
	r, err := keyspace.NewRedis("ratemon")
	require.NoError(b, err)
	lk := "client=k004217"
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		keys := []string{r.State(lk), r.Seen(lk), r.IDs(lk), r.Deny(lk), r.Shadow(lk), r.Block(lk), r.Allow(lk), r.Overrides(lk),
			r.Log(lk, "per-client"), r.Late(lk, "per-client")}
		n += len(keys)
	}
	if n == 0 {
		b.Fatal("no keys")
	}
}
