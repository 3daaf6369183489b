package inline

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// Policy says what a check answers when neither the decision feed nor
// Redis can: let the request through, or refuse it.
type Policy string

// Policies.
const (
	PolicyFailOpen   Policy = "fail-open"   // allow (the default)
	PolicyFailClosed Policy = "fail-closed" // refuse
)

// Validate checks that p is a known policy; "" means PolicyFailOpen.
func (p Policy) Validate() error {
	switch p {
	case "", PolicyFailOpen, PolicyFailClosed:
		return nil
	}
	return fmt.Errorf("must be fail-open or fail-closed, got %q", string(p))
}

// Source tells where the answer of a check came from.
type Source string

// Sources of an answer; they are also the source label of
// ratemon_inline_checks_total.
const (
	SourceLocal  Source = "local"  // the local deny set, kept current by the feed
	SourceRedis  Source = "redis"  // the deny flags in Redis (feed lost), or the fallback cache
	SourcePolicy Source = "policy" // neither answered: the Policy decided
)

// Result answers "is this request's client denied, and until when?".
type Result struct {
	Denied bool
	// Until is when the request may be retried: the end of the flag, or
	// now + FailClosedRetryAfter for a fail-closed refusal. Zero when
	// allowed.
	Until time.Time
	// Key is the denied limit key, Rule the rule that set its flag ("" for
	// a manual block, or a policy refusal).
	Key    limiter.LimitKey
	Rule   string
	Manual bool // the flag is a manual block (ratemon block)
	Source Source
}

// RetryAfter is the time from now until Until, at least one second when
// denied; 0 when allowed.
func (r Result) RetryAfter(now time.Time) time.Duration {
	if !r.Denied {
		return 0
	}
	return max(r.Until.Sub(now), time.Second)
}

// CheckerOptions configures a Checker. NATS, Redis and one of Rules or
// RulesURL are required.
type CheckerOptions struct {
	NATS  *nats.Conn            // the decision feed; required
	Redis redis.UniversalClient // initial load, reloads and fallback; required
	// Rules are the daemon's rules (for example loaded from the same
	// config file). Either Rules or RulesURL.
	Rules *limiter.Ruleset
	// RulesURL is the daemon's HTTP address, e.g. http://127.0.0.1:9464:
	// Run reads GET /v1/rules from it, then again every RulesRefresh
	// (default 1m). Until the first read succeeds, checks answer by Policy.
	RulesURL     string
	RulesRefresh time.Duration
	HTTPClient   *http.Client // for RulesURL; default http.DefaultClient
	// HashKey is the daemon's privacy key (the value of its
	// privacy.key_env), needed with RulesURL when the daemon hashes client
	// ids or addresses in limit keys (privacy.hash). Rules built by the
	// daemon's config carry their hasher already.
	HashKey []byte
	// RedisPrefix and SubjectPrefix are the daemon's redis.prefix and
	// nats.subject_prefix (default "ratemon" both).
	RedisPrefix   string
	SubjectPrefix string
	// Policy applies when neither the feed nor Redis answers (default
	// PolicyFailOpen). A fail-closed refusal asks the client to retry after
	// FailClosedRetryAfter (default 1s).
	Policy               Policy
	FailClosedRetryAfter time.Duration
	// While the feed is lost, checks read the flags from Redis, waiting at
	// most FallbackTimeout (default 50ms), and cache each answer for
	// FallbackCacheTTL (default 500ms) in a cache of at most
	// FallbackCacheSize keys (default 10000). After a failure Redis is
	// left alone for RedisRetry (default 1s): checks answer by Policy.
	FallbackTimeout   time.Duration
	FallbackCacheTTL  time.Duration
	FallbackCacheSize int
	RedisRetry        time.Duration
	// Heartbeat is how often Run probes the feed with a NATS round trip
	// (default 1s), waiting at most HeartbeatTimeout (default 500ms).
	// Disconnections are noticed at once; the probe finds silent losses.
	Heartbeat        time.Duration
	HeartbeatTimeout time.Duration
	// OnDecision, when set, is called with each decision of the feed right
	// after the local set has applied it (a Check made from it sees the
	// change), on the feed's goroutine: it must not block. Applications
	// may use it to end the sessions of a client that was just denied.
	OnDecision func(limiter.Decision)
	Clock      limiter.Clock // default: the wall clock
	Logger     *slog.Logger
	Metrics    *Metrics // default: NewMetrics(nil)
}

func (o *CheckerOptions) validate() error {
	var errs []error
	if o.NATS == nil {
		errs = append(errs, errors.New("nats connection is required"))
	}
	if o.Redis == nil {
		errs = append(errs, errors.New("redis client is required"))
	}
	if (o.Rules == nil) == (o.RulesURL == "") {
		errs = append(errs, errors.New("give rules or rules url, one of them"))
	}
	if err := o.Policy.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("policy: %w", err))
	}
	setDefault(&o.RedisPrefix, keyspace.DefaultPrefix)
	setDefault(&o.SubjectPrefix, keyspace.DefaultPrefix)
	setDefault(&o.Policy, PolicyFailOpen)
	setDefault(&o.RulesRefresh, time.Minute)
	setDefault(&o.FailClosedRetryAfter, time.Second)
	setDefault(&o.FallbackTimeout, 50*time.Millisecond)
	setDefault(&o.FallbackCacheTTL, 500*time.Millisecond)
	setDefault(&o.FallbackCacheSize, 10000)
	setDefault(&o.RedisRetry, time.Second)
	setDefault(&o.Heartbeat, time.Second)
	setDefault(&o.HeartbeatTimeout, 500*time.Millisecond)
	if o.Clock == nil {
		o.Clock = limiter.WallClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	return errors.Join(errs...)
}

// setDefault sets *p to v when *p is the zero value (or negative).
func setDefault[T ~string | ~int | ~int64](p *T, v T) {
	var zero T
	if *p == zero || *p < zero {
		*p = v
	}
}

// Checker answers, for each request, whether its client is denied, from a
// local set of the deny flags: filled from Redis when Run starts, kept
// current by the decisions the daemon publishes, each entry ending on its
// own at its until. While the feed is lost (NATS down, a slow consumer,
// a failed probe) checks read Redis instead, and the set is reloaded when
// the feed is back. A Checker is safe for concurrent use.
type Checker struct {
	opts     CheckerOptions
	log      *slog.Logger
	m        *Metrics
	keys     keyspace.Redis
	subjects keyspace.Subjects
	rules    atomic.Pointer[compiled] // nil until the rules are known
	set      *denySet
	synced   atomic.Bool // the feed is live and the set was loaded since it came up
	fb       *fallback
}

// NewChecker validates the options. It starts nothing; Run does.
func NewChecker(opts CheckerOptions) (*Checker, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("inline checker: %w", err)
	}
	keys, err := keyspace.NewRedis(opts.RedisPrefix)
	if err != nil {
		return nil, fmt.Errorf("inline checker: redis prefix: %w", err)
	}
	subjects, err := keyspace.NewSubjects(opts.SubjectPrefix)
	if err != nil {
		return nil, fmt.Errorf("inline checker: subject prefix: %w", err)
	}
	c := &Checker{
		opts: opts, log: opts.Logger.With("component", "inline_checker"), m: opts.Metrics,
		keys: keys, subjects: subjects, set: newDenySet(),
	}
	c.fb = newFallback(c)
	if opts.Rules != nil {
		c.rules.Store(compile(opts.Rules, &c.set.seed))
	}
	return c, nil
}

// FeedUp reports whether checks are answered from the local set, that is
// whether the feed is live and the set was loaded since it came up.
func (c *Checker) FeedUp() bool { return c.synced.Load() }

// Rules returns the rules the checker computes keys with; nil until known.
func (c *Checker) Rules() *limiter.Ruleset {
	if cr := c.rules.Load(); cr != nil {
		return cr.rs
	}
	return nil
}

// Check tells whether a request like e is refused now. It computes the
// limit keys of e as the daemon does (every rule matching e, as if e were
// not refused, for each key shape) and reports the denied key whose flag
// ends last. In the steady state it is a few local table lookups and does
// not allocate. The result is named so that checkLocal fills it in place:
// a local copied out on return would be read back in 16-byte moves from
// the smaller stores just made, which stall.
func (c *Checker) Check(e *event.Event) (res Result) {
	cr := c.rules.Load()
	if cr == nil {
		return c.byPolicy()
	}
	if !c.synced.Load() {
		return c.fb.check(cr, e)
	}
	c.checkLocal(cr, e, &res)
	return res
}

// checkLocal answers from the local set into res (which is large: filling
// it in place saves copies on the hot path).
func (c *Checker) checkLocal(cr *compiled, e *event.Event, res *Result) {
	var q request
	cr.prepare(&q, e)
	s := c.set
	best, ok := s.lookupAll(cr.groups, &q, false)
	if ok {
		res.Source = SourceLocal
		if best != nil {
			best.fill(res)
		}
	} else {
		s.mu.RLock()
		best, _ = s.lookupAll(cr.groups, &q, true)
		res.Source = SourceLocal
		if best != nil {
			best.fill(res)
		}
		s.mu.RUnlock()
	}
	c.m.Checks.add(SourceLocal, res.Denied, stripeHint(&q))
}

// stripeHint picks a counter stripe from the request's first field hash
// (the client's when the check computed it): concurrent checks of
// different clients spread over the stripes.
func stripeHint(q *request) uint64 {
	for i := range q.hashes {
		if q.hashed&(1<<i) != 0 {
			return q.hashes[i] >> 60
		}
	}
	return 0
}

// matchesAny reports whether some rule of g counts a request like q.
func (g *group) matchesAny(q *request) bool {
	for i := range g.rules {
		if g.rules[i].matches(q) {
			return true
		}
	}
	return false
}

func (c *Checker) byPolicy() Result {
	res := Result{Source: SourcePolicy}
	if c.opts.Policy == PolicyFailClosed {
		res.Denied = true
		res.Until = c.opts.Clock.Now().Add(c.opts.FailClosedRetryAfter)
	}
	c.m.Checks.add(SourcePolicy, res.Denied, 0)
	return res
}

// fill records in res that the request is denied by e.
func (e *entry) fill(res *Result) {
	res.Denied, res.Until, res.Key, res.Rule, res.Manual = true, time.UnixMilli(e.until), limiter.LimitKey(e.key), e.rule, e.manual
}
