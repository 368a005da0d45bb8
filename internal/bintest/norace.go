//go:build !race

package bintest

const raceEnabled = false
