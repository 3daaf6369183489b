package limiter

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/internal/keyspace"
)

// Op is a manual operation on a limit key.
type Op string

// Manual operations.
const (
	OpBlock   Op = "block"   // deny the key until the entry ends, whatever its counts
	OpUnblock Op = "unblock" // remove a manual block
	OpAllow   Op = "allow"   // never deny the key until the entry ends (still counted)
	OpUnallow Op = "unallow" // remove an allow-list entry
)

// Entry is a manual block or allow-list entry, as stored in Redis and
// listed by `ratemon list` and GET /v1/blocks, /v1/allows.
type Entry struct {
	Key     LimitKey `json:"key"`
	Kind    Op       `json:"kind"` // OpBlock or OpAllow
	Author  string   `json:"author"`
	Reason  string   `json:"reason"`
	Created int64    `json:"created"` // Unix ms of the first entry
	Updated int64    `json:"updated"` // Unix ms of the last change
	Until   int64    `json:"until"`   // Unix ms the entry ends; the key's TTL ends then too
}

// ErrInvalid marks a request that the store refuses as it stands (a bad
// key, duration, rule...): the caller answers 400, not 503.
var ErrInvalid = errors.New("invalid request")

func invalid(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalid, err)
}

// MaxManual bounds how long a manual entry may last.
const MaxManual = 366 * 24 * time.Hour

// ManualRequest is one manual operation.
type ManualRequest struct {
	Op     Op
	Key    LimitKey
	Author string        // required for block and allow
	Reason string        // required for block and allow
	For    time.Duration // block and allow: how long, 1s..366d
}

func (r ManualRequest) validate() error {
	var errs []error
	switch r.Op {
	case OpBlock, OpAllow:
		if r.For < time.Second || r.For > MaxManual {
			errs = append(errs, fmt.Errorf("for: must be between 1s and %v, got %v", MaxManual, r.For))
		}
		if strings.TrimSpace(r.Reason) == "" {
			errs = append(errs, errors.New("reason: required"))
		}
		if strings.TrimSpace(r.Author) == "" {
			errs = append(errs, errors.New("author: required"))
		}
		if len(r.Reason) > 1024 || len(r.Author) > 256 {
			errs = append(errs, errors.New("reason or author too long (1024 and 256 bytes at most)"))
		}
	case OpUnblock, OpUnallow:
	default:
		errs = append(errs, fmt.Errorf("op: unknown operation %q", string(r.Op)))
	}
	if _, err := ParseKey(string(r.Key)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Manual applies a manual operation atomically and returns the entry as
// stored (for block and allow; overlapping entries keep the later end) and
// the change of the deny flag, if any, which the caller publishes on the
// decisions subject. Precedence is allow > manual block > automatic deny.
func (s *Store) Manual(ctx context.Context, r ManualRequest) (Entry, *Decision, error) {
	if err := r.validate(); err != nil {
		return Entry{}, nil, invalid(err)
	}
	now := NowMS(s.clock)
	lk := string(r.Key)
	args := windowArgs(make([]any, 0, 8), now, 0, lk, nil)
	args = append(args, string(r.Op), r.Author, r.Reason, now+r.For.Milliseconds())
	c := &call{script: s.scripts.manual, keys: s.windowKeys(lk, nil), args: args}
	if err := s.exec(ctx, []*call{c}); err != nil {
		return Entry{}, nil, fmt.Errorf("%s %s: %w", r.Op, r.Key, err)
	}
	v, ok := c.val.([]any)
	if !ok || len(v) != 2 {
		return Entry{}, nil, fmt.Errorf("%s %s: unexpected reply %v", r.Op, r.Key, c.val)
	}
	var d *Decision
	if ch, _ := v[0].([]any); len(ch) > 0 {
		dec, err := parseChange(r.Key, ch)
		if err != nil {
			return Entry{}, nil, err
		}
		d = &dec
	}
	var e Entry
	if raw := asString(v[1]); raw != "" {
		var err error
		if e, err = parseEntry([]byte(raw), r.Op); err != nil {
			return Entry{}, nil, err
		}
	}
	return e, d, nil
}

func parseEntry(b []byte, kind Op) (Entry, error) {
	var e Entry
	if err := jsonUnmarshal(b, &e); err != nil {
		return Entry{}, fmt.Errorf("decode %s entry %q: %w", kind, truncate(b, 120), err)
	}
	e.Kind = kind
	return e, nil
}

// Entries lists the manual entries of one kind (OpBlock or OpAllow), by key.
func (s *Store) Entries(ctx context.Context, kind Op) ([]Entry, error) {
	var pattern string
	switch kind {
	case OpBlock:
		pattern = s.keys.BlockPattern()
	case OpAllow:
		pattern = s.keys.AllowPattern()
	default:
		return nil, fmt.Errorf("entries: want block or allow, got %q", string(kind))
	}
	var out []Entry
	err := s.scanValues(ctx, pattern, func(_ string, val []byte) error {
		e, err := parseEntry(val, kind)
		if err == nil {
			out = append(out, e)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, err
}

// Flags lists the flags of one kind now in force, by key.
func (s *Store) Flags(ctx context.Context, kind FlagKind) ([]Flag, error) {
	pattern := s.keys.DenyPattern()
	if kind == FlagShadow {
		pattern = s.keys.ShadowPattern()
	}
	var out []Flag
	err := s.scanValues(ctx, pattern, func(_ string, val []byte) error {
		if f, err := ParseFlag(val); err == nil {
			out = append(out, f)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, err
}

// scanValues calls fn with the value of every string key matching pattern,
// on every master of a cluster.
func (s *Store) scanValues(ctx context.Context, pattern string, fn func(key string, val []byte) error) error {
	return s.scan(ctx, pattern, func(ctx context.Context, c redis.UniversalClient, keys []string) error {
		vals, err := mget(ctx, c, keys)
		if err != nil {
			return err
		}
		for i, v := range vals {
			if v == nil {
				continue
			}
			if err := fn(keys[i], v); err != nil {
				return err
			}
		}
		return nil
	})
}

// scanKeys calls fn with every key matching pattern.
func (s *Store) scanKeys(ctx context.Context, pattern string, fn func(key string)) error {
	return s.scan(ctx, pattern, func(_ context.Context, _ redis.UniversalClient, keys []string) error {
		for _, k := range keys {
			fn(k)
		}
		return nil
	})
}

// scan walks the keys matching pattern a page at a time, on every master of
// a cluster.
func (s *Store) scan(ctx context.Context, pattern string, page func(context.Context, redis.UniversalClient, []string) error) error {
	one := func(ctx context.Context, c redis.UniversalClient) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, pattern, 500).Result()
			if err != nil {
				return fmt.Errorf("scan %s: %w", pattern, err)
			}
			if len(keys) > 0 {
				if err := page(ctx, c, keys); err != nil {
					return err
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		// ForEachMaster runs on every master at once: one page at a time.
		var mu sync.Mutex
		serial := page
		page = func(ctx context.Context, c redis.UniversalClient, keys []string) error {
			mu.Lock()
			defer mu.Unlock()
			return serial(ctx, c, keys)
		}
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return one(ctx, c) })
	}
	return one(ctx, s.rdb)
}

// mget reads keys one GET each, pipelined: keys of different limit keys live
// in different cluster slots, so MGET would not do.
func mget(ctx context.Context, c redis.UniversalClient, keys []string) ([][]byte, error) {
	pipe := c.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read flags: %w", err)
	}
	out := make([][]byte, len(keys))
	for i, cmd := range cmds {
		if b, err := cmd.Bytes(); err == nil {
			out[i] = b
		}
	}
	return out, nil
}

// ParseKey reads a limit key written by a person, such as
// `client=acme` or `client=acme|route=POST /login`: known fields, non-empty
// values. Values are escaped as the daemon escapes them (an already escaped
// value is kept), methods upper-cased.
func ParseKey(s string) (LimitKey, error) {
	if s == "" {
		return "", errors.New("key: required, like client=acme or client=acme|route=POST /login")
	}
	var sb strings.Builder
	for i, part := range strings.Split(s, "|") {
		eq := strings.IndexByte(part, '=')
		if eq <= 0 || eq == len(part)-1 {
			return "", fmt.Errorf("key %q: want field=value pairs joined by |", s)
		}
		f := Field(part[:eq])
		if err := f.Validate(); err != nil {
			return "", fmt.Errorf("key %q: %w", s, err)
		}
		v := keyspace.Unescape(part[eq+1:])
		if f == FieldMethod {
			v = strings.ToUpper(v)
		}
		if i > 0 {
			sb.WriteByte('|')
		}
		sb.WriteString(string(f))
		sb.WriteByte('=')
		sb.WriteString(keyspace.Escape(v))
	}
	return LimitKey(sb.String()), nil
}

// ParseDuration is time.ParseDuration that also takes days ("30d") and
// weeks ("2w"), as people write the length of a block.
func ParseDuration(s string) (time.Duration, error) {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"d", 24 * time.Hour}, {"w", 7 * 24 * time.Hour}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok && n != "" {
			f, err := strconv.ParseFloat(n, 64)
			if err != nil || f <= 0 || f > 10000 {
				return 0, fmt.Errorf("duration %q: want like 30s, 15m, 2h, 30d or 2w", s)
			}
			return time.Duration(f * float64(u.unit)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want like 30s, 15m, 2h, 30d or 2w", s)
	}
	return d, nil
}
