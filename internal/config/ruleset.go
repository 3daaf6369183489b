package config

import (
	"fmt"
	"os"

	"github.com/ratemon/ratemon/limiter"
)

// Ruleset compiles the rules, with the privacy hashing of their limit keys
// when privacy.hash is set; the hash key comes from the environment variable
// privacy.key_env, never from the file.
func (c *Config) Ruleset() (*limiter.Ruleset, error) {
	rs, err := limiter.NewRuleset(c.Rules)
	if err != nil {
		return nil, err
	}
	if len(c.Privacy.Hash) == 0 {
		return rs, nil
	}
	key := os.Getenv(c.Privacy.KeyEnv)
	if key == "" {
		return nil, fmt.Errorf("privacy.hash: the environment variable %s (privacy.key_env) is empty; set it to a secret of 16 bytes or more", c.Privacy.KeyEnv)
	}
	h, err := limiter.NewHasher(c.Privacy.Hash, []byte(key))
	if err != nil {
		return nil, fmt.Errorf("privacy: %w", err)
	}
	return rs.WithHasher(h), nil
}
