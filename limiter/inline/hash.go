package inline

import "hash/maphash"

// hashSeed keys the hashes of limit key values: drawn once per deny set and
// never shown to clients, so that nobody can choose keys that collide.
type hashSeed struct{ s maphash.Seed }

func newHashSeed() hashSeed { return hashSeed{maphash.MakeSeed()} }

// hashValue is the seeded hash of one field value; hashBytes gives the
// same for the same bytes in a slice. The table and mixHash rely on the
// outputs being well mixed and unknown without the seed, which maphash
// gives.
func hashValue(s *hashSeed, v string) uint64 { return maphash.String(s.s, v) }

func hashBytes(s *hashSeed, b []byte) uint64 { return maphash.Bytes(s.s, b) }
