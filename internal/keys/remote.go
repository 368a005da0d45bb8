package keys

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Fetch outcomes. They are metric label values: keep them stable.
const (
	outcomeSuccess     = "success"
	outcomeNotModified = "not_modified"
	outcomeStatus      = "http_status"
	outcomeTooLarge    = "too_large"
	outcomeInvalid     = "invalid"
	outcomeTimeout     = "timeout"
	outcomeNetwork     = "network"
	outcomeRedirect    = "redirect_refused"
	outcomeDiscovery   = "discovery"
)

// maxRedirects bounds same-host redirects; real JWKS endpoints use at most one.
const maxRedirects = 5

var (
	errFetchTimeout    = errors.New("timed out")
	errRedirectRefused = errors.New("redirect to another host or scheme refused")
)

// fetchError is a failed fetch with the outcome it is counted under.
type fetchError struct {
	outcome string
	url     string
	err     error
}

func (e *fetchError) Error() string { return "keys: fetch " + e.url + ": " + e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

func outcomeOf(err error) string {
	if fe, ok := errors.AsType[*fetchError](err); ok {
		return fe.outcome
	}
	if err != nil {
		return outcomeNetwork
	}
	return outcomeSuccess
}

// entryKey is everything that decides what a remote source fetches and how;
// two specs with equal keys share one cached key set.
type entryKey struct {
	name, issuer, jwksURI string
	discovery, insecure   bool
	ca                    [sha256.Size]byte
}

// remoteConf is the immutable part of a remote source, shared by the
// handles that policy reloads create and the cache entry they resolve to.
type remoteConf struct {
	key        entryKey
	label      string
	client     *http.Client
	errUnknown error
	errOffline error
}

// remoteSource is the handle the policy holds. It keeps no key set itself:
// the set lives in the plane's LRU, so an evicted issuer is simply fetched
// again by its next lookup.
type remoteSource struct {
	p    *Plane
	conf *remoteConf
}

func (p *Plane) remoteSource(spec Spec, label string) (Source, error) {
	key := entryKey{
		name:      spec.Name,
		issuer:    spec.Issuer,
		jwksURI:   spec.JWKSURI,
		discovery: spec.Discovery,
		insecure:  spec.AllowInsecureHTTP,
	}
	var pool *x509.CertPool
	if spec.CAFile != "" {
		pem, err := os.ReadFile(spec.CAFile)
		if err != nil {
			return nil, fmt.Errorf("keys: issuer %s: ca_file: %w", label, err)
		}
		if pool, err = x509.SystemCertPool(); err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("keys: issuer %s: ca_file %s: no PEM certificates found", label, spec.CAFile)
		}
		key.ca = sha256.Sum256(pem)
	}
	if spec.Discovery {
		if spec.Issuer == "" {
			return nil, fmt.Errorf("keys: issuer %s: discovery needs the issuer URL", label)
		}
		u, err := checkURL(spec.Issuer, spec.AllowInsecureHTTP)
		if err != nil {
			return nil, fmt.Errorf("keys: issuer %s: discovery: %w", label, err)
		}
		if u.RawQuery != "" {
			return nil, fmt.Errorf("keys: issuer %s: discovery: issuer URL has a query", label)
		}
	} else if _, err := checkURL(spec.JWKSURI, spec.AllowInsecureHTTP); err != nil {
		return nil, fmt.Errorf("keys: issuer %s: jwks_uri: %w", label, err)
	}
	conf := &remoteConf{
		key:        key,
		label:      label,
		client:     p.httpClient(key.ca, pool),
		errUnknown: fmt.Errorf("keys: issuer %s: %w", label, ErrUnknownKID),
		errOffline: &unavailableError{label: label, cause: errors.New("offline: remote keys are not fetched")},
	}
	p.claim(label, nil, key)
	return &remoteSource{p: p, conf: conf}, nil
}

// checkURL accepts https URLs, and http ones only on loopback or when the
// operator said so: keys fetched in clear text are keys anyone on the path
// can replace.
func checkURL(raw string, insecure bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Host == "" || !u.IsAbs() {
		return nil, fmt.Errorf("%q is not an absolute URL", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%s: credentials in the URL are not supported", u.Redacted())
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("%s: URL has a fragment", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !insecure && !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("%s: http:// is allowed only for loopback hosts or with allow_insecure_http", raw)
		}
	default:
		return nil, fmt.Errorf("%s: scheme %q is not https", raw, u.Scheme)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// httpClient returns a client whose transport is shared by every issuer with
// the same trust roots, so connections are pooled per root set, not per
// issuer.
func (p *Plane) httpClient(ca [sha256.Size]byte, pool *x509.CertPool) *http.Client {
	p.mu.Lock()
	t, ok := p.transports[ca]
	if !ok {
		dialer := &net.Dialer{Timeout: p.cfg.FetchTimeout, KeepAlive: 30 * time.Second}
		t = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool},
			TLSHandshakeTimeout:   p.cfg.FetchTimeout,
			ResponseHeaderTimeout: p.cfg.FetchTimeout,
			ForceAttemptHTTP2:     true,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
		}
		p.transports[ca] = t
	}
	p.mu.Unlock()
	return &http.Client{Transport: t, CheckRedirect: sameOrigin}
}

// sameOrigin follows a redirect only to the host and scheme first asked:
// a JWKS URI that sends us elsewhere is not the issuer's any more.
func sameOrigin(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	if req.URL.Scheme != first.Scheme || !strings.EqualFold(req.URL.Host, first.Host) {
		return fmt.Errorf("%w: to %s", errRedirectRefused, req.URL.Redacted())
	}
	if len(via) >= maxRedirects {
		return fmt.Errorf("%w: more than %d redirects", errRedirectRefused, maxRedirects)
	}
	return nil
}

// document is one fetched HTTP body.
type document struct {
	body        []byte
	maxAge      time.Duration
	hasMaxAge   bool
	etag        string
	notModified bool
}

// get fetches u, bounded in time by the caller's ctx and in size by
// MaxBodyBytes.
func (p *Plane) get(ctx context.Context, client *http.Client, u, etag string) (*document, error) {
	shown := u
	if pu, err := url.Parse(u); err == nil {
		shown = pu.Redacted()
	}
	fail := func(outcome string, err error) (*document, error) {
		return nil, &fetchError{outcome: outcome, url: shown, err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fail(outcomeNetwork, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	req.Header.Set("User-Agent", "extauthz")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fail(classify(ctx, err), cause(ctx, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified && etag != "" {
		return &document{notModified: true, etag: etag, maxAge: 0, hasMaxAge: false}, nil
	}
	if resp.StatusCode != http.StatusOK {
		return fail(outcomeStatus, fmt.Errorf("status %d", resp.StatusCode))
	}
	limit := p.cfg.MaxBodyBytes
	if resp.ContentLength > limit {
		return fail(outcomeTooLarge, fmt.Errorf("body of %d bytes exceeds the %d-byte limit", resp.ContentLength, limit))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fail(classify(ctx, err), cause(ctx, err))
	}
	if int64(len(body)) > limit {
		return fail(outcomeTooLarge, fmt.Errorf("body exceeds the %d-byte limit", limit))
	}
	d := &document{body: body, etag: resp.Header.Get("ETag")}
	d.maxAge, d.hasMaxAge = maxAge(resp.Header)
	return d, nil
}

func classify(ctx context.Context, err error) string {
	switch {
	case errors.Is(err, errRedirectRefused):
		return outcomeRedirect
	case errors.Is(context.Cause(ctx), errFetchTimeout):
		return outcomeTimeout
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return outcomeTimeout
	}
	return outcomeNetwork
}

// cause replaces "context canceled" by why it was canceled.
func cause(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && errors.Is(c, errFetchTimeout) {
		return c
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

// maxAge reads Cache-Control. no-store and no-cache count as max-age=0, which
// the refresh floor then raises.
func maxAge(h http.Header) (time.Duration, bool) {
	for _, v := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			switch {
			case d == "no-store" || d == "no-cache":
				return 0, true
			case strings.HasPrefix(d, "max-age="):
				n, err := strconv.ParseInt(strings.Trim(d[len("max-age="):], `"`), 10, 64)
				if err != nil || n < 0 {
					continue
				}
				if n > int64(365*24*time.Hour/time.Second) {
					n = int64(365 * 24 * time.Hour / time.Second)
				}
				return time.Duration(n) * time.Second, true
			}
		}
	}
	return 0, false
}

// discover finds the JWKS URI from the issuer's metadata: OpenID Connect
// discovery first, then RFC 8414. The metadata's issuer must equal the
// configured one byte for byte, or a metadata document could point us at
// another issuer's keys.
func (p *Plane) discover(ctx context.Context, conf *remoteConf) (string, error) {
	iss := conf.key.issuer
	oidc := strings.TrimSuffix(iss, "/") + "/.well-known/openid-configuration"
	u, _ := url.Parse(iss)
	oauth := *u
	oauth.Path = "/.well-known/oauth-authorization-server" + strings.TrimSuffix(u.Path, "/")
	oauth.RawPath = ""

	var errs []string
	var last error
	for _, mu := range []string{oidc, oauth.String()} {
		jwksURI, err := p.metadata(ctx, conf, mu)
		if err == nil {
			return jwksURI, nil
		}
		if ctx.Err() != nil {
			return "", err
		}
		last = err
		errs = append(errs, strings.TrimPrefix(err.Error(), "keys: "))
	}
	return "", &fetchError{outcome: outcomeOf(last), url: iss, err: fmt.Errorf("discovery failed: %s", strings.Join(errs, "; "))}
}

func (p *Plane) metadata(ctx context.Context, conf *remoteConf, mu string) (string, error) {
	d, err := p.get(ctx, conf.client, mu, "")
	if err != nil {
		return "", err
	}
	var md struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(d.body, &md); err != nil {
		return "", &fetchError{outcome: outcomeInvalid, url: mu, err: fmt.Errorf("metadata is not JSON: %w", err)}
	}
	if md.Issuer != conf.key.issuer {
		return "", &fetchError{outcome: outcomeDiscovery, url: mu, err: fmt.Errorf("metadata issuer %q differs from the configured %q", md.Issuer, conf.key.issuer)}
	}
	if md.JWKSURI == "" {
		return "", &fetchError{outcome: outcomeDiscovery, url: mu, err: errors.New("metadata has no jwks_uri")}
	}
	if _, err := checkURL(md.JWKSURI, conf.key.insecure); err != nil {
		return "", &fetchError{outcome: outcomeDiscovery, url: mu, err: fmt.Errorf("jwks_uri: %w", err)}
	}
	return md.JWKSURI, nil
}
