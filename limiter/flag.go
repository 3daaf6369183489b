package limiter

import (
	"encoding/json"
	"fmt"
)

// FlagKind tells the deny flag from the shadow flag.
type FlagKind string

// Flag kinds.
const (
	FlagDeny   FlagKind = "deny"
	FlagShadow FlagKind = "shadow"
)

// Flag is the JSON value of a deny or shadow flag key. This is a public
// contract documented in the README: a server in any language may read it.
type Flag struct {
	Key    LimitKey `json:"key"`
	Rule   string   `json:"rule"`
	Reason string   `json:"reason"`
	Until  int64    `json:"until"`            // Unix ms; the key's TTL ends at the same instant
	Source string   `json:"source"`           // "rule" (written by a worker) or "manual" (ratemon block)
	Author string   `json:"author,omitempty"` // who blocked the key, for manual flags
}

// ParseFlag decodes a flag value.
func ParseFlag(b []byte) (Flag, error) {
	var f Flag
	if err := json.Unmarshal(b, &f); err != nil {
		return Flag{}, fmt.Errorf("decode flag %q: %w", truncate(b, 120), err)
	}
	return f, nil
}

// Decision is one change of a flag, as published on the decisions subject.
// This is a public contract documented in the README.
type Decision struct {
	Key     LimitKey `json:"key"`
	Kind    FlagKind `json:"kind"`
	Rule    string   `json:"rule"`
	Allowed bool     `json:"allowed"`
	Until   int64    `json:"until"`  // Unix ms; 0 when Allowed
	Source  string   `json:"source"` // "rule" or "manual"; for Allowed, what had set the flag
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
