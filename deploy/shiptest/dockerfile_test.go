package shiptest

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func dockerfile(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	require.NoError(t, err)
	// Join continuation lines, as Docker reads them.
	return strings.ReplaceAll(string(b), "\\\n", " ")
}

// dockerStages returns the names of the Dockerfile's stages, in order.
func dockerStages(t *testing.T) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^FROM \S+ AS (\S+)$`).FindAllStringSubmatch(dockerfile(t), -1) {
		out = append(out, m[1])
	}
	return out
}

// buildArgs reduces a go build command to what matters: the environment,
// the flags and the package, with the version variable made uniform.
func buildArgs(cmd string) string {
	cmd = strings.NewReplacer("$(GO)", "go", "'", "", `"`, "", "$(LDFLAGS)", "-s -w -X main.version=$(VERSION)",
		"${VERSION}", "$(VERSION)").Replace(cmd)
	cmd = regexp.MustCompile(`-o \S+`).ReplaceAllString(cmd, "-o OUT")
	return strings.Join(strings.Fields(cmd), " ")
}

// TestDockerfile_buildsLikeTheMakefile requires the Dockerfile's go build
// of ratemon to be the Makefile's `make build` command, but for the output.
func TestDockerfile_buildsLikeTheMakefile(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join(repoDir, "Makefile"))
	require.NoError(t, err)
	makeCmd := regexp.MustCompile(`(?m)^build:\n\t(.+)$`).FindStringSubmatch(string(mk))
	require.NotNil(t, makeCmd, "no build target in the Makefile")
	var ldflags string
	if m := regexp.MustCompile(`(?m)^LDFLAGS := (.+)$`).FindStringSubmatch(string(mk)); m != nil {
		ldflags = m[1]
	}
	require.Equal(t, "-s -w -X main.version=$(VERSION)", ldflags, "the Makefile's LDFLAGS changed: update buildArgs and the Dockerfile")
	want := buildArgs(makeCmd[1])

	df := dockerfile(t)
	var got string
	for _, part := range regexp.MustCompile(`&&|RUN`).Split(df, -1) {
		if strings.Contains(part, "./cmd/ratemon") && strings.Contains(part, "go build") {
			got = buildArgs(strings.TrimSpace(regexp.MustCompile(`--mount=\S+`).ReplaceAllString(part, "")))
		}
	}
	require.Equal(t, want, got)
	require.Contains(t, want, "CGO_ENABLED=0")
	require.Contains(t, want, "-trimpath")
}

// TestDockerfile_image checks the runtime image: the Go version of go.mod,
// a static non-root final stage that exposes the default port.
func TestDockerfile_image(t *testing.T) {
	df := dockerfile(t)
	gomod, err := os.ReadFile(filepath.Join(repoDir, "go.mod"))
	require.NoError(t, err)
	goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(string(gomod))
	require.NotNil(t, goVer)
	require.Contains(t, df, "ARG GO_VERSION="+goVer[1]+"\n")
	require.Contains(t, df, "FROM golang:${GO_VERSION}")

	stages := dockerStages(t)
	require.Equal(t, "ratemon", stages[len(stages)-1], "the daemon image must be the default (last) target")
	final := df[strings.LastIndex(df, "\nFROM "):]
	require.Contains(t, final, "FROM gcr.io/distroless/static")
	require.Contains(t, final, "USER nonroot:nonroot")
	require.Contains(t, final, "EXPOSE "+strconv.Itoa(defaultPort(t)))
	require.Contains(t, final, `ENTRYPOINT ["/ratemon"]`)
	require.Contains(t, final, `CMD ["serve", "--config", "/etc/ratemon/ratemon.yaml"]`)
	for _, m := range regexp.MustCompile(`--from=(\S+)`).FindAllStringSubmatch(df, -1) {
		require.Contains(t, stages, m[1])
	}
	for _, stage := range regexp.MustCompile(`(?s)\nFROM `).Split(df, -1)[1:] {
		if strings.HasPrefix(stage, "golang:") {
			continue
		}
		require.Regexp(t, `\nUSER (nonroot|65532)`, stage, "every runtime image runs as non-root")
	}
}
