//go:build unix

package replay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/extauthz/extauthz/internal/redistest"
)

func newTestRedis(t *testing.T, cfg RedisConfig) *Redis {
	t.Helper()
	r, err := NewRedis(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return r
}

// rawClient inspects the server without going through the store.
func rawClient(t *testing.T, srv *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRedisClaimAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	a := newTestRedis(t, RedisConfig{URL: srv.URL()})
	b := newTestRedis(t, RedisConfig{URL: srv.URL()})
	ctx := context.Background()
	until := time.Now().Add(time.Minute)

	if err := a.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if err := a.Claim(ctx, iss, "a", until); err != nil {
		t.Fatalf("first claim on replica a: %v", err)
	}
	if err := b.Claim(ctx, iss, "a", until); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay on replica b: got %v, want ErrReplayed", err)
	}
	if err := a.Claim(ctx, iss, "a", until); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay on replica a: got %v, want ErrReplayed", err)
	}
	if err := b.Claim(ctx, "https://other.example", "a", until); err != nil {
		t.Fatalf("same jti, other issuer: %v", err)
	}
	if err := b.Claim(ctx, iss, "b", until); err != nil {
		t.Fatalf("other jti: %v", err)
	}
}

func TestRedisConcurrentSameJTI(t *testing.T) {
	srv := redistest.Start(t)
	replicas := []*Redis{
		newTestRedis(t, RedisConfig{URL: srv.URL(), Timeout: time.Second}),
		newTestRedis(t, RedisConfig{URL: srv.URL(), Timeout: time.Second}),
	}
	ctx := context.Background()
	until := time.Now().Add(time.Minute)
	const n = 32
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- replicas[i%2].Claim(ctx, iss, "race", until) }()
	}
	accepted := 0
	for range n {
		switch err := <-errs; {
		case err == nil:
			accepted++
		case !errors.Is(err, ErrReplayed):
			t.Fatalf("claim: %v", err)
		}
	}
	if accepted != 1 {
		t.Fatalf("%d claims accepted, want 1", accepted)
	}
}

func TestRedisKeyFormat(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv)
	ctx := context.Background()
	// Bytes that would mean something to RESP or to a key pattern.
	const jti = "\x00\r\n*1\r\n$4\r\nPING\r\n*?[]:\xff"

	for _, tc := range []struct{ prefix, want string }{
		{"", DefaultKeyPrefix},
		{"tenant-a:jti:", "tenant-a:jti:"},
	} {
		r := newTestRedis(t, RedisConfig{URL: srv.URL(), KeyPrefix: tc.prefix})
		if err := raw.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := r.Claim(ctx, iss, jti, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		keys, err := raw.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(iss + "\x00" + jti))
		want := tc.want + hex.EncodeToString(sum[:])
		if len(keys) != 1 || keys[0] != want {
			t.Fatalf("keys = %q, want [%q]", keys, want)
		}
		if !regexp.MustCompile(`^` + regexp.QuoteMeta(tc.want) + `[0-9a-f]{64}$`).MatchString(keys[0]) {
			t.Fatalf("key %q is not prefix + 64 hex digits", keys[0])
		}
		if v, err := raw.Get(ctx, want).Result(); err != nil || v != "1" {
			t.Fatalf("value = %q, %v; want \"1\"", v, err)
		}
	}
}

func TestRedisTTL(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv)
	r := newTestRedis(t, RedisConfig{URL: srv.URL(), KeyPrefix: "p:"})
	ctx := context.Background()

	for _, ttl := range []time.Duration{90 * time.Second, 1500 * time.Millisecond, 24 * time.Hour} {
		jti := ttl.String()
		sent := time.Now()
		if err := r.Claim(ctx, iss, jti, sent.Add(ttl)); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(iss + "\x00" + jti))
		got, err := raw.PTTL(ctx, "p:"+hex.EncodeToString(sum[:])).Result()
		if err != nil {
			t.Fatal(err)
		}
		// Between the time the claim computed its TTL and now, at most
		// the elapsed time has passed; the TTL is never longer than asked,
		// bar the rounding up to a millisecond.
		if elapsed := time.Since(sent); got > ttl+time.Millisecond || got < ttl-elapsed-time.Millisecond {
			t.Fatalf("PTTL = %s, want within (%s, %s]", got, ttl-elapsed, ttl)
		}
	}
}

func TestRedisPastUntilNotStored(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv)
	r := newTestRedis(t, RedisConfig{URL: srv.URL()})
	ctx := context.Background()
	for _, until := range []time.Time{time.Now(), time.Now().Add(-time.Hour), {}} {
		if err := r.Claim(ctx, iss, "a", until); err != nil {
			t.Fatalf("until %v: %v", until, err)
		}
	}
	if n, err := raw.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("DBSIZE = %d, %v; want 0", n, err)
	}
}

func TestRedisIssuerNUL(t *testing.T) {
	srv := redistest.Start(t)
	r := newTestRedis(t, RedisConfig{URL: srv.URL()})
	err := r.Claim(context.Background(), "a\x00b", "c", time.Now().Add(time.Minute))
	if err == nil || errors.Is(err, ErrReplayed) {
		t.Fatalf("got %v, want an error", err)
	}
}

func TestRedisExpiry(t *testing.T) {
	srv := redistest.Start(t)
	r := newTestRedis(t, RedisConfig{URL: srv.URL()})
	ctx := context.Background()
	if err := r.Claim(ctx, iss, "short", time.Now().Add(50*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := r.Claim(ctx, iss, "short", time.Now().Add(time.Minute)); !errors.Is(err, ErrReplayed) {
		t.Fatalf("got %v, want ErrReplayed", err)
	}
	// Redis expires the key on its own clock; poll rather than guess.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := r.Claim(ctx, iss, "short", time.Now().Add(time.Minute))
		if err == nil {
			return
		}
		if !errors.Is(err, ErrReplayed) || time.Now().After(deadline) {
			t.Fatalf("after expiry: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedisRestart stops the server under a live store, expects prompt
// ErrUnavailable, then restarts it on the same port and expects the same
// store to work again by itself.
func TestRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 50 * time.Millisecond
	r := newTestRedis(t, RedisConfig{URL: srv.URL(), Timeout: timeout})
	ctx := context.Background()
	until := time.Now().Add(time.Minute)
	if err := r.Claim(ctx, iss, "before", until); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	for i := range 5 {
		start := time.Now()
		err := r.Claim(ctx, iss, "down"+strconv.Itoa(i), until)
		elapsed := time.Since(start)
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("claim with server down: got %v, want ErrUnavailable", err)
		}
		if !strings.HasPrefix(err.Error(), "replay: ") {
			t.Fatalf("error %q lacks the package prefix", err)
		}
		// Scheduling slack on a loaded 2-core machine under -race.
		if elapsed > timeout+250*time.Millisecond {
			t.Fatalf("claim took %s with a %s timeout", elapsed, timeout)
		}
	}
	if err := r.Ping(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ping with server down: got %v, want ErrUnavailable", err)
	}

	srv.Start()
	// go-redis redials in the background; give it a bounded while.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		err := r.Claim(ctx, iss, "after"+strconv.Itoa(i), until)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("claim after restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := r.Claim(ctx, iss, "again", until); err != nil {
		t.Fatal(err)
	}
	if err := r.Claim(ctx, iss, "again", until); !errors.Is(err, ErrReplayed) {
		t.Fatalf("got %v, want ErrReplayed", err)
	}
}

// TestRedisHungServer freezes the server so that requests are accepted by
// the kernel but never answered: only the timeout can end the claim.
func TestRedisHungServer(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 50 * time.Millisecond
	r := newTestRedis(t, RedisConfig{URL: srv.URL(), Timeout: timeout})
	ctx := context.Background()
	until := time.Now().Add(time.Minute)
	if err := r.Claim(ctx, iss, "warm", until); err != nil {
		t.Fatal(err)
	}

	srv.Pause()
	paused := true
	defer func() {
		if paused {
			srv.Resume()
		}
	}()
	for i := range 3 {
		start := time.Now()
		err := r.Claim(ctx, iss, "hung"+strconv.Itoa(i), until)
		elapsed := time.Since(start)
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("claim on a hung server: got %v, want ErrUnavailable", err)
		}
		if elapsed < timeout-5*time.Millisecond || elapsed > timeout+250*time.Millisecond {
			t.Fatalf("claim took %s with a %s timeout", elapsed, timeout)
		}
	}
	// A caller's own deadline, shorter than the timeout, wins.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	start := time.Now()
	err := r.Claim(short, iss, "hung-short", until)
	cancel()
	if !errors.Is(err, ErrUnavailable) || time.Since(start) > timeout {
		t.Fatalf("claim with a 10ms deadline: %v after %s", err, time.Since(start))
	}

	srv.Resume()
	paused = false
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		// The frozen claims may land once the server thaws: whether a
		// timed-out claim was recorded is unknown, so use fresh jtis.
		err := r.Claim(ctx, iss, "thawed"+strconv.Itoa(i), until)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("claim after resume: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRedisSilentListener dials a TCP server that accepts and never
// answers, so every claim needs a new connection whose setup hangs.
func TestRedisSilentListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-accepted
		for _, c := range conns {
			c.Close()
		}
	})
	const timeout = 50 * time.Millisecond
	r := newTestRedis(t, RedisConfig{URL: "redis://" + ln.Addr().String(), Timeout: timeout})
	for i := range 3 {
		start := time.Now()
		err := r.Claim(context.Background(), iss, strconv.Itoa(i), time.Now().Add(time.Minute))
		elapsed := time.Since(start)
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("got %v, want ErrUnavailable", err)
		}
		if elapsed > timeout+250*time.Millisecond {
			t.Fatalf("claim took %s with a %s timeout", elapsed, timeout)
		}
	}
}

func TestRedisDownAtStartup(t *testing.T) {
	// Nothing listens on this port: construction must not fail, claims
	// and Ping must.
	url := "redis://127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	r := newTestRedis(t, RedisConfig{URL: url})
	ctx := context.Background()
	if err := r.Ping(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ping: got %v, want ErrUnavailable", err)
	}
	if err := r.Claim(ctx, iss, "a", time.Now().Add(time.Minute)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("claim: got %v, want ErrUnavailable", err)
	}
}

func TestRedisAuthAndDB(t *testing.T) {
	srv := redistest.Start(t, "--requirepass", "s3cret")
	ctx := context.Background()

	wrong := newTestRedis(t, RedisConfig{URL: "redis://:wrong@" + srv.Addr() + "/0"})
	err := wrong.Claim(ctx, iss, "a", time.Now().Add(time.Minute))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("wrong password: got %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("error quotes the password: %v", err)
	}

	r := newTestRedis(t, RedisConfig{URL: "redis://:s3cret@" + srv.Addr() + "/3"})
	if err := r.Claim(ctx, iss, "a", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr(), Password: "s3cret", DB: 3})
	defer raw.Close()
	if n, err := raw.DBSize(ctx).Result(); err != nil || n != 1 {
		t.Fatalf("DBSIZE of db 3 = %d, %v; want 1", n, err)
	}
}

func TestRedisSentinel(t *testing.T) {
	master := redistest.Start(t)
	conf := writeFile(t, "sentinel.conf",
		"sentinel monitor mymaster 127.0.0.1 "+strconv.Itoa(master.Port())+" 1\n")
	sentinel := redistest.StartConfig(t, conf, "--sentinel")

	ctx := context.Background()
	url := "redis-sentinel://" + sentinel.Addr() + "?master_name=mymaster"
	a := newTestRedis(t, RedisConfig{URL: url, Timeout: time.Second})
	b := newTestRedis(t, RedisConfig{URL: url, Timeout: time.Second})
	until := time.Now().Add(time.Minute)
	if err := a.Claim(ctx, iss, "a", until); err != nil {
		t.Fatal(err)
	}
	if err := b.Claim(ctx, iss, "a", until); !errors.Is(err, ErrReplayed) {
		t.Fatalf("got %v, want ErrReplayed", err)
	}
	// The key landed on the master the sentinel named.
	if n, err := rawClient(t, master).DBSize(ctx).Result(); err != nil || n != 1 {
		t.Fatalf("master DBSIZE = %d, %v; want 1", n, err)
	}
}

func TestRedisCluster(t *testing.T) {
	dir := t.TempDir()
	node := redistest.Start(t, "--cluster-enabled", "yes", "--cluster-config-file", dir+"/nodes.conf")
	raw := rawClient(t, node)
	ctx := context.Background()
	// A one-node cluster that owns every slot.
	if err := raw.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := raw.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ok: %v\n%s", err, info)
		}
		time.Sleep(20 * time.Millisecond)
	}

	url := "redis-cluster://" + node.Addr()
	a := newTestRedis(t, RedisConfig{URL: url, Timeout: time.Second})
	b := newTestRedis(t, RedisConfig{URL: url, Timeout: time.Second})
	until := time.Now().Add(time.Minute)
	for i := range 20 {
		jti := "c" + strconv.Itoa(i)
		if err := a.Claim(ctx, iss, jti, until); err != nil {
			t.Fatal(err)
		}
		if err := b.Claim(ctx, iss, jti, until); !errors.Is(err, ErrReplayed) {
			t.Fatalf("got %v, want ErrReplayed", err)
		}
	}
}
