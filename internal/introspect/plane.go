package introspect

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/extauthz/extauthz/internal/keys"
)

// Client authentication methods (RFC 7591 token_endpoint_auth_method names).
const (
	ClientSecretBasic = "client_secret_basic"
	PrivateKeyJWT     = "private_key_jwt"
	TLSClientAuth     = "tls_client_auth"
)

// Defaults of the schema's optional fields.
const (
	DefaultTokenTypeHint  = "access_token"
	DefaultCacheTTL       = 60 * time.Second
	DefaultNegativeTTL    = 10 * time.Second
	DefaultCacheSize      = 10000
	DefaultMaxConcurrency = 16
	DefaultTimeout        = 2 * time.Second
	// MaxResponseBytes bounds a response body: real ones are well under
	// 4 KiB.
	MaxResponseBytes = 64 << 10
)

// Config is what every introspection client of the process shares.
type Config struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: no metrics
	// Offline builds clients (reading their files) but never calls an
	// endpoint: every lookup is ErrUnavailable, as remote keys are for
	// `extauthz validate` and `extauthz test`.
	Offline bool
}

// Plane builds the clients and keeps them across policy reloads: a reload
// that leaves an issuer's introspection settings (and the files they name)
// as they were keeps its client, so its cache and connections survive.
type Plane struct {
	cfg Config
	log *slog.Logger
	m   *metrics

	mu      sync.Mutex
	clients map[string]*planeEntry // by issuer name
}

// NewPlane returns a plane; it registers its metrics with cfg.Registerer.
func NewPlane(cfg Config) (*Plane, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Plane{cfg: cfg, log: cfg.Logger, m: m, clients: map[string]*planeEntry{}}, nil
}

// Spec is one issuer's introspection settings, as the policy gives them.
type Spec struct {
	// Name is the issuer's policy name, for metric labels and logs.
	Name string
	// Issuer is the configured iss: discovery looks up its RFC 8414
	// metadata, and a JWT response must name it.
	Issuer string
	// Endpoint is the introspection endpoint; with Discovery it is found
	// from the issuer's metadata instead.
	Endpoint  string
	Discovery bool

	ClientID         string
	Method           string
	ClientSecretFile string
	PrivateKeyFile   string
	Algorithm        string
	KeyID            string
	CertFile         string
	KeyFile          string

	// TokenTypeHint is sent as token_type_hint; "" sends none.
	TokenTypeHint  string
	CacheTTL       time.Duration
	NegativeTTL    time.Duration
	CacheSize      int
	MaxConcurrency int
	Timeout        time.Duration

	// JWTResponse asks for RFC 9701 signed responses, verified with Keys
	// under the Algorithms allow-list.
	JWTResponse bool
	Keys        keys.Source
	Algorithms  []string

	// CAFile adds trust roots for the endpoint; AllowInsecureHTTP permits
	// http:// on other hosts than loopback. They are the issuer's own
	// settings for its key fetches.
	CAFile            string
	AllowInsecureHTTP bool
}

// reuseKey is everything that decides what a client does, file contents
// included; a JWT-response client is never reused, as its key source is
// the new policy's.
type reuseKey struct {
	name, issuer, endpoint, clientID, method, alg, kid, hint, algs string
	discovery, insecure                                            bool
	cacheTTL, negTTL, timeout                                      time.Duration
	size, conc                                                     int
	material                                                       [sha256.Size]byte
}

type planeEntry struct {
	*Client
	reuse reuseKey
}

// Client introspects the tokens of one issuer.
type Client struct {
	spec   Spec
	label  string
	log    *slog.Logger
	m      *metrics
	http   *http.Client
	auth   authenticator
	cache  *cache
	flight flight
	slots  chan struct{}
	// endpoint is the configured endpoint, or "" until discovery finds it.
	endpoint endpointState
	// down is set while the endpoint fails, so an outage is logged once
	// when it starts and once when it ends, not once per Check.
	down    downState
	offline bool
}

// Client builds the client for spec, reading its secret, key and
// certificate files now, so a bad file is a policy load error.
func (p *Plane) Client(spec Spec) (*Client, error) {
	label := spec.Name
	fail := func(format string, args ...any) (*Client, error) {
		return nil, fmt.Errorf("introspect: issuer %s: "+format, append([]any{label}, args...)...)
	}
	if spec.TokenTypeHint != "" && strings.ContainsAny(spec.TokenTypeHint, " \t\r\n") {
		return fail("token_type_hint %q has white space", spec.TokenTypeHint)
	}
	if spec.CacheTTL <= 0 || spec.NegativeTTL <= 0 || spec.Timeout <= 0 {
		return fail("cache_ttl, negative_cache_ttl and timeout must be positive")
	}
	if spec.CacheSize <= 0 || spec.MaxConcurrency <= 0 {
		return fail("cache_size and max_concurrency must be positive")
	}
	if spec.ClientID == "" {
		return fail("client.client_id is required")
	}
	if spec.Discovery {
		if spec.Endpoint != "" {
			return fail("give endpoint or discovery, not both")
		}
		u, err := keys.CheckURL(spec.Issuer, spec.AllowInsecureHTTP)
		if err != nil {
			return fail("discovery: issuer: %w", err)
		}
		if u.RawQuery != "" {
			return fail("discovery: issuer URL has a query")
		}
	} else if _, err := keys.CheckURL(spec.Endpoint, spec.AllowInsecureHTTP); err != nil {
		return fail("endpoint: %w", err)
	}
	if spec.JWTResponse && spec.Keys == nil {
		return fail("jwt_response needs the issuer's key source to verify responses")
	}

	h := sha256.New()
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if spec.CAFile != "" {
		pem, err := os.ReadFile(spec.CAFile)
		if err != nil {
			return fail("ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return fail("ca_file %s: no PEM certificates found", spec.CAFile)
		}
		tlsConf.RootCAs = pool
		h.Write(pem)
	}
	auth, err := newAuth(spec, tlsConf, h)
	if err != nil {
		return fail("%w", err)
	}

	key := reuseKey{
		name: spec.Name, issuer: spec.Issuer, endpoint: spec.Endpoint, clientID: spec.ClientID,
		method: spec.Method, alg: spec.Algorithm, kid: spec.KeyID, hint: spec.TokenTypeHint,
		algs: strings.Join(spec.Algorithms, " "), discovery: spec.Discovery, insecure: spec.AllowInsecureHTTP,
		cacheTTL: spec.CacheTTL, negTTL: spec.NegativeTTL, timeout: spec.Timeout,
		size: spec.CacheSize, conc: spec.MaxConcurrency,
	}
	copy(key.material[:], h.Sum(nil))
	p.mu.Lock()
	defer p.mu.Unlock()
	if old := p.clients[label]; old != nil && !spec.JWTResponse && !old.spec.JWTResponse && old.reuse == key {
		return old.Client, nil
	}
	c, err := newCache(spec.CacheSize)
	if err != nil {
		return fail("%w", err)
	}
	dialer := &net.Dialer{Timeout: spec.Timeout, KeepAlive: 30 * time.Second}
	client := &Client{
		spec:  spec,
		label: label,
		log:   p.log.With("issuer", label),
		m:     p.m,
		http: &http.Client{
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           dialer.DialContext,
				TLSClientConfig:       tlsConf,
				TLSHandshakeTimeout:   spec.Timeout,
				ResponseHeaderTimeout: spec.Timeout,
				ForceAttemptHTTP2:     true,
				MaxIdleConnsPerHost:   spec.MaxConcurrency,
				IdleConnTimeout:       90 * time.Second,
			},
			// Never followed: an endpoint that sends us elsewhere would
			// get the token, and our credentials, sent to another party.
			CheckRedirect: func(*http.Request, []*http.Request) error { return errRedirect },
		},
		auth:    auth,
		cache:   c,
		slots:   make(chan struct{}, spec.MaxConcurrency),
		offline: p.cfg.Offline,
	}
	if !spec.Discovery {
		client.endpoint.set(spec.Endpoint)
	}
	p.clients[label] = &planeEntry{Client: client, reuse: key}
	return client, nil
}

// readSecret reads a client secret file: its content less one trailing
// newline, which editors and `echo` add.
func readSecret(path string) (string, error) {
	if path == "" {
		return "", errors.New("required")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// Name is the issuer's policy name.
func (c *Client) Name() string { return c.label }
