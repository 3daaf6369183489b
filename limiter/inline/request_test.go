package inline

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// refMethodPrefix is limiter.Rule.Matches' own test for a leading method,
// which methodPrefix does in one pass.
func refMethodPrefix(s string) int {
	sp := strings.IndexByte(s, ' ')
	if sp <= 0 || sp > 16 {
		return 0
	}
	for i := 0; i < sp; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return 0
		}
	}
	return sp
}

func TestMethodPrefix_sameAsLimiter(t *testing.T) {
	cases := []string{"", " ", "GET", "GET ", "GET /x", " GET /x", "get /x", "GeT /x", "G /x", "GET/x", "GET  /x",
		"ABCDEFGHIJKLMNOP /x", "ABCDEFGHIJKLMNOPQ /x", "ABCDEFGHIJKLMNOPQ", "POST\t/x", "GÉT /x", "GET1 /x", "/x GET /y"}
	for _, s := range cases {
		require.Equal(t, refMethodPrefix(s), methodPrefix(s), "%q", s)
		require.Equal(t, strings.TrimLeft(s, " "), trimSpaces(s), "%q", s)
	}
	// Random routes over an alphabet of upper and lower case, spaces and
	// others, of every length around the 16-letter limit.
	r := rand.New(rand.NewPCG(5, 6))
	const alphabet = "GETPOSXZaz /\t-É"
	for range 100000 {
		b := make([]byte, r.IntN(24))
		for i := range b {
			if r.IntN(3) == 0 {
				b[i] = ' '
				continue
			}
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		s := string(b)
		require.Equal(t, refMethodPrefix(s), methodPrefix(s), "%q", s)
		require.Equal(t, strings.TrimLeft(s, " "), trimSpaces(s), "%q", s)
	}
}

func TestAppendSubject(t *testing.T) {
	for _, c := range []struct{ method, path string }{{"get", "/x"}, {"GET", ""}, {"", "/a b"}, {"pAtCh", "/Mixed/Case"}} {
		got := appendSubject([]byte("keep:"), c.method, c.path)
		require.Equal(t, "keep:"+strings.ToUpper(c.method)+" "+c.path, string(got))
	}
}
