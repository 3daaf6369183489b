package keyspace_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/keyspace"
)

func TestAlertingKeys(t *testing.T) {
	r, err := keyspace.NewRedis("ratemon")
	require.NoError(t, err)
	lk := "client=" + keyspace.Escape("ac{me}|x") + "|route=POST /login"
	require.Equal(t, "ratemon:alert:{client=ac%7Bme%7D%7Cx|route=POST /login}:login-burst", r.AlertState(lk, "login-burst"))
	require.Equal(t, "ratemon:alertn:{client=ac%7Bme%7D%7Cx|route=POST /login}:login-burst:12", r.AlertNotification(lk, "login-burst", 12))
	require.Equal(t, "ratemon:alerts:active", r.AlertIndex())
	require.Equal(t, "ratemon:alerts:outbox", r.AlertOutbox())
	require.Equal(t, "ratemon:alerts:leader", r.AlertLeader())

	// Both keys of one alert hash to the limit key's slot.
	require.Equal(t, lk, keyspace.HashTag(r.AlertState(lk, "login-burst")))
	require.Equal(t, lk, keyspace.HashTag(r.AlertNotification(lk, "login-burst", 1)))

	m := keyspace.AlertMember("login-burst", "ip=::1")
	rule, key, ok := keyspace.ParseAlertMember(m)
	require.True(t, ok)
	require.Equal(t, "login-burst", rule)
	require.Equal(t, "ip=::1", key)
	for _, bad := range []string{"", "nocolon", ":x", "x:"} {
		_, _, ok := keyspace.ParseAlertMember(bad)
		require.False(t, ok, bad)
	}
}
