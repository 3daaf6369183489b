package inline

import (
	"math/bits"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHashValue_stringsAndBytesAgree(t *testing.T) {
	seed := newHashSeed()
	r := rand.New(rand.NewPCG(7, 8))
	for n := range 200 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		require.Equal(t, hashValue(&seed, string(b)), hashBytes(&seed, b), "length %d", n)
	}
}

func TestHashValue_dependsOnSeedAndEveryByte(t *testing.T) {
	a, b := newHashSeed(), newHashSeed()
	for n := 1; n < 120; n++ {
		v := strings.Repeat("k", n)
		require.NotEqual(t, hashValue(&a, v), hashValue(&b, v), "length %d", n)
		// Flipping any one bit of the value changes about half the bits of
		// the hash: the table's index bits and mixHash rely on it.
		base := hashValue(&a, v)
		var flipped, trials int
		for i := range n {
			for bit := range 8 {
				w := []byte(v)
				w[i] ^= 1 << bit
				d := bits.OnesCount64(base ^ hashBytes(&a, w))
				require.Positive(t, d, "length %d byte %d bit %d", n, i, bit)
				flipped += d
				trials++
			}
		}
		avg := float64(flipped) / float64(trials)
		require.InDelta(t, 32, avg, 6, "length %d", n)
	}
}

func TestHashValue_noCollisionsOnLikelyKeys(t *testing.T) {
	// Keys that differ little, as client ids and addresses do; with 64-bit
	// hashes any collision among 300,000 of them would mean a weak hash.
	seed := newHashSeed()
	seen := make(map[uint64]string, 300000)
	add := func(v string) {
		h := hashValue(&seed, v)
		prev, dup := seen[h]
		require.False(t, dup, "%q and %q", prev, v)
		seen[h] = v
	}
	for i := range 100000 {
		add("key-" + strconv.Itoa(i))
		add("10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255) + "/" + strconv.Itoa(i))
		add(strings.Repeat("x", i%70) + strconv.Itoa(i))
	}
}
