package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/extauthz/extauthz/bench/mint"
)

// prepareTokens makes the keys, serves their JWKS, and marshals the bearer
// requests (the tokens signed by an earlier run, when it left them).
func (s *session) prepareTokens(context.Context) error {
	cfg, rep := s.cfg, s.rep
	t := time.Now()
	bs, signed, err := loadBearerSet(filepath.Join(toolsDir(), "bench-tokens"), cfg.Distinct, s.logf)
	if err != nil {
		return err
	}
	s.idp = bs.keys
	if s.client, err = mint.NewKeys("client", "ES256"); err != nil {
		return err
	}
	var clientJWKS []byte
	s.jwks, clientJWKS = s.idp.JWKS(), s.client.JWKS()
	jwksURL, clientsURL, stopJWKS, err := serveJWKS(s.jwks, clientJWKS)
	if err != nil {
		return err
	}
	s.onClose(stopJWKS)
	s.jwksURL, s.clientsURL = jwksURL, clientsURL
	s.cachedTok = bs.Cached
	s.cachedReqs = make([][]byte, 256)
	for i := range s.cachedReqs {
		s.cachedReqs[i] = BearerRequest(s.cachedTok, i)
	}
	s.distinct = map[string][][]byte{}
	for _, alg := range mint.Algs {
		reqs := make([][]byte, len(bs.Distinct[alg]))
		for i, tok := range bs.Distinct[alg] {
			reqs[i] = BearerRequest(tok, i)
		}
		s.distinct[alg] = reqs
	}
	what := "bearer tokens signed"
	if !signed {
		what = fmt.Sprintf("bearer tokens loaded (signed %s ago)", time.Since(bs.Created).Round(time.Minute))
		s.note(fmt.Sprintf("The bearer tokens and their keys were signed by an earlier run, %s ago, and kept in `${EXTAUTHZ_TOOLS:-$HOME/.cache/extauthz-tools}/bench-tokens/`: signing 2 × %d RSA tokens again would cost a minute of the cores. Delete it to sign anew.",
			time.Since(bs.Created).Round(time.Minute), cfg.Distinct))
	}
	rep.timings = append(rep.timings, timing{fmt.Sprintf("keys, and 1 + 4 × %d %s", cfg.Distinct, what), time.Since(t)})
	return nil
}

// signSingleUse signs the client assertions for each replay store and the
// DPoP-bound tokens with their proofs: each is sent once.
func (s *session) signSingleUse(context.Context) error {
	cfg, rep := s.cfg, s.rep
	client := s.client
	t := time.Now()
	now := time.Now()
	assertions := func(store string) ([][]byte, error) {
		toks, err := client.ByAlg["ES256"].SignMany(cfg.Assertions, "", func(i int) map[string]any {
			return map[string]any{
				"iss": ClientID, "sub": ClientID, "aud": TokenEndpoint,
				"iat": now.Unix(), "exp": now.Add(20 * time.Minute).Unix(),
				"jti": fmt.Sprintf("%s-%016x-%08x", store, now.UnixNano(), i),
			}
		})
		if err != nil {
			return nil, err
		}
		reqs := make([][]byte, len(toks))
		for i, tok := range toks {
			reqs[i] = AssertionRequest(tok, i)
		}
		return reqs, nil
	}
	var err error
	if cfg.wants(keyAssertMem) {
		if s.assertMem, err = assertions("mem"); err != nil {
			return err
		}
	}
	if cfg.wants(keyAssertRedis) {
		if s.assertRedis, err = assertions("redis"); err != nil {
			return err
		}
	}
	if n := len(s.assertMem) + len(s.assertRedis); n > 0 {
		rep.timings = append(rep.timings, timing{fmt.Sprintf("%d client assertions signed", n), time.Since(t)})
		s.logf("signed the client assertions in %s", time.Since(t).Round(time.Millisecond))
	}
	// DPoP: client keys of their own; each token bound to one and sent
	// once with its own proof.
	if s.dpopClients, err = NewDPoPClients(); err != nil {
		return err
	}
	if cfg.wants(keyDPoP) {
		t = time.Now()
		if s.dpopReqs, err = dpopRequests(s.idp.ByAlg["ES256"], s.dpopClients, cfg.DPoPProofs); err != nil {
			return err
		}
		rep.timings = append(rep.timings, timing{fmt.Sprintf("%d DPoP-bound tokens and their proofs signed", cfg.DPoPProofs), time.Since(t)})
		s.logf("signed %d DPoP-bound tokens and proofs in %s", cfg.DPoPProofs, time.Since(t).Round(time.Millisecond))
	}
	return nil
}

// serveJWKS serves the bearer issuer's JWKS and the client's on loopback.
func serveJWKS(jwks, clients []byte) (jwksURL, clientsURL string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", nil, err
	}
	mux := http.NewServeMux()
	serve := func(doc []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "max-age=3600")
			_, _ = w.Write(doc)
		}
	}
	mux.Handle("GET /jwks", serve(jwks))
	mux.Handle("GET /clients", serve(clients))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	base := "http://" + l.Addr().String()
	return base + "/jwks", base + "/clients", func() { srv.Close() }, nil
}
