package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/daemontest"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestStockAPI_demo runs the example against a real daemon whose rule
// per-client-minute is shrunk to 5 requests per 2 seconds, and checks the
// story the demo tells: 200s, a 429 with its headers, 200 again.
func TestStockAPI_demo(t *testing.T) {
	n := testenv.StartNATS(t)
	d := daemontest.Start(t, n.URL(), []limiter.Rule{{Name: "per-client-minute", Match: limiter.Match{Service: "stocks"},
		Key: []limiter.Field{limiter.FieldClient}, Limit: 5, Window: 2 * time.Second, Action: limiter.ActionDeny}})
	cfg := d.Config

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	o := options{natsURL: n.URL(), redisURL: cfg.Redis.URL, ratemon: d.Base, redisPfx: cfg.Redis.Prefix, natsPfx: cfg.NATS.SubjectPrefix,
		demo: true, pace: 20 * time.Millisecond, retryPace: 200 * time.Millisecond}
	go func() { done <- run(ctx, o, ln, &out, slog.New(slog.DiscardHandler)) }()
	require.Eventually(t, func() bool { return bytes.Contains([]byte(out.String()), []byte("still serving")) }, 20*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)

	got := out.String()
	t.Log("\n" + got)
	require.Regexp(t, `demo: #1-#[5-9]  200 OK`, got)
	require.Contains(t, got, "429 Too Many Requests\n      Retry-After: ")
	require.Regexp(t, `RateLimit: "per-client-minute";r=0;t=[12]\n`, got)
	require.Contains(t, got, `RateLimit-Policy: "per-client-minute";q=5;w=2`)
	require.Contains(t, got, `"type":"https://iana.org/assignments/http-problem-types#quota-exceeded"`)
	require.Regexp(t, `200 OK again: \{"symbol":"ACME","history":\[`, got)
}
