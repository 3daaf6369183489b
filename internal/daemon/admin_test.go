package daemon_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

func do(t *testing.T, method, u, token string, body any) (int, string) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.String()
}

func TestDaemon_adminAPI(t *testing.T) {
	n := testenv.StartNATS(t)
	r := startDaemonWith(t, n.URL(), []limiter.Rule{
		{Name: "per-client", Key: []limiter.Field{limiter.FieldClient}, Limit: 5, Window: time.Minute},
		{Name: "watch", Key: []limiter.Field{limiter.FieldClient}, Limit: 3, Window: time.Minute, Action: limiter.ActionShadow},
	}, func(c *config.Config) {
		c.HTTP.AdminToken = "s3cret"
		c.Tiers = map[string]float64{"gold": 10}
	})
	nc := n.Connect(t)
	decisions, err := nc.SubscribeSync(r.subjects.Decisions())
	require.NoError(t, err)
	nextDecision := func() limiter.Decision { // the next change of a deny flag
		for {
			m, err := decisions.NextMsg(5 * time.Second)
			require.NoError(t, err)
			var d limiter.Decision
			require.NoError(t, json.Unmarshal(m.Data, &d))
			if d.Kind == limiter.FlagDeny {
				return d
			}
		}
	}
	allowed := func(client string) bool {
		code, body := get(t, r.base+"/v1/check?client="+url.QueryEscape(client))
		require.Equal(t, http.StatusOK, code, body)
		var res limiter.CheckResult
		require.NoError(t, json.Unmarshal(body, &res))
		return res.Allowed
	}

	block := map[string]string{"key": "client=mallory", "for": "1h", "reason": "credential stuffing", "author": "oncall"}
	code, body := do(t, "POST", r.base+"/v1/blocks", "", block)
	require.Equal(t, http.StatusUnauthorized, code, body)
	code, _ = do(t, "POST", r.base+"/v1/blocks", "wrong", block)
	require.Equal(t, http.StatusUnauthorized, code)
	code, body = do(t, "POST", r.base+"/v1/blocks", "s3cret", map[string]string{"key": "user=x", "for": "1h", "reason": "r"})
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, `unknown key field \"user\"`)

	code, body = do(t, "POST", r.base+"/v1/blocks", "s3cret", block)
	require.Equal(t, http.StatusOK, code, body)
	var e limiter.Entry
	require.NoError(t, json.Unmarshal([]byte(body), &e))
	require.Equal(t, "oncall", e.Author)
	d := nextDecision()
	require.Equal(t, limiter.LimitKey("client=mallory"), d.Key)
	require.False(t, d.Allowed)
	require.Equal(t, "manual", d.Source)
	require.False(t, allowed("mallory"))

	code, listed := get(t, r.base+"/v1/blocks")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(listed), "credential stuffing")

	code, body = do(t, "DELETE", r.base+"/v1/blocks/client=mallory", "s3cret", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.True(t, nextDecision().Allowed)
	require.True(t, allowed("mallory"))

	// Traffic over the shadow rule's limit: listed, not denied.
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	var buf strings.Builder
	for range 4 {
		fmt.Fprintf(&buf, `{"client":"busy","ts":%d}`+"\n", time.Now().UnixMilli())
	}
	_, err = js.Publish(t.Context(), r.subjects.Events("api"), []byte(buf.String()))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, body := get(t, r.base+"/v1/shadow")
		return strings.Contains(string(body), `"key":"client=busy"`) && strings.Contains(string(body), `"count":4`)
	}, 5*time.Second, 20*time.Millisecond)
	require.True(t, allowed("busy"))
	_, top := get(t, r.base+"/v1/top?rule=per-client&k=3")
	require.Contains(t, string(top), `"key":"client=busy","count":4,"limit":5,"state":"ok"`)

	// A lower limit applies at once, without a reload.
	code, body = do(t, "PUT", r.base+"/v1/overrides", "s3cret", map[string]any{"key": "client=busy", "rule": "per-client", "limit": 2})
	require.Equal(t, http.StatusOK, code, body)
	require.False(t, nextDecision().Allowed)
	require.False(t, allowed("busy"))
	code, body = do(t, "PUT", r.base+"/v1/overrides", "s3cret", map[string]any{"key": "client=busy", "tier": "platinum"})
	require.Equal(t, http.StatusBadRequest, code, body)
	code, body = do(t, "DELETE", r.base+"/v1/overrides/client=busy", "s3cret", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.True(t, nextDecision().Allowed)

	// Allow beats everything.
	code, body = do(t, "POST", r.base+"/v1/allows", "s3cret", map[string]string{"key": "client=busy", "for": "30d", "reason": "partner"})
	require.Equal(t, http.StatusOK, code, body)
	_, allows := get(t, r.base+"/v1/allows")
	require.Contains(t, string(allows), `"author":"api"`)
}

func TestDaemon_reloadsRules(t *testing.T) {
	n := testenv.StartNATS(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "ratemon.yaml")
	write := func(limit string) {
		require.NoError(t, os.WriteFile(path, []byte("rules:\n  - name: r\n    limit: "+limit+"\n    window: 1m\n"), 0o600))
	}
	write("5")
	var base *config.Config
	r := startDaemonWith(t, n.URL(), nil, func(c *config.Config) {
		loaded, err := config.Load(path)
		require.NoError(t, err)
		c.Rules = loaded.Rules
		base = c
	}, withLoad(func() (*config.Config, error) {
		loaded, err := config.Load(path)
		if err != nil {
			return nil, err
		}
		cp := *base
		cp.Rules = loaded.Rules
		return &cp, nil
	}), withWatch(50*time.Millisecond))
	limitNow := func() int64 {
		_, body := get(t, r.base+"/v1/check?client=a")
		var res limiter.CheckResult
		require.NoError(t, json.Unmarshal(body, &res))
		return res.Rules[0].Limit
	}
	require.Equal(t, int64(5), limitNow())
	write("7")
	require.Eventually(t, func() bool { return limitNow() == 7 }, 5*time.Second, 20*time.Millisecond)
	write("-3")
	require.Eventually(t, func() bool {
		_, body := get(t, r.base+"/metrics")
		return strings.Contains(string(body), `ratemon_config_reloads_total{result="error"} 1`)
	}, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, int64(7), limitNow(), "an invalid file leaves the rules in force")
	_, body := get(t, r.base+"/metrics")
	require.Contains(t, string(body), `ratemon_config_reloads_total{result="ok"} 1`)
}
