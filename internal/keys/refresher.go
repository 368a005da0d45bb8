package keys

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Retry backoff after a failed fetch: 1s, 2s, 4s, … up to 5m.
const (
	baseBackoff = time.Second
	maxBackoff  = 5 * time.Minute
)

// refresher is the fetch lifecycle every remote source shares (a JWKS
// issuer, a SPIFFE bundle endpoint): whether a fetch may start now (one in
// flight at a time, the retry backoff, the unknown-kid cooldown), and, once
// it ends, the failure count, the backoff and the timer of the next fetch.
// The source keeps what it fetched; the refresher only keeps time. Like
// go-spiffe's watcher and backoff, the lifecycle is apart from the data, so
// the rules are written once and every source obeys the same ones.
type refresher struct {
	plane *Plane
	// due runs when the next fetch is due, from the timer.
	due func()

	// nextAuto is read without the lock on every lookup: unix ns when a
	// refresh is due, MaxInt64 while a fetch runs.
	nextAuto atomic.Int64

	mu        sync.Mutex
	inflight  *fetchCall
	lastStart time.Time
	failures  int       // failed attempts since the last success
	retryAt   time.Time // no new attempt before this, after a failure
	timer     Timer
	next      time.Time // when timer fires
	lastErr   error
	lastErrAt time.Time
}

// fetchCall is one fetch; every lookup that needs it waits on done.
type fetchCall struct {
	done chan struct{}
}

// Why a fetch is wanted; each has its own rule for whether it may start.
type trigger int

const (
	trigRefresh    trigger = iota // the refresh timer, or a lookup that found the set due
	trigUnknownKID                // a kid not in the set: one refetch per cooldown
	trigMissing                   // no usable set: whenever the retry backoff allows
	trigPrefetch                  // policy load: unless the set is fresh
)

// start returns the fetch in flight, or starts one with spawn if why allows
// it now, or returns nil. fresh tells a prefetch that the source holds a set
// not yet due; live is false once the source is stopped. Deciding and
// starting under one lock is what makes every concurrent caller share one
// fetch, and a flood of unknown kids cost one fetch per cooldown.
func (f *refresher) start(now time.Time, why trigger, fresh, live bool, spawn func(*fetchCall)) *fetchCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.inflight; c != nil {
		return c
	}
	if !live {
		return nil
	}
	switch why {
	case trigRefresh:
		if now.UnixNano() < f.nextAuto.Load() {
			return nil
		}
	case trigUnknownKID:
		if now.Before(f.lastStart.Add(f.plane.cfg.RefetchCooldown)) || now.Before(f.retryAt) {
			return nil
		}
	case trigMissing:
		if now.Before(f.retryAt) {
			return nil
		}
	case trigPrefetch:
		if fresh || now.Before(f.retryAt) {
			return nil
		}
	}
	p := f.plane
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.closed.Load() {
		return nil
	}
	p.fetchs.Add(1)
	c := &fetchCall{done: make(chan struct{})}
	f.inflight, f.lastStart = c, now
	f.nextAuto.Store(math.MaxInt64)
	f.stopTimerLocked()
	go spawn(c)
	return c
}

// fetch runs one fetch on behalf of the call start spawned, bounded by the
// plane's fetch timeout and counted in the latency metric. It must be
// followed by finish.
func fetch[T any](f *refresher, parent context.Context, label string, get func(context.Context) (T, error)) (T, error) {
	p := f.plane
	ctx, cancel := context.WithCancelCause(parent)
	t := p.clock.AfterFunc(p.cfg.FetchTimeout, func() { cancel(errFetchTimeout) })
	start := p.clock.Now()
	v, err := get(ctx)
	t.Stop()
	cancel(nil)
	p.m.fetchLatency(label, p.clock.Now().Sub(start))
	return v, err
}

// finish records the outcome of c, whose fetch the source has published
// (err nil, next its refresh time) or not, and schedules the next fetch:
// at next after a success, after the backoff after a failure, and none once
// the source is no longer live. It returns the failures in a row and
// whether this success ends a run of them, for the source's logs.
func (f *refresher) finish(c *fetchCall, err error, next time.Time, live bool) (failures int, recovered bool) {
	defer f.plane.fetchs.Done()
	now := f.plane.clock.Now()
	f.mu.Lock()
	if err == nil {
		recovered = f.failures > 0
		f.failures, f.retryAt, f.lastErr = 0, time.Time{}, nil
	} else {
		f.failures++
		failures = f.failures
		f.retryAt = now.Add(retryBackoff(f.failures))
		f.lastErr, f.lastErrAt = err, now
		next = f.retryAt
	}
	f.nextAuto.Store(next.UnixNano())
	f.inflight = nil
	f.stopTimerLocked()
	if live && !f.plane.closed.Load() {
		f.next = next
		f.timer = f.plane.clock.AfterFunc(next.Sub(now), f.due)
	}
	f.mu.Unlock()
	close(c.done)
	return failures, recovered
}

// stop cancels the timer of the next fetch.
func (f *refresher) stop() {
	f.mu.Lock()
	f.stopTimerLocked()
	f.mu.Unlock()
}

func (f *refresher) stopTimerLocked() {
	if f.timer != nil {
		f.timer.Stop()
		f.timer = nil
	}
}

// retryBackoff is how long to wait after the n-th consecutive failure: doubling
// from one second, capped so a recovered source is noticed within minutes,
// and shortened by up to a tenth so replicas do not retry in step.
func retryBackoff(n int) time.Duration {
	d := baseBackoff
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	return jitter(min(d, maxBackoff))
}

// jitter shortens d by up to a tenth.
func jitter(d time.Duration) time.Duration {
	if d/10 <= 0 {
		return d
	}
	return d - rand.N(d/10)
}
