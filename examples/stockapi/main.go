// Command stockapi is the stock-history API of ratemon's README, enforced
// inline: GET /stocks/{symbol}/history, limited by the daemon's rule
// per-client-minute (100 requests per minute per API key, service
// "stocks"). Start ratemon (make run), then:
//
//	go run ./examples/stockapi
//
// It serves on 127.0.0.1:8080 and, unless -demo=false, runs a client
// against itself that shows the 200s turn into 429s (with Retry-After,
// RateLimit and RateLimit-Policy) and back once the window frees up.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/limiter/inline"
)

// options are the command's flags.
type options struct {
	addr      string        // where the API listens
	natsURL   string        // the daemon's NATS
	redisURL  string        // the daemon's Redis
	ratemon   string        // the daemon's HTTP address, for GET /v1/rules
	redisPfx  string        // the daemon's redis.prefix
	natsPfx   string        // the daemon's nats.subject_prefix
	config    string        // or: read the rules, addresses and prefixes from the daemon's config file
	demo      bool          // run the demo client
	pace      time.Duration // demo: time between two requests while allowed
	retryPace time.Duration // demo: time between two requests while refused
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address of the API")
	flag.StringVar(&o.natsURL, "nats", "nats://127.0.0.1:4222", "NATS of the ratemon daemon")
	flag.StringVar(&o.redisURL, "redis", "redis://127.0.0.1:6379/0", "Redis of the ratemon daemon")
	flag.StringVar(&o.ratemon, "ratemon", "http://127.0.0.1:9464", "HTTP address of the ratemon daemon (rules are read from GET /v1/rules)")
	flag.StringVar(&o.redisPfx, "redis-prefix", "ratemon", "redis.prefix of the ratemon daemon")
	flag.StringVar(&o.natsPfx, "subject-prefix", "ratemon", "nats.subject_prefix of the ratemon daemon")
	flag.StringVar(&o.config, "config", "", "read the rules, addresses and prefixes from this ratemon config file instead")
	flag.BoolVar(&o.demo, "demo", true, "run a client showing 200s turn into 429s and back")
	flag.DurationVar(&o.pace, "pace", 20*time.Millisecond, "demo: time between requests while allowed")
	flag.DurationVar(&o.retryPace, "retry-pace", time.Second, "demo: time between requests while refused")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := run(ctx, o, nil, os.Stdout, log); err != nil {
		fmt.Fprintln(os.Stderr, "stockapi:", err)
		os.Exit(1)
	}
}

// run serves the API until ctx ends; with o.demo it also runs the demo
// client, and returns when the demo is over. ln, when not nil, replaces
// o.addr (tests listen on a random port).
func run(ctx context.Context, o options, ln net.Listener, out io.Writer, log *slog.Logger) error {
	gopts := inline.Options{Service: "stocks", RulesURL: o.ratemon, RedisPrefix: o.redisPfx, SubjectPrefix: o.natsPfx, Logger: log,
		HashKey: []byte(os.Getenv("RATEMON_HASH_KEY")), // the daemon's privacy key, when it hashes client ids
		HTTP:    inline.MiddlewareOptions{APIKeyHeader: "X-API-Key", SkipPaths: []string{"/healthz"}}}
	if o.config != "" {
		cfg, err := config.Load(o.config)
		if err != nil {
			return err
		}
		rs, err := cfg.Ruleset() // with the daemon's privacy hashing, if any
		if err != nil {
			return err
		}
		gopts.Rules, gopts.RulesURL = rs, ""
		gopts.RedisPrefix, gopts.SubjectPrefix = cfg.Redis.Prefix, cfg.NATS.SubjectPrefix
		o.natsURL, o.redisURL = cfg.NATS.URL, cfg.Redis.URL
	}
	nc, err := nats.Connect(o.natsURL, nats.Name("stockapi"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		return fmt.Errorf("connect nats: %w", err)
	}
	defer nc.Close()
	ropts, err := redis.ParseURL(o.redisURL)
	if err != nil {
		return fmt.Errorf("redis url: %w", err)
	}
	rdb := redis.NewClient(ropts)
	defer rdb.Close()
	gopts.NATS, gopts.Redis = nc, rdb

	// The integration: build the guard, run it, wrap the handler.
	guard, err := inline.New(gopts)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	guardDone := make(chan error, 1)
	go func() { guardDone <- guard.Run(ctx) }()
	srv := &http.Server{Handler: guard.Handler(routes()), ReadHeaderTimeout: 5 * time.Second}

	if ln == nil {
		if ln, err = net.Listen("tcp", o.addr); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "stockapi: serving %s/stocks/{symbol}/history (send X-API-Key)\n", base)
	if o.demo {
		if err := waitReady(ctx, guard.Checker(), out); err == nil {
			err = demo(ctx, base, o, out)
			if err != nil && ctx.Err() == nil {
				fmt.Fprintln(out, "demo:", err)
			}
		}
		fmt.Fprintln(out, "stockapi: still serving; Ctrl-C to stop")
	}
	select {
	case <-ctx.Done():
	case err := <-srvDone:
		return fmt.Errorf("serve: %w", err)
	}
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	cancel()
	return <-guardDone
}

// routes is the API itself, which knows nothing of ratemon.
func routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stocks/{symbol}/history", history)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	return mux
}

// history answers a made-up but stable price history of the last 5 days.
func history(w http.ResponseWriter, r *http.Request) {
	sym := r.PathValue("symbol")
	h := fnv.New32a()
	_, _ = io.WriteString(h, sym)
	price := float64(h.Sum32()%50000)/100 + 10
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"symbol":%q,"history":[`, sym)
	day := time.Now().UTC().Truncate(24 * time.Hour)
	for i := 4; i >= 0; i-- {
		sep := ","
		if i == 0 {
			sep = ""
		}
		fmt.Fprintf(w, `{"date":%q,"close":%.2f}%s`, day.AddDate(0, 0, -i).Format(time.DateOnly), price+float64(i%3)-1, sep)
	}
	_, _ = io.WriteString(w, "]}\n")
}

// waitReady waits until the checker knows the rules, telling the user
// what it waits for.
func waitReady(ctx context.Context, c *inline.Checker, out io.Writer) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	warned := time.Now().Add(3 * time.Second)
	for !c.FeedUp() {
		if time.Now().After(warned) {
			fmt.Fprintln(out, "stockapi: waiting for ratemon (is `make run` running?)")
			warned = time.Now().Add(time.Minute)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// errDemo is returned when the demo sees something it did not expect.
var errDemo = errors.New("unexpected answer")
