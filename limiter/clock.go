package limiter

import "time"

// Clock tells the time. The daemon uses the wall clock; tests freeze it.
type Clock interface {
	Now() time.Time
}

// WallClock is the system clock.
type WallClock struct{}

// Now returns time.Now().
func (WallClock) Now() time.Time { return time.Now() }

// FixedClock is a clock that always returns the same instant.
type FixedClock time.Time

// Now returns the fixed instant.
func (c FixedClock) Now() time.Time { return time.Time(c) }

// NowMS returns the clock's time in Unix milliseconds.
func NowMS(c Clock) int64 { return c.Now().UnixMilli() }
