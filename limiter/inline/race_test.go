//go:build race

package inline_test

const raceEnabled = true
