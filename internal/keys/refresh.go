package keys

import (
	"context"
	"fmt"
	"time"
)

// run fetches outside the lock and publishes the set; the refresher
// schedules what comes next.
func (e *entry) run(c *fetchCall, why trigger) {
	prev := e.state.Load()
	st, err := fetch(&e.refresher, e.p.ctx, e.conf.label, func(ctx context.Context) (*keyState, error) { return e.fetch(ctx, why) })
	e.p.m.fetched(e.conf.label, outcomeOf(err))
	var next time.Time
	if err == nil {
		e.state.Store(st)
		next = st.refreshAt
	}
	failures, recovered := e.finish(c, err, next, !e.evicted.Load())
	e.logOutcome(prev, st, err, failures, recovered)
}

func (e *entry) refresh() {
	if e.evicted.Load() || e.p.closed.Load() {
		return
	}
	if e.p.superseded(e.conf.label, e.conf.key) {
		// A reload has given this issuer another source. Should a policy
		// still holding the old one ask, the set is simply fetched again.
		e.p.drop(e.conf.key)
		return
	}
	e.start(e.p.clock.Now(), trigRefresh)
}

// fetch gets the issuer's key set: discovery first when configured and not
// yet done (or when the last attempt failed, as the JWKS may have moved),
// then the JWKS, conditionally when the server gave an ETag.
func (e *entry) fetch(ctx context.Context, why trigger) (*keyState, error) {
	e.mu.Lock()
	uri, failing := e.jwksURI, e.failures > 0
	e.mu.Unlock()
	prev := e.state.Load()
	if e.conf.key.discovery {
		if uri == "" || failing || why == trigRefresh {
			u, err := e.p.discover(ctx, e.conf)
			if err != nil {
				return nil, err
			}
			uri = u
			e.mu.Lock()
			e.jwksURI = u
			e.mu.Unlock()
		}
	} else {
		uri = e.conf.key.jwksURI
	}
	etag := ""
	if prev != nil && prev.uri == uri {
		etag = prev.etag
	}
	d, err := e.p.get(ctx, e.conf.client, uri, etag)
	if err != nil {
		return nil, err
	}
	now := e.p.clock.Now()
	st := &keyState{uri: uri, etag: d.etag, fetchedAt: now}
	if d.notModified {
		st.set, st.skipped = prev.set, prev.skipped
	} else {
		set, skipped, err := parseJWKS(d.body, sigRules)
		if err != nil {
			return nil, &fetchError{outcome: outcomeInvalid, url: uri, err: err}
		}
		if set.Len() == 0 && len(skipped) > 0 {
			// Every published key is unusable: more likely a broken
			// rollout than a deliberate revocation, so keep the last good
			// set rather than deny everything.
			return nil, &fetchError{outcome: outcomeInvalid, url: uri, err: fmt.Errorf("no usable keys: %s", describeSkipped(skipped))}
		}
		st.set, st.skipped = set, skipped
		e.p.m.skipped(e.conf.label, skipped)
	}
	st.interval = e.p.cfg.MinRefresh
	if d.hasMaxAge {
		st.interval = min(max(d.maxAge, e.p.cfg.MinRefresh), e.p.cfg.MaxRefresh)
	} else if d.notModified && prev != nil {
		st.interval = prev.interval
	}
	st.refreshAt = now.Add(jitter(st.interval))
	st.staleAt = now.Add(st.interval).Add(e.p.cfg.MaxStale)
	return st, nil
}

func (e *entry) logOutcome(prev, st *keyState, err error, failures int, recovered bool) {
	log := e.p.log.With("issuer", e.conf.label)
	switch {
	case err != nil && prev != nil:
		log.Warn("keys: refresh failed; serving the last good key set",
			"error", err, "failures", failures, "stale_after", prev.staleAt)
	case err != nil:
		log.Error("keys: fetch failed; the issuer's tokens get 503 until a fetch succeeds",
			"error", err, "failures", failures)
	case prev == nil || prev.set != st.set || recovered:
		for _, sk := range st.skipped {
			log.Warn("keys: key skipped", "uri", st.uri, "key", sk.String())
		}
		log.Info("keys: key set loaded", "uri", st.uri, "keys", st.set.Len(), "refresh_in", st.interval)
	}
}
