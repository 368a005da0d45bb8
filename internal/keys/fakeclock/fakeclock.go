// Package fakeclock provides a keys.Clock that moves only when a test says
// so, for the key plane's own tests and for tests of the packages that hold
// a plane (a policy reload, say) which must drive its refreshes without
// sleeping.
//
//	clk := fakeclock.New()
//	plane, _ := keys.NewPlane(keys.Config{Clock: clk})
//	clk.Add(keys.DefaultMinRefresh) // the refreshes now due have started
//
// It does not import keys (keys.Timer is an alias of the interface its
// timers satisfy), so the plane's in-package tests can use it too.
package fakeclock

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// Clock is a fake clock. Unlike time.AfterFunc, callbacks run synchronously
// inside Add, so that when Add returns their effects (a refresh started, a
// wait ended) have happened. The plane's callbacks never block, so this is
// safe.
type Clock struct {
	mu     sync.Mutex
	cond   *sync.Cond
	now    time.Time
	timers map[*timer]struct{}
}

type timer struct {
	c  *Clock
	at time.Time
	f  func()
}

// New returns a clock set to a fixed instant in 2030.
func New() *Clock {
	c := &Clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), timers: map[*timer]struct{}{}}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// Now implements keys.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc implements keys.Clock: f runs inside the Add that reaches d
// from now.
func (c *Clock) AfterFunc(d time.Duration, f func()) interface{ Stop() bool } {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, at: c.now.Add(d), f: f}
	c.timers[t] = struct{}{}
	c.cond.Broadcast()
	return t
}

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, ok := t.c.timers[t]
	delete(t.c.timers, t)
	return ok
}

// Add moves the clock forward by d and runs the timers now due, earliest
// first.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*timer
	for t := range c.timers {
		if !t.at.After(c.now) {
			due = append(due, t)
			delete(c.timers, t)
		}
	}
	c.mu.Unlock()
	slices.SortFunc(due, func(a, b *timer) int { return a.at.Compare(b.at) })
	for _, t := range due {
		t.f()
	}
}

// WaitTimer blocks until a timer is pending that fires exactly d from now:
// the sign that some goroutine is waiting on a d-long deadline.
func (c *Clock) WaitTimer(t testing.TB, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for !c.hasTimerLocked(d) {
			c.cond.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second): // a hang guard, not a sleep
		t.Fatalf("no timer of %s was set", d)
	}
}

func (c *Clock) hasTimerLocked(d time.Duration) bool {
	for t := range c.timers {
		if t.at.Equal(c.now.Add(d)) {
			return true
		}
	}
	return false
}
