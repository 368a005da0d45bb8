package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// The cached-introspection scenario: opaque tokens of an introspection
// issuer (RFC 7662) on their own host, each answered once by a loopback
// endpoint and then from extauthz's introspection cache, so the scenario
// measures what a cached opaque token costs over the floor.
const (
	IntrospectHost   = "opaque.bench.test"
	introspectTokens = 256
	introspectPrefix = "opaque-bench-"
	introspectSecret = "bench-introspection-secret"
)

// introspectPolicy is the scenario's policy file, loaded beside
// bench/extauthz/policy.yaml: endpoint is the loopback introspection
// endpoint, secretFile extauthz's client secret there. cache_ttl is an hour
// so that the rounds measure the cache, not the endpoint.
func introspectPolicy(endpoint, secretFile string) string {
	return fmt.Sprintf(`version: v1
issuers:
  - name: opaque-as
    issuer: https://opaque-as.bench.test
    introspection:
      endpoint: %s
      client: {client_id: extauthz, method: client_secret_basic, client_secret_file: %s}
      cache_ttl: 1h
rules:
  - name: api-opaque
    match:
      hosts: [%s]
      path_prefixes: [/api/]
      methods: [GET]
    bearer:
      issuers: [opaque-as]
      audiences: [api.bench.test]
      scopes: [read]
    headers:
      x-client-id: client_id
`, endpoint, secretFile, IntrospectHost)
}

// introspectionEndpoint answers active for the bench's opaque tokens and
// inactive for any other; hits counts its requests.
type introspectionEndpoint struct {
	url  string
	hits atomic.Int64
	stop func()
}

func serveIntrospection() (*introspectionEndpoint, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &introspectionEndpoint{url: "http://" + l.Addr().String() + "/introspect"}
	exp := time.Now().Add(2 * time.Hour).Unix()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		if id, secret, ok := r.BasicAuth(); !ok || id != "extauthz" || secret != introspectSecret {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		out := map[string]any{"active": false}
		if strings.HasPrefix(r.PostFormValue("token"), introspectPrefix) {
			out = map[string]any{"active": true, "client_id": "bench-app", "scope": "read", "aud": Audience, "sub": "user", "exp": exp}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	e.stop = func() { srv.Close() }
	return e, nil
}

// IntrospectCheck is Envoy's Check of GET IntrospectHost APIPath with an
// opaque bearer token.
func IntrospectCheck(tok string, seq int) []byte {
	return marshal(envoyRequest("GET", IntrospectHost, APIPath+"?limit=10", map[string]string{"authorization": "Bearer " + tok}, "", seq))
}

// introspectRequests are the scenario's Checks: introspectTokens tokens,
// cycled.
func introspectRequests() [][]byte {
	reqs := make([][]byte, introspectTokens)
	for i := range reqs {
		reqs[i] = IntrospectCheck(fmt.Sprintf("%s%04d", introspectPrefix, i), i)
	}
	return reqs
}

// sanityIntrospect checks that extauthz allows every opaque token of the
// scenario (warming its cache: one endpoint request each) and refuses one
// the endpoint calls inactive.
func sanityIntrospect(ctx context.Context, tg *Target, reqs [][]byte, e *introspectionEndpoint) error {
	for _, req := range reqs {
		if code, err := tg.Check(ctx, 0, req); err != nil || code != 0 {
			return fmt.Errorf("bench: %s does not allow an active opaque token (code %d, err %v); log: %s", tg.Name, code, err, tg.Proc.log)
		}
	}
	if code, err := tg.Check(ctx, 0, IntrospectCheck("revoked-token", 0)); err != nil || code == 0 {
		return fmt.Errorf("bench: %s allows an inactive opaque token (code %d, err %v)", tg.Name, code, err)
	}
	if n := e.hits.Load(); n != int64(len(reqs))+1 {
		return fmt.Errorf("bench: %d introspection requests for %d tokens, want one each", n, len(reqs)+1)
	}
	return nil
}
