//go:build race

package chaos

// raceEnabled: the test binary runs with the race detector, and so do the
// daemons it builds (their packages are then already compiled that way).
const raceEnabled = true
