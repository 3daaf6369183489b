package bench

import (
	"context"
	"fmt"
	"runtime"

	"github.com/redis/go-redis/v9"
)

// references measures, on the bench's Redis, the approaches ratemon is
// compared with, over the first RefEvents keys of the same key sequence
// (the picker is deterministic, so it is the sequence the run published).
// Each uses its own keys under prefix and deletes them afterwards.
func (b *Bench) references(ctx context.Context, prefix string, res *Result) error {
	o := &b.opts
	seq := newPicker(o).sequence(o.RefEvents)
	workers := runtime.NumCPU()
	ropts := *b.redisOpts
	ropts.PoolSize = max(o.RefConns, workers) + 4
	rdb := redis.NewClient(&ropts)
	defer rdb.Close()
	names := func(kind string) []string {
		out := make([]string, o.Keys)
		for k := range out {
			out[k] = fmt.Sprintf("%s:%s:{%s}", prefix, kind, clientID(k))
		}
		return out
	}
	limit, window := o.Limit, o.Window.Milliseconds()

	b.log.Info("reference: per-request XADD, XTRIM MINID ~, XLEN", "events", len(seq), "conns", o.RefConns)
	approx, err := runSeed(ctx, rdb, names("seed-approx"), seq, true, limit, window, o.RefConns, o.RefDuration)
	if err != nil {
		return fmt.Errorf("seed approx: %w", err)
	}
	if err := b.dropKeys(ctx, prefix+":seed-approx"); err != nil {
		return err
	}
	b.log.Info("reference: per-request XADD, XTRIM MINID =, XLEN", "events", len(seq), "conns", o.RefConns)
	exact, err := runSeed(ctx, rdb, names("seed-exact"), seq, false, limit, window, o.RefConns, o.RefDuration)
	if err != nil {
		return fmt.Errorf("seed exact: %w", err)
	}
	if err := b.dropKeys(ctx, prefix+":seed-exact"); err != nil {
		return err
	}
	b.log.Info("reference: pipelined XADD", "events", len(seq), "connections", workers)
	xadd, err := runXAdd(ctx, rdb, names("xadd"), seq, workers, o.RefDuration)
	if err != nil {
		return fmt.Errorf("xadd ceiling: %w", err)
	}
	if err := b.dropKeys(ctx, prefix+":xadd"); err != nil {
		return err
	}

	res.SeedApproxPerS = approx.perS
	res.SeedApproxDecisions = float64(approx.decisions)
	res.SeedApproxFalseDenies = float64(approx.falseDenies)
	res.SeedApproxMissedDenies = float64(approx.missedDenies)
	res.SeedApproxFalseDenyRate = ratio(float64(approx.falseDenies), float64(approx.decisions))
	res.SeedExactPerS = exact.perS
	res.SeedExactDecisions = float64(exact.decisions)
	res.SeedExactFalseDenies = float64(exact.falseDenies)
	res.SeedExactMissedDenies = float64(exact.missedDenies)
	res.XAddCeilingPerS = xadd
	res.RatioSeedExact = ratio(res.EventsPerS, exact.perS)
	res.RatioSeedApprox = ratio(res.EventsPerS, approx.perS)
	res.RatioXAdd = ratio(res.EventsPerS, xadd)
	return nil
}

func (b *Bench) dropKeys(ctx context.Context, prefix string) error {
	_, err := deletePrefix(ctx, b.rdb, prefix)
	return err
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
