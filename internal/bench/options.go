package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ratemon/ratemon/internal/config"
)

// Distribution is how events are spread over the keys.
type Distribution string

// Distributions.
const (
	Uniform Distribution = "uniform" // every key equally likely
	Zipf    Distribution = "zipf"    // key k (from 1) has weight k^-s
)

// Validate checks that d is a known distribution.
func (d Distribution) Validate() error {
	switch d {
	case Uniform, Zipf:
		return nil
	}
	return fmt.Errorf("must be uniform or zipf, got %q", string(d))
}

// RunDaemonFunc runs one daemon replica with cfg until ctx is cancelled, as
// `ratemon serve` does, and then returns nil. It serves Options.InProcess;
// cmd/ratemon passes one built on internal/daemon, so that this package
// does not import the daemon.
type RunDaemonFunc func(ctx context.Context, cfg *config.Config, log *slog.Logger) error

// Defaults of Options.
const (
	DefaultKeys        = 10000
	DefaultZipfS       = 1.1
	DefaultDuration    = 20 * time.Second
	DefaultPerMsg      = 100
	DefaultRuns        = 3
	DefaultLimit       = 1000
	DefaultWindow      = 10 * time.Second
	DefaultRefEvents   = 200000
	DefaultRefDuration = 10 * time.Second
	DefaultRefConns    = 64
	DefaultRedisServer = "redis-server"
)

// AbuseFactor is how many times more events an abusive key sends than an
// average key: with Abusive = 1% of 10,000 keys, the 100 abusive keys send
// about half of all events.
const AbuseFactor = 100

// Options shapes a benchmark. Zero fields take the defaults above, except
// Rate and Abusive, whose zero means "as fast as possible" and "none".
type Options struct {
	// Config holds the settings the daemons start from: redis.url,
	// nats.url, ingest, workers, timeouts. Required. Every run replaces the
	// key prefix, stream, consumer and subject names, http.addr and the
	// rules.
	Config *config.Config
	// Start starts a private redis-server (RedisServer) on a free port and
	// an in-process NATS server instead of using Config's URLs.
	Start       bool
	RedisServer string

	Keys    int          // distinct clients, one limit key each
	Dist    Distribution // default uniform
	ZipfS   float64      // Zipf exponent, > 1
	Rate    float64      // events per second; 0: as fast as ratemon takes them
	Events  int          // events per run; 0: publish for Duration
	Abusive float64      // fraction of keys sending AbuseFactor times the average
	// AbuseRamp, when set (it needs Rate), starts the abusive keys one
	// after another over the first AbuseRamp of publishing, at even steps
	// of the event count; before its start an abusive key sends like any
	// other. Without it they all abuse from the first event, so every key
	// crosses its limit while the daemons have only just started: the
	// detection lag is then that of a start, not of a running daemon.
	AbuseRamp time.Duration
	// LagsFile, when set, receives every tripped key's detection lag, a
	// line "<run> <key> <trip Unix ms> <lag ms>" each, in trip order (the
	// run is its Redis prefix): where in a run the lag goes.
	LagsFile string
	// Duration is how long each run publishes when Events is 0.
	Duration time.Duration
	PerMsg   int // events per NATS message
	// Backlog publishes everything before the daemons start, to measure
	// draining; the window should then be longer than the publishing.
	Backlog bool

	Replicas  int  // daemon replicas (default 1)
	InProcess bool // run the replicas in this process with RunDaemon
	RunDaemon RunDaemonFunc
	// Exe is the ratemon binary started as `Exe serve` for each replica
	// when InProcess is false; Env is added to its environment, from which
	// every RATEMON_* variable is removed (the generated config is complete).
	Exe string
	Env []string

	Limit  int64         // limit of the bench rule (key: [client])
	Window time.Duration // window of the bench rule

	Runs           int
	SkipReferences bool
	RefEvents      int           // events replayed by each reference
	RefDuration    time.Duration // longest time each reference runs
	RefConns       int           // concurrent requests of the per-request references

	Seed   uint64 // of the key sequence, the same in every run (default 1)
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.RedisServer == "" {
		o.RedisServer = DefaultRedisServer
	}
	if o.Keys == 0 {
		o.Keys = DefaultKeys
	}
	if o.Dist == "" {
		o.Dist = Uniform
	}
	if o.ZipfS == 0 {
		o.ZipfS = DefaultZipfS
	}
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.PerMsg == 0 {
		o.PerMsg = DefaultPerMsg
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.Limit == 0 {
		o.Limit = DefaultLimit
	}
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.Runs == 0 {
		o.Runs = DefaultRuns
	}
	if o.RefEvents == 0 {
		o.RefEvents = DefaultRefEvents
	}
	if o.RefDuration == 0 {
		o.RefDuration = DefaultRefDuration
	}
	if o.RefConns == 0 {
		o.RefConns = DefaultRefConns
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// validate reports every problem, named as the command-line flag.
func (o *Options) validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if o.Config == nil {
		bad("config", "is required")
	}
	if o.Keys < 1 || o.Keys > 10_000_000 {
		bad("keys", "must be between 1 and 10000000, got %d", o.Keys)
	}
	if err := o.Dist.Validate(); err != nil {
		bad("dist", "%v", err)
	}
	if !(o.ZipfS > 1) || o.ZipfS > 10 {
		bad("zipf-s", "must be above 1 and at most 10, got %g", o.ZipfS)
	}
	if !(o.Rate >= 0) {
		bad("rate", "must be 0 (as fast as possible) or a positive number of events per second, got %g", o.Rate)
	}
	if o.Events < 0 {
		bad("events", "must be 0 (use --duration) or positive, got %d", o.Events)
	}
	if o.Duration < 0 {
		bad("duration", "must be positive, got %v", o.Duration)
	}
	if !(o.Abusive >= 0 && o.Abusive < 1) {
		bad("abusive", "must be a fraction of the keys, at least 0 and below 1, got %g", o.Abusive)
	}
	if o.AbuseRamp < 0 {
		bad("abuse-ramp", "must be positive, got %v", o.AbuseRamp)
	}
	if o.AbuseRamp > 0 && o.Rate == 0 {
		bad("abuse-ramp", "needs --rate: the abusive keys start at steps of the event count")
	}
	if o.AbuseRamp > 0 && o.Events == 0 && o.AbuseRamp >= o.Duration {
		bad("abuse-ramp", "must be shorter than --duration (%v), got %v", o.Duration, o.AbuseRamp)
	}
	if o.PerMsg < 1 || o.PerMsg > 10000 {
		bad("per-msg", "must be between 1 and 10000, got %d", o.PerMsg)
	}
	if o.Replicas < 1 || o.Replicas > 64 {
		bad("replicas", "must be between 1 and 64, got %d", o.Replicas)
	}
	if o.InProcess && o.RunDaemon == nil {
		bad("inprocess", "needs a way to run the daemon in process (RunDaemon)")
	}
	if !o.InProcess && o.Exe == "" {
		bad("inprocess", "without it, the ratemon binary to start (Exe) is required")
	}
	if o.Limit < 1 {
		bad("limit", "must be at least 1, got %d", o.Limit)
	}
	if o.Window < time.Millisecond || o.Window%time.Millisecond != 0 {
		bad("window", "must be a whole number of milliseconds, at least 1ms, got %v", o.Window)
	}
	if o.Runs < 1 || o.Runs > 99 {
		bad("runs", "must be between 1 and 99, got %d", o.Runs)
	}
	if o.RefEvents < 1 {
		bad("ref-events", "must be at least 1, got %d", o.RefEvents)
	}
	if o.RefDuration <= 0 {
		bad("ref-duration", "must be positive, got %v", o.RefDuration)
	}
	if o.RefConns < 1 || o.RefConns > 4096 {
		bad("ref-conns", "must be between 1 and 4096, got %d", o.RefConns)
	}
	return errors.Join(errs...)
}
