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
	"github.com/extauthz/extauthz/internal/policy"
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

// hotFixture is cacheServer with one ES256 key, k1, in a set the test
// swaps, on a clock the test moves.
type hotFixture struct {
	priv  *ecdsa.PrivateKey
	key   *keys.Key
	src   *swappableKeys
	clock time.Time
	srv   *Server
	store *policy.Store
	load  func() *policy.Snapshot
}

func newHotFixture(t *testing.T) *hotFixture {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &hotFixture{priv: priv, key: &keys.Key{ID: "k1", Public: &priv.PublicKey}, clock: time.Unix(1_900_000_000, 0)}
	f.src = &swappableKeys{set: keys.NewSet([]*keys.Key{f.key})}
	f.srv, f.store, f.load = cacheServer(t, f.src, &f.clock)
	return f
}

// token is an access token of the policy's API rule for client id,
// expiring in a minute.
func (f *hotFixture) token(t *testing.T, id string) string {
	return es256(t, f.priv, map[string]any{
		"iss": "https://login.example.com", "aud": "api", "scope": "read", "client_id": id,
		"exp": f.clock.Unix() + 60,
	})
}

// TestHotTokens follows a token into the cache's front and out again: the
// front fills on the LRU's second sight of a token, never on a miss, and
// each way an LRU entry stops counting (reload, rotation, expiry) stops a
// front entry too.
func TestHotTokens(t *testing.T) {
	f := newHotFixture(t)
	srv, store := f.srv, f.store
	tok := f.token(t, "c1")

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
	store.Swap(f.load())
	if hit, reason := cached(srv, tok); hit || reason != ReasonAllowed {
		t.Fatalf("after reload: hit %v reason %s; want a fresh verification", hit, reason)
	}
	cached(srv, tok)
	if ht := hotSlot(srv, tok); ht == nil || ht.e.issuer != store.Load().Issuers["login"] {
		t.Fatal("the front does not hold the reloaded policy's entry")
	}

	// Rotation while the token is in the front.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.src.swap(keys.NewSet([]*keys.Key{{ID: "k1", Public: &other.PublicKey}}))
	if hit, reason := cached(srv, tok); hit || reason != ReasonSignature {
		t.Fatalf("after rotation: hit %v reason %s; want signature_invalid", hit, reason)
	}
	if hotSlot(srv, tok) != nil {
		t.Fatal("the front kept an entry whose key left the set")
	}

	// Expiry while the token is in the front.
	f.src.swap(keys.NewSet([]*keys.Key{f.key}))
	cached(srv, tok)
	cached(srv, tok)
	if hotSlot(srv, tok) == nil {
		t.Fatal("the front does not hold the token again")
	}
	f.clock = f.clock.Add(91 * time.Second)
	if hit, reason := cached(srv, tok); !hit || reason != ReasonExpired {
		t.Fatalf("after exp: hit %v reason %s; want the cached token expired", hit, reason)
	}
}

// TestHotTokensCompareEveryByte puts another token's entry in a token's
// slot under the token's own hash, as a hash collision would: the byte
// comparison must refuse it, and a token one byte off a hot one is
// verified (and denied) as itself.
func TestHotTokensCompareEveryByte(t *testing.T) {
	f := newHotFixture(t)
	srv := f.srv
	a, b := f.token(t, "a"), f.token(t, "b")
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

	// Another base64url letter in the signature's second last place (a
	// full six bits: it decodes, to another signature).
	other := "A"
	if a[len(a)-2] == 'A' {
		other = "B"
	}
	flipped := a[:len(a)-2] + other + a[len(a)-1:]
	if hit, reason := cached(srv, flipped); hit || reason != ReasonSignature {
		t.Fatalf("a token one byte off a hot one: hit %v reason %s; want signature_invalid", hit, reason)
	}
}

// TestHotTokensConcurrent checks more hot tokens than the front has slots,
// from several goroutines, so tokens share slots and replace each other
// while others read them: every Check must answer its own token's client.
// Run under -race it also checks the front's publication.
func TestHotTokensConcurrent(t *testing.T) {
	f := newHotFixture(t)
	srv := f.srv
	n := hotSlots + hotSlots/2
	toks := make([]string, n)
	for i := range toks {
		toks[i] = f.token(t, fmt.Sprintf("c%d", i))
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
