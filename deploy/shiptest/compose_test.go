package shiptest

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/config"
)

// compose is deploy/docker-compose.yml, decoded.
func compose(t *testing.T) map[string]any {
	return one(t, filepath.Join(deployDir, "docker-compose.yml"))
}

func services(t *testing.T) map[string]any {
	s, ok := compose(t)["services"].(map[string]any)
	require.True(t, ok, "docker-compose.yml has no services")
	return s
}

// TestCompose_services checks that the compose file runs the whole story.
func TestCompose_services(t *testing.T) {
	var names []string
	for n := range services(t) {
		names = append(names, n)
	}
	for _, want := range []string{"redis", "nats", "ratemon-1", "ratemon-2", "prometheus", "alertmanager", "grafana", "stockapi", "loadgen"} {
		require.Contains(t, names, want)
	}
	nats := services(t)["nats"]
	require.Contains(t, dig(t, nats, "command"), "-js", "nats needs JetStream")
}

// TestCompose_filesExist checks every bind mount and build of the compose
// file, and that every build target is a stage of the Dockerfile.
func TestCompose_filesExist(t *testing.T) {
	stages := dockerStages(t)
	for name, svc := range services(t) {
		s := svc.(map[string]any)
		if vols, ok := s["volumes"].([]any); ok {
			for _, v := range vols {
				src, _, _ := strings.Cut(v.(string), ":")
				if !strings.HasPrefix(src, ".") {
					continue // a named volume
				}
				_, err := os.Stat(filepath.Join(deployDir, src))
				require.NoError(t, err, "service %s mounts %s", name, src)
			}
		}
		if b, ok := s["build"].(map[string]any); ok {
			ctx := filepath.Join(deployDir, b["context"].(string))
			_, err := os.Stat(filepath.Join(ctx, "go.mod"))
			require.NoError(t, err, "service %s builds from %s, not the repository root", name, ctx)
			_, err = os.Stat(filepath.Join(ctx, b["dockerfile"].(string)))
			require.NoError(t, err, "service %s", name)
			require.Contains(t, stages, b["target"], "service %s builds a target the Dockerfile lacks", name)
		}
	}
}

// composeConfig loads deploy/compose/ratemon.yaml as the daemon would.
func composeConfig(t *testing.T) *config.Config {
	cfg, err := config.Load(filepath.Join(deployDir, "compose", "ratemon.yaml"))
	require.NoError(t, err)
	return cfg
}

// TestCompose_agreesWithConfig checks ports, addresses and variables of
// the compose file against the daemons' config and the config reference.
func TestCompose_agreesWithConfig(t *testing.T) {
	cfg := composeConfig(t)
	port := portOf(t, cfg.HTTP.Addr)
	require.Equal(t, defaultPort(t), port, "the compose config moves http.addr off the default port")
	svcs := services(t)
	mount := "./compose/ratemon.yaml:/etc/ratemon/ratemon.yaml:ro"
	for _, name := range []string{"ratemon-1", "ratemon-2"} {
		s := svcs[name].(map[string]any)
		require.Contains(t, dig(t, s, "volumes"), mount, name)
		cmd := strings.Join(toStrings(dig(t, s, "command")), " ")
		require.Contains(t, cmd, "--config /etc/ratemon/ratemon.yaml", name)
		for _, p := range toStrings(dig(t, s, "ports")) {
			require.True(t, strings.HasSuffix(p, ":"+strconv.Itoa(port)), "%s publishes %s, the daemon listens on %d", name, p, port)
		}
		for env := range dig(t, s, "environment").(map[string]any) {
			require.True(t, knownEnv(env), "%s sets %s, which no setting reads", name, env)
		}
	}
	for env := range dig(t, svcs["loadgen"], "environment").(map[string]any) {
		require.True(t, knownEnv(env), "loadgen sets %s, which no setting reads", env)
	}
	// Redis and NATS are the compose services, on the ports they listen on.
	ru, err := url.Parse(cfg.Redis.URL)
	require.NoError(t, err)
	require.Contains(t, svcs, ru.Hostname())
	require.Equal(t, "6379", ru.Port())
	nu, err := url.Parse(cfg.NATS.URL)
	require.NoError(t, err)
	require.Contains(t, svcs, nu.Hostname())
	require.Contains(t, toStrings(dig(t, svcs["nats"], "ports")), "4222:4222")

	// Prometheus scrapes both replicas at that port, loads rules that
	// exist and sends alerts to the Alertmanager service.
	prom := one(t, filepath.Join(deployDir, "compose", "prometheus.yml"))
	targets := toStrings(dig(t, prom, "scrape_configs", 0, "static_configs", 0, "targets"))
	require.ElementsMatch(t, []string{"ratemon-1:" + strconv.Itoa(port), "ratemon-2:" + strconv.Itoa(port)}, targets)
	require.Equal(t, "ratemon", str(t, prom, "scrape_configs", 0, "job_name"), "the rules and the dashboard expect job=\"ratemon\"")
	for _, rf := range toStrings(dig(t, prom, "rule_files")) {
		local := strings.Replace(rf, "/etc/prometheus/rules", "../prometheus/rules", 1)
		_, err := os.Stat(filepath.Join(deployDir, "compose", local))
		require.NoError(t, err, "rule file %s", rf)
	}
	am := toStrings(dig(t, prom, "alerting", "alertmanagers", 0, "static_configs", 0, "targets"))
	require.Equal(t, []string{"alertmanager:9093"}, am)
	require.Contains(t, toStrings(dig(t, svcs["alertmanager"], "ports")), "9093:9093")

	// Grafana finds the dashboard where its provisioning looks for it.
	prov := one(t, filepath.Join(deployDir, "grafana", "provisioning", "dashboards", "ratemon.yaml"))
	path := str(t, prov, "providers", 0, "options", "path")
	require.Contains(t, dig(t, svcs["grafana"], "volumes"), "./grafana/dashboards:"+path+":ro")
	require.Contains(t, dig(t, svcs["grafana"], "volumes"), "./grafana/provisioning:/etc/grafana/provisioning:ro")
	ds := one(t, filepath.Join(deployDir, "grafana", "provisioning", "datasources", "prometheus.yaml"))
	require.Equal(t, "http://prometheus:9090", str(t, ds, "datasources", 0, "url"))
	require.Contains(t, toStrings(dig(t, svcs["prometheus"], "ports")), "9090:9090")
}

// TestCompose_exampleAPIFlags checks the example API's command against the
// flags examples/stockapi defines, and the addresses against the config.
func TestCompose_exampleAPIFlags(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoDir, "examples", "stockapi", "main.go"))
	require.NoError(t, err)
	defined := map[string]bool{}
	for _, m := range regexp.MustCompile(`flag\.\w+Var\(&[\w.]+, "([\w-]+)"`).FindAllStringSubmatch(string(src), -1) {
		defined[m[1]] = true
	}
	require.NotEmpty(t, defined)
	cfg := composeConfig(t)
	for _, arg := range toStrings(dig(t, services(t)["stockapi"], "command")) {
		name, val, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		require.True(t, defined[name], "examples/stockapi has no flag -%s", name)
		switch name {
		case "redis":
			require.Equal(t, cfg.Redis.URL, val)
		case "nats":
			require.Equal(t, cfg.NATS.URL, val)
		case "ratemon":
			require.Equal(t, "http://ratemon-1:"+strconv.Itoa(portOf(t, cfg.HTTP.Addr)), val)
		}
	}
}

// TestCompose_loadgenCommand runs `ratemon publish --help` of the built
// binary and checks every flag the load generator uses.
func TestCompose_loadgenCommand(t *testing.T) {
	script := strings.Join(toStrings(dig(t, services(t)["loadgen"], "command")), "\n")
	help := run(t, binary(t), "publish", "--help")
	used := regexp.MustCompile(`ratemon publish((?: --[\w-]+(?: '[^']*'| \S+)?)+)`).FindAllStringSubmatch(script, -1)
	require.NotEmpty(t, used, "the load generator does not run ratemon publish")
	for _, u := range used {
		for _, f := range regexp.MustCompile(`--[\w-]+`).FindAllString(u[1], -1) {
			require.Contains(t, help, f+" ", "ratemon publish has no flag %s", f)
		}
	}
}

func toStrings(v any) []string {
	var out []string
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			out = append(out, e.(string))
		}
	case string:
		out = append(out, x)
	}
	return slices.Clip(out)
}
