package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/extauthz/extauthz/internal/txtoken"
)

// tokenConfig holds the internal-token flags (serve, and check offline).
type tokenConfig struct {
	issuer       string
	keys         string
	publishDelay time.Duration
	refresh      time.Duration
}

func (c *tokenConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.issuer, "token-issuer", "", "internal tokens: the iss of every token, an http(s) URL at which this server's HTTP port answers /.well-known/openid-configuration and /.well-known/jwks.json")
	fs.StringVar(&c.keys, "token-keys", "", "internal tokens: a PEM file or a directory of PEM files (a mounted Secret) holding the P-256 (ES256) or Ed25519 (EdDSA) signing keys; rules with internal_token are refused without it")
	fs.DurationVar(&c.publishDelay, "token-publish-delay", txtoken.DefaultPublishDelay, "internal tokens: how long a new signing key is published in the JWKS before it signs (cover Secret propagation to every replica plus the upstreams' JWKS cache)")
	fs.DurationVar(&c.refresh, "token-refresh", txtoken.DefaultRefresh, "internal tokens: how often --token-keys is re-read")
}

// check refuses a half-configured issuer: keys without an issuer mint
// tokens no upstream can tie to a JWKS.
func (c *tokenConfig) check() error {
	if c.keys == "" && c.issuer == "" {
		return nil
	}
	if c.keys == "" || c.issuer == "" {
		return errors.New("--token-keys and --token-issuer go together")
	}
	u, err := url.Parse(c.issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("--token-issuer must be an http(s) URL without query or fragment, got %q", c.issuer)
	}
	return nil
}

// noKeys is policy.Options.NoTokenKeys: why a rule with internal_token
// cannot be served, "" when it can.
func (c *tokenConfig) noKeys() string {
	if c.keys != "" {
		return ""
	}
	return "this server has no signing keys; start it with --token-keys and --token-issuer to mint internal tokens"
}

// open reads the signing keys; nil, nil without --token-keys.
func (c *tokenConfig) open(log *slog.Logger, now func() time.Time) (*txtoken.Minter, error) {
	if c.keys == "" {
		return nil, nil
	}
	ring, err := txtoken.Open(txtoken.Config{Path: c.keys, PublishDelay: c.publishDelay, Now: now, Logger: log})
	if err != nil {
		return nil, err
	}
	if log != nil {
		log.Info("internal-token signing keys loaded", "path", c.keys, "published", ring.Published(), "publish_delay", c.publishDelay, "issuer", c.issuer)
	}
	return &txtoken.Minter{Issuer: c.issuer, Keys: ring}, nil
}

// serveTokens starts re-reading the keys, in bg so serve joins it, and
// serves the JWKS and discovery document on the HTTP mux.
func serveTokens(ctx context.Context, bg *sync.WaitGroup, m *txtoken.Minter, refresh time.Duration, mux *http.ServeMux) {
	if m == nil {
		return
	}
	bg.Go(func() { m.Keys.Run(ctx, refresh) })
	mux.Handle("GET "+txtoken.JWKSPath, m.Keys.JWKSHandler())
	mux.Handle("GET "+txtoken.DiscoveryPath, m.Keys.DiscoveryHandler(m.Issuer))
}

// offlineFlags are check's: sign with these keys, to see a real token.
func (c *tokenConfig) offlineFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.issuer, "token-issuer", "", "with --policy, the iss of minted internal tokens")
	fs.StringVar(&c.keys, "token-keys", "", "with --policy, sign internal tokens with the key in this PEM file or directory (default: show their claims unsigned)")
}

// offlineMinter is check's minter: signing with --token-keys, else the
// unsigned preview with the --token-issuer given.
func (c *tokenConfig) offlineMinter(now func() time.Time) (*txtoken.Minter, error) {
	if c.keys == "" {
		return &txtoken.Minter{Issuer: c.issuer}, nil
	}
	return c.open(nil, now)
}
