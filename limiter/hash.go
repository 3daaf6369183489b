package limiter

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/ratemon/ratemon/pipeline/event"
)

// HashPrefix starts every hashed value in a limit key.
const HashPrefix = "h:"

// Hasher replaces the values of chosen fields (client, ip) by a keyed hash
// before they become limit keys, so that Redis, the flags, the metrics and
// the logs never hold an API key or an address. The hash is
// "h:" + hex(HMAC-SHA256(key, value)[:16]); a server that checks flags
// itself computes the same with the same key. It is safe for concurrent use.
type Hasher struct {
	client, ip bool
	key        []byte
}

// NewHasher hashes the given fields with key (at least 16 bytes).
func NewHasher(fields []Field, key []byte) (*Hasher, error) {
	if len(key) < 16 {
		return nil, fmt.Errorf("hash key: want at least 16 bytes, got %d", len(key))
	}
	h := &Hasher{key: append([]byte(nil), key...)}
	for _, f := range fields {
		switch f {
		case FieldClient:
			h.client = true
		case FieldIP:
			h.ip = true
		default:
			return nil, fmt.Errorf("hash: only client and ip can be hashed, got %q", string(f))
		}
	}
	if !h.client && !h.ip {
		return nil, errors.New("hash: no field to hash")
	}
	return h, nil
}

// Value returns the hash of one value.
func (h *Hasher) Value(v string) string {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(v))
	var sum [sha256.Size]byte
	return HashPrefix + hex.EncodeToString(m.Sum(sum[:0])[:16])
}

// Apply hashes the chosen fields of e in place; a nil Hasher does nothing.
func (h *Hasher) Apply(e *event.Event) {
	if h == nil {
		return
	}
	if h.client && e.Client != "" {
		e.Client = h.Value(e.Client)
	}
	if h.ip && e.IP != "" {
		e.IP = h.Value(e.IP)
	}
}

// WithHasher returns a copy of the rule set whose limit keys hash the
// fields h chooses (nil: none).
func (rs *Ruleset) WithHasher(h *Hasher) *Ruleset {
	c := *rs
	c.hasher = h
	return &c
}

// Hasher returns the rule set's hasher, nil when nothing is hashed.
func (rs *Ruleset) Hasher() *Hasher { return rs.hasher }
