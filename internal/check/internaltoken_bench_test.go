package check

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/extauthz/extauthz/bench"
	"github.com/extauthz/extauthz/internal/replay"
	"github.com/extauthz/extauthz/internal/txtoken"
)

// BenchmarkCheckInternalToken is the cached-bearer Check at a rule with
// internal_token: signed_per_check reads the request in a claim, so every
// Check signs a fresh ES256 token; reused does not, so the token minted
// first is handed out again. Compare with BenchmarkCheck/cached_bearer.
func BenchmarkCheckInternalToken(b *testing.B) {
	env := benchEnvFor(b)
	key, err := bench.TxKeyPEM()
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "signing.pem")
	if err := os.WriteFile(path, key, 0o600); err != nil {
		b.Fatal(err)
	}
	ring, err := txtoken.Open(txtoken.Config{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := env.idp.ByAlg["ES256"].Sign("at+jwt", env.bearerClaims(0))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, host string }{{"signed_per_check", bench.TxHost}, {"reused", bench.TxReusedHost}} {
		b.Run(c.name, func(b *testing.B) {
			srv := New(Config{Policy: env.store, Replay: replay.NewMemory(replay.MemoryConfig{}),
				Tokens: &txtoken.Minter{Issuer: "https://extauthz.bench.test", Keys: ring}})
			req := bench.TxCheck(c.host, tok, 0)
			view := served(b, req)
			allow(b, srv, view)
			if resp, _ := srv.Check(b.Context(), req); len(resp.GetOkResponse().GetHeaders()) != 2 {
				b.Fatalf("no internal token: %v", resp)
			}
			b.ReportAllocs()
			for b.Loop() {
				allow(b, srv, view)
			}
		})
	}
}
