package keys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// spiffeWatchers are a plane's running SPIFFE watchers, by everything that
// decides what they watch: a reload whose issuer keeps its spec finds its
// watcher running and shares it, rather than opening a second stream.
type spiffeWatchers struct {
	mu      sync.Mutex
	runners map[spiffeKey]*spiffeRunner
}

// spiffeRunner returns the running watcher for conf, starting one if there
// is none. On a closed plane the watcher returned is stopped, and its
// lookups serve only what conf read at load.
func (p *Plane) spiffeRunner(conf *spiffeConf) *spiffeRunner {
	w := &p.spiffe
	w.mu.Lock()
	defer w.mu.Unlock()
	if r := w.runners[conf.key]; r != nil {
		return r
	}
	r := &spiffeRunner{p: p, conf: conf, answered: make(chan struct{})}
	r.refresher = refresher{plane: p, due: func() { r.startFetch(p.clock.Now(), trigRefresh) }}
	r.ctx, r.cancel = context.WithCancel(p.ctx)
	if conf.initial != nil {
		r.cur.Store(conf.initial)
		r.p.m.skipped(conf.key.label, conf.initial.skipped)
	}
	// Close sets closed before it stops the watchers under w.mu, so a
	// watcher registered here is either seen by Close or never started.
	if p.closed.Load() || p.ctx.Err() != nil {
		r.stopped.Store(true)
		return r
	}
	if w.runners == nil {
		w.runners = map[spiffeKey]*spiffeRunner{}
	}
	w.runners[conf.key] = r
	r.watch.arm(p.clock.Now(), p.cfg.FilePollInterval)
	r.run()
	return r
}

// logger is the plane's logger with the source's attributes.
func (c *spiffeConf) logger(log *slog.Logger) *slog.Logger {
	return log.With("issuer", c.key.label, "trust_domain", c.td.Name(), "source", c.key.kind, "location", c.key.location)
}

// logBundleFaults logs the keys a bundle leaves out and, when it has no
// usable key, that every token of the trust domain is refused, with why if
// it is their "use". It reports whether the bundle has no usable key.
func logBundleFaults(log *slog.Logger, st *spiffeState) bool {
	for _, sk := range st.skipped {
		log.Warn("keys: bundle key skipped", "key", describeBundleSkip(sk))
	}
	if st.set.Len() > 0 {
		return false
	}
	const msg = "keys: SPIFFE bundle has no JWT-SVID keys; every token of the trust domain is refused until keys return"
	if f := useFaults(st.skipped); f != "" {
		log.Warn(msg, "reason", f)
	} else {
		log.Warn(msg)
	}
	return true
}

// spiffeRunners lists the running watchers, for /debug/keys and the
// metrics.
func (p *Plane) spiffeRunners() []*spiffeRunner {
	w := &p.spiffe
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*spiffeRunner, 0, len(w.runners))
	for _, r := range w.runners {
		out = append(out, r)
	}
	return out
}

// stopSPIFFE stops every watcher of the plane, for Close.
func (p *Plane) stopSPIFFE() {
	w := &p.spiffe
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.runners {
		r.stopLocked()
	}
	clear(w.runners)
}

// spiffeRunner watches one trust domain's bundle from one place.
type spiffeRunner struct {
	// refresher schedules a bundle endpoint's fetches; for every kind it
	// holds the failures in a row and the last error, under its mu.
	refresher
	p      *Plane
	conf   *spiffeConf
	ctx    context.Context
	cancel context.CancelFunc

	cur      atomic.Pointer[spiffeState]
	answered chan struct{} // closed by the first bundle or failure
	answer   sync.Once
	stopped  atomic.Bool
	watch    fileWatch // bundle file

	sweep Timer // under mu
}

// run starts what keeps the bundle current; nothing when offline
// (`extauthz validate`), where only local files are looked at.
func (r *spiffeRunner) run() {
	r.mu.Lock()
	r.sweep = r.p.clock.AfterFunc(spiffeSweep, r.checkSuperseded)
	r.mu.Unlock()
	if r.p.cfg.Offline {
		return
	}
	switch r.conf.key.kind {
	case kindSPIFFEWorkload:
		if r.track() {
			go r.watchWorkloadAPI()
		}
	case kindSPIFFEEndpoint:
		r.startFetch(r.p.clock.Now(), trigMissing)
	}
}

// track counts a goroutine in the plane's in-flight work, so Close waits for
// it; false once the plane is closed.
func (r *spiffeRunner) track() bool {
	r.p.closeMu.RLock()
	defer r.p.closeMu.RUnlock()
	if r.p.closed.Load() {
		return false
	}
	r.p.fetchs.Add(1)
	return true
}

// checkSuperseded stops the watcher once a reload has given the issuer
// another source or none; a policy still holding it starts it again.
func (r *spiffeRunner) checkSuperseded() {
	if r.stopped.Load() {
		return
	}
	if r.p.superseded(r.conf.key.label, r.conf.key.claimKey()) {
		w := &r.p.spiffe
		w.mu.Lock()
		if w.runners[r.conf.key] == r {
			delete(w.runners, r.conf.key)
		}
		r.stopLocked()
		w.mu.Unlock()
		return
	}
	r.mu.Lock()
	if !r.stopped.Load() {
		r.sweep = r.p.clock.AfterFunc(spiffeSweep, r.checkSuperseded)
	}
	r.mu.Unlock()
}

// stopLocked ends the watcher; the plane's spiffe.mu is held.
func (r *spiffeRunner) stopLocked() {
	r.stopped.Store(true)
	r.cancel()
	r.mu.Lock()
	for _, t := range []Timer{r.timer, r.sweep} {
		if t != nil {
			t.Stop()
		}
	}
	r.timer, r.sweep = nil, nil
	r.mu.Unlock()
	if r.conf.transport != nil {
		r.conf.transport.CloseIdleConnections()
	}
}

func (r *spiffeRunner) keys(ctx context.Context, kid string) ([]*Key, error) {
	now := r.p.clock.Now()
	switch r.conf.key.kind {
	case kindSPIFFEFile:
		if r.watch.due(now) {
			r.recheckFile(now)
		}
	default:
		if r.p.cfg.Offline {
			return nil, r.conf.errOffline
		}
	}
	st := r.cur.Load()
	if !r.servable(st, now) && r.conf.key.kind == kindSPIFFEEndpoint {
		if c := r.startFetch(now, trigMissing); c != nil {
			r.wait(ctx, c)
		}
		now = r.p.clock.Now()
		st = r.cur.Load()
	}
	if !r.servable(st, now) {
		r.p.m.unavailableLookup(r.conf.key.label)
		return nil, r.unavailable(st, now)
	}
	if st.set.Len() == 0 {
		r.p.m.unknownKID(r.conf.key.label)
		return nil, r.revoked(st)
	}
	if ks := lookup(st.set, kid); ks != nil {
		return ks, nil
	}
	r.p.m.unknownKID(r.conf.key.label)
	// The Workload API pushes every change and a file is polled; only a
	// bundle endpoint is worth asking again for a kid it did not have.
	if r.conf.key.kind == kindSPIFFEEndpoint {
		if c := r.startFetch(now, trigUnknownKID); c != nil {
			r.wait(ctx, c)
			if st := r.cur.Load(); r.servable(st, r.p.clock.Now()) {
				if st.set.Len() == 0 {
					return nil, r.revoked(st)
				}
				if ks := lookup(st.set, kid); ks != nil {
					return ks, nil
				}
				return nil, r.unknown(st, kid)
			}
		} else {
			r.p.m.suppressedRefetch(r.conf.key.label)
		}
	}
	return nil, r.unknown(st, kid)
}

// revoked is the error for a bundle without usable keys. When keys were
// left out for their "use", it says which and what the rule is: that is a
// bundle to fix, not a revocation anyone meant.
func (r *spiffeRunner) revoked(st *spiffeState) error {
	if f := useFaults(st.skipped); f != "" {
		return fmt.Errorf("keys: issuer %s: the bundle of trust domain %s has no JWT-SVID keys: %s: every key is revoked: %w",
			r.conf.key.label, r.conf.td.Name(), f, ErrUnknownKID)
	}
	return r.conf.errRevoked
}

// unknown is the error for a kid the bundle has no usable key for; a key
// of that kid left out for its "use" is named, with the rule.
func (r *spiffeRunner) unknown(st *spiffeState, kid string) error {
	for _, sk := range st.skipped {
		if kid != "" && sk.KID == kid && sk.Reason == skipUse {
			return fmt.Errorf("keys: issuer %s: %s: %w", r.conf.key.label, useFaults([]skippedKey{sk}), ErrUnknownKID)
		}
	}
	return r.conf.errUnknown
}

func (r *spiffeRunner) servable(st *spiffeState, now time.Time) bool {
	return st != nil && (st.staleAt.IsZero() || !now.After(st.staleAt))
}

func (r *spiffeRunner) unavailable(st *spiffeState, now time.Time) error {
	r.mu.Lock()
	lastErr, retryAt := r.lastErr, r.retryAt
	r.mu.Unlock()
	var cause error
	switch {
	case st == nil && r.conf.key.kind == kindSPIFFEFile && (lastErr == nil || errors.Is(lastErr, os.ErrNotExist)):
		cause = fmt.Errorf("bundle file %s not written yet", r.conf.key.location)
	case st != nil && lastErr != nil:
		cause = fmt.Errorf("bundle stale since %s: %w", st.staleAt.UTC().Format(time.RFC3339), lastErr)
	case lastErr != nil:
		cause = lastErr
	default:
		cause = fmt.Errorf("no bundle received from %s yet", r.conf.key.location)
	}
	return &unavailableError{label: r.conf.key.label, cause: cause, retryAfter: retryAt.Sub(now).Round(time.Second)}
}

// fail records a failed attempt to get the bundle.
func (r *spiffeRunner) fail(err error, now time.Time) {
	r.mu.Lock()
	r.lastErr, r.lastErrAt = err, now
	// A file is looked at, not fetched: like a jwks_file it shows its last
	// error but no failures in a row, which would count polls.
	if r.conf.key.kind != kindSPIFFEFile {
		r.failures++
	}
	r.mu.Unlock()
	r.p.m.fetched(r.conf.key.label, outcomeOf(err))
	r.answer.Do(func() { close(r.answered) })
}

// publish makes st the bundle in use. A bundle without keys takes effect
// like any other: it revokes every key of the trust domain at once, with no
// fallback to the keys it replaces.
func (r *spiffeRunner) publish(st *spiffeState) {
	prev := r.cur.Swap(st)
	r.answer.Do(func() { close(r.answered) })
	r.mu.Lock()
	recovered := r.lastErr != nil
	r.lastErr, r.failures = nil, 0
	r.mu.Unlock()
	r.p.m.fetched(r.conf.key.label, outcomeSuccess)
	if prev != nil && prev.sum == st.sum && !recovered {
		return
	}
	r.p.m.skipped(r.conf.key.label, st.skipped)
	log := r.conf.logger(r.p.log)
	if logBundleFaults(log, st) {
		return
	}
	kids := make([]string, 0, st.set.Len())
	for _, k := range st.set.All() {
		kids = append(kids, k.ID)
	}
	log.Info("keys: SPIFFE bundle loaded", "keys", st.set.Len(), "kids", kids)
}
