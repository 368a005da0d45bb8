//go:build !race

package spire_test

const raceEnabled = false
