package limiter_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

func TestHasher(t *testing.T) {
	key := []byte("0123456789abcdef-secret")
	h, err := limiter.NewHasher([]limiter.Field{limiter.FieldIP, limiter.FieldClient}, key)
	require.NoError(t, err)
	m := hmac.New(sha256.New, key)
	m.Write([]byte("10.1.2.3"))
	want := "h:" + hex.EncodeToString(m.Sum(nil)[:16])
	require.Equal(t, want, h.Value("10.1.2.3"), "the documented formula")

	rs, err := limiter.NewRuleset([]limiter.Rule{
		{Name: "r", Key: []limiter.Field{limiter.FieldClient, limiter.FieldRoute}, Limit: 1, Window: time.Second, Action: limiter.ActionDeny},
		{Name: "s", Key: []limiter.Field{limiter.FieldIP}, Limit: 1, Window: time.Second, Action: limiter.ActionDeny},
	})
	require.NoError(t, err)
	rs = rs.WithHasher(h)
	e := event.Event{Client: "sk_live_SECRET", IP: "10.1.2.3", Route: "POST /login", Weight: 1}
	hits := rs.Match(nil, &e)
	require.Len(t, hits, 2)
	require.Equal(t, limiter.LimitKey("client="+h.Value("sk_live_SECRET")+"|route=POST /login"), hits[0].Key)
	require.Equal(t, limiter.LimitKey("ip="+want), hits[1].Key)
	for _, hit := range hits {
		require.NotContains(t, string(hit.Key), "SECRET")
		require.NotContains(t, string(hit.Key), "10.1.2.3")
	}
	require.Equal(t, "sk_live_SECRET", e.Client, "Match does not change the event")
	var each []limiter.Hit
	rs.MatchEach(&e, nil, func(group int, key []byte, mask uint64) {
		each = append(each, limiter.Hit{Group: group, Key: limiter.LimitKey(key), Mask: mask})
	})
	require.Equal(t, hits, each, "MatchEach hashes as Match does")
	require.Equal(t, "sk_live_SECRET", e.Client, "MatchEach does not change the event")
	require.True(t, strings.HasPrefix(h.Value(""), "h:"))

	_, err = limiter.NewHasher([]limiter.Field{limiter.FieldRoute}, key)
	require.Error(t, err)
	_, err = limiter.NewHasher([]limiter.Field{limiter.FieldIP}, []byte("short"))
	require.Error(t, err)
}
