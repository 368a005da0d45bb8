package check

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"hash/maphash"
	"sync"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/keys"
)

// hotSlot is the front slot tok maps to in srv's token cache, and what it
// holds.
func hotSlot(srv *Server, tok string) *hotToken {
	h := maphash.String(srv.tokens.hot.seed, tok)
	return srv.tokens.hot.slots[h%hotSlots].Load()
}

// clientIDOf is the x-client-id a Check of tok sets, "" when it sets none.
func clientIDOf(srv *Server, tok string) string {
	resp, err := srv.Check(context.Background(), bearerRequest(tok))
	if err != nil {
		return ""
	}
	for _, h := range resp.GetOkResponse().GetHeaders() {
		if h.GetHeader().GetKey() == "x-client-id" {
			return h.GetHeader().GetValue()
		}
	}
	return ""
}

// TestHotTokens follows a token into the cache's front and out again: the
// front fills on the LRU's second sight of a token, never on a miss, and
// each way an LRU entry stops counting (reload, rotation, expiry) stops a
// front entry too.
func TestHotTokens(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key := &keys.Key{ID: "k1", Public: &priv.PublicKey}
	src := &swappableKeys{set: keys.NewSet([]*keys.Key{key})}
	clock := time.Unix(1_900_000_000, 0)
	srv, store, load := cacheServer(t, src, &clock)
	tok := es256(t, priv, map[string]any{
		"iss": "https://login.example.com", "aud": "api", "scope": "read", "client_id": "c1",
		"exp": clock.Unix() + 60,
	})

	cached(srv, tok)
	if ht := hotSlot(srv, tok); ht != nil {
		t.Fatal("a token seen once is in the front")
	}
	for i := range 3 {
		if hit, reason := cached(srv, tok); !hit || reason != ReasonAllowed {
			t.Fatalf("check %d: hit %v reason %s", i+2, hit, reason)
		}
		if ht := hotSlot(srv, tok); ht == nil || ht.raw != tok {
			t.Fatalf("check %d: the front does not hold the token", i+2)
		}
	}

	// Reload: the front's entry has the old issuer object.
	store.Swap(load())
	if hit, reason := cached(srv, tok); hit || reason != ReasonAllowed {
		t.Fatalf("after reload: hit %v reason %s; want a fresh verification", hit, reason)
	}
	cached(srv, tok)
	if ht := hotSlot(srv, tok); ht == nil || ht.e.issuer != store.Load().Issuers["login"] {
		t.Fatal("the front does not hold the reloaded policy's entry")
	}

	// Rotation while the token is in the front.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	src.swap(keys.NewSet([]*keys.Key{{ID: "k1", Public: &other.PublicKey}}))
	if hit, reason := cached(srv, tok); hit || reason != ReasonSignature {
		t.Fatalf("after rotation: hit %v reason %s; want signature_invalid", hit, reason)
	}
	if hotSlot(srv, tok) != nil {
		t.Fatal("the front kept an entry whose key left the set")
	}

	// Expiry while the token is in the front.
	src.swap(keys.NewSet([]*keys.Key{key}))
	cached(srv, tok)
	cached(srv, tok)
	if hotSlot(srv, tok) == nil {
		t.Fatal("the front does not hold the token again")
	}
	clock = clock.Add(91 * time.Second)
	if hit, reason := cached(srv, tok); !hit || reason != ReasonExpired {
		t.Fatalf("after exp: hit %v reason %s; want the cached token expired", hit, reason)
	}
}

// TestHotTokensCompareEveryByte puts another token's entry in a token's
// slot under the token's own hash, as a hash collision would: the byte
// comparison must refuse it, and a token one byte off a hot one is
// verified (and denied) as itself.
func TestHotTokensCompareEveryByte(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	src := &swappableKeys{set: keys.NewSet([]*keys.Key{{ID: "k1", Public: &priv.PublicKey}})}
	clock := time.Unix(1_900_000_000, 0)
	srv, _, _ := cacheServer(t, src, &clock)
	claims := func(id string) map[string]any {
		return map[string]any{"iss": "https://login.example.com", "aud": "api", "scope": "read", "client_id": id, "exp": clock.Unix() + 60}
	}
	a, b := es256(t, priv, claims("a")), es256(t, priv, claims("b"))
	for range 2 {
		cached(srv, a)
	}
	ha := hotSlot(srv, a)
	if ha == nil {
		t.Fatal("a is not in the front")
	}
	hb := maphash.String(srv.tokens.hot.seed, b)
	forged := &hotToken{hash: hb, raw: a, e: ha.e}
	srv.tokens.hot.slots[hb%hotSlots].Store(forged)
	if got := clientIDOf(srv, b); got != "b" {
		t.Fatalf("b's Check answered x-client-id %q", got)
	}

	flipped := a[:len(a)-2] + string(a[len(a)-2]^1) + a[len(a)-1:]
	if hit, reason := cached(srv, flipped); hit || reason != ReasonSignature {
		t.Fatalf("a token one byte off a hot one: hit %v reason %s; want signature_invalid", hit, reason)
	}
}

// TestHotTokensConcurrent checks more hot tokens than the front has slots,
// from several goroutines, so tokens share slots and replace each other
// while others read them: every Check must answer its own token's client.
// Run under -race it also checks the front's publication.
func TestHotTokensConcurrent(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	src := &swappableKeys{set: keys.NewSet([]*keys.Key{{ID: "k1", Public: &priv.PublicKey}})}
	clock := time.Unix(1_900_000_000, 0)
	srv, _, _ := cacheServer(t, src, &clock)
	n := hotSlots + hotSlots/2
	toks := make([]string, n)
	for i := range toks {
		toks[i] = es256(t, priv, map[string]any{
			"iss": "https://login.example.com", "aud": "api", "scope": "read",
			"client_id": fmt.Sprintf("c%d", i), "exp": clock.Unix() + 60,
		})
	}
	const workers, rounds = 4, 3
	var wg sync.WaitGroup
	errs := make(chan string, workers)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				for j := range toks {
					i := (j*7 + w*131 + r) % n
					if got, want := clientIDOf(srv, toks[i]), fmt.Sprintf("c%d", i); got != want {
						errs <- fmt.Sprintf("token %d answered %q", i, got)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	filled := 0
	for i := range srv.tokens.hot.slots {
		if srv.tokens.hot.slots[i].Load() != nil {
			filled++
		}
	}
	if filled < hotSlots/2 {
		t.Fatalf("only %d of %d front slots filled", filled, hotSlots)
	}
}
