// Package backoff paces retries: exponential delays with jitter, and a
// sleep that a context can cut short. Components that lose Redis or NATS
// retry through it, so that none of them busy-loops.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff yields growing delays between Min and Max, each drawn in
// [d/2, d] to spread the retries of many replicas. Not safe for concurrent
// use; each retry loop owns one.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// New returns a Backoff from lo to hi.
func New(lo, hi time.Duration) *Backoff { return &Backoff{Min: lo, Max: hi} }

// Next returns the next delay.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.Min
	} else {
		b.cur = min(2*b.cur, b.Max)
	}
	return b.cur/2 + rand.N(b.cur/2+1)
}

// Reset starts over from Min after a success.
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits d, or until ctx is done and then returns ctx.Err().
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
