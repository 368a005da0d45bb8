package txtoken

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Paths of the documents on the HTTP port.
const (
	JWKSPath      = "/.well-known/jwks.json"
	DiscoveryPath = "/.well-known/openid-configuration"
)

// MaxAge is the Cache-Control max-age of the JWKS: a quarter of the publish
// delay, between 1 s and 5 min, so that an upstream's cached copy is always
// refreshed well before a newly published key starts to sign.
func (r *Keyring) MaxAge() time.Duration {
	a := r.cfg.PublishDelay / 4
	switch {
	case a < time.Second:
		return time.Second
	case a > 5*time.Minute:
		return 5 * time.Minute
	}
	return a.Truncate(time.Second)
}

// JWKSHandler serves the published public keys.
func (r *Keyring) JWKSHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		st := r.state.Load()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(r.MaxAge()/time.Second)))
		_, _ = w.Write(st.jwks)
	})
}

// DiscoveryHandler serves an OIDC-style discovery document for issuer, so
// libraries that start from the issuer URL find the JWKS.
func (r *Keyring) DiscoveryHandler(issuer string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		algs := r.state.Load().algs
		if len(algs) == 0 {
			algs = []string{AlgES256, AlgEdDSA}
		}
		doc := map[string]any{
			"issuer":   issuer,
			"jwks_uri": JWKSURI(issuer),
			// Not ID tokens, but this is the member OIDC libraries read
			// to learn the algorithms the issuer's JWTs use.
			"id_token_signing_alg_values_supported": algs,
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(r.MaxAge()/time.Second)))
		_ = json.NewEncoder(w).Encode(doc)
	})
}

// JWKSURI is where the issuer's JWKS is published.
func JWKSURI(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + JWKSPath
}
