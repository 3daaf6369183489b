package keyspace

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DefaultPrefix is the Redis key prefix and the NATS subject prefix used when
// none is configured.
const DefaultPrefix = "ratemon"

// Redis names the Redis keys under one prefix. The zero value is not usable;
// build one with NewRedis.
type Redis struct {
	prefix string
}

// NewRedis returns the key namer for prefix. The prefix must be non-empty and
// must not contain `{`, `}`, whitespace or control characters, so that the
// only hash tag of a key is the limit key's.
func NewRedis(prefix string) (Redis, error) {
	if err := ValidatePrefix(prefix); err != nil {
		return Redis{}, err
	}
	return Redis{prefix: prefix}, nil
}

// ValidatePrefix checks a Redis key prefix.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return errors.New("must not be empty")
	}
	for i := 0; i < len(prefix); i++ {
		b := prefix[i]
		if b == '{' || b == '}' || b <= ' ' || b == 0x7f {
			return fmt.Errorf("must not contain %q", string(b))
		}
	}
	return nil
}

// Prefix returns the configured prefix.
func (r Redis) Prefix() string { return r.prefix }

// tagged is the key of one kind for a limit key, `<prefix>:<kind>:{<limit
// key>}`, then `:<rule>` when rule is not "".
func (r Redis) tagged(kind, limitKey, rule string) string {
	var sb strings.Builder
	sb.Grow(r.taggedLen(kind, limitKey, rule))
	r.writeTagged(&sb, kind, limitKey, rule)
	return sb.String()
}

// taggedLen is the length of tagged(kind, limitKey, rule).
func (r Redis) taggedLen(kind, limitKey, rule string) int {
	n := len(r.prefix) + len(kind) + len(limitKey) + 4
	if rule != "" {
		n += 1 + len(rule)
	}
	return n
}

// writeTagged writes tagged(kind, limitKey, rule) to sb.
func (r Redis) writeTagged(sb *strings.Builder, kind, limitKey, rule string) {
	sb.WriteString(r.prefix)
	sb.WriteByte(':')
	sb.WriteString(kind)
	sb.WriteString(":{")
	sb.WriteString(limitKey)
	sb.WriteByte('}')
	if rule != "" {
		sb.WriteByte(':')
		sb.WriteString(rule)
	}
}

// WindowKeys returns the keys of a limit key that the window scripts take,
// in their order: State, Seen, IDs, Deny, Shadow, Block, Allow, Overrides,
// then Log and Late of each rule. They share one allocation: ingestion
// builds them for every script call, thousands a second.
func (r Redis) WindowKeys(limitKey string, rules []string) []string {
	kinds := [...]string{"st", "seen", "ids", "deny", "shadow", "block", "allow", "ovr"}
	each := func(f func(kind, rule string)) {
		for _, k := range kinds {
			f(k, "")
		}
		for _, rule := range rules {
			f("log", rule)
			f("late", rule)
		}
	}
	size := 0
	each(func(kind, rule string) { size += r.taggedLen(kind, limitKey, rule) })
	var sb strings.Builder
	sb.Grow(size)
	each(func(kind, rule string) { r.writeTagged(&sb, kind, limitKey, rule) })
	all := sb.String()
	keys := make([]string, 0, len(kinds)+2*len(rules))
	each(func(kind, rule string) {
		n := r.taggedLen(kind, limitKey, rule)
		keys = append(keys, all[:n])
		all = all[n:]
	})
	return keys
}

// Deny is the deny flag of a limit key: `<prefix>:deny:{<limit key>}`. This
// name is a public contract.
func (r Redis) Deny(limitKey string) string { return r.tagged("deny", limitKey, "") }

// AppendDeny appends the deny flag key of limitKey to dst without allocating
// when dst has room; inline checkers use it on the request path.
func (r Redis) AppendDeny(dst []byte, limitKey string) []byte {
	dst = append(dst, r.prefix...)
	dst = append(dst, ":deny:{"...)
	dst = append(dst, limitKey...)
	return append(dst, '}')
}

// Shadow is the shadow flag of a limit key: `<prefix>:shadow:{<limit key>}`.
// This name is a public contract.
func (r Redis) Shadow(limitKey string) string { return r.tagged("shadow", limitKey, "") }

// DenyPattern is the SCAN pattern matching every deny flag.
func (r Redis) DenyPattern() string { return r.prefix + ":deny:{*}" }

// ShadowPattern is the SCAN pattern matching every shadow flag.
func (r Redis) ShadowPattern() string { return r.prefix + ":shadow:{*}" }

// State is the hash holding the running state of every rule of a limit key.
func (r Redis) State(limitKey string) string { return r.tagged("st", limitKey, "") }

// Seen is the sorted set of NATS stream sequences already applied to a limit key.
func (r Redis) Seen(limitKey string) string { return r.tagged("seen", limitKey, "") }

// IDs is the sorted set of event ids already counted for a limit key.
func (r Redis) IDs(limitKey string) string { return r.tagged("ids", limitKey, "") }

// Log is the window log of one rule for a limit key, a stream whose entry ids
// are event times.
func (r Redis) Log(limitKey, rule string) string {
	return r.tagged("log", limitKey, rule)
}

// Late is the sorted set of out-of-order entries of one rule for a limit key.
func (r Redis) Late(limitKey, rule string) string {
	return r.tagged("late", limitKey, rule)
}

// Work is the work-notice stream of one shard. Shards are not hash-tagged, so
// that Redis Cluster spreads them over its slots.
func (r Redis) Work(shard int) string {
	return r.prefix + ":work:" + itoa(shard)
}

func itoa(n int) string { return strconv.Itoa(n) }

// Marker is the key whose absence tells the daemon that Redis lost its state.
func (r Redis) Marker() string { return r.prefix + ":marker" }

// RebuildLock is held by the replica rebuilding the windows after a loss.
func (r Redis) RebuildLock() string { return r.prefix + ":rebuild" }

// LimitKeyOf extracts the limit key from a key built by this namer with a
// hash tag, e.g. the deny flag; ok is false for any other key.
func (r Redis) LimitKeyOf(key string) (limitKey string, ok bool) {
	if !strings.HasPrefix(key, r.prefix+":") {
		return "", false
	}
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return "", false
	}
	end := strings.IndexByte(key[open:], '}')
	if end < 0 {
		return "", false
	}
	return key[open+1 : open+end], true
}

// HashTag returns the part of key that Redis Cluster hashes: the content of
// the first `{...}` when it is non-empty, else the whole key.
func HashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}
