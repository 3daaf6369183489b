package shiptest

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/ratemon/ratemon/internal/config"
)

// deployDir is deploy/, seen from this package.
const deployDir = ".."

// repoDir is the repository root.
const repoDir = "../.."

// readYAML decodes every document of a YAML file into generic values.
func readYAML(t *testing.T, path string) []any {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []any
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "%s does not parse", path)
		if v != nil {
			docs = append(docs, v)
		}
	}
	require.NotEmpty(t, docs, "%s holds no document", path)
	return docs
}

// one reads a YAML file of exactly one document, a mapping.
func one(t *testing.T, path string) map[string]any {
	t.Helper()
	docs := readYAML(t, path)
	require.Len(t, docs, 1, path)
	m, ok := docs[0].(map[string]any)
	require.True(t, ok, "%s is not a mapping", path)
	return m
}

// dig walks nested mappings and lists: dig(v, "spec", "template", 0).
func dig(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			require.True(t, ok, "not a mapping at %q of %v", k, path)
			v, ok = m[k]
			require.True(t, ok, "no %q in %v", k, path)
		case int:
			l, ok := v.([]any)
			require.True(t, ok, "not a list at %d of %v", k, path)
			require.Greater(t, len(l), k, "list too short at %d of %v", k, path)
			v = l[k]
		}
	}
	return v
}

func str(t *testing.T, v any, path ...any) string {
	t.Helper()
	s, ok := dig(t, v, path...).(string)
	require.True(t, ok, "%v is not a string", path)
	return s
}

// defaultPort is the port of the default http.addr, 9464.
func defaultPort(t *testing.T) int {
	_, p, err := net.SplitHostPort(config.DefaultHTTPAddr)
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return n
}

// portOf is the port of a host:port.
func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err, addr)
	n, err := strconv.Atoi(p)
	require.NoError(t, err, addr)
	return n
}

// knownEnv reports whether name is the variable of a setting.
func knownEnv(name string) bool {
	for _, s := range config.Settings() {
		if s.Env == name {
			return true
		}
	}
	return false
}

// TestYAML_everyFileParses parses every YAML file under deploy/.
func TestYAML_everyFileParses(t *testing.T) {
	n := 0
	err := filepath.WalkDir(deployDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(path); ext == ".yaml" || ext == ".yml" {
			readYAML(t, path)
			n++
		}
		return nil
	})
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, 12, "deploy/ has fewer YAML files than expected")
}

// TestShip_filesExist checks that the artifacts of issue 8 are all there,
// with the files of deploy/grafana and deploy/prometheus they reference.
func TestShip_filesExist(t *testing.T) {
	for _, f := range []string{
		"Dockerfile", "docker-compose.yml", "compose/ratemon.yaml", "compose/prometheus.yml", "compose/alertmanager.yml",
		"kubernetes/kustomization.yaml", "systemd/ratemon.service",
		"grafana/provisioning/dashboards/ratemon.yaml", "grafana/provisioning/datasources/prometheus.yaml",
		"grafana/dashboards/ratemon.json", "prometheus/prometheus.yml", "prometheus/rules/ratemon.rules.yml",
	} {
		_, err := os.Stat(filepath.Join(deployDir, f))
		require.NoError(t, err, "deploy/%s", f)
	}
	_, err := os.Stat(filepath.Join(repoDir, "examples/stockapi/main.go"))
	require.NoError(t, err)
	for _, d := range []string{"docs/SCALING.md", "docs/RELIABILITY.md"} {
		b, err := os.ReadFile(filepath.Join(repoDir, d))
		require.NoError(t, err)
		require.Contains(t, string(b), "#", d)
	}
}
