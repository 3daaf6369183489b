package chaos

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Mode chooses the durations of the faults and whether the soak runs.
type Mode string

// Modes.
const (
	// Short is the CI form: every fault once, shortened (the Redis pause
	// lasts 3 s instead of 10 s), about a minute and a half in all.
	Short Mode = "short"
	// Long runs every fault with its full duration, then the soak.
	Long Mode = "long"
)

// Validate checks that m is a known mode.
func (m Mode) Validate() error {
	switch m {
	case Short, Long:
		return nil
	}
	return fmt.Errorf("must be short or long, got %q", string(m))
}

// Options configures a checker run. Exe is required.
type Options struct {
	Exe         string // the ratemon binary the daemons run (`ratemon serve`)
	RedisServer string // redis-server binary (default "redis-server")
	Mode        Mode   // default Short
	// Scenarios names the scenarios to run (Names lists them); empty runs
	// every fault scenario, and in long mode the soak too.
	Scenarios []string
	// Dir holds the servers' stores, the daemons' configs and logs; empty:
	// a temporary directory, removed at the end unless Keep is set.
	Dir  string
	Keep bool
	Seed uint64 // seed of the traces (default 1)
	// SoakDuration is how long the soak publishes (default 10m); SoakRatio
	// the fraction of the measured maximum rate it publishes at (0.8).
	SoakDuration time.Duration
	SoakRatio    float64
	Logger       *slog.Logger
}

func (o *Options) setDefaults() {
	if o.RedisServer == "" {
		o.RedisServer = "redis-server"
	}
	if o.Mode == "" {
		o.Mode = Short
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.SoakDuration == 0 {
		o.SoakDuration = 10 * time.Minute
	}
	if o.SoakRatio == 0 {
		o.SoakRatio = 0.8
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

func (o *Options) validate() error {
	var errs []error
	if o.Exe == "" {
		errs = append(errs, errors.New("exe: the ratemon binary is required"))
	}
	if err := o.Mode.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("mode: %w", err))
	}
	names := Names()
	for _, s := range o.Scenarios {
		if !slices.Contains(names, s) {
			errs = append(errs, fmt.Errorf("scenarios: unknown scenario %q, want one of %v", s, names))
		}
	}
	if o.SoakRatio <= 0 || o.SoakRatio > 1 {
		errs = append(errs, fmt.Errorf("soak_ratio: must be in (0, 1], got %v", o.SoakRatio))
	}
	if o.SoakDuration < time.Minute {
		errs = append(errs, fmt.Errorf("soak_duration: must be at least 1m, got %v", o.SoakDuration))
	}
	return errors.Join(errs...)
}

// plan is what a mode sets: the size and pace of a scenario's trace and
// the length of each fault.
type plan struct {
	messages    int           // messages per trace
	perMsg      int           // events per message
	pace        time.Duration // between two messages
	kills       int           // SIGKILLs of the daemon-kill scenario
	redisDown   time.Duration // how long Redis stays down before it restarts empty
	pause       time.Duration // how long Redis stays SIGSTOPped
	natsDown    time.Duration // how long NATS stays down
	latency     time.Duration // added to every Redis reply by the slow-Redis proxy
	maxRateTime time.Duration // how long the maximum rate is measured before the soak
	backlogTime time.Duration // how long the backlog scenario publishes
}

func planFor(m Mode) plan {
	if m == Long {
		return plan{
			messages: 300, perMsg: 30, pace: 100 * time.Millisecond, kills: 5,
			redisDown: 5 * time.Second, pause: 10 * time.Second, natsDown: 5 * time.Second,
			latency: 20 * time.Millisecond, maxRateTime: 3 * time.Minute, backlogTime: 2 * time.Minute,
		}
	}
	return plan{
		messages: 300, perMsg: 10, pace: 20 * time.Millisecond, kills: 3,
		redisDown: time.Second, pause: 3 * time.Second, natsDown: 500 * time.Millisecond,
		latency: 20 * time.Millisecond, maxRateTime: 45 * time.Second, backlogTime: time.Minute,
	}
}
