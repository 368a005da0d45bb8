package keys

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// SPIFFESpec is a `spiffe` key source: the trust domain whose JWT-SVIDs the
// issuer verifies, and exactly one place its trust bundle comes from. A
// source serves that one trust domain only, so a key of any other trust
// domain — a federated bundle the agent also sends, say — never verifies
// the issuer's tokens. The verifier checks that a token's SPIFFE ID is in
// TrustDomain before it asks for keys.
type SPIFFESpec struct {
	// TrustDomain is the trust domain name, e.g. "example.org".
	TrustDomain string
	// WorkloadAPISocket is the SPIRE agent's Workload API address,
	// "unix:///run/spire/sockets/agent.sock" or "tcp://127.0.0.1:8000". The
	// bundle is streamed from it and kept current as the agent pushes
	// updates; a lost connection is re-established with backoff.
	WorkloadAPISocket string
	// BundleEndpointURL is a SPIFFE bundle endpoint, fetched again per the
	// bundle's spiffe_refresh_hint. Without BundleEndpointSPIFFEID it is
	// the https_web profile (system roots plus Spec.CAFile).
	BundleEndpointURL string
	// BundleEndpointSPIFFEID selects the https_spiffe profile: the
	// endpoint must present an X509-SVID with this ID, verified against
	// Spec.CAFile (PEM certificates or a SPIFFE bundle of the endpoint's
	// trust domain) and, when the endpoint is of TrustDomain itself, against
	// the X.509 authorities of the last bundle it served.
	BundleEndpointSPIFFEID string
	// BundleFile is a SPIFFE bundle, a JWK Set, or the JWT bundle file
	// spiffe-helper writes (jwt_bundle_file_name); it is re-read when it
	// changes.
	BundleFile string
}

// Kinds of SPIFFE source, for logs and errors.
const (
	kindSPIFFEWorkload = "spiffe.workload_api_socket"
	kindSPIFFEEndpoint = "spiffe.bundle_endpoint"
	kindSPIFFEFile     = "spiffe.bundle_file"
)

const (
	// useJWTSVID and useX509SVID are the SPIFFE bundle's "use" values.
	useJWTSVID  = "jwt-svid"
	useX509SVID = "x509-svid"

	// spiffeMinRefresh floors a bundle endpoint's spiffe_refresh_hint, so a
	// tiny hint cannot turn into a fetch loop; the ceiling is MaxRefresh.
	spiffeMinRefresh = 10 * time.Second
	// Workload API reconnects back off from half a second to 30s: the
	// agent is local, so a restart is usually over within seconds.
	spiffeReconnectBase = 500 * time.Millisecond
	spiffeReconnectMax  = 30 * time.Second
	// spiffeSweep is how often a running watcher checks whether a policy
	// reload has dropped it.
	spiffeSweep = time.Minute
)

// svidKeyRules accept bundle keys marked for JWT-SVIDs, or not marked at
// all (the Workload API's JWT bundles and SPIRE's JWKS often omit "use").
var svidKeyRules = keyRules{uses: []string{useJWTSVID}}

// spiffeKey is everything that decides what a SPIFFE source watches; a
// reload that keeps the issuer's spec keeps its running watcher.
type spiffeKey struct {
	label, td, kind, location, endpointID string
	insecure                              bool
	ca                                    [sha256.Size]byte
}

// claimKey is how the source is recorded in the plane's claims, so that a
// remote set the issuer used before is dropped, and so that a watcher a
// reload replaced notices it.
func (k spiffeKey) claimKey() entryKey {
	return entryKey{name: k.label, issuer: "spiffe://" + k.td,
		jwksURI: k.kind + " " + k.location + " " + k.endpointID, insecure: k.insecure, ca: k.ca}
}

// spiffeConf is the immutable part of a SPIFFE source.
type spiffeConf struct {
	key        spiffeKey
	td         spiffeid.TrustDomain
	target     string       // Workload API gRPC target
	client     *http.Client // bundle endpoint
	transport  *http.Transport
	endpointID spiffeid.ID // https_spiffe only
	roots      *x509Roots  // https_spiffe only
	initial    *spiffeState

	errUnknown error
	errRevoked error
	errOffline error
}

// spiffeState is one bundle as received. It is immutable.
type spiffeState struct {
	set       *Set
	skipped   []skippedKey
	loadedAt  time.Time
	refreshAt time.Time // bundle endpoint: next fetch
	staleAt   time.Time // zero: served until replaced
	info      os.FileInfo
	sum       [sha256.Size]byte
}

// spiffeSource is the handle the policy holds; the running watcher lives in
// the plane's SPIFFE registry so that reloads share it.
type spiffeSource struct {
	p    *Plane
	conf *spiffeConf
	r    atomic.Pointer[spiffeRunner]
}

// spiffeSource builds the source for a `spiffe` issuer. spec supplies the
// issuer's name, CAFile and AllowInsecureHTTP. Nothing here waits for the
// network: a Workload API or bundle endpoint source starts in the
// background, and its lookups fail with ErrUnavailable until the first
// bundle arrives. A bundle file is read now, so a malformed one is a load
// error; one not written yet (spiffe-helper still starting) is not.
func (p *Plane) spiffeSource(spec Spec, s SPIFFESpec) (Source, error) {
	label := spec.label()
	fail := func(format string, args ...any) (Source, error) {
		return nil, fmt.Errorf("keys: issuer %s: spiffe: "+format, append([]any{label}, args...)...)
	}
	td, err := spiffeid.TrustDomainFromString(s.TrustDomain)
	if err != nil || s.TrustDomain == "" || strings.Contains(s.TrustDomain, "://") {
		return fail("trust_domain %q is not a trust domain name", s.TrustDomain)
	}
	n := 0
	for _, on := range []bool{s.WorkloadAPISocket != "", s.BundleEndpointURL != "", s.BundleFile != ""} {
		if on {
			n++
		}
	}
	if n != 1 {
		return fail("exactly one of workload_api_socket, bundle_endpoint, bundle_file is required")
	}
	if s.BundleEndpointSPIFFEID != "" && s.BundleEndpointURL == "" {
		return fail("bundle_endpoint.spiffe_id needs bundle_endpoint.url")
	}
	conf := &spiffeConf{
		key:        spiffeKey{label: label, td: td.Name()},
		td:         td,
		errUnknown: fmt.Errorf("keys: issuer %s: %w", label, ErrUnknownKID),
		errRevoked: fmt.Errorf("keys: issuer %s: the bundle of trust domain %s has no JWT-SVID keys: every key is revoked: %w", label, td.Name(), ErrUnknownKID),
		errOffline: &unavailableError{label: label, cause: errors.New("offline: SPIFFE bundles are not fetched")},
	}
	var caPEM []byte
	if spec.CAFile != "" {
		if s.BundleEndpointURL == "" {
			return fail("ca_file applies only to bundle_endpoint")
		}
		if caPEM, err = os.ReadFile(spec.CAFile); err != nil {
			return fail("ca_file: %w", err)
		}
		conf.key.ca = sha256.Sum256(caPEM)
	}
	switch {
	case s.WorkloadAPISocket != "":
		conf.key.kind, conf.key.location = kindSPIFFEWorkload, s.WorkloadAPISocket
		if conf.target, err = workloadapi.TargetFromAddress(s.WorkloadAPISocket); err != nil {
			return fail("workload_api_socket %q: %w", s.WorkloadAPISocket, err)
		}
	case s.BundleEndpointURL != "":
		conf.key.kind, conf.key.location = kindSPIFFEEndpoint, s.BundleEndpointURL
		conf.key.endpointID, conf.key.insecure = s.BundleEndpointSPIFFEID, spec.AllowInsecureHTTP
		if err := p.spiffeEndpointClient(conf, s, caPEM); err != nil {
			return fail("bundle_endpoint: %w", err)
		}
	default:
		conf.key.kind, conf.key.location = kindSPIFFEFile, s.BundleFile
		st, err := p.readBundleFile(s.BundleFile, td, p.clock.Now())
		switch {
		case errors.Is(err, os.ErrNotExist):
			p.log.Warn("keys: SPIFFE bundle file not there yet; the issuer's tokens get 503 until it is written",
				"issuer", label, "path", s.BundleFile)
		case err != nil:
			return fail("bundle_file %s: %w", s.BundleFile, err)
		default:
			conf.initial = st
		}
	}
	src := &spiffeSource{p: p, conf: conf}
	src.r.Store(p.spiffeRunner(conf))
	p.claim(label, nil, conf.key.claimKey())
	return src, nil
}

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

// Keys implements Source.
func (s *spiffeSource) Keys(ctx context.Context, kid string) ([]*Key, error) {
	r := s.r.Load()
	if r.stopped.Load() {
		// A reload dropped the watcher while this policy still serves:
		// start (or find) it again, as an evicted remote set is refetched.
		r = s.p.spiffeRunner(s.conf)
		s.r.Store(r)
	}
	return r.keys(ctx, kid)
}

// prefetch waits until the source has its first answer — a bundle, or a
// failure to get one — or ctx ends, so that the first Checks after startup
// find keys. Plane.Prefetch calls it as it does for remote sources. A file
// is read when the policy loads and never waits.
func (s *spiffeSource) prefetch(ctx context.Context) {
	if s.p.cfg.Offline || s.conf.key.kind == kindSPIFFEFile {
		return
	}
	select {
	case <-s.r.Load().answered:
	case <-ctx.Done():
	}
}

// spiffeRegistry holds a plane's running SPIFFE watchers by spec. It lives
// beside the plane rather than in it only so that this file stands alone;
// it is dropped, and its watchers stopped, when the plane closes.
type spiffeRegistry struct {
	mu      sync.Mutex
	runners map[spiffeKey]*spiffeRunner
}

var spiffeRegistries sync.Map // *Plane -> *spiffeRegistry

func (p *Plane) spiffeRunner(conf *spiffeConf) *spiffeRunner {
	v, loaded := spiffeRegistries.LoadOrStore(p, &spiffeRegistry{runners: map[spiffeKey]*spiffeRunner{}})
	reg := v.(*spiffeRegistry)
	if !loaded {
		context.AfterFunc(p.ctx, func() {
			spiffeRegistries.Delete(p)
			reg.mu.Lock()
			defer reg.mu.Unlock()
			for _, r := range reg.runners {
				r.stopLocked()
			}
			clear(reg.runners)
		})
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if r := reg.runners[conf.key]; r != nil {
		return r
	}
	r := &spiffeRunner{p: p, conf: conf, reg: reg, answered: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancel(p.ctx)
	if conf.initial != nil {
		r.cur.Store(conf.initial)
		r.p.m.skipped(conf.key.label, conf.initial.skipped)
	}
	if p.closed.Load() || p.ctx.Err() != nil {
		r.stopped.Store(true)
		return r
	}
	reg.runners[conf.key] = r
	r.nextCheck.Store(p.clock.Now().Add(p.cfg.FilePollInterval).UnixNano())
	r.run()
	return r
}

// spiffeRunner watches one trust domain's bundle from one place.
type spiffeRunner struct {
	p      *Plane
	conf   *spiffeConf
	reg    *spiffeRegistry
	ctx    context.Context
	cancel context.CancelFunc

	cur       atomic.Pointer[spiffeState]
	answered  chan struct{} // closed by the first bundle or failure
	answer    sync.Once
	stopped   atomic.Bool
	nextCheck atomic.Int64 // bundle file: unix ns of the next change check
	checking  atomic.Bool

	mu        sync.Mutex
	inflight  chan struct{} // bundle endpoint fetch in flight
	lastStart time.Time
	failures  int
	retryAt   time.Time
	timer     Timer // bundle endpoint: next fetch
	sweep     Timer
	lastErr   error
	lastErrAt time.Time
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
		r.reg.mu.Lock()
		if r.reg.runners[r.conf.key] == r {
			delete(r.reg.runners, r.conf.key)
		}
		r.stopLocked()
		r.reg.mu.Unlock()
		return
	}
	r.mu.Lock()
	if !r.stopped.Load() {
		r.sweep = r.p.clock.AfterFunc(spiffeSweep, r.checkSuperseded)
	}
	r.mu.Unlock()
}

// stopLocked ends the watcher; the registry's lock is held.
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
		if now.UnixNano() >= r.nextCheck.Load() {
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
		return nil, r.conf.errRevoked
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
					return nil, r.conf.errRevoked
				}
				if ks := lookup(st.set, kid); ks != nil {
					return ks, nil
				}
			}
		} else {
			r.p.m.suppressedRefetch(r.conf.key.label)
		}
	}
	return nil, r.conf.errUnknown
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
	r.lastErr = nil
	r.mu.Unlock()
	r.p.m.fetched(r.conf.key.label, outcomeSuccess)
	if prev != nil && prev.sum == st.sum && !recovered {
		return
	}
	r.p.m.skipped(r.conf.key.label, st.skipped)
	log := r.p.log.With("issuer", r.conf.key.label, "trust_domain", r.conf.td.Name(), "source", r.conf.key.kind, "location", r.conf.key.location)
	for _, sk := range st.skipped {
		log.Warn("keys: bundle key skipped", "key", sk.String())
	}
	if st.set.Len() == 0 {
		log.Warn("keys: SPIFFE bundle has no JWT-SVID keys; every token of the trust domain is refused until keys return")
		return
	}
	kids := make([]string, 0, st.set.Len())
	for _, k := range st.set.All() {
		kids = append(kids, k.ID)
	}
	log.Info("keys: SPIFFE bundle loaded", "keys", st.set.Len(), "kids", kids)
}

// --- Workload API ---

// watchWorkloadAPI streams the JWT bundles from the agent for as long as the
// plane and the policy want them, reconnecting with backoff whenever the
// stream breaks (the agent restarted, or has no identity for us yet).
func (r *spiffeRunner) watchWorkloadAPI() {
	defer r.p.fetchs.Done()
	log := r.p.log.With("issuer", r.conf.key.label, "socket", r.conf.key.location)
	conn, err := grpc.NewClient(r.conf.target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// gRPC's own reconnect backoff grows to two minutes; a local agent
		// that restarted should be found again within seconds.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: spiffeReconnectBase, Multiplier: 1.6, Jitter: 0.2, MaxDelay: spiffeReconnectMax},
			MinConnectTimeout: 5 * time.Second,
		}))
	if err != nil {
		r.fail(fmt.Errorf("keys: workload API %s: %w", r.conf.key.location, err), r.p.clock.Now())
		log.Error("keys: cannot reach the Workload API", "error", err)
		return
	}
	defer conn.Close()
	api := workload.NewSpiffeWorkloadAPIClient(conn)
	// The Workload API refuses calls without this header, a guard against
	// SSRF through proxies that forward to the socket.
	ctx := metadata.AppendToOutgoingContext(r.ctx, "workload.spiffe.io", "true")
	failures := 0
	for {
		got, err := r.streamBundles(ctx, api)
		if r.ctx.Err() != nil {
			return
		}
		if got {
			failures = 0
		}
		failures++
		now := r.p.clock.Now()
		r.fail(&fetchError{outcome: outcomeNetwork, url: r.conf.key.location, err: err}, now)
		r.markStale(now)
		switch {
		case failures == 1 && r.cur.Load() == nil:
			log.Warn("keys: Workload API gives no bundle yet; retrying, the issuer's tokens get 503 meanwhile", "error", err)
		case failures == 1:
			log.Warn("keys: Workload API stream ended; reconnecting, serving the last bundle meanwhile", "error", err)
		default:
			log.Debug("keys: Workload API still unreachable", "error", err, "failures", failures)
		}
		d := spiffeReconnectBase
		for i := 1; i < failures && d < spiffeReconnectMax; i++ {
			d *= 2
		}
		d = jitter(min(d, spiffeReconnectMax))
		r.mu.Lock()
		r.retryAt = now.Add(d)
		r.mu.Unlock()
		wake := make(chan struct{})
		t := r.p.clock.AfterFunc(d, func() { close(wake) })
		select {
		case <-wake:
		case <-r.ctx.Done():
			t.Stop()
			return
		}
	}
}

// streamBundles reads one FetchJWTBundles stream until it breaks; got
// reports whether any bundle arrived.
func (r *spiffeRunner) streamBundles(ctx context.Context, api workload.SpiffeWorkloadAPIClient) (got bool, err error) {
	stream, err := api.FetchJWTBundles(ctx, &workload.JWTBundlesRequest{})
	if err != nil {
		return false, err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return got, err
		}
		got = true
		r.applyWorkloadBundles(resp.GetBundles())
	}
}

// applyWorkloadBundles takes the bundle of our trust domain from an update.
// The update is the agent's whole view: when it has no bundle for the trust
// domain, the trust domain has no keys.
func (r *spiffeRunner) applyWorkloadBundles(bundles map[string][]byte) {
	now := r.p.clock.Now()
	var data []byte
	for id, b := range bundles {
		if td, err := spiffeid.TrustDomainFromString(id); err == nil && td == r.conf.td {
			data = b
			break
		}
	}
	if data == nil {
		r.publish(&spiffeState{set: NewSet(nil), loadedAt: now})
		return
	}
	doc, err := parseSPIFFEBundle(data)
	if err != nil {
		// A malformed update is a broken agent, not a revocation: keep
		// what we have.
		r.fail(&fetchError{outcome: outcomeInvalid, url: r.conf.key.location, err: err}, now)
		r.p.log.Error("keys: Workload API sent a malformed bundle; keeping the last one", "issuer", r.conf.key.label, "error", err)
		return
	}
	r.publish(&spiffeState{set: doc.set, skipped: doc.skipped, loadedAt: now, sum: sha256.Sum256(data)})
}

// markStale starts the clock on the current bundle once the stream is
// gone: it is served for MaxStale more, then the issuer is unavailable.
func (r *spiffeRunner) markStale(now time.Time) {
	st := r.cur.Load()
	if st == nil || !st.staleAt.IsZero() {
		return
	}
	cp := *st
	cp.staleAt = now.Add(r.p.cfg.MaxStale)
	r.cur.CompareAndSwap(st, &cp)
}

// --- bundle endpoint ---

// startFetch starts a bundle endpoint fetch if why allows it now, and
// returns the one in flight, or nil.
func (r *spiffeRunner) startFetch(now time.Time, why trigger) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inflight != nil {
		return r.inflight
	}
	if r.stopped.Load() || now.Before(r.retryAt) {
		return nil
	}
	if why == trigUnknownKID && now.Before(r.lastStart.Add(r.p.cfg.RefetchCooldown)) {
		return nil
	}
	if !r.track() {
		return nil
	}
	c := make(chan struct{})
	r.inflight, r.lastStart = c, now
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	go r.fetchEndpoint(c)
	return c
}

func (r *spiffeRunner) wait(ctx context.Context, c chan struct{}) {
	select {
	case <-c:
		return
	default:
	}
	expired := make(chan struct{})
	t := r.p.clock.AfterFunc(r.p.cfg.FetchWait, func() { close(expired) })
	defer t.Stop()
	select {
	case <-c:
	case <-expired:
	case <-ctx.Done():
	}
}

func (r *spiffeRunner) fetchEndpoint(c chan struct{}) {
	defer r.p.fetchs.Done()
	ctx, cancel := context.WithCancelCause(r.ctx)
	t := r.p.clock.AfterFunc(r.p.cfg.FetchTimeout, func() { cancel(errFetchTimeout) })
	start := r.p.clock.Now()
	st, err := r.fetchBundle(ctx)
	t.Stop()
	cancel(nil)
	now := r.p.clock.Now()
	r.p.m.fetchLatency(r.conf.key.label, now.Sub(start))

	var next time.Time
	if err == nil {
		r.publish(st)
		next = st.refreshAt
	} else {
		r.fail(err, now)
		log := r.p.log.With("issuer", r.conf.key.label, "url", r.conf.key.location, "error", err)
		if r.cur.Load() != nil {
			log.Warn("keys: bundle endpoint fetch failed; serving the last bundle")
		} else {
			log.Error("keys: bundle endpoint fetch failed; the issuer's tokens get 503 until a fetch succeeds")
		}
	}
	r.mu.Lock()
	if err == nil {
		r.failures, r.retryAt = 0, time.Time{}
	} else {
		r.failures++
		d := baseBackoff
		for i := 1; i < r.failures && d < maxBackoff; i++ {
			d *= 2
		}
		r.retryAt = now.Add(jitter(min(d, maxBackoff)))
		next = r.retryAt
	}
	r.inflight = nil
	if !r.stopped.Load() {
		r.timer = r.p.clock.AfterFunc(next.Sub(now), func() {
			r.startFetch(r.p.clock.Now(), trigRefresh)
		})
	}
	r.mu.Unlock()
	close(c)
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

// --- bundle file ---

// recheckFile re-reads the bundle file if it changed, at most once per
// FilePollInterval. A file that cannot be parsed (spiffe-helper halfway
// through writing it) keeps the last bundle; a parsed one without keys
// revokes them all.
func (r *spiffeRunner) recheckFile(now time.Time) {
	if !r.checking.CompareAndSwap(false, true) {
		return
	}
	defer r.checking.Store(false)
	r.nextCheck.Store(now.Add(r.p.cfg.FilePollInterval).UnixNano())
	old := r.cur.Load()
	if fi, err := os.Stat(r.conf.key.location); err == nil && old != nil && old.info != nil && sameFile(fi, old.info) {
		return
	}
	st, err := r.p.readBundleFile(r.conf.key.location, r.conf.td, now)
	if err != nil {
		r.mu.Lock()
		repeated := r.lastErr != nil && r.lastErr.Error() == err.Error()
		r.mu.Unlock()
		r.fail(&fetchError{outcome: outcomeInvalid, url: r.conf.key.location, err: err}, now)
		if !repeated && !(errors.Is(err, os.ErrNotExist) && old == nil) {
			r.p.log.Error("keys: reading the SPIFFE bundle file failed; keeping the last bundle",
				"issuer", r.conf.key.label, "path", r.conf.key.location, "error", err)
		}
		return
	}
	if old != nil && st.sum == old.sum {
		cp := *old
		cp.info = st.info
		r.cur.Store(&cp)
		return
	}
	r.publish(st)
}

func (p *Plane) readBundleFile(path string, td spiffeid.TrustDomain, now time.Time) (*spiffeState, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, p.cfg.MaxBodyBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > p.cfg.MaxBodyBytes {
		return nil, fmt.Errorf("larger than %d bytes", p.cfg.MaxBodyBytes)
	}
	doc, err := parseBundleFile(data, td)
	if err != nil {
		return nil, err
	}
	return &spiffeState{set: doc.set, skipped: doc.skipped, loadedAt: now, info: fi, sum: sha256.Sum256(data)}, nil
}

// parseBundleFile reads a bundle file in any of the forms operators have:
// a SPIFFE bundle (`spire-server bundle show -format spiffe`), a plain JWK
// Set, or the file spiffe-helper writes for jwt_bundle_file_name — a JSON
// object from trust domain name to the base64 of that trust domain's JWK
// Set, for every trust domain the agent knows. In the last form a trust
// domain missing from the file has no keys, as in a Workload API update.
func parseBundleFile(data []byte, td spiffeid.TrustDomain) (*spiffeBundle, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("not a SPIFFE bundle, JWK Set or spiffe-helper JWT bundle file: %w", err)
	}
	if _, ok := top["keys"]; ok {
		return parseSPIFFEBundle(data)
	}
	var helper map[string]string
	if err := json.Unmarshal(data, &helper); err != nil {
		return nil, errors.New(`not a SPIFFE bundle, JWK Set or spiffe-helper JWT bundle file: no "keys" array, and not an object of base64 strings`)
	}
	// Every entry is checked, not only ours, so that a file of some other
	// shape is not mistaken for a bundle set without our trust domain.
	out := &spiffeBundle{set: NewSet(nil)}
	for name, enc := range helper {
		other, err := spiffeid.TrustDomainFromString(name)
		if err != nil {
			return nil, fmt.Errorf("spiffe-helper JWT bundle file: %q is not a trust domain", name)
		}
		jwks, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return nil, fmt.Errorf("spiffe-helper JWT bundle of %s: %w", name, err)
		}
		if other != td {
			continue
		}
		if out, err = parseSPIFFEBundle(jwks); err != nil {
			return nil, fmt.Errorf("spiffe-helper JWT bundle of %s: %w", name, err)
		}
	}
	return out, nil
}

// --- bundle documents ---

// spiffeBundle is what a SPIFFE bundle (or plain JWK Set) holds for us.
type spiffeBundle struct {
	set         *Set
	skipped     []skippedKey
	roots       []*x509.Certificate // x509-svid authorities
	refreshHint time.Duration
}

// parseSPIFFEBundle reads a SPIFFE bundle (SPIFFE Trust Domain and Bundle
// §4) or a plain JWK Set, as the Workload API and spiffe-helper give it.
// x509-svid entries are X.509 authorities, kept apart; the JWT-SVID keys
// pass the same hygiene rules as any JWKS key, must carry use "jwt-svid"
// when they carry use at all, and must have a kid, which the bundle format
// requires of JWT authorities. An empty "keys" array is a valid bundle with
// no keys; a missing one is not a bundle.
func parseSPIFFEBundle(data []byte) (*spiffeBundle, error) {
	var doc struct {
		Keys        *[]json.RawMessage `json:"keys"`
		RefreshHint *int64             `json:"spiffe_refresh_hint"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not a SPIFFE bundle or JWK Set: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New(`not a SPIFFE bundle or JWK Set: no "keys" array`)
	}
	if len(*doc.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("bundle has %d keys, more than %d", len(*doc.Keys), maxJWKSKeys)
	}
	out := &spiffeBundle{}
	if doc.RefreshHint != nil && *doc.RefreshHint > 0 {
		out.refreshHint = time.Duration(min(*doc.RefreshHint, int64(365*24*time.Hour/time.Second))) * time.Second
	}
	var keys []*Key
	for i, raw := range *doc.Keys {
		var f struct {
			Use *string  `json:"use"`
			Kid *string  `json:"kid"`
			X5C []string `json:"x5c"`
		}
		_ = json.Unmarshal(raw, &f) // parseJWK reports a malformed entry
		kid := ""
		if f.Kid != nil {
			kid = *f.Kid
		}
		if f.Use != nil && *f.Use == useX509SVID {
			if len(f.X5C) != 1 {
				out.skipped = append(out.skipped, skippedKey{Index: i, KID: kid, Reason: skipMalformed,
					Detail: fmt.Sprintf("x509-svid authority with %d certificates, want 1", len(f.X5C))})
				continue
			}
			der, err := base64.StdEncoding.DecodeString(f.X5C[0])
			var cert *x509.Certificate
			if err == nil {
				cert, err = x509.ParseCertificate(der)
			}
			if err != nil {
				out.skipped = append(out.skipped, skippedKey{Index: i, KID: kid, Reason: skipMalformed,
					Detail: fmt.Sprintf("x509-svid authority: %v", err)})
				continue
			}
			out.roots = append(out.roots, cert)
			continue
		}
		k, sk := parseJWK(raw, svidKeyRules)
		switch {
		case k == nil:
			sk.Index = i
			out.skipped = append(out.skipped, sk)
		case k.ID == "":
			out.skipped = append(out.skipped, skippedKey{Index: i, Reason: skipMalformed,
				Detail: "JWT-SVID key without kid; a SPIFFE bundle requires one"})
		default:
			keys = append(keys, k)
		}
	}
	out.set = NewSet(keys)
	return out, nil
}
