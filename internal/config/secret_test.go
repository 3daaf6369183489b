package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/config"
)

func TestSecret_neverPrinted(t *testing.T) {
	s := config.Secret("hunter2")
	var cfg config.Config
	cfg.SetDefaults()
	cfg.HTTP.AdminToken = s
	for _, out := range []string{
		fmt.Sprint(s), fmt.Sprintf("%v %s %#v %+v", s, s, s, cfg.HTTP), fmt.Sprintf("%+v", cfg),
	} {
		require.NotContains(t, out, "hunter2")
	}
	b, err := json.Marshal(cfg.HTTP)
	require.NoError(t, err)
	require.NotContains(t, string(b), "hunter2")
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "token", s, "http", cfg.HTTP)
	require.NotContains(t, buf.String(), "hunter2")
	require.Equal(t, "hunter2", s.Reveal())
}
