package chaos

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/ratemon/ratemon/internal/backoff"
	"github.com/ratemon/ratemon/pipeline"
)

// scenario is one fault: the replicas it needs and how it is injected.
type scenario struct {
	name       string
	fault      string // what happens, for the report
	replicas   int
	evaluation pipeline.Evaluation
	proxy      bool          // route the daemons' Redis traffic through the latency proxy
	link       time.Duration // delay of every Redis reply for the whole run (implies proxy)
	// small publishes the same events in ten times as many messages, so
	// that the stream passes 2,000 sequences (the seen sets' trim step)
	// before the fault.
	small bool
	// inject runs while the trace is published; it returns once the fault
	// has cleared.
	inject func(ctx context.Context, r *run) error
}

// scenarios are the fault scenarios, in the order they run.
func scenarios(p plan) []scenario {
	return []scenario{
		{
			name: "daemon-kill", replicas: 1, evaluation: pipeline.EvaluateInline, link: killLink,
			fault: fmt.Sprintf("the only daemon SIGKILLed %d times while Redis holds a batch it has not acknowledged on NATS, "+
				"restarted at once each time", p.kills),
			inject: killRestart,
		},
		{
			name: "replicas-2", replicas: 2, evaluation: pipeline.EvaluateWorkers, link: killLink,
			fault:  "2 replicas (workers evaluate), one SIGKILLed mid-batch at 40% of the trace and left dead",
			inject: atFraction(0.4, killOne),
		},
		{
			name: "replicas-3", replicas: 3, evaluation: pipeline.EvaluateWorkers, link: killLink,
			fault:  "3 replicas (workers evaluate), one SIGKILLed mid-batch at 40% of the trace and left dead",
			inject: atFraction(0.4, killOne),
		},
		{
			name: "redis-restart-empty", replicas: 2, evaluation: pipeline.EvaluateInline, small: true,
			fault: fmt.Sprintf("redis-server SIGKILLed at 75%% (past 2,000 messages, so the seen sets were trimmed), down %v, "+
				"restarted without its data (2 replicas)", p.redisDown),
			inject: atFraction(0.75, restartRedis),
		},
		{
			name: "redis-pause", replicas: 1, evaluation: pipeline.EvaluateWorkers,
			fault:  fmt.Sprintf("redis-server SIGSTOPped at 40%% for %v, then SIGCONT", p.pause),
			inject: atFraction(0.4, pauseRedis),
		},
		{
			name: "nats-restart", replicas: 2, evaluation: pipeline.EvaluateInline,
			fault:  fmt.Sprintf("NATS server shut down at 40%%, down %v, started again on its file store", p.natsDown),
			inject: atFraction(0.4, restartNATS),
		},
		{
			name: "redis-slow", replicas: 1, evaluation: pipeline.EvaluateWorkers, proxy: true,
			fault:  fmt.Sprintf("%v added to every Redis reply (TCP proxy) from 10%% to 90%% of the trace", p.latency),
			inject: atFraction(0.1, slowRedis),
		},
	}
}

// killLink is the delay of every Redis reply in the kill scenarios: the
// checker kills a daemon while the proxy holds a reply, that is after Redis
// has run a command and before the daemon has heard, let alone
// acknowledged the batch on NATS. The batch then comes back after
// nats.ack_wait, and its events must not count twice.
const killLink = 5 * time.Millisecond

// atFraction is an injection that waits until fraction f of the trace is
// published, runs fault, and marks the fault cleared when it returns.
func atFraction(f float64, fault func(context.Context, *run) error) func(context.Context, *run) error {
	return func(ctx context.Context, r *run) error {
		if err := r.pub.waitAcked(ctx, r.pub.fraction(f)); err != nil {
			return err
		}
		if err := fault(ctx, r); err != nil {
			return err
		}
		r.cleared(ctx)
		return nil
	}
}

// killMidBatch waits until a reply from Redis is held by the proxy, then
// SIGKILLs d, after tallying what the process counted.
func killMidBatch(ctx context.Context, r *run, d *daemon) error {
	r.tally(ctx, d)
	err := poll(ctx, 10*time.Second, 100*time.Microsecond, "a redis reply in flight", func() (bool, error) {
		return r.e.proxy.holding(), nil
	})
	if err != nil {
		return err
	}
	if err := d.proc.kill(); err != nil {
		return err
	}
	r.note("SIGKILL %s while a redis reply was in flight", d.proc.name)
	return nil
}

// killRestart SIGKILLs the daemon at evenly spread points of the trace and
// restarts it at once, waiting until it is ready before the next kill.
func killRestart(ctx context.Context, r *run) error {
	d := r.e.daemons[0]
	for i := range r.p.kills {
		if err := r.pub.waitAcked(ctx, r.pub.fraction(float64(i+1)/float64(r.p.kills+1))); err != nil {
			return err
		}
		if err := killMidBatch(ctx, r, d); err != nil {
			return err
		}
		if err := d.restart(ctx); err != nil {
			return err
		}
		r.note("%s ready again", d.proc.name)
	}
	r.cleared(ctx)
	return nil
}

// killOne SIGKILLs the last replica, which stays down.
func killOne(ctx context.Context, r *run) error {
	return killMidBatch(ctx, r, r.e.daemons[len(r.e.daemons)-1])
}

// restartRedis kills Redis and starts an empty one on the same port.
func restartRedis(ctx context.Context, r *run) error {
	r.note("SIGKILL redis-server")
	if err := r.e.redis.restartEmpty(ctx, r.p.redisDown); err != nil {
		return err
	}
	r.note("redis-server back, empty")
	return nil
}

// pauseRedis stops Redis for the plan's pause, then resumes it.
func pauseRedis(ctx context.Context, r *run) error {
	if err := r.e.redis.proc.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	r.note("SIGSTOP redis-server")
	err := backoff.Sleep(ctx, r.p.pause) // the fault's length, not a synchronisation
	if cerr := r.e.redis.proc.signal(syscall.SIGCONT); cerr != nil {
		return cerr
	}
	r.note("SIGCONT redis-server")
	return err
}

// restartNATS shuts NATS down and starts it again on its store.
func restartNATS(ctx context.Context, r *run) error {
	r.note("NATS shut down")
	if err := r.e.nats.restart(ctx, r.p.natsDown); err != nil {
		return err
	}
	r.note("NATS started again")
	return nil
}

// slowRedis delays every Redis reply until 90% of the trace is published.
func slowRedis(ctx context.Context, r *run) error {
	r.e.proxy.setDelay(r.p.latency)
	r.note("Redis replies delayed by %v", r.p.latency)
	if err := r.pub.waitAcked(ctx, r.pub.fraction(0.9)); err != nil {
		return err
	}
	r.e.proxy.setDelay(0)
	r.note("Redis replies on time again")
	return nil
}
