package keys

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Spec is what the policy says about one issuer's keys. Exactly one source
// field is set.
type Spec struct {
	// Issuer is the configured iss. Discovery fetches
	// Issuer + "/.well-known/openid-configuration", then the RFC 8414
	// document, and requires the discovered issuer to equal it.
	Issuer string
	// Name is the issuer's policy name, for metric labels, logs and
	// /debug/keys.
	Name string

	JWKSURI        string
	JWKS           []byte // inline JWK Set JSON
	JWKSFile       string
	PEMFile        string
	HMACSecretFile string
	Discovery      bool
	// SPIFFE is a trust bundle source for JWT-SVIDs.
	SPIFFE *SPIFFESpec

	// CAFile adds trust roots for fetching this issuer's keys over HTTPS.
	CAFile string
	// AllowInsecureHTTP permits http:// key URLs on hosts other than
	// loopback.
	AllowInsecureHTTP bool
}

// Config tunes the plane. Zero fields take the defaults below; negative
// durations and sizes are errors.
type Config struct {
	CacheSize           int           // issuers whose remote key sets are cached; default 10000
	MinRefresh          time.Duration // floor of the refresh interval; default 5m
	MaxRefresh          time.Duration // ceiling of the refresh interval; default 24h
	RefetchCooldown     time.Duration // per issuer, between unknown-kid refetches; default 30s
	MaxStale            time.Duration // how long past its refresh a set is served while refreshes fail; default 24h
	FetchWait           time.Duration // longest a lookup waits on the network; default 150ms
	FetchTimeout        time.Duration // per HTTP request; default 5s
	MaxBodyBytes        int64         // cap on a fetched document or read key file; default 1 MiB
	PrefetchConcurrency int           // parallel fetches in Prefetch; default 8
	FilePollInterval    time.Duration // how often key files are checked for changes; default 1s

	Clock      Clock // nil: the real clock
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: no metrics
	// Offline builds sources and checks local files but never fetches,
	// for `extauthz validate`.
	Offline bool
}

// Defaults, exported so the binary's flags show the same values.
const (
	DefaultCacheSize           = 10000
	DefaultMinRefresh          = 5 * time.Minute
	DefaultMaxRefresh          = 24 * time.Hour
	DefaultRefetchCooldown     = 30 * time.Second
	DefaultMaxStale            = 24 * time.Hour
	DefaultFetchWait           = 150 * time.Millisecond
	DefaultFetchTimeout        = 5 * time.Second
	DefaultMaxBodyBytes        = 1 << 20
	DefaultPrefetchConcurrency = 8
	DefaultFilePollInterval    = time.Second
)

func (c *Config) setDefaults() error {
	durs := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"min refresh", &c.MinRefresh, DefaultMinRefresh},
		{"max refresh", &c.MaxRefresh, DefaultMaxRefresh},
		{"refetch cooldown", &c.RefetchCooldown, DefaultRefetchCooldown},
		{"max stale", &c.MaxStale, DefaultMaxStale},
		{"fetch wait", &c.FetchWait, DefaultFetchWait},
		{"fetch timeout", &c.FetchTimeout, DefaultFetchTimeout},
		{"file poll interval", &c.FilePollInterval, DefaultFilePollInterval},
	}
	for _, d := range durs {
		if *d.v < 0 {
			return fmt.Errorf("keys: %s must be positive, got %s", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.MinRefresh > c.MaxRefresh {
		return fmt.Errorf("keys: min refresh %s exceeds max refresh %s", c.MinRefresh, c.MaxRefresh)
	}
	if c.CacheSize < 0 || c.MaxBodyBytes < 0 || c.PrefetchConcurrency < 0 {
		return errors.New("keys: cache size, body size and prefetch concurrency must be positive")
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.PrefetchConcurrency == 0 {
		c.PrefetchConcurrency = DefaultPrefetchConcurrency
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Plane owns every issuer's key source: the shared per-issuer cache of
// remote key sets, their background refresh, and the static sources read from
// configuration.
type Plane struct {
	cfg   Config
	clock Clock
	log   *slog.Logger
	m     *metrics

	// cache holds remote key sets by everything that determines what is
	// fetched, so a policy reload that keeps an issuer keeps its set.
	cache *lru.Cache[entryKey, *entry]

	ctx    context.Context // ends in-flight fetches on Close
	cancel context.CancelFunc
	// closeMu orders fetchs.Add before Close's Wait: a fetch starts only
	// under its read lock while closed is false.
	closeMu sync.RWMutex
	closed  atomic.Bool
	fetchs  sync.WaitGroup // in-flight fetches

	mu sync.Mutex
	// statics and remotes record the latest source built for each issuer
	// name, for /debug/keys and the metrics, and so that a reload which
	// changes an issuer's source lets the old cached set go.
	statics    map[string]*staticSource
	remotes    map[string]entryKey
	transports map[[sha256.Size]byte]*http.Transport

	// spiffe holds the running SPIFFE watchers, shared across reloads.
	spiffe spiffeWatchers
}

// NewPlane returns a plane configured by cfg.
func NewPlane(cfg Config) (*Plane, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Plane{
		cfg:        cfg,
		clock:      cfg.Clock,
		log:        cfg.Logger,
		ctx:        ctx,
		cancel:     cancel,
		statics:    make(map[string]*staticSource),
		remotes:    make(map[string]entryKey),
		transports: make(map[[sha256.Size]byte]*http.Transport),
	}
	cache, err := lru.NewWithEvict(cfg.CacheSize, p.evicted)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("keys: %w", err)
	}
	p.cache = cache
	m, err := newMetrics(cfg.Registerer, p)
	if err != nil {
		cancel()
		return nil, err
	}
	p.m = m
	return p, nil
}

// Source builds the source for spec. Local material is read and checked now,
// so a bad file is a policy load error; remote sources are not fetched here,
// and a spec equal to one seen before shares its cached key set.
func (p *Plane) Source(spec Spec) (Source, error) {
	label := spec.label()
	var set []string
	for _, f := range []struct {
		name string
		on   bool
	}{
		{"jwks_uri", spec.JWKSURI != ""},
		{"jwks", len(spec.JWKS) > 0},
		{"jwks_file", spec.JWKSFile != ""},
		{"pem_file", spec.PEMFile != ""},
		{"hmac_secret_file", spec.HMACSecretFile != ""},
		{"discovery", spec.Discovery},
		{"spiffe", spec.SPIFFE != nil},
	} {
		if f.on {
			set = append(set, f.name)
		}
	}
	if len(set) != 1 {
		if len(set) == 0 {
			return nil, fmt.Errorf("keys: issuer %s: no key source given", label)
		}
		return nil, fmt.Errorf("keys: issuer %s: exactly one key source allowed, got %s", label, strings.Join(set, ", "))
	}
	switch {
	case spec.JWKSURI != "", spec.Discovery:
		return p.remoteSource(spec, label)
	case spec.SPIFFE != nil:
		return p.spiffeSource(spec, *spec.SPIFFE)
	case spec.CAFile != "":
		return nil, fmt.Errorf("keys: issuer %s: ca_file applies only to jwks_uri and discovery", label)
	case len(spec.JWKS) > 0:
		return p.inlineSource(spec, label)
	case spec.JWKSFile != "":
		return p.fileSource(label, kindJWKSFile, spec.JWKSFile)
	case spec.PEMFile != "":
		return p.fileSource(label, kindPEMFile, spec.PEMFile)
	default:
		return p.fileSource(label, kindHMACFile, spec.HMACSecretFile)
	}
}

// claim records that issuer label is now served by static source s, or by
// the remote set with key k. The set it replaces is not dropped here — the
// old policy may serve a while longer — but at its next refresh (superseded).
func (p *Plane) claim(label string, s *staticSource, k entryKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s != nil {
		p.statics[label] = s
		delete(p.remotes, label)
	} else {
		delete(p.statics, label)
		p.remotes[label] = k
	}
}

// superseded reports whether a reload has given issuer label another source
// than the remote set k.
func (p *Plane) superseded(label string, k entryKey) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur, ok := p.remotes[label]
	return !ok || cur != k
}

// Retain tells the plane which sources the serving policy holds; the policy
// calls it when it swaps in a new snapshot, with every issuer's source.
// Every issuer of the plane whose source is not among srcs — removed from
// the policy, or given another source — stops refreshing at once: its
// cached set is dropped, its SPIFFE watcher stopped, and it leaves
// /debug/keys and the metrics. Without this, a removed remote issuer would
// go on being refreshed until the LRU evicted it, which a small policy
// never makes it do. A Check still in flight on the old snapshot that asks
// a dropped source gets its keys fetched again, as after an eviction, and
// that set is dropped at its next refresh. Sources of another plane, and
// nil ones, are ignored.
func (p *Plane) Retain(srcs []Source) {
	remotes := make(map[string]entryKey, len(srcs))
	statics := make(map[string]*staticSource, len(srcs))
	cached := make(map[entryKey]bool, len(srcs))
	watched := make(map[spiffeKey]bool)
	for _, src := range srcs {
		switch s := src.(type) {
		case *remoteSource:
			if s.p == p {
				remotes[s.conf.label] = s.conf.key
				cached[s.conf.key] = true
			}
		case *spiffeSource:
			if s.p == p {
				remotes[s.conf.key.label] = s.conf.key.claimKey()
				watched[s.conf.key] = true
			}
		case *staticSource:
			if s.p == p {
				statics[s.label] = s
			}
		case hmacSource:
			if s.p == p {
				statics[s.label] = s.staticSource
			}
		}
	}
	// The claims become exactly the retained sources, so that what a
	// reload that failed halfway through compiling claimed is undone too.
	p.mu.Lock()
	p.remotes, p.statics = remotes, statics
	p.mu.Unlock()
	for _, k := range p.cache.Keys() {
		if !cached[k] {
			p.drop(k)
		}
	}
	w := &p.spiffe
	w.mu.Lock()
	for k, r := range w.runners {
		if !watched[k] {
			r.stopLocked()
			delete(w.runners, k)
		}
	}
	w.mu.Unlock()
}

// label names the issuer in metrics, logs and errors.
func (s Spec) label() string {
	switch {
	case s.Name != "":
		return s.Name
	case s.Issuer != "":
		return s.Issuer
	case s.JWKSURI != "":
		return s.JWKSURI
	}
	return "unnamed"
}

// Prefetch fetches every remote source in srcs that has no fresh key set,
// at most PrefetchConcurrency at a time, and returns when each has an answer
// or ctx ends. Failures are logged and counted, not returned: the sources
// keep retrying in the background and their Checks get 503 until then.
func (p *Plane) Prefetch(ctx context.Context, srcs []Source) {
	if p.cfg.Offline {
		return
	}
	sem := make(chan struct{}, p.cfg.PrefetchConcurrency)
	var wg sync.WaitGroup
	for _, src := range srcs {
		// A SPIFFE source waits for its first bundle (the Workload API
		// streams it; no fetch slot is taken).
		if ss, ok := src.(*spiffeSource); ok {
			wg.Go(func() { ss.prefetch(ctx) })
			continue
		}
		rs, ok := src.(*remoteSource)
		if !ok {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			rs.prefetch(ctx)
		})
	}
	wg.Wait()
}

// Close stops background refreshes and ends in-flight fetches.
func (p *Plane) Close() error {
	p.closeMu.Lock()
	wasClosed := p.closed.Swap(true)
	p.closeMu.Unlock()
	if wasClosed {
		return nil
	}
	p.cancel()
	p.stopSPIFFE()
	for _, k := range p.cache.Keys() {
		if e, ok := p.cache.Peek(k); ok {
			e.stop()
		}
	}
	p.fetchs.Wait()
	p.mu.Lock()
	for _, t := range p.transports {
		t.CloseIdleConnections()
	}
	p.mu.Unlock()
	return nil
}

// lookup returns the keys of set for kid. Keys without a kid (PEM keys, HMAC
// secrets, some JWKS) may verify a token whatever kid it names: a kid is a
// hint to pick among keys, and such keys cannot be picked by it.
func lookup(set *Set, kid string) []*Key {
	if ks := set.Lookup(kid); len(ks) > 0 {
		return ks
	}
	if kid != "" && set != nil && len(set.anon) > 0 {
		return set.anon
	}
	return nil
}
