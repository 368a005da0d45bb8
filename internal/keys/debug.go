package keys

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// issuerStatus is one issuer's entry in /debug/keys. It describes keys by
// kid, type and algorithm; it never holds key material, so an HMAC secret
// cannot leak through it.
type issuerStatus struct {
	Issuer              string       `json:"issuer"`
	Source              string       `json:"source"`
	Location            string       `json:"location,omitempty"`
	TrustDomain         string       `json:"trust_domain,omitempty"`
	Keys                []keyStatus  `json:"keys"`
	Skipped             []skippedKey `json:"skipped,omitempty"`
	LoadedAt            time.Time    `json:"loaded_at,omitzero"`
	AgeSeconds          float64      `json:"age_seconds,omitempty"`
	NextRefresh         time.Time    `json:"next_refresh,omitzero"`
	StaleAt             time.Time    `json:"stale_at,omitzero"`
	Expires             time.Time    `json:"expires,omitzero"`
	Servable            bool         `json:"servable"`
	ConsecutiveFailures int          `json:"consecutive_failures,omitempty"`
	LastError           string       `json:"last_error,omitempty"`
	LastErrorAt         time.Time    `json:"last_error_at,omitzero"`
}

type keyStatus struct {
	KID  string `json:"kid,omitempty"`
	Type string `json:"type"`
	Bits int    `json:"bits,omitempty"`
	Alg  string `json:"alg,omitempty"`
}

func describeKeys(s *Set) []keyStatus {
	out := make([]keyStatus, 0, s.Len())
	for _, k := range s.All() {
		ks := keyStatus{KID: k.ID, Type: keyKind(k.Public), Alg: k.Alg}
		switch pub := k.Public.(type) {
		case *rsa.PublicKey:
			ks.Bits = pub.N.BitLen()
		case *ecdsa.PublicKey:
			ks.Bits = pub.Curve.Params().BitSize
		case []byte:
			ks.Bits = 8 * len(pub)
		}
		out = append(out, ks)
	}
	return out
}

// snapshot describes every issuer the plane knows, one entry per issuer
// name, sorted by name.
func (p *Plane) snapshot(now time.Time) []issuerStatus {
	out := []issuerStatus{}
	seen := map[string]bool{}
	for _, k := range p.cache.Keys() {
		e, ok := p.cache.Peek(k)
		if !ok || seen[e.conf.label] || p.superseded(e.conf.label, e.conf.key) {
			continue
		}
		seen[e.conf.label] = true
		out = append(out, e.status(now))
	}
	p.mu.Lock()
	statics := make([]*staticSource, 0, len(p.statics))
	for _, s := range p.statics {
		statics = append(statics, s)
	}
	p.mu.Unlock()
	for _, s := range statics {
		if seen[s.label] {
			continue
		}
		seen[s.label] = true
		out = append(out, s.status(now))
	}
	for _, r := range p.spiffeRunners() {
		label := r.conf.key.label
		if seen[label] || p.superseded(label, r.conf.key.claimKey()) {
			continue
		}
		seen[label] = true
		out = append(out, r.status(now))
	}
	slices.SortFunc(out, func(a, b issuerStatus) int { return strings.Compare(a.Issuer, b.Issuer) })
	return out
}

func (e *entry) status(now time.Time) issuerStatus {
	st := issuerStatus{Issuer: e.conf.label, Source: "jwks_uri", Location: e.conf.key.jwksURI, Keys: []keyStatus{}}
	if e.conf.key.discovery {
		st.Source = "discovery"
		st.Location = e.conf.key.issuer
	}
	if ks := e.state.Load(); ks != nil {
		st.Location = ks.uri
		st.Keys = describeKeys(ks.set)
		st.Skipped = ks.skipped
		st.LoadedAt = ks.fetchedAt
		st.AgeSeconds = now.Sub(ks.fetchedAt).Seconds()
		st.StaleAt = ks.staleAt
		st.Servable = !now.After(ks.staleAt)
	}
	if n := e.nextAuto.Load(); n > 0 && n < 1<<62 {
		st.NextRefresh = time.Unix(0, n)
	}
	e.mu.Lock()
	st.ConsecutiveFailures = e.failures
	if e.lastErr != nil {
		st.LastError, st.LastErrorAt = e.lastErr.Error(), e.lastErrAt
	}
	e.mu.Unlock()
	return st
}

func (s *staticSource) status(now time.Time) issuerStatus {
	cur := s.cur.Load()
	st := issuerStatus{
		Issuer:     s.label,
		Source:     s.kind,
		Location:   s.path,
		Keys:       describeKeys(cur.set),
		Skipped:    cur.skipped,
		LoadedAt:   cur.loadedAt,
		AgeSeconds: now.Sub(cur.loadedAt).Seconds(),
		Expires:    cur.expires,
		Servable:   cur.errExpired == nil || !now.After(cur.expires),
	}
	s.mu.Lock()
	if s.lastErr != "" {
		st.LastError, st.LastErrorAt = s.lastErr, s.lastErrAt
	}
	s.mu.Unlock()
	return st
}

// status describes a SPIFFE source as the others are described. Its next
// refresh is the bundle endpoint's next fetch, or the Workload API's next
// reconnect while the stream is down; the agent pushes every change, so a
// working stream has none.
func (r *spiffeRunner) status(now time.Time) issuerStatus {
	st := issuerStatus{
		Issuer:      r.conf.key.label,
		Source:      r.conf.key.kind,
		Location:    r.conf.key.location,
		TrustDomain: r.conf.td.Name(),
		Keys:        []keyStatus{},
	}
	if cur := r.cur.Load(); cur != nil {
		st.Keys = describeKeys(cur.set)
		st.Skipped = cur.skipped
		st.LoadedAt = cur.loadedAt
		st.AgeSeconds = now.Sub(cur.loadedAt).Seconds()
		st.StaleAt = cur.staleAt
		st.Servable = r.servable(cur, now)
	}
	r.mu.Lock()
	switch {
	case r.timer != nil:
		st.NextRefresh = r.next
	case r.conf.key.kind == kindSPIFFEWorkload && r.failures > 0 && r.retryAt.After(now):
		st.NextRefresh = r.retryAt
	}
	st.ConsecutiveFailures = r.failures
	if r.lastErr != nil {
		st.LastError, st.LastErrorAt = r.lastErr.Error(), r.lastErrAt
	}
	r.mu.Unlock()
	return st
}

// DebugHandler serves GET /debug/keys: every issuer's kids, key types, age,
// refresh schedule and last error, as JSON. It shows no key material.
func (p *Plane) DebugHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := json.MarshalIndent(struct {
			Now     time.Time      `json:"now"`
			Issuers []issuerStatus `json:"issuers"`
		}{p.clock.Now(), p.snapshot(p.clock.Now())}, "", "  ")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(append(body, '\n'))
	})
}
