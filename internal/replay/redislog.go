package replay

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// go-redis has one process-wide logger, which by default prints to stderr
// with the standard log package, outside the configured format. NewRedis
// replaces it, once, with redisLogger, which writes each line to the
// Logger of the most recent RedisConfig that set one, or to slog.Default().
var (
	redisLogOnce sync.Once
	redisLog     atomic.Pointer[slog.Logger]
)

// useRedisLogger routes go-redis's log lines to log (nil keeps the current
// destination).
func useRedisLogger(log *slog.Logger) {
	if log != nil {
		redisLog.Store(log)
	}
	redisLogOnce.Do(func() { redis.SetLogger(redisLogger{}) })
}

// redisLogger adapts go-redis's Printf logging to slog. go-redis logs only
// trouble (failed dials, sentinel and cluster failovers, a TTL it had to
// round), so every line is a warning; the line itself, which names
// addresses but never a password or a key, is the detail.
type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	log := redisLog.Load()
	if log == nil {
		log = slog.Default()
	}
	if !log.Enabled(ctx, slog.LevelWarn) {
		return
	}
	log.Log(ctx, slog.LevelWarn, "replay: go-redis", "detail", strings.TrimSpace(fmt.Sprintf(format, v...)))
}
