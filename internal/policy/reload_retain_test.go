package policy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/keys/fakeclock"
)

// p256JWK is the members of a P-256 public JWK (RFC 7515 appendix A.3's),
// for key files and servers whose keys are read but verify nothing.
const p256JWK = `"kty":"EC","crv":"P-256",` +
	`"x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"`

// countingJWKS is a JWKS endpoint on 127.0.0.1:0 that counts the requests
// reaching it.
func countingJWKS(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		// Any usable key will do: nothing is verified.
		_, _ = w.Write([]byte(`{"keys":[{"kid":"a",` + p256JWK + `}]}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// TestReloadStopsRemovedIssuersRefreshing: once a reload has swapped in a
// policy without an issuer, no fetch reaches that issuer's JWKS server
// again, however far the clock moves past its refresh times; the issuer
// that stays goes on refreshing.
func TestReloadStopsRemovedIssuersRefreshing(t *testing.T) {
	keptSrv, keptHits := countingJWKS(t)
	goneSrv, goneHits := countingJWKS(t)
	issuer := func(name, url string) string {
		return fmt.Sprintf("  - {name: %s, issuer: https://%[1]s.example, jwks_uri: %s}\n", name, url)
	}
	file := filepath.Join(t.TempDir(), "policy.yaml")
	write := func(issuers string) {
		t.Helper()
		if err := os.WriteFile(file, []byte("version: v1\nissuers:\n"+issuers), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(issuer("kept", keptSrv.URL) + issuer("gone", goneSrv.URL))

	clk := fakeclock.New()
	plane, err := keys.NewPlane(keys.Config{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plane.Close() })
	opts := Options{Keys: plane}
	snap, err := Load([]string{file}, opts)
	if err != nil {
		t.Fatal(err)
	}
	store := NewStore(snap)
	plane.Prefetch(t.Context(), snap.RemoteSources())
	rl := NewReloader(ReloaderConfig{Paths: []string{file}, Store: store, Options: opts,
		Prefetch: plane.Prefetch, PrefetchWait: 10 * time.Second})

	// refresh moves the clock past every refresh time, then waits for the
	// refreshes it started: Prefetch waits for a fetch in flight.
	refresh := func() {
		clk.Add(keys.DefaultMaxRefresh)
		plane.Prefetch(t.Context(), store.Load().RemoteSources())
	}
	refresh()
	if k, g := keptHits.Load(), goneHits.Load(); k != 2 || g != 2 {
		t.Fatalf("before the reload: kept %d, gone %d fetches; want 2 each", k, g)
	}

	write(issuer("kept", keptSrv.URL))
	if err := rl.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := store.Load().Issuers["gone"]; ok {
		t.Fatal("the reload did not swap in the new policy")
	}
	for i := range 5 {
		refresh()
		if k := keptHits.Load(); k != int64(3+i) {
			t.Fatalf("round %d: kept fetched %d times, want %d", i, k, 3+i)
		}
	}
	if g := goneHits.Load(); g != 2 {
		t.Fatalf("the removed issuer's JWKS server was fetched %d times after the reload", g-2)
	}
}
