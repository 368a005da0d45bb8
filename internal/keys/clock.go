package keys

import "time"

// Clock is the time the plane lives by. Every deadline in the package —
// refresh, cooldown, staleness, fetch timeout, fetch-wait — goes through it,
// so tests drive time by hand instead of sleeping.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call. Stop prevents the call if it has not
// started, and reports whether it did. It is an alias of the bare interface
// so that a fake clock (keys/fakeclock) need not import this package, and
// the package's own tests can use it.
type Timer = interface{ Stop() bool }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
