package bench

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/internal/modelcheck"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// borderlineMS is how close to the read time a flag may end and still count
// as borderline rather than wrong when Redis and the model disagree.
const borderlineMS = 100

// limitKeys returns the limit key and rule mask of every key, as ingestion
// computes them from an event of that client.
func limitKeys(rs *limiter.Ruleset, nkeys int) ([]limiter.LimitKey, []uint64, error) {
	lks := make([]limiter.LimitKey, nkeys)
	masks := make([]uint64, nkeys)
	var hits []limiter.Hit
	for k := range nkeys {
		e := event.Event{Client: clientID(k), Route: Route, Service: Service, Weight: 1}
		hits = rs.Match(hits[:0], &e)
		if len(hits) != 1 {
			return nil, nil, fmt.Errorf("client %s matches %d limit keys, want 1", e.Client, len(hits))
		}
		lks[k], masks[k] = hits[0].Key, hits[0].Mask
	}
	return lks, masks, nil
}

// buildModel feeds the reference model every event of the trace, key by key.
// Feeding a key's events in one call at the time of its first event drops
// nothing; ratemon may drop events that arrive later than the retention,
// but such events cannot change a count or a flag at any later time.
func buildModel(rs *limiter.Ruleset, perKey [][]int64, lks []limiter.LimitKey, masks []uint64) *limiter.Model {
	m := limiter.NewModel(rs)
	for k, ts := range perKey {
		if len(ts) == 0 {
			continue
		}
		evs := make([]limiter.Event, len(ts))
		for i, t := range ts {
			evs[i] = limiter.Event{TS: t, Weight: 1, Mask: masks[k]}
		}
		m.Add(ts[0], lks[k], []limiter.Message{{Events: evs}})
	}
	return m
}

// windowEvents counts the events in (at - window, at] over every key.
func windowEvents(perKey [][]int64, at, window int64) int64 {
	var n int64
	for _, ts := range perKey {
		lo := sort.Search(len(ts), func(i int) bool { return ts[i] > at-window })
		hi := sort.Search(len(ts), func(i int) bool { return ts[i] > at })
		n += int64(hi - lo)
	}
	return n
}

// flagCheck is the comparison of the deny flags in Redis with the model.
type flagCheck struct {
	flags       int // flags found in Redis
	modelDenies int // keys the model denies at the read time
	falseDenies int // flags the model does not have (and stray flags)
	missed      int // model flags Redis lacks
	borderline  int // disagreements about a flag ending within borderlineMS of the read time
	untilDiff   int // flags both have, with different ends
	late        int // flags still in Redis after their own until
	overstayMS  int64
	samples     []string
}

func (fc *flagCheck) note(format string, args ...any) {
	if len(fc.samples) < 5 {
		fc.samples = append(fc.samples, fmt.Sprintf(format, args...))
	}
}

// flagSnap is the deny flag of every key, read right after the drain.
type flagSnap struct {
	until []int64 // per key index: the flag's end, 0 without a flag
	at    []int64 // per key index: Unix ms just before its flag was read
	stray int     // deny flags under the prefix on keys outside lks
}

// snapshotFlags reads the deny flag of every key in pipelines of 1000.
func snapshotFlags(ctx context.Context, rdb redis.UniversalClient, keys keyspace.Redis, lks []limiter.LimitKey) (flagSnap, error) {
	fs := flagSnap{until: make([]int64, len(lks)), at: make([]int64, len(lks))}
	found := 0
	for i := 0; i < len(lks); i += 1000 {
		hi := min(i+1000, len(lks))
		at := time.Now().UnixMilli()
		pipe := rdb.Pipeline()
		cmds := make([]*redis.StringCmd, hi-i)
		for j := range cmds {
			cmds[j] = pipe.Get(ctx, keys.Deny(string(lks[i+j])))
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return fs, fmt.Errorf("read deny flags: %w", err)
		}
		for j, c := range cmds {
			fs.at[i+j] = at
			v, err := c.Bytes()
			if err != nil {
				continue
			}
			f, err := limiter.ParseFlag(v)
			if err != nil {
				return fs, err
			}
			fs.until[i+j] = f.Until
			found++
		}
	}
	var err error
	fs.stray, err = strayFlags(ctx, rdb, keys, found)
	return fs, err
}

// judgeFlags compares the snapshot with the model at each flag's read time.
// Keys without events are not asked of the model (which would add them).
func judgeFlags(fs flagSnap, model *limiter.Model, lks []limiter.LimitKey, perKey [][]int64) flagCheck {
	var fc flagCheck
	for k, lk := range lks {
		at, got := fs.at[k], fs.until[k]
		if got > 0 {
			fc.flags++
		}
		var want int64
		if len(perKey[k]) > 0 {
			want = model.Evaluate(at, lk).Deny.Until
		}
		if want > at {
			fc.modelDenies++
		}
		fc.compare(lk, at, got, want)
	}
	if fs.stray > 0 {
		fc.falseDenies += fs.stray
		fc.note("%d deny flags on keys of no bench client", fs.stray)
	}
	return fc
}

// compare judges one key: got is Redis's flag end, want the model's (0:
// none), both at read time at.
func (fc *flagCheck) compare(lk limiter.LimitKey, at, got, want int64) {
	near := func(u int64) bool { return u <= at+borderlineMS }
	switch {
	case got == 0 && want <= at, got > 0 && want == got:
	case got > 0 && got <= at && want <= at:
		// The flag has ended by its own value, but Redis still holds it:
		// its TTL was counted from before the script ran. A server
		// checking EXISTS still refuses the client.
		fc.late++
		fc.overstayMS = max(fc.overstayMS, at-got)
		if at-got <= borderlineMS {
			fc.borderline++
			return
		}
		fc.falseDenies++
		fc.note("%s: redis still holds a flag that ended at %d, %d ms before %d", lk, got, at-got, at)
	case got > 0 && want <= at:
		if near(got) {
			fc.borderline++
			return
		}
		fc.falseDenies++
		fc.note("%s: redis denies until %d, the model allows at %d", lk, got, at)
	case got == 0:
		if near(want) {
			fc.borderline++
			return
		}
		fc.missed++
		fc.note("%s: the model denies until %d at %d, redis has no flag", lk, want, at)
	default:
		fc.untilDiff++
		fc.note("%s: redis denies until %d, the model until %d", lk, got, want)
	}
}

// strayFlags counts the deny flags under the prefix beyond the found ones.
func strayFlags(ctx context.Context, rdb redis.UniversalClient, keys keyspace.Redis, found int) (int, error) {
	n := 0
	iter := rdb.Scan(ctx, 0, keys.DenyPattern(), 1000).Iterator()
	for iter.Next(ctx) {
		n++
	}
	if err := iter.Err(); err != nil {
		return 0, fmt.Errorf("scan deny flags: %w", err)
	}
	return max(n-found, 0), nil
}

// compareModel evaluates every key in the store with its clock frozen now
// and compares counts, ends and flags with the model (internal/modelcheck).
// It writes flags, so it runs after checkFlags, once the daemons stopped.
func compareModel(ctx context.Context, rdb redis.UniversalClient, keys keyspace.Redis, rs *limiter.Ruleset, model *limiter.Model) (modelcheck.Report, error) {
	return modelcheck.CompareNow(ctx, modelcheck.Options{Rules: rs, Redis: rdb, Keys: keys, Model: model})
}
