package keys

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
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
// the plane (Plane.spiffe) so that reloads share it.
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
			// At load there is someone to tell: a key left out for its
			// "use" is a mistake in the file (most often "sig", copied
			// from an OIDC JWKS), which at run time would deny every SVID
			// it signed. A re-read skips it like any unusable key.
			if f := useFaults(st.skipped); f != "" {
				return fail("bundle_file %s: %s", s.BundleFile, f)
			}
			logBundleFaults(conf.logger(p.log), st)
			conf.initial = st
		}
	}
	src := &spiffeSource{p: p, conf: conf}
	src.r.Store(p.spiffeRunner(conf))
	p.claim(label, nil, conf.key.claimKey())
	return src, nil
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
