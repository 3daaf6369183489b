package chaos

import (
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestChaos_short is the CI form of `make chaos`: every fault scenario once,
// with shortened faults, on daemons that are real processes of a ratemon
// binary built for the test. Each scenario must find every count and flag
// equal to the reference model's. The scenarios have their own servers and
// run -parallel (GOMAXPROCS) at a time.
func TestChaos_short(t *testing.T) {
	exe := buildRatemon(t)
	for _, name := range Names() {
		if name == SoakName || name == BacklogName {
			continue // long mode: minutes of load at the machine's limit
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rep, err := Run(t.Context(), Options{
				Exe: exe, Mode: Short, Scenarios: []string{name}, Dir: t.TempDir(), Logger: testLogger(t),
			})
			require.NoError(t, err)
			var b strings.Builder
			require.NoError(t, rep.WriteTable(&b))
			t.Log("\n" + b.String())
			require.True(t, rep.Pass(), "the checker found differences with the model")
			require.Len(t, rep.Results, 1)
		})
	}
}

// buildRatemon builds cmd/ratemon into the test's directory, with the race
// detector when the test has it.
func buildRatemon(t *testing.T) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "ratemon")
	args := []string{"build", "-o", exe}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/ratemon/ratemon/cmd/ratemon")
	out, err := exec.Command(goTool(), args...).CombinedOutput()
	require.NoError(t, err, "go build ratemon:\n%s", out)
	return exe
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go" // not on PATH: the command's error says so
}

// testLogger logs the checker's progress in the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}
