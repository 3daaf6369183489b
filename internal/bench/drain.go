package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/internal/keyspace"
)

// workGroup is the consumer group the daemon's workers read the work shards
// with (pipeline.WorkerOptions.Group's default, which the daemon keeps).
const workGroup = "ratemon"

// stallLimit is how long waitDrained waits without any progress before it
// gives up.
const stallLimit = 60 * time.Second

// Drainer tells when ratemon has handled everything published: the NATS
// consumer has no message pending or unacknowledged up to the last one
// published, and every work shard's consumer group has read every notice
// and acknowledged it (with ingest.evaluation: inline there are no notices).
// The bench and the fault checker (internal/chaos) wait with it.
type Drainer struct {
	Consumer jetstream.Consumer
	Redis    redis.UniversalClient
	Keys     keyspace.Redis
	Shards   int
}

// Wait polls every 5 ms until everything up to stream sequence last is
// handled and returns the time of the poll that saw it. It gives up when
// nothing moved for a minute, or when ctx ends.
func (d *Drainer) Wait(ctx context.Context, last uint64) (time.Time, error) {
	var progress string
	lastProgress := time.Now()
	for {
		at := time.Now()
		done, state, err := d.poll(ctx, last)
		if err != nil {
			return at, err
		}
		if done {
			return at, nil
		}
		if state != progress {
			progress, lastProgress = state, at
		} else if time.Since(lastProgress) > stallLimit {
			return at, fmt.Errorf("ratemon made no progress for %v: %s", stallLimit, state)
		}
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return at, err
		}
	}
}

func (d *Drainer) poll(ctx context.Context, last uint64) (done bool, state string, err error) {
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := d.Consumer.Info(ictx)
	if err != nil {
		return false, "", fmt.Errorf("consumer info: %w", err)
	}
	state = fmt.Sprintf("nats: ack floor %d of %d, %d pending, %d unacknowledged",
		info.AckFloor.Stream, last, info.NumPending, info.NumAckPending)
	if info.AckFloor.Stream < last || info.NumAckPending > 0 || info.NumPending > 0 {
		return false, state, nil
	}
	for s := range d.Shards {
		ok, sstate, err := d.shardDone(ictx, d.Keys.Work(s))
		if err != nil {
			return false, "", err
		}
		if !ok {
			return false, state + "; " + sstate, nil
		}
	}
	return true, state, nil
}

// shardDone reports whether the workers have read and acknowledged every
// notice of one shard. A shard without a stream has nothing to do.
func (d *Drainer) shardDone(ctx context.Context, key string) (bool, string, error) {
	groups, err := d.Redis.XInfoGroups(ctx, key).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return true, "", nil
		}
		return false, "", fmt.Errorf("xinfo groups %s: %w", key, err)
	}
	st, err := d.Redis.XInfoStream(ctx, key).Result()
	if err != nil {
		return false, "", fmt.Errorf("xinfo stream %s: %w", key, err)
	}
	for _, g := range groups {
		if g.Name != workGroup {
			continue
		}
		state := fmt.Sprintf("%s: read up to %s of %s, %d pending", key, g.LastDeliveredID, st.LastGeneratedID, g.Pending)
		return g.Pending == 0 && g.LastDeliveredID == st.LastGeneratedID, state, nil
	}
	// Notices exist but no worker has joined yet.
	return st.Length == 0, key + ": no consumer group yet", nil
}
