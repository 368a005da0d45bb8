//go:build race

package bintest

// raceEnabled builds the binary with the race detector when the tests that
// use it run with it, so the build cache serves every test package alike.
const raceEnabled = true
