package keys

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

// spiffeEndpointClient sets up the HTTP client of a bundle endpoint:
// https_web trusts the system roots plus ca_file; https_spiffe trusts only
// the endpoint trust domain's X.509 authorities and checks the SVID's ID.
func (p *Plane) spiffeEndpointClient(conf *spiffeConf, s SPIFFESpec, caPEM []byte) error {
	if s.BundleEndpointSPIFFEID == "" {
		if _, err := checkURL(s.BundleEndpointURL, conf.key.insecure); err != nil {
			return fmt.Errorf("url: %w", err)
		}
		var pool *x509.CertPool
		if caPEM != nil {
			var err error
			if pool, err = x509.SystemCertPool(); err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(caPEM) {
				return errors.New("ca_file: no PEM certificates found")
			}
		}
		conf.client = p.httpClient(conf.key.ca, pool)
		return nil
	}
	u, err := checkURL(s.BundleEndpointURL, false)
	if err != nil {
		return fmt.Errorf("url: %w", err)
	}
	if u.Scheme != "https" {
		return errors.New("url: the https_spiffe profile needs https")
	}
	id, err := spiffeid.FromString(s.BundleEndpointSPIFFEID)
	if err != nil {
		return fmt.Errorf("spiffe_id %q: %w", s.BundleEndpointSPIFFEID, err)
	}
	if caPEM == nil {
		return fmt.Errorf("the https_spiffe profile needs ca_file: the X.509 bundle of trust domain %s, to authenticate the endpoint's first fetch", id.TrustDomain().Name())
	}
	certs, err := parseRoots(caPEM)
	if err != nil {
		return fmt.Errorf("ca_file: %w", err)
	}
	conf.endpointID = id
	conf.roots = &x509Roots{}
	conf.roots.b.Store(x509bundle.FromX509Authorities(id.TrustDomain(), certs))
	conf.transport = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		TLSClientConfig:       tlsconfig.TLSClientConfig(conf.roots, tlsconfig.AuthorizeID(id)),
		TLSHandshakeTimeout:   p.cfg.FetchTimeout,
		ResponseHeaderTimeout: p.cfg.FetchTimeout,
		MaxIdleConnsPerHost:   1,
		IdleConnTimeout:       90 * time.Second,
	}
	conf.client = &http.Client{Transport: conf.transport, CheckRedirect: sameOrigin}
	return nil
}

// x509Roots is the X.509 bundle an https_spiffe endpoint is checked
// against, updated from the bundles the endpoint itself serves.
type x509Roots struct {
	b atomic.Pointer[x509bundle.Bundle]
}

func (r *x509Roots) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if b := r.b.Load(); b != nil && b.TrustDomain() == td {
		return b, nil
	}
	return nil, fmt.Errorf("keys: no X.509 bundle for trust domain %s", td.Name())
}

// parseRoots reads PEM certificates, or the x509-svid authorities of a
// SPIFFE bundle.
func parseRoots(data []byte) ([]*x509.Certificate, error) {
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		doc, err := parseSPIFFEBundle(data)
		if err != nil {
			return nil, err
		}
		if len(doc.roots) == 0 {
			return nil, errors.New("SPIFFE bundle has no x509-svid authorities")
		}
		return doc.roots, nil
	}
	b, err := x509bundle.Parse(spiffeid.TrustDomain{}, data)
	if err != nil {
		return nil, err
	}
	if len(b.X509Authorities()) == 0 {
		return nil, errors.New("no PEM certificates found")
	}
	return b.X509Authorities(), nil
}

// startFetch starts a bundle endpoint fetch if why allows it now (the
// refresher's rules), and returns the one in flight, or nil.
func (r *spiffeRunner) startFetch(now time.Time, why trigger) *fetchCall {
	return r.refresher.start(now, why, false, !r.stopped.Load(), r.fetchEndpoint)
}

func (r *spiffeRunner) wait(ctx context.Context, c *fetchCall) { r.p.waitFetch(ctx, c.done) }

func (r *spiffeRunner) fetchEndpoint(c *fetchCall) {
	st, err := fetch(&r.refresher, r.ctx, r.conf.key.label, r.fetchBundle)
	var next time.Time
	if err == nil {
		r.publish(st)
		next = st.refreshAt
	} else {
		r.p.m.fetched(r.conf.key.label, outcomeOf(err))
		r.answer.Do(func() { close(r.answered) })
		log := r.p.log.With("issuer", r.conf.key.label, "url", r.conf.key.location, "error", err)
		if r.cur.Load() != nil {
			log.Warn("keys: bundle endpoint fetch failed; serving the last bundle")
		} else {
			log.Error("keys: bundle endpoint fetch failed; the issuer's tokens get 503 until a fetch succeeds")
		}
	}
	r.finish(c, err, next, !r.stopped.Load())
}

// fetchBundle gets the bundle and schedules the next fetch by its
// spiffe_refresh_hint, bounded to [spiffeMinRefresh, MaxRefresh]; without a
// hint, MinRefresh.
func (r *spiffeRunner) fetchBundle(ctx context.Context) (*spiffeState, error) {
	u := r.conf.key.location
	d, err := r.p.get(ctx, r.conf.client, u, "")
	if err != nil {
		return nil, err
	}
	doc, err := parseSPIFFEBundle(d.body)
	if err != nil {
		return nil, &fetchError{outcome: outcomeInvalid, url: u, err: err}
	}
	// https_spiffe: the endpoint of our own trust domain is authenticated
	// next time by the X.509 authorities it just served (SPIFFE
	// federation, "bundle endpoint"), so its CA can rotate.
	if r.conf.roots != nil && r.conf.endpointID.TrustDomain() == r.conf.td && len(doc.roots) > 0 {
		r.conf.roots.b.Store(x509bundle.FromX509Authorities(r.conf.td, doc.roots))
	}
	now := r.p.clock.Now()
	interval := r.p.cfg.MinRefresh
	if doc.refreshHint > 0 {
		interval = min(max(doc.refreshHint, spiffeMinRefresh), r.p.cfg.MaxRefresh)
	}
	return &spiffeState{
		set: doc.set, skipped: doc.skipped, loadedAt: now, sum: sha256.Sum256(d.body),
		refreshAt: now.Add(jitter(interval)),
		staleAt:   now.Add(interval).Add(r.p.cfg.MaxStale),
	}, nil
}
