package replay

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// records is a slog.Handler that keeps every record, safe to call after its
// test has ended (go-redis logs from its own goroutines).
// Records below min are not enabled.
type records struct {
	min  slog.Level
	mu   sync.Mutex
	recs []slog.Record
}

func (h *records) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }
func (h *records) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *records) WithGroup(string) slog.Handler                { return h }

func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}

// waitFor polls until a record satisfies ok, or fails t after a deadline.
func (h *records) waitFor(t *testing.T, what string, ok func(slog.Record) bool) slog.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		for _, r := range h.recs {
			if ok(r) {
				h.mu.Unlock()
				return r
			}
		}
		n := len(h.recs)
		h.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no log record %s among %d records", what, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func attr(r slog.Record, key string) (v slog.Value, ok bool) {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v, ok = a.Value, true
			return false
		}
		return true
	})
	return v, ok
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// restoreRedisLog puts back go-redis's destination when t ends, so the
// capturing handler of one test does not collect the next test's lines.
func restoreRedisLog(t *testing.T) {
	prev := redisLog.Load()
	t.Cleanup(func() { redisLog.Store(prev) })
}

// dialError reports whether r is go-redis's failed dial to addr, as the
// replay package writes it.
func dialError(addr string) func(slog.Record) bool {
	return func(r slog.Record) bool {
		d, ok := attr(r, "detail")
		return ok && r.Message == "replay: go-redis" && r.Level == slog.LevelWarn &&
			strings.Contains(d.String(), "failed to dial") && strings.Contains(d.String(), addr)
	}
}

func TestRedisLogsThroughSlog(t *testing.T) {
	restoreRedisLog(t)
	h := &records{}
	addr := closedAddr(t)
	r := newTestRedis(t, RedisConfig{URL: "redis://" + addr, Timeout: time.Second, Logger: slog.New(h)})
	if err := r.Ping(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ping a closed port: got %v, want ErrUnavailable", err)
	}
	rec := h.waitFor(t, "of go-redis's failed dial to "+addr, dialError(addr))
	d, _ := attr(rec, "detail")
	if strings.HasSuffix(d.String(), "\n") {
		t.Errorf("detail keeps go-redis's newline: %q", d)
	}

	// A later store without a Logger does not take go-redis's lines away
	// from the one that set it.
	addr2 := closedAddr(t)
	r2 := newTestRedis(t, RedisConfig{URL: "redis://" + addr2, Timeout: time.Second})
	if err := r2.Ping(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ping a closed port: got %v, want ErrUnavailable", err)
	}
	h.waitFor(t, "of go-redis's failed dial to "+addr2, dialError(addr2))
}

func TestRedisLogsToSlogDefault(t *testing.T) {
	restoreRedisLog(t)
	redisLog.Store(nil) // as if no store had set a Logger
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) })
	h := &records{}
	slog.SetDefault(slog.New(h))

	addr := closedAddr(t)
	r := newTestRedis(t, RedisConfig{URL: "redis://" + addr, Timeout: time.Second})
	if err := r.Ping(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ping a closed port: got %v, want ErrUnavailable", err)
	}
	h.waitFor(t, "of go-redis's failed dial to "+addr, dialError(addr))
}

func TestRedisLogLevel(t *testing.T) {
	restoreRedisLog(t)
	h := &records{min: slog.LevelInfo}
	useRedisLogger(slog.New(h))
	ctx := context.Background()
	// The lines as go-redis formats them (sentinel.go, internal/pool).
	redisLogger{}.Printf(ctx, "sentinel: new master=%q addr=%q", "mymaster", "127.0.0.1:6380")
	redisLogger{}.Printf(ctx, "sentinel: GetMasterAddrByName name=%q failed: %s", "mymaster", "i/o timeout")
	redisLogger{}.Printf(ctx, "redis: connection pool: failed to dial after %d attempts: %v", 5, "connection refused")
	h.mu.Lock()
	got := make([]slog.Level, len(h.recs))
	for i, r := range h.recs {
		got[i] = r.Level
	}
	h.mu.Unlock()
	want := []slog.Level{slog.LevelInfo, slog.LevelWarn, slog.LevelWarn}
	if !slices.Equal(got, want) {
		t.Errorf("levels %v, want %v", got, want)
	}

	// A logger above warnings receives none of them.
	quiet := &records{min: slog.LevelError}
	useRedisLogger(slog.New(quiet))
	redisLogger{}.Printf(ctx, "redis: connection pool: failed to dial after %d attempts: %v", 5, "connection refused")
	quiet.mu.Lock()
	defer quiet.mu.Unlock()
	if len(quiet.recs) != 0 {
		t.Errorf("a logger at level error received go-redis's warning: %v", quiet.recs)
	}
}
