// Package examples_test keeps the README's integration snippets true: the
// Go one builds, the Node one is the code that make test-examples tests.
package examples_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// section returns the README's text from the heading to the next heading
// of the same level.
func section(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	s := string(b)
	i := strings.Index(s, "\n"+heading+"\n")
	require.GreaterOrEqual(t, i, 0, "README.md has no %q", heading)
	s = s[i+len(heading)+2:]
	if j := strings.Index(s, "\n## "); j >= 0 {
		s = s[:j]
	}
	return s
}

// blocks returns the fenced code blocks of language lang in s.
func blocks(s, lang string) []string {
	var out []string
	for {
		i := strings.Index(s, "```"+lang+"\n")
		if i < 0 {
			return out
		}
		s = s[i+len(lang)+4:]
		j := strings.Index(s, "```")
		out = append(out, s[:j])
		s = s[j+3:]
	}
}

func TestREADME_goIntegrationBuilds(t *testing.T) {
	code := blocks(section(t, "## Inline enforcement (Go)"), "go")
	require.Len(t, code, 1)
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	require.NoError(t, os.WriteFile(src, []byte(code[0]), 0o600))
	// An overlay places the snippet in the module without writing to it.
	wd, err := os.Getwd()
	require.NoError(t, err)
	pkg := filepath.Join(wd, "readmesnippet")
	overlay, err := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(pkg, "main.go"): src}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "overlay.json"), overlay, 0o600))
	gobin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command is needed to build the snippet")
	cmd := exec.Command(gobin, "build", "-overlay", filepath.Join(dir, "overlay.json"), "-o", filepath.Join(dir, "snippet"), "./readmesnippet")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the README's Go snippet does not build:\n%s", out)
}

func TestREADME_nodeSnippetIsTheTestedCode(t *testing.T) {
	code := blocks(section(t, "## Other languages"), "js")
	require.NotEmpty(t, code)
	b, err := os.ReadFile("node/ratemon.mjs")
	require.NoError(t, err)
	for _, fn := range strings.Split(strings.TrimSpace(code[0]), "\n\n") {
		require.Contains(t, string(b), fn, "README.md shows Node code that examples/node/ratemon.mjs does not have")
	}
}

func TestREADME_pythonSnippetEscapesAsTheTestedCode(t *testing.T) {
	code := blocks(section(t, "## Other languages"), "python")
	require.Len(t, code, 1)
	b, err := os.ReadFile("python/ratemon.py")
	require.NoError(t, err)
	for _, s := range []string{`r"[{}|=%\x00-\x1f\x7f]"`, `"%%%02X" % ord(m.group())`, `max(1, math.ceil(ms / 1000))`} {
		require.Contains(t, code[0], s)
		require.Contains(t, string(b), s)
	}
}
