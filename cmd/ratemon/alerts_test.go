package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/alerting"
	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

func TestAlertsCommand(t *testing.T) {
	rdb := testenv.Redis(t)
	prefix := testenv.Prefix(t, rdb)
	common := []string{"--redis-url", "redis://" + testenv.RedisAddr() + "/0", "--redis-prefix", prefix}

	out, _, err := run(t.Context(), "", append([]string{"alerts"}, common...)...)
	require.NoError(t, err)
	require.Equal(t, "no active alerts\n", out)

	// One replica's alerting, without sinks, sees acme over its limit.
	keys, err := keyspace.NewRedis(prefix)
	require.NoError(t, err)
	rs, err := limiter.NewRuleset([]limiter.Rule{{Name: "per-client", Key: []limiter.Field{limiter.FieldClient},
		Limit: 100, Window: time.Minute, Action: limiter.ActionDeny}})
	require.NoError(t, err)
	a, err := alerting.New(alerting.Options{Redis: rdb, Keys: keys, Rules: func() *limiter.Ruleset { return rs }, Replica: "t",
		Config: alerting.Config{CheckInterval: 20 * time.Millisecond}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()
	until := time.Now().Add(time.Minute)
	a.Observe(t.Context(), []limiter.Evaluation{{Key: "client=acme", Rules: []limiter.RuleState{{
		Rule: "per-client", Count: 120, Limit: 100, Over: true, Until: until.UnixMilli(), Newest: time.Now().UnixMilli()}}}})

	require.Eventually(t, func() bool {
		out, _, err = run(t.Context(), "", append([]string{"alerts"}, common...)...)
		return err == nil && out != "no active alerts\n"
	}, 5*time.Second, 20*time.Millisecond)
	require.Regexp(t, `^STATE +SEVERITY +RULE +KEY +COUNT/LIMIT +WINDOW +SINCE +FLAG +FLAG LEFT
exceeded +critical +per-client +client=acme +120/100 +1m0s +\d+s ago +deny +(59s|1m0s)
$`, out)

	out, _, err = run(t.Context(), "", append([]string{"alerts", "--json"}, common...)...)
	require.NoError(t, err)
	var got struct{ Alerts []alerting.Alert }
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Len(t, got.Alerts, 1)
	require.Equal(t, "per-client:client=acme:1", got.Alerts[0].ID)
	require.Equal(t, until.Truncate(time.Millisecond).UTC(), got.Alerts[0].Flag.Until)
}
