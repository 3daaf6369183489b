package daemon_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

// TestDaemon_hashesAddressesInLimitKeys: with privacy.hash, no raw address
// reaches Redis or the API, and checks by address still work.
func TestDaemon_hashesAddressesInLimitKeys(t *testing.T) {
	t.Setenv("RATEMON_TEST_HASH_KEY", "a-secret-of-at-least-16-bytes")
	n := testenv.StartNATS(t)
	r := startDaemonWith(t, n.URL(), []limiter.Rule{
		{Name: "per-ip", Key: []limiter.Field{limiter.FieldIP}, Limit: 3, Window: time.Minute},
	}, func(c *config.Config) {
		c.Privacy = config.PrivacyConfig{Hash: []limiter.Field{limiter.FieldIP}, KeyEnv: "RATEMON_TEST_HASH_KEY"}
	})
	rdb := testenv.Redis(t)
	js, err := jetstream.New(n.Connect(t))
	require.NoError(t, err)
	var buf strings.Builder
	for range 4 {
		fmt.Fprintf(&buf, `{"client":"c","ip":"203.0.113.7","ts":%d}`+"\n", time.Now().UnixMilli())
	}
	_, err = js.Publish(t.Context(), r.subjects.Events("api"), []byte(buf.String()))
	require.NoError(t, err)
	h, err := limiter.NewHasher([]limiter.Field{limiter.FieldIP}, []byte("a-secret-of-at-least-16-bytes"))
	require.NoError(t, err)
	deny := r.keys.Deny("ip=" + h.Value("203.0.113.7"))
	require.Eventually(t, func() bool { return rdb.Exists(t.Context(), deny).Val() == 1 }, 5*time.Second, 10*time.Millisecond)
	for _, k := range rdb.Keys(t.Context(), r.cfg.Redis.Prefix+"*").Val() {
		require.NotContains(t, k, "203.0.113.7")
	}
	_, body := get(t, r.base+"/v1/check?ip="+url.QueryEscape("203.0.113.7"))
	require.NotContains(t, string(body), "203.0.113.7")
	var res limiter.CheckResult
	require.NoError(t, json.Unmarshal(body, &res))
	require.False(t, res.Allowed)
}
