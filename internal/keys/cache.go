package keys

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// keyState is one successfully fetched key set. It is immutable: a refresh
// publishes a new one.
type keyState struct {
	set       *Set
	skipped   []skippedKey
	uri       string // where the set came from, after discovery
	etag      string
	fetchedAt time.Time
	interval  time.Duration
	refreshAt time.Time // fetchedAt + interval, less jitter
	staleAt   time.Time // past this, the set is not served at all
}

// entry is the cached state of one remote issuer.
type entry struct {
	// refresher decides when the set is fetched; its mu also guards
	// jwksURI.
	refresher
	p    *Plane
	conf *remoteConf

	// state is read without the lock on every lookup.
	state   atomic.Pointer[keyState]
	evicted atomic.Bool
	dropped atomic.Bool // removed because the policy let it go, not for room

	jwksURI string // discovered; "" until discovery succeeds
}

// unavailableError is what a lookup gets when the issuer has no servable
// set. It is ErrUnavailable, and also says why, for the logs.
type unavailableError struct {
	label      string
	cause      error
	retryAfter time.Duration
}

func (e *unavailableError) Error() string {
	return fmt.Sprintf("keys: issuer %s: key set unavailable: %s", e.label, strings.TrimPrefix(e.cause.Error(), "keys: "))
}

func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.cause} }

// RetryAfter suggests, for an ErrUnavailable error, how long a client should
// wait before trying again: until the issuer's next fetch attempt, at least a
// second. It is meant for the 503's Retry-After header.
func RetryAfter(err error) (time.Duration, bool) {
	ue, ok := errors.AsType[*unavailableError](err)
	if !ok {
		return 0, false
	}
	return max(ue.retryAfter, time.Second), true
}

// entry returns the issuer's cache entry, creating it after an eviction or
// on first use.
func (p *Plane) entry(conf *remoteConf) *entry {
	if e, ok := p.cache.Get(conf.key); ok {
		return e
	}
	e := &entry{p: p, conf: conf}
	e.refresher = refresher{plane: p, due: e.refresh}
	if prev, ok, _ := p.cache.PeekOrAdd(conf.key, e); ok {
		return prev
	}
	return e
}

// evicted is the LRU's eviction callback, for a Remove too.
func (p *Plane) evicted(_ entryKey, e *entry) {
	e.evicted.Store(true)
	e.stop()
	if !e.dropped.Load() {
		p.m.evicted()
	}
}

// drop removes the cached set k because no policy uses it any more. It is
// not counted as an eviction: that metric tells whether the cache is big
// enough, and a reload that removes issuers says nothing about it.
func (p *Plane) drop(k entryKey) {
	if e, ok := p.cache.Peek(k); ok {
		e.dropped.Store(true)
	}
	p.cache.Remove(k)
}

// Keys implements Source. The common case — a fresh set with the kid — is
// two atomic loads, a clock read, an LRU hit and a map lookup.
func (r *remoteSource) Keys(ctx context.Context, kid string) ([]*Key, error) {
	if r.p.cfg.Offline {
		return nil, r.conf.errOffline
	}
	e := r.p.entry(r.conf)
	now := r.p.clock.Now()
	st := e.state.Load()
	if st == nil || now.After(st.staleAt) {
		return e.missing(ctx, kid)
	}
	if now.UnixNano() >= e.nextAuto.Load() {
		e.start(now, trigRefresh)
	}
	if ks := st.set.Lookup(kid); len(ks) > 0 {
		return ks, nil
	}
	return e.unknownKID(ctx, kid, now)
}

func (r *remoteSource) prefetch(ctx context.Context) {
	e := r.p.entry(r.conf)
	c := e.start(r.p.clock.Now(), trigPrefetch)
	if c == nil {
		return
	}
	select {
	case <-c.done:
	case <-ctx.Done():
	}
}

func (e *entry) unknownKID(ctx context.Context, kid string, now time.Time) ([]*Key, error) {
	e.p.m.unknownKID(e.conf.label)
	if c := e.start(now, trigUnknownKID); c != nil {
		e.wait(ctx, c)
	} else {
		e.p.m.suppressedRefetch(e.conf.label)
	}
	if st := e.state.Load(); st != nil {
		if ks := lookup(st.set, kid); ks != nil {
			return ks, nil
		}
	}
	return nil, e.conf.errUnknown
}

// missing serves a lookup when no set can be served: it starts a fetch if
// the backoff allows, waits at most FetchWait for it, and otherwise reports
// the issuer unavailable.
func (e *entry) missing(ctx context.Context, kid string) ([]*Key, error) {
	if c := e.start(e.p.clock.Now(), trigMissing); c != nil {
		e.wait(ctx, c)
	}
	now := e.p.clock.Now()
	if st := e.state.Load(); st != nil && !now.After(st.staleAt) {
		if ks := lookup(st.set, kid); ks != nil {
			return ks, nil
		}
		e.p.m.unknownKID(e.conf.label)
		return nil, e.conf.errUnknown
	}
	e.p.m.unavailableLookup(e.conf.label)
	return nil, e.unavailable(now)
}

func (e *entry) unavailable(now time.Time) error {
	e.mu.Lock()
	lastErr, retryAt := e.lastErr, e.retryAt
	e.mu.Unlock()
	st := e.state.Load()
	var cause error
	switch {
	case st != nil && lastErr != nil:
		cause = fmt.Errorf("stale since %s, refresh failing: %w", st.staleAt.UTC().Format(time.RFC3339), lastErr)
	case st != nil:
		cause = fmt.Errorf("stale since %s", st.staleAt.UTC().Format(time.RFC3339))
	case lastErr != nil:
		cause = lastErr
	default:
		cause = errors.New("not fetched yet")
	}
	return &unavailableError{label: e.conf.label, cause: cause, retryAfter: retryAt.Sub(now).Round(time.Second)}
}

// wait blocks until c is done, FetchWait has passed, or ctx ends, whichever
// is first. The fetch itself goes on in the background.
func (e *entry) wait(ctx context.Context, c *fetchCall) { e.p.waitFetch(ctx, c.done) }

// waitFetch blocks until done is closed, FetchWait has passed on the
// plane's clock, or ctx ends: a Check waits for the network that long at
// most, whatever source it asks.
func (p *Plane) waitFetch(ctx context.Context, done <-chan struct{}) {
	select {
	case <-done:
		return
	default:
	}
	expired := make(chan struct{})
	t := p.clock.AfterFunc(p.cfg.FetchWait, func() { close(expired) })
	defer t.Stop()
	select {
	case <-done:
	case <-expired:
	case <-ctx.Done():
	}
}

// start returns the fetch in flight, or starts one if why allows it now
// (the refresher's rules), or returns nil.
func (e *entry) start(now time.Time, why trigger) *fetchCall {
	st := e.state.Load()
	fresh := st != nil && now.Before(st.refreshAt)
	return e.refresher.start(now, why, fresh, true, func(c *fetchCall) { e.run(c, why) })
}
