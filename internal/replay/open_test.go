package replay

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestOpenMemory(t *testing.T) {
	store, closer, err := Open(context.Background(), "memory", MemoryConfig{MaxEntries: 1}, RedisConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if _, ok := store.(*Memory); !ok {
		t.Fatalf("store is %T, want *Memory", store)
	}
	ctx := context.Background()
	until := time.Now().Add(time.Minute)
	if err := store.Claim(ctx, iss, "a", until); err != nil {
		t.Fatal(err)
	}
	// The memory config was honoured.
	if err := store.Claim(ctx, iss, "b", until); !errors.Is(err, ErrFull) {
		t.Fatalf("got %v, want ErrFull", err)
	}
}

func TestOpenRedisDoesNotDial(t *testing.T) {
	// Each form builds a client without contacting anything, so none of
	// these hosts needs to exist.
	for _, spec := range []string{
		"redis://127.0.0.1:1",
		"redis://user:pass@127.0.0.1:1/2?dial_timeout=1s&pool_size=4",
		"rediss://redis.example:6380/0",
		"unix:///run/redis/redis.sock?db=1",
		"redis-sentinel://127.0.0.1:26379?master_name=mymaster&addr=127.0.0.2:26379",
		"rediss-sentinel://:pw@sentinel.example:26379/1?master_name=mymaster&password=master-pw",
		"redis-cluster://127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002",
		"rediss-cluster://user:pw@cluster.example:7000",
	} {
		store, closer, err := Open(context.Background(), spec, MemoryConfig{}, RedisConfig{})
		if err != nil {
			t.Errorf("Open(%q): %v", spec, err)
			continue
		}
		if _, ok := store.(*Redis); !ok {
			t.Errorf("Open(%q) store is %T, want *Redis", spec, store)
		}
		if err := closer.Close(); err != nil {
			t.Errorf("Open(%q): close: %v", spec, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	const secret = "hunter2"
	for _, tc := range []struct{ spec, want string }{
		{"", "empty store"},
		{"Memory", "unknown store"},
		{"127.0.0.1:6379", "redis URL"},
		{"redis-server:6379", "unknown scheme"},
		{"http://" + secret + "@127.0.0.1", "unknown scheme"},
		{"redis://u:" + secret + "@127.0.0.1:xx", "invalid port"},
		{"redis://u:" + secret + "@127.0.0.1/notadb", "database number"},
		{"redis://u:" + secret + "@127.0.0.1?bogus=1", "unexpected option"},
		{"redis-sentinel://u:" + secret + "@127.0.0.1:26379", "master_name is required"},
		{"redis-cluster://u:" + secret + "@127.0.0.1:7000/1", "no database number"},
		{"redis-cluster+x://127.0.0.1", "unknown scheme"},
		{"unix-cluster:///tmp/s", "unknown scheme"},
		{"redis://u:" + secret + "@127.0.0.1:6379\x7f", "invalid"},
	} {
		_, _, err := Open(context.Background(), tc.spec, MemoryConfig{}, RedisConfig{})
		if err == nil {
			t.Errorf("Open(%q): no error", tc.spec)
			continue
		}
		if !strings.HasPrefix(err.Error(), "replay: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %q, want replay: ...%s...", tc.spec, err, tc.want)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Open(%q) error quotes the password: %q", tc.spec, err)
		}
	}
}

func TestNewRedisNegativeTimeout(t *testing.T) {
	if _, err := NewRedis(context.Background(), RedisConfig{URL: "redis://127.0.0.1:1", Timeout: -time.Second}); err == nil {
		t.Fatal("negative timeout accepted")
	}
}
