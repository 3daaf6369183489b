package daemon

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/redis/go-redis/v9"
)

// reloadOnFailure makes a cluster client re-read the slot map as soon as a
// command fails on the way to a node, or a node answers CLUSTERDOWN.
//
// go-redis drops a dead master from its slot map only when a node answers
// MOVED or when the map is older than ClusterStateReloadInterval (a
// minute). After a failover nobody answers MOVED for the dead master's
// slots (nothing reaches a live node), so every command for them would keep
// failing with "connection refused" for up to a minute after the replica
// took over. ReloadState is lazy and coalesced (one CLUSTER SLOTS at a
// time, at most every 200ms), so calling it on every failure is cheap.
type reloadOnFailure struct {
	cc *redis.ClusterClient
}

// watchCluster installs the hooks on cc and on every node client it makes
// (dial failures happen in the node clients).
func watchCluster(cc *redis.ClusterClient) {
	h := reloadOnFailure{cc: cc}
	cc.AddHook(h)
	cc.OnNewNode(func(node *redis.Client) { node.AddHook(h) })
}

// DialHook implements redis.Hook: a node that cannot be reached may have
// been replaced.
func (h reloadOnFailure) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			h.cc.ReloadState(ctx)
		}
		return conn, err
	}
}

// ProcessHook implements redis.Hook.
func (h reloadOnFailure) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if stale(err) {
			h.cc.ReloadState(ctx)
		}
		return err
	}
}

// ProcessPipelineHook implements redis.Hook.
func (h reloadOnFailure) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		reload := stale(err)
		for _, c := range cmds {
			reload = reload || stale(c.Err())
		}
		if reload {
			h.cc.ReloadState(ctx)
		}
		return err
	}
}

// stale tells whether err suggests that the slot map no longer matches the
// cluster: a connection that failed or broke, or a node that says the
// cluster is down (a master failed and its replica has not yet taken over).
func stale(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		redis.IsClusterDownError(err) || redis.IsMasterDownError(err)
}
