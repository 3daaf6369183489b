package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/testenv"
)

// TestSecrets_neverShown runs serve and the other commands with a Redis
// password in the URL, a NATS user and password and an admin token, the
// daemon logging everything (debug, json), and requires that no secret
// appears in a log line, a command's output or error, or an HTTP answer.
func TestSecrets_neverShown(t *testing.T) {
	const (
		redisPW    = "redis-url-pw-c0ffee"
		natsPW     = "nats-pw-decaf1"
		adminToken = "admin-token-bead42"
		wrongPW    = "wrong-pw-f00d77"
	)
	secrets := []string{redisPW, natsPW, adminToken, wrongPW}
	rs := testenv.StartSecureRedis(t, testenv.SecureRedisOptions{Password: redisPW})
	n := testenv.StartNATSWith(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "ratemon", Password: natsPW}}
	})
	name := testenv.Name(t)
	cfgPath := filepath.Join(t.TempDir(), "ratemon.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(`
rules:
  - name: per-client
    key: [client]
    limit: 3
    window: 1m
  - name: watch
    key: [client]
    limit: 2
    window: 1m
    action: shadow
`), 0o600))
	t.Setenv("RATEMON_NATS_USER", "ratemon")
	t.Setenv("RATEMON_NATS_PASSWORD", natsPW)
	t.Setenv("RATEMON_HTTP_ADMIN_TOKEN", adminToken)
	t.Setenv("RATEMON_LOG_LEVEL", "debug")
	t.Setenv("RATEMON_LOG_FORMAT", "json")
	redisURL := "redis://:" + redisPW + "@" + rs.Addr + "/0"
	common := []string{"--config", cfgPath, "--nats-url", n.URL(), "--redis-url", redisURL,
		"--nats-stream", "EV" + name, "--nats-deadletter-stream", "DL" + name, "--nats-subject-prefix", "rm" + name}
	noSecret := func(what, text string) {
		t.Helper()
		for _, s := range secrets {
			require.NotContains(t, text, s, "%s shows a secret", what)
		}
	}

	httpAddr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		out, errw string
		err       error
	}
	done := make(chan result, 1)
	go func() {
		out, errw, err := run(ctx, "", append([]string{"serve", "--http-addr", httpAddr, "--workers-block", "50ms", "--reload-interval", "0"}, common...)...)
		done <- result{out, errw, err}
	}()
	base := "http://" + httpAddr
	require.Eventually(t, func() bool {
		code, _ := httpDo(t, http.MethodGet, base+"/readyz", "", "")
		return code == http.StatusOK
	}, 15*time.Second, 20*time.Millisecond)

	// Every command, as an operator runs them.
	runChecked := func(stdin string, args ...string) (string, error) {
		t.Helper()
		out, errw, err := run(t.Context(), stdin, args...)
		noSecret(args[0], out+errw)
		if err != nil {
			noSecret(args[0]+" error", err.Error())
		}
		return out, err
	}
	cmd := func(stdin string, args ...string) (string, error) {
		t.Helper()
		return runChecked(stdin, append(slices.Clone(args), common...)...)
	}
	_, err := cmd(strings.Repeat(`{"client":"acme"}`+"\n", 4), "publish", "--service", "api", "--stdin")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := cmd("", "check", "--client", "acme")
		return exitCode(err) == exitDenied
	}, 5*time.Second, 20*time.Millisecond)
	for _, args := range [][]string{
		{"top", "--once"}, {"top", "--json"}, {"list"}, {"list", "--shadow"}, {"list", "--overrides"}, {"alerts"},
		{"block", "client=mallory", "--for", "1h", "--reason", "test"}, {"allow", "client=friend", "--for", "1h", "--reason", "test"},
		{"override", "client=acme", "--rule", "per-client", "--limit", "10"}, {"override", "client=acme", "--clear"},
		{"unblock", "client=mallory"}, {"unallow", "client=friend"},
	} {
		_, err := cmd("", args...)
		require.NoError(t, err, args)
	}
	out, err := runChecked("", "config", "validate", cfgPath)
	require.NoError(t, err)
	require.Contains(t, out, "ok")

	// Wrong credentials fail clearly, without showing what was tried (the
	// flags after common win).
	wrongRedis := append(slices.Clone(common), "--redis-url", "redis://:"+wrongPW+"@"+rs.Addr+"/0")
	_, err = runChecked("", append([]string{"check", "--client", "acme"}, wrongRedis...)...)
	require.ErrorContains(t, err, "WRONGPASS")
	wrongNATS := append(slices.Clone(common), "--nats-password", wrongPW)
	_, err = runChecked(`{"client":"acme"}`+"\n", append([]string{"publish", "--service", "api", "--stdin"}, wrongNATS...)...)
	require.Error(t, err)
	require.Contains(t, strings.ToLower(err.Error()), "authorization violation")

	// Every HTTP answer, the admin ones with a wrong and the right token.
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/v1/check?client=acme", "/v1/rules",
		"/v1/top", "/v1/blocks", "/v1/allows", "/v1/denies", "/v1/shadow", "/v1/overrides", "/v1/alerts", "/nope"} {
		code, body := httpDo(t, http.MethodGet, base+path, "", "")
		require.NotZero(t, code, path)
		noSecret("GET "+path, body)
	}
	block := `{"key":"client=eve","for":"1h","reason":"test"}`
	for _, token := range []string{"", wrongPW, adminToken} {
		code, body := httpDo(t, http.MethodPost, base+"/v1/blocks", token, block)
		noSecret("POST /v1/blocks", body)
		if token == adminToken {
			require.Less(t, code, 300, body)
		} else {
			require.Equal(t, http.StatusUnauthorized, code, body)
		}
		code, body = httpDo(t, http.MethodDelete, base+"/v1/blocks/client=eve", token, "")
		noSecret("DELETE /v1/blocks", body)
		require.NotZero(t, code)
	}

	cancel()
	var res result
	select {
	case res = <-done:
		require.NoError(t, res.err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	noSecret("serve output", res.out+res.errw)
	require.Contains(t, res.errw, `"msg":"ratemon starting"`, "the daemon's log was captured")
	require.Contains(t, res.errw, `"redis":"redis://:xxxxx@`+rs.Addr+`/0"`)
	require.Contains(t, res.errw, `"level":"DEBUG"`)
}

// httpDo sends a request, with a bearer token when token is not empty, and
// returns the status and body (0 when the request failed).
func httpDo(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestConfigValidate_passwordFromEnvironment: a file may name the NATS user
// and leave its password to the environment, for validate as for serve.
func TestConfigValidate_passwordFromEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ratemon.yaml")
	require.NoError(t, os.WriteFile(path, []byte("nats:\n  user: ratemon\nrules:\n  - {name: a, limit: 1, window: 1s}\n"), 0o600))
	_, _, err := run(t.Context(), "", "config", "validate", path)
	require.EqualError(t, err, path+":2:9: nats.user: needs nats.password")
	t.Setenv("RATEMON_NATS_PASSWORD", "from-the-environment")
	out, _, err := run(t.Context(), "", "config", "validate", path)
	require.NoError(t, err)
	require.Equal(t, path+": ok (1 rules, 1 key shapes)\n", out)
}
