//go:build unix

package replay

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/extauthz/extauthz/internal/redistest"
)

// capMemory sets maxmemory to what the server uses now plus headroom, so
// the next few hundred claims fill it.
func capMemory(t *testing.T, raw *redis.Client, headroom int64) {
	t.Helper()
	ctx := context.Background()
	info, err := raw.InfoMap(ctx, "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(info["Memory"]["used_memory"], 10, 64)
	if err != nil {
		t.Fatalf("used_memory %q: %v", info["Memory"]["used_memory"], err)
	}
	if err := raw.ConfigSet(ctx, "maxmemory", strconv.FormatInt(n+headroom, 10)).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestRedisMaxmemoryNoeviction: a Redis at maxmemory under noeviction
// refuses the write, which the store reports as full (a deny), not as
// unavailable (which --replay-fail-open would allow); the refused jti was
// not recorded, so it is accepted once there is room.
func TestRedisMaxmemoryNoeviction(t *testing.T) {
	srv := redistest.Start(t, "--maxmemory-policy", "noeviction")
	raw := rawClient(t, srv)
	r := newTestRedis(t, RedisConfig{URL: srv.URL(), Timeout: time.Second})
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	// The store's connection is open, so its buffers are counted already.
	if err := r.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	capMemory(t, raw, 256<<10)

	var refused error
	n := 0
	for ; n < 100_000 && refused == nil; n++ {
		refused = r.Claim(ctx, iss, "flood-"+strconv.Itoa(n), until)
	}
	if !errors.Is(refused, ErrFull) || errors.Is(refused, ErrUnavailable) {
		t.Fatalf("after %d claims: got %v, want ErrFull and not ErrUnavailable", n, refused)
	}
	if n < 10 {
		t.Fatalf("refused after %d claims: the cap left no room at all", n)
	}
	last := "flood-" + strconv.Itoa(n-1)
	if err := raw.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.Claim(ctx, iss, last, until); err != nil {
		t.Fatalf("the refused jti once there is room: %v (it must not have been recorded)", err)
	}
	if err := r.Claim(ctx, iss, "flood-0", until); !errors.Is(err, ErrReplayed) {
		t.Fatalf("an accepted jti: got %v, want ErrReplayed", err)
	}
}

// TestRedisMaxmemoryVolatileTTL: under volatile-ttl a full Redis keeps
// accepting claims by evicting the keys nearest expiry, and an evicted jti
// can then be replayed: the trade-off the operations guide describes.
func TestRedisMaxmemoryVolatileTTL(t *testing.T) {
	srv := redistest.Start(t, "--maxmemory-policy", "volatile-ttl")
	raw := rawClient(t, srv)
	r := newTestRedis(t, RedisConfig{URL: srv.URL(), Timeout: time.Second})
	ctx := context.Background()
	if err := r.Claim(ctx, iss, "victim", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	victim := r.key(mustDigest(t, iss, "victim"))
	capMemory(t, raw, 256<<10)

	until := time.Now().Add(time.Hour)
	for n := 0; ; n++ {
		if n == 100_000 {
			t.Fatal("the shortest-lived key was never evicted")
		}
		if err := r.Claim(ctx, iss, "flood-"+strconv.Itoa(n), until); err != nil {
			t.Fatalf("claim %d: %v (volatile-ttl evicts rather than refuse)", n, err)
		}
		if n%100 != 0 {
			continue
		}
		if left, err := raw.Exists(ctx, victim).Result(); err != nil {
			t.Fatal(err)
		} else if left == 0 {
			break
		}
	}
	if err := r.Claim(ctx, iss, "victim", time.Now().Add(time.Minute)); err != nil {
		t.Fatalf("replay of the evicted jti: got %v, want it accepted (eviction reopens replays)", err)
	}
}

func mustDigest(t *testing.T, namespace, jti string) [32]byte {
	t.Helper()
	sum, err := digest(namespace, jti)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}
